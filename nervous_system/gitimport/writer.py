"""The import's batch writer: whole commits per transaction, content ahead when it piles up.

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
"""

from __future__ import annotations

from typing import Sequence

from ledger.changes import content_hash
from ledger.errors import LedgerError
from ledger.store import Ledger
from schemas import SwarmEvent

__all__ = ["BatchWriter", "SPILL_BLOB_BYTES", "MAX_BATCH_EVENTS"]

#: New content held in memory before it is stored ahead of its events (read at call
#: time, so tests may lower it).
SPILL_BLOB_BYTES = 64 * 1024 * 1024
#: Events appended per transaction at most (a commit is never split, so one huge
#: commit may exceed it).
MAX_BATCH_EVENTS = 20_000


class BatchWriter:
    """Pending events and contents of an import into ``tenant_id``, and what was stored.

    Counters: ``events_added``/``events_present`` (appends that were new / already
    stored), ``new_blobs``/``new_content_bytes`` (contents that were not stored yet)."""

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
            self._count_new(self.blobs)
            self.ledger.put_blobs(self.blobs, tenant_id=self.tenant_id)
            self.blobs = {}
            self.blob_bytes = 0

    def content(self, digest: str) -> bytes | None:
        """Content handed over earlier (pending here or stored in the ledger), or None."""
        if digest in self.blobs:
            return self.blobs[digest]
        try:
            return self.ledger.get_blob(digest, tenant_id=self.tenant_id)
        except LedgerError:
            return None

    def add_commit(self, events: Sequence[SwarmEvent]) -> None:
        """The events of one whole commit; appends the batch when it is full."""
        self.events.extend(events)
        self.commits += 1
        if self.commits >= self.batch_commits or len(self.events) >= MAX_BATCH_EVENTS:
            self.flush()

    def flush(self) -> None:
        """Append every pending event with its contents in one transaction."""
        self._append(keep_unnamed=False)

    def _append(self, *, keep_unnamed: bool) -> None:
        """Append the pending (whole) commits with the contents they name, in one
        transaction; with ``keep_unnamed`` the contents of the commit being built are kept
        for its events (else every pending content is dropped after the append)."""
        if not self.events:
            return
        named = {d for d in map(content_hash, self.events) if d is not None}
        self._count_new({d: v for d, v in self.blobs.items() if d in named or not keep_unnamed})
        results = self.ledger.append_many(self.events, self.blobs)
        added = sum(1 for r in results if r.inserted)
        self.events_added += added
        self.events_present += len(results) - added
        self.events = []
        self.commits = 0
        if keep_unnamed:
            self.blobs = {d: v for d, v in self.blobs.items() if d not in named}
            self.blob_bytes = sum(map(len, self.blobs.values()))
        else:
            self.blobs = {}
            self.blob_bytes = 0

    def _count_new(self, blobs: dict[str, bytes]) -> None:
        for digest, data in blobs.items():
            if not self.ledger.has_blob(digest, tenant_id=self.tenant_id):
                self.new_blobs += 1
                self.new_content_bytes += len(data)
