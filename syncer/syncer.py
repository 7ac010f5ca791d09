"""The store-and-forward syncer: the local ledger's outbox -> the team hub.

One pass (``Syncer.sync_once``) reads unsynced events in recording order
(``Ledger.pending``), checks each locally (tenant, size, key lengths, content present),
groups them into batches bounded by bytes and count, and for each batch:

1. uploads the content blobs the batch names that the hub lacks (blobs first, so the hub
   never holds an event whose content is missing; a large blob spans several
   transactions and is marked complete last);
2. writes the events in one transaction that checks each event's idempotency key
   (``ids/<event_id>``) *inside* the transaction: a retry after ``not_committed`` (1020),
   ``commit_unknown_result`` (1021), a timeout (1031) or a crash skips what is already
   there and returns its stored versionstamp;
3. reads back the committed versionstamp and marks the local rows synced with their
   12-byte hub positions (``Ledger.mark_synced``).

A crash at any point leaves either rows still pending (sent again, found by their
idempotency key, never duplicated) or rows marked synced. ``run_forever`` repeats passes
with a poll interval and backs off with jitter while the hub is unreachable.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from hub.errors import HubConflict, HubError, HubFailure, TenantMismatch
from hub.protocol import KEY_SIZE_LIMIT, MAX_HUB_EVENT_BYTES, HubClient, event_hub_bytes, event_paths
from ledger import Ledger, StoredEvent
from ledger.changes import content_hash
from ledger.errors import LedgerError
from ledger.faults import crash_point
from schemas.errors import SchemaError
from syncer import status as status_mod

log = logging.getLogger("syncer")

#: Bytes per event transaction: "well under 1 MB" (FoundationDB's guidance for
#: transaction size; the hard limit is 10,000,000 bytes).
DEFAULT_BATCH_BYTES = 500_000
#: Events per transaction (also bounded by the 65,536 user versions of a versionstamp).
DEFAULT_BATCH_EVENTS = 500
#: Bytes per blob-upload transaction.
DEFAULT_BLOB_TXN_BYTES = 800_000
#: Room left in a key for the directory prefix and tuple framing around a path.
_KEY_MARGIN = 200


@dataclass
class SyncReport:
    """What one pass did. Counts are events unless named otherwise; bytes are serialized
    event bytes (``bytes``) and stored blob bytes (``blob_bytes``)."""

    sent: int = 0
    already_on_hub: int = 0
    refused: int = 0
    batches: int = 0
    bytes: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    seconds: float = 0.0
    stopped: bool = False
    refusals: list = field(default_factory=list)
    #: The hash chain sent after the events (``syncer.chains``): head seq the hub holds,
    #: links and checkpoints sent.
    chain: dict = field(default_factory=dict)
    #: Erasure keys sent (``ledger.erasure_hub.push_keys``): uploaded, refused (erased on
    #: the hub: destroyed here), hub_erased (pending erasures done on the hub).
    seal_keys: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["refusals"] = d["refusals"][:20]
        return d


class Backoff:
    """Exponential backoff with "equal jitter": attempt n waits a uniform random time in
    ``[d/2, d]`` where ``d = min(cap, base * 2**n)`` seconds (AWS architecture blog,
    "Exponential Backoff And Jitter"), so many laptops coming back online spread out."""

    def __init__(self, base: float = 0.5, cap: float = 60.0, rng: random.Random | None = None) -> None:
        self.base, self.cap = base, cap
        self.attempt = 0
        self.rng = rng or random.Random()

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt (and count this attempt)."""
        d = min(self.cap, self.base * (2 ** self.attempt))
        self.attempt += 1
        return self.rng.uniform(d / 2, d)

    def reset(self) -> None:
        self.attempt = 0


def upload_needed_blobs(hub: HubClient, rows, read_blob: Callable[[str], bytes],
                        txn_bytes: int = DEFAULT_BLOB_TXN_BYTES) -> tuple[int, int]:
    """Blobs first: upload the content the file changes among ``rows`` (events with
    ``event`` and ``project_id``) name and the hub lacks, read with ``read_blob(digest)``.
    Returns ``(blobs_written, stored_bytes)``."""
    wanted: dict[str, list[str]] = {}
    for row in rows:
        digest = content_hash(row.event)
        if digest:
            wanted.setdefault(row.project_id, []).append(digest)
    written = stored = 0
    for project_id, digests in wanted.items():
        missing = hub.missing_blobs(project_id, digests)
        if missing:
            n, b = hub.upload_blobs(project_id, ((d, read_blob(d)) for d in missing), txn_bytes)
            written, stored = written + n, stored + b
    return written, stored


