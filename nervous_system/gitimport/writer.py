"""The import's batch writer: whole commits per transaction, content ahead when it piles up.

A ``BatchWriter`` owns what is pending — the events of whole commits and the new
contents they name — and the counters of what was stored. Events are appended with
``Ledger.append_many`` about ``batch_commits`` commits per transaction; a commit's
events always go in the same transaction, so an interrupted import never leaves half a
commit. When more than ``SPILL_BLOB_BYTES`` of new content is pending it is stored
ahead of its events with ``Ledger.put_blobs`` (an orphan blob is harmless, a half
commit is not).
"""

from __future__ import annotations

from typing import Sequence

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
        if self.blob_bytes > SPILL_BLOB_BYTES:
            self._count_new()
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
        if not self.events:
            return
        self._count_new()
        results = self.ledger.append_many(self.events, self.blobs)
        added = sum(1 for r in results if r.inserted)
        self.events_added += added
        self.events_present += len(results) - added
        self.events = []
        self.blobs = {}
        self.blob_bytes = 0
        self.commits = 0

    def _count_new(self) -> None:
        for digest, data in self.blobs.items():
            if not self.ledger.has_blob(digest, tenant_id=self.tenant_id):
                self.new_blobs += 1
                self.new_content_bytes += len(data)
