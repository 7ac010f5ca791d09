"""The import's batch writer: whole commits per transaction, written on a second thread.

A ``BatchWriter`` owns what is pending — the events of whole commits and the new
contents they name — and the counters of what was stored. Events are appended with
``Ledger.append_many`` about ``batch_commits`` commits per transaction; a commit's
events always go in the same transaction, so an interrupted import never leaves half a
commit. When more than ``SPILL_BLOB_BYTES`` of new content is pending, the whole
commits pending are appended early (their contents are stored with their events, so a
new version of a path becomes a delta against the previous one, see ``ledger.blobs``);
if the commit being built alone still holds more, its contents are stored ahead of its
events with ``Ledger.put_blobs`` as full copies (an orphan blob is harmless, a half
commit is not).

Pipelining: a full batch goes through the write pipeline on the caller's thread
(``Ledger.prepare_many``: redaction, serialization) and is appended on ONE writer
thread (``Ledger.append_prepared``) while the caller builds the next one (reading git,
hashing, building events), so the two cores of a laptop share
the work: SQLite, zstd and SHA-256 release the GIL. At most one batch is in flight;
batches are appended in the order they were made (the writer waits for the previous
one before it hands over the next), so the ledger receives exactly what a serial writer
would, and the delta chains are the same. Contents of the batch in flight stay readable
through ``content`` until it has committed. An error of the writer thread is raised in
the caller by the next ``add_commit``/``keep``/``flush``/``close``. While a writer is
open the ledger's cache of decoded contents may hold ``IMPORT_CACHE_BYTES``.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Sequence

from ledger.blobs import widen_cache
from ledger.changes import content_hash
from ledger.errors import LedgerError
from ledger.records import Prepared
from ledger.store import Ledger
from schemas import SwarmEvent

__all__ = ["BatchWriter", "SPILL_BLOB_BYTES", "MAX_BATCH_EVENTS", "IMPORT_CACHE_BYTES"]

#: New content held in memory before it is stored ahead of its events (read at call
#: time, so tests may lower it). With the batch in flight, up to twice this is held.
SPILL_BLOB_BYTES = 64 * 1024 * 1024
#: Events appended per transaction at most (a commit is never split, so one huge
#: commit may exceed it).
MAX_BATCH_EVENTS = 20_000
#: Decoded contents the ledger keeps in memory while an import runs
#: (``ledger.blobs.widen_cache``): most delta bases are then found there. On git/git
#: (~100 MB of new content per 1,000 commits) 128 MiB cut the base reads from 30,700 to
#: 6,366 and the import from 110 to 103 s.
IMPORT_CACHE_BYTES = 128 * 1024 * 1024


class BatchWriter:
    """Pending events and contents of an import into ``tenant_id``, and what was stored.

    Counters (final after ``flush()``/``close()``): ``events_added``/``events_present``
    (appends that were new / already stored), ``new_blobs``/``new_content_bytes``
    (contents that were not stored yet). Use as a context manager, or call ``close()``:
    it waits for the batch in flight and stops the writer thread."""

    def __init__(self, ledger: Ledger, *, tenant_id: str, batch_commits: int) -> None:
        self.ledger = ledger
        self.tenant_id = tenant_id
        self.batch_commits = batch_commits
        self.events: list[SwarmEvent] = []
        self.blobs: dict[str, bytes] = {}
        self.blob_bytes = 0
        self.commits = 0
        self.events_added = 0
        self.events_present = 0
        self.new_blobs = 0
        self.new_content_bytes = 0
        _ = ledger.pipeline  # built here, on the caller's thread, before both threads use it
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-import-writer")
        self._restore_cache: Callable[[], None] | None = widen_cache(IMPORT_CACHE_BYTES)
        self._in_flight: Future | None = None
        self._flying: dict[str, bytes] = {}  # contents of the batch in flight

    def __enter__(self) -> "BatchWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def keep(self, digest: str, data: bytes, path: str = "") -> None:
        """Content (SHA-256 hex -> bytes) that pending or coming events name. Content of a
        ``path`` the ledger withholds (a secret file, ``ledger.secret_files``) is not kept:
        it is recorded by hash only, and must not reach the blob store ahead of its event."""
        if digest in self.blobs or (path and self.ledger.pipeline.withholds(path)):
            return
        self.blobs[digest] = data
        self.blob_bytes += len(data)
        if self.blob_bytes > SPILL_BLOB_BYTES and self.events:
            self._append(keep_unnamed=True)  # whole commits first: their contents join delta chains
        if self.blob_bytes > SPILL_BLOB_BYTES:  # one commit's own contents: ahead, as full copies
            self.wait()
            self._count_new(self.blobs)
            self.ledger.put_blobs(self.blobs, tenant_id=self.tenant_id)
            self.blobs = {}
            self.blob_bytes = 0

    def content(self, digest: str) -> bytes | None:
        """Content handed over earlier (pending here, in flight, or stored in the
        ledger), or None."""
        data = self.blobs.get(digest)
        if data is None:
            data = self._flying.get(digest)
        if data is not None:
            return data
        try:
            return self.ledger.get_blob(digest, tenant_id=self.tenant_id)
        except LedgerError:
            return None

    def add_commit(self, events: Sequence[SwarmEvent]) -> None:
        """The events of one whole commit; hands the batch to the writer thread when it
        is full."""
        self.events.extend(events)
        self.commits += 1
        if self.commits >= self.batch_commits or len(self.events) >= MAX_BATCH_EVENTS:
            self._append(keep_unnamed=False)

    def flush(self) -> None:
        """Append every pending event with its contents and wait until every batch has
        committed: afterwards the ledger holds all that was handed over."""
        self._append(keep_unnamed=False)
        self.wait()

    def wait(self) -> None:
        """Wait for the batch in flight (if any) to commit; raise its error."""
        flying, self._in_flight = self._in_flight, None
        if flying is not None:
            try:
                flying.result()
            finally:
                self._flying = {}

    def close(self) -> None:
        """Wait for the batch in flight (its error is raised) and stop the writer
        thread. Pending events not flushed are dropped (they were never appended).
        Safe to call twice."""
        try:
            self.wait()
        finally:
            self._thread.shutdown(wait=True)
            restore, self._restore_cache = self._restore_cache, None
            if restore is not None:
                restore()

    def _append(self, *, keep_unnamed: bool) -> None:
        """Hand the pending (whole) commits with the contents they name to the writer
        thread, one transaction; with ``keep_unnamed`` the contents of the commit being
        built are kept for its events (else every pending content goes with the batch)."""
        if not self.events:
            return
        events, blobs = self.events, self.blobs
        named = {d for d in map(content_hash, events) if d is not None}
        count = {d: v for d, v in blobs.items() if d in named or not keep_unnamed}
        self.events = []
        self.commits = 0
        if keep_unnamed:
            self.blobs = {d: v for d, v in blobs.items() if d not in named}
            self.blob_bytes = sum(map(len, self.blobs.values()))
        else:
            self.blobs = {}
            self.blob_bytes = 0
        prepared = self.ledger.prepare_many(events, blobs)  # the pipeline runs here, on this thread
        self.wait()  # batches are appended in order, one at a time
        self._flying = blobs
        self._in_flight = self._thread.submit(self._write, prepared, count)

    def _write(self, prepared: Prepared, count: dict[str, bytes]) -> None:
        """On the writer thread: one batch, one transaction."""
        self._count_new(count)
        results = self.ledger.append_prepared(prepared)
        added = sum(1 for r in results if r.inserted)
        self.events_added += added
        self.events_present += len(results) - added

    def _count_new(self, blobs: dict[str, bytes]) -> None:
        stored = self.ledger.stored_blobs(blobs, tenant_id=self.tenant_id)
        for digest, data in blobs.items():
            if digest not in stored:
                self.new_blobs += 1
                self.new_content_bytes += len(data)