def conflict_reason(event_id: str) -> str:
    """The refusal recorded for an event whose id the hub holds with other content."""
    return (
        f"conflict: the hub already holds event {event_id} with different content (the same "
        "id with other bytes, e.g. one repository imported on two machines with different "
        "settings); it is not sent and never marked synced. Compare with `ledger log --source hub`, "
        "then record the change again (it gets a new id)"
    )


class Syncer:
    """Sends one local ledger's outbox to one tenant's hub.

    ``batch_bytes``/``batch_events`` bound each event transaction; ``blob_txn_bytes``
    bounds each blob-upload transaction. Not thread-safe; run one per ledger (the daemon
    enforces it with a lock file; two running anyway stay correct thanks to the
    idempotency keys, they only waste work).
    """

    def __init__(
        self,
        ledger: Ledger,
        hub: HubClient,
        *,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        batch_events: int = DEFAULT_BATCH_EVENTS,
        blob_txn_bytes: int = DEFAULT_BLOB_TXN_BYTES,
        record_status: bool = True,
    ) -> None:
        if batch_events < 1 or batch_events > 65_535:
            raise ValueError("batch_events must be between 1 and 65535 (versionstamp user versions)")
        self.ledger = ledger
        self.hub = hub
        self.tenant_id = hub.tenant_id
        self.batch_bytes = int(batch_bytes)
        self.batch_events = int(batch_events)
        self.blob_txn_bytes = int(blob_txn_bytes)
        self.record_status = record_status

    # ------------------------------------------------------------ local checks
    def refusal(self, row: StoredEvent) -> str | None:
        """Why ``row`` cannot go to this syncer's hub, or None if it can."""
        if row.tenant_id != self.tenant_id:
            return (
                f"event {row.event_id} belongs to tenant {row.tenant_id!r}, but this syncer is "
                f"configured for tenant {self.tenant_id!r}; it is not sent (run "
                f"`ledger --tenant {row.tenant_id} sync` to send it to its own tenant)"
            )
        if len(row.body) > MAX_HUB_EVENT_BYTES:
            return (
                f"event {row.event_id} is too large for the hub: {len(row.body):,} bytes serialized, "
                f"over the {MAX_HUB_EVENT_BYTES:,}-byte limit of one FoundationDB transaction "
                "(10,000,000 bytes with keys); it stays in the local ledger. Record big content "
                "as a file change (content goes to the blob store) and keep diff_patch/message "
                "text small"
            )
        try:
            event = row.event
        except (SchemaError, ValueError) as exc:
            return f"event {row.event_id} cannot be read by this version: {exc}"
        paths = event_paths(event)
        for p in paths:
            if len(p.encode()) + _KEY_MARGIN > KEY_SIZE_LIMIT:
                return (
                    f"event {row.event_id}: path of {len(p.encode()):,} bytes is too long for a "
                    f"hub index key (FoundationDB keys are at most {KEY_SIZE_LIMIT:,} bytes)"
                )
        if event_hub_bytes(len(row.body), paths) > MAX_HUB_EVENT_BYTES:
            return f"event {row.event_id} with its index keys exceeds {MAX_HUB_EVENT_BYTES:,} bytes"
        digest = content_hash(event)
        if digest and not self.ledger.has_blob(digest, tenant_id=row.tenant_id):
            return (
                f"event {row.event_id} names content {digest} that is not in the local blob "
                "store; it cannot be replayed from the hub without it"
            )
        return None

    def _refuse(self, row: StoredEvent, reason: str, report: SyncReport) -> None:
        report.refused += 1
        report.refusals.append({"seq": row.seq, "event_id": row.event_id, "error": reason})
        if row.sync_error != reason:
            self.ledger.mark_sync_error(row.seq, reason)
            log.warning("refused seq %d: %s", row.seq, reason)

    # ------------------------------------------------------------ one pass
    def sync_once(
        self,
        *,
        stop: threading.Event | None = None,
        progress: Callable[[SyncReport], None] | None = None,
    ) -> SyncReport:
        """Send every pending event (oldest first) and return what was done.

        Stops early (``report.stopped``) when ``stop`` is set, after the current batch.
        Raises ``HubUnavailable`` when the hub cannot be reached (what was committed so far
        is marked synced; the rest stays pending); the failure is recorded in the ledger's
        meta table for ``ledger sync status``.
        """
        report = SyncReport()
        started = time.monotonic()
        try:
            from ledger.erasure_hub import push_keys

            report.seal_keys = push_keys(self.ledger, self.hub)  # before the events: readers find the keys
            self._pass(report, stop, progress)
            if not report.stopped:
                from syncer.chains import push_chain

                report.chain = push_chain(self.ledger, self.hub)
        except (HubFailure, LedgerError) as exc:
            report.seconds = time.monotonic() - started
            if self.record_status:
                status_mod.record_failure(self.ledger, str(exc))
            log.error("sync pass failed after %d events: %s", report.sent + report.already_on_hub, exc)
            raise
        report.seconds = time.monotonic() - started
        if self.record_status:
            status_mod.record_success(self.ledger, report.to_dict())
        log.info("sync pass: %s", json.dumps({k: v for k, v in report.to_dict().items() if k != "refusals"}))
        return report

    def _pass(self, report, stop, progress) -> None:
        cursor = 0
        batch: list[StoredEvent] = []
        batch_bytes = 0
        while True:
            if stop is not None and stop.is_set():
                report.stopped = True
                return
            rows = self.ledger.pending(limit=self.batch_events, after_seq=cursor, include_refused=True)
            if not rows:
                break
            for row in rows:
                cursor = row.seq
                reason = self.refusal(row)
                if reason is not None:
                    self._refuse(row, reason, report)
                    continue
                size = event_hub_bytes(len(row.body), event_paths(row.event))
                if batch and (batch_bytes + size > self.batch_bytes or len(batch) >= self.batch_events):
                    self._send(batch, report)
                    if progress:
                        progress(report)
                    batch, batch_bytes = [], 0
                    if stop is not None and stop.is_set():
                        report.stopped = True
                        return
                batch.append(row)
                batch_bytes += size
        if batch:
            self._send(batch, report)
            if progress:
                progress(report)

    def _send(self, batch: list[StoredEvent], report: SyncReport) -> None:
        """Blobs first, then the events; then mark them synced. Splits a batch the hub
        refuses as a whole; refuses (locally) a single event the hub will not take, and
        every event whose id the hub holds with different content (never marked synced)."""
        try:
            self._upload_blobs(batch, report)
            crash_point("sync.after_blobs")
            outcomes = self.hub.write_events(batch, origin=self.ledger.ledger_id, last_seq=batch[-1].seq)
            crash_point("sync.after_write")
        except TenantMismatch as exc:  # refusal() makes this unreachable; kept as a guard
            raise HubError(str(exc)) from exc
        except HubConflict as exc:
            conflicting = set(exc.event_ids)
            for row in batch:
                if row.event_id in conflicting:
                    self._refuse(row, conflict_reason(row.event_id), report)
            rest = [row for row in batch if row.event_id not in conflicting]
            if len(rest) == len(batch):  # the hub named none of these: do not loop
                raise
            if rest:
                self._send(rest, report)
            return
        except HubError as exc:
            if len(batch) > 1:
                half = len(batch) // 2
                self._send(batch[:half], report)
                self._send(batch[half:], report)
                return
            self._refuse(batch[0], f"the hub refused event {batch[0].event_id}: {exc}", report)
            return
        self.ledger.mark_synced([(row.seq, o.position) for row, o in zip(batch, outcomes)])
        crash_point("sync.after_mark")
        report.batches += 1
        for row, o in zip(batch, outcomes):
            if o.inserted:
                report.sent += 1
                report.bytes += len(row.body)
            else:
                report.already_on_hub += 1

    def _upload_blobs(self, batch: list[StoredEvent], report: SyncReport) -> None:
        n, b = upload_needed_blobs(self.hub, batch, lambda d: self.ledger.get_blob(d, tenant_id=self.tenant_id),
                                   self.blob_txn_bytes)
        report.blobs += n
        report.blob_bytes += b

    # ------------------------------------------------------------ the loop
    def run_forever(
        self,
        stop: threading.Event,
        *,
        interval: float = 5.0,
        backoff: Backoff | None = None,
        on_pass: Callable[[SyncReport | None, Exception | None], None] | None = None,
    ) -> None:
        """Repeat passes until ``stop`` is set: wait ``interval`` seconds between passes
        that emptied the outbox, back off with jitter while the hub is unavailable.
        ``on_pass(report, error)`` is called after each pass. Returns when stopped."""
        backoff = backoff or Backoff()
        while not stop.is_set():
            try:
                report = self.sync_once(stop=stop)
            except (HubFailure, LedgerError) as exc:
                if on_pass:
                    on_pass(None, exc)
                delay = backoff.next_delay()
                log.warning("hub unavailable, retrying in %.1fs: %s", delay, exc)
                stop.wait(delay)
                continue
            backoff.reset()
            if on_pass:
                on_pass(report, None)
            if report.stopped:
                return
            stop.wait(interval)
