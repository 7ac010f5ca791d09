"""Where the ingestor reads events: the local ledger or the team hub, one tenant at a time.

A source has named *streams*, each an ordered log with sortable, fixed-width text
positions; the ingestor checkpoints the last position per stream.

* ``LocalSource(ledger, tenant=...)``: one stream ``local:<ledger_id>/<tenant>`` (this
  laptop's ledger file, the tenant's events only); positions are the ledger's ``seq`` as
  20 digits. Versions before the tenant filter used ``local:<ledger_id>`` for every
  tenant; that stream's checkpoint and rows still count (``aliases``), so an upgrade
  loads nothing twice.
* ``HubSource(hub)``: one stream per project of the hub's tenant,
  ``hub:<tenant>/<project>``; positions are hub positions (FoundationDB versionstamp +
  index in the commit, 12 bytes, as 24 hex digits) — all laptops of the tenant.
  ``hub`` is a ``hub.protocol.HubClient`` (direct FoundationDB or the gateway's client).

A stored event that cannot be loaded (unreadable body, unsupported schema version, body
id or tenant other than its row's, values ClickHouse cannot store) is not raised: the
batch reports it in ``refused`` (by stream position and event id) and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ingest.errors import SourceError
from ingest.rows import BadRow, RefusedRow, build_row, local_position, local_rows
from hub.protocol import HubClient
from ledger.errors import LedgerError
from schemas.errors import ContextLedgerError


@dataclass
class SourceBatch:
    """What one read of a stream gave: ``rows`` in stream order, ``refused`` stored
    events that cannot be loaded, ``last_position`` the position to resume after (None
    when nothing was read)."""

    rows: list[tuple] = field(default_factory=list)
    last_position: str | None = None
    refused: list[RefusedRow] = field(default_factory=list)


class Source(Protocol):
    """What the ingestor needs from a source."""

    kind: str

    def streams(self) -> list[str]:
        """Names of the streams to ingest."""

    def read(self, stream: str, after: str | None, limit: int) -> SourceBatch:
        """About ``limit`` events after position ``after`` (None: from the start)."""

    def backlog(self, stream: str, after: str | None) -> int | None:
        """Events waiting after ``after`` (an estimate for progress bars), or None."""


class LocalSource:
    """The local SQLite ledger (``ledger.Ledger``), the events of ``tenant`` only."""

    kind = "local"

    def __init__(self, ledger, *, tenant: str) -> None:
        if not tenant:
            raise SourceError("a local source reads one tenant: give tenant=")
        self.ledger = ledger
        self.tenant = tenant
        self.stream = f"local:{ledger.ledger_id}/{tenant}"

    def streams(self) -> list[str]:
        return [self.stream]

    def aliases(self, stream: str) -> list[str]:
        """Streams whose checkpoint and rows also cover ``stream``: the all-tenants stream
        of versions before the tenant filter."""
        return [f"local:{self.ledger.ledger_id}"]

    def read(self, stream: str, after: str | None, limit: int) -> SourceBatch:
        after_seq = int(after) if after else 0
        try:
            # the lean read path: plain tuples, no StoredEvent objects (ledger.Ledger.event_rows)
            records = self.ledger.event_rows(after_seq, limit, tenant_id=self.tenant)
        except LedgerError as exc:
            raise SourceError(f"cannot read the local ledger {self.ledger.path}: {exc}") from exc
        rows, refused = local_rows(records, stream, tenant=self.tenant)
        batch = SourceBatch(rows, refused=refused)
        if records:
            batch.last_position = local_position(records[-1][0])
        return batch

    def backlog(self, stream: str, after: str | None) -> int | None:
        return max(self.ledger.max_seq() - (int(after) if after else 0), 0)


class HubSource:
    """The team hub (FoundationDB) of one tenant: every laptop's events."""

    kind = "hub"

    def __init__(self, hub: HubClient) -> None:
        self.hub = hub
        self.tenant_id = hub.tenant_id

    def streams(self) -> list[str]:
        try:
            projects = self.hub.projects()
        except ContextLedgerError as exc:
            raise SourceError(f"cannot list the hub's projects: {exc}") from exc
        return [f"hub:{self.tenant_id}/{p}" for p in sorted(projects)]

    def read(self, stream: str, after: str | None, limit: int) -> SourceBatch:
        project = stream.split("/", 1)[1]
        try:
            records = self.hub.read_log(project, after_versionstamp=bytes.fromhex(after) if after else None,
                                        limit=limit)
        except ContextLedgerError as exc:
            raise SourceError(f"cannot read project {project!r} from the hub: {exc}") from exc
        batch = SourceBatch()
        for rec in records:
            position = bytes(getattr(rec, "position", None) or rec.versionstamp)
            pos = position.hex()
            batch.last_position = pos
            event_id = ""
            try:
                body = getattr(rec, "body", None)
                if body is None:
                    body = rec.event.to_bytes()
                event_id = getattr(rec, "event_id", None) or ""
                row = build_row(body, "hub", stream, pos, 0, bytes(rec.versionstamp[:10]).hex(), 0,
                                event_id=event_id or None, tenant=self.tenant_id)
            except BadRow as exc:
                batch.refused.append(RefusedRow(stream, pos, event_id, str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - one bad record never stops the ingest
                batch.refused.append(RefusedRow(stream, pos, event_id, f"unreadable hub record ({exc})"))
                continue
            batch.rows.append(row)
        return batch

    def backlog(self, stream: str, after: str | None) -> int | None:
        return None
