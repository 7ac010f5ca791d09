"""Where the ingestor reads events: the local ledger or the team hub.

A source has named *streams*, each an ordered log with sortable, fixed-width text
positions; the ingestor checkpoints the last position per stream.

* ``LocalSource(ledger)``: one stream ``local:<ledger_id>`` (this laptop's ledger file),
  positions are the ledger's ``seq`` as 20 digits. Every tenant and project in the file.
* ``HubSource(hub)``: one stream per project of the hub's tenant,
  ``hub:<tenant>/<project>``; positions are hub positions (FoundationDB versionstamp +
  index in the commit, 12 bytes, as 24 hex digits) — all laptops of the tenant.
  ``hub`` is a ``hub.protocol.HubClient`` (direct FoundationDB or the gateway's client).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from google.protobuf.message import DecodeError

from ingest.errors import SourceError
from ingest.rows import local_position, local_rows, row_from_body
from hub.protocol import HubClient
from ledger.errors import LedgerError
from schemas.errors import ContextLedgerError


@dataclass
class SourceBatch:
    """Rows read from one stream: ``rows`` in stream order, ``last_position`` the
    position to resume after (None when nothing was read), ``event_ids`` of the rows."""

    rows: list[tuple] = field(default_factory=list)
    last_position: str | None = None


class Source(Protocol):
    """What the ingestor needs from a source."""

    kind: str

    def streams(self) -> list[str]:
        """Names of the streams to ingest."""

    def read(self, stream: str, after: str | None, limit: int) -> SourceBatch:
        """About ``limit`` rows after position ``after`` (None: from the start)."""

    def backlog(self, stream: str, after: str | None) -> int | None:
        """Events waiting after ``after`` (an estimate for progress bars), or None."""


class LocalSource:
    """The local SQLite ledger (``ledger.Ledger``): single-machine mode."""

    kind = "local"

    def __init__(self, ledger) -> None:
        self.ledger = ledger
        self.stream = f"local:{ledger.ledger_id}"

    def streams(self) -> list[str]:
        return [self.stream]

    def read(self, stream: str, after: str | None, limit: int) -> SourceBatch:
        after_seq = int(after) if after else 0
        try:
            # the lean read path: plain tuples, no StoredEvent objects (ledger.Ledger.event_rows)
            records = self.ledger.event_rows(after_seq, limit)
            batch = SourceBatch(local_rows(records, stream))
        except LedgerError as exc:
            raise SourceError(f"cannot read the local ledger {self.ledger.path}: {exc}") from exc
        except DecodeError as exc:
            raise SourceError(f"the local ledger {self.ledger.path} holds an unreadable event: {exc}") from exc
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
            body = getattr(rec, "body", None)
            if body is None:
                body = rec.event.to_bytes()
            pos = position.hex()
            row = row_from_body(body, source="hub", stream=stream, position=pos,
                                hub_versionstamp=bytes(rec.versionstamp))
            if row[0] != self.tenant_id:
                raise SourceError(
                    f"the hub log of tenant {self.tenant_id!r}, project {project!r} holds an event of "
                    f"tenant {row[0]!r} (event {row[3]}); refusing to mix tenants: report this hub bug"
                )
            batch.rows.append(row)
            batch.last_position = pos
        return batch

    def backlog(self, stream: str, after: str | None) -> int | None:
        return None
