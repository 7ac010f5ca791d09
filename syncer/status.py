"""``ledger sync status``: the outbox and the syncer's last success and last error.

The syncer records each pass in the local ledger's ``meta`` table (keys below), so the
status is available without the hub and without the daemon running.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

from ledger import Ledger

LAST_SUCCESS_NS = "syncer.last_success_ns"
LAST_SUCCESS_REPORT = "syncer.last_success_report"
LAST_ERROR = "syncer.last_error"
LAST_ERROR_NS = "syncer.last_error_ns"

#: How many refused events ``sync_status`` lists (the count is always complete).
REFUSED_SHOWN = 20


def record_success(ledger: Ledger, report: dict) -> None:
    """Store the time (ns) and summary of a successful pass."""
    ledger.set_meta(LAST_SUCCESS_NS, str(time.time_ns()))
    ledger.set_meta(LAST_SUCCESS_REPORT, json.dumps(report, default=str))


def record_failure(ledger: Ledger, message: str) -> None:
    """Store the time (ns) and message of a failed pass."""
    ledger.set_meta(LAST_ERROR_NS, str(time.time_ns()))
    ledger.set_meta(LAST_ERROR, message)


@dataclass
class SyncStatus:
    """The outbox of one local ledger.

    ``pending``: events not yet on the hub (including refused ones); ``refused``: those
    the syncer will not send, with ``refused_events`` listing up to 20 as
    ``{"seq", "event_id", "tenant_id", "error"}``; ``oldest_pending_ns``/``oldest_pending_age_s``:
    when the oldest pending event was recorded locally and how long ago (seconds);
    ``last_success_ns``/``last_error_ns`` (ns since the epoch) with ``last_error`` text and
    ``last_report`` (the last successful pass's counts).
    """

    ledger: str
    ledger_id: str
    pending: int
    refused: int
    synced: int
    oldest_pending_ns: int | None
    oldest_pending_age_s: float | None
    last_success_ns: int | None
    last_report: dict | None
    last_error_ns: int | None
    last_error: str | None
    refused_events: list = field(default_factory=list)
    #: Where events go (a gateway URL or a cluster file), None when no hub is configured,
    #: "" when the caller did not say.
    hub: str | None = ""

    @property
    def problem(self) -> str:
        """Why the outbox is not healthy ("" when it is): no hub configured, a hub that
        cannot be used, the last pass failed, or events refused."""
        if self.hub is None:
            return "no hub configured"
        if self.hub.startswith("unusable:"):
            return self.hub
        if self.last_error_ns is not None and (self.last_success_ns or 0) < self.last_error_ns:
            return f"the last pass failed: {self.last_error}"
        if self.refused:
            return f"{self.refused} event(s) refused by the hub"
        return ""

    @property
    def healthy(self) -> bool:
        """True when a hub is configured, the last pass succeeded (or none failed) and
        nothing is refused."""
        return not self.problem

    def to_dict(self) -> dict:
        d = asdict(self)
        d["healthy"] = self.healthy
        d["problem"] = self.problem or None
        return d


def _int(value: str | None) -> int | None:
    return int(value) if value else None


def sync_status(ledger: Ledger, *, now_ns: int | None = None, hub: str | None = "") -> SyncStatus:
    """The outbox status of ``ledger`` (see ``SyncStatus``); reads only the local ledger.
    ``hub``: where events go (None: no hub configured; "" unknown)."""
    now_ns = now_ns or time.time_ns()
    box = ledger.outbox_status()
    refused_events: list = []
    if box["refused"]:
        cursor = 0
        while len(refused_events) < min(box["refused"], REFUSED_SHOWN):
            rows = ledger.pending(limit=500, after_seq=cursor, include_refused=True)
            if not rows:
                break
            for r in rows:
                cursor = r.seq
                if r.sync_error and len(refused_events) < REFUSED_SHOWN:
                    refused_events.append(
                        {"seq": r.seq, "event_id": r.event_id, "tenant_id": r.tenant_id, "error": r.sync_error}
                    )
    report = ledger.get_meta(LAST_SUCCESS_REPORT)
    oldest = box["oldest_pending_ns"]
    return SyncStatus(
        ledger=str(ledger.path),
        ledger_id=ledger.ledger_id,
        pending=box["pending"],
        refused=box["refused"],
        synced=box["synced"],
        oldest_pending_ns=oldest,
        oldest_pending_age_s=round((now_ns - oldest) / 1e9, 3) if oldest else None,
        last_success_ns=_int(ledger.get_meta(LAST_SUCCESS_NS)),
        last_report=json.loads(report) if report else None,
        last_error_ns=_int(ledger.get_meta(LAST_ERROR_NS)),
        last_error=ledger.get_meta(LAST_ERROR),
        refused_events=refused_events,
        hub=hub,
    )
