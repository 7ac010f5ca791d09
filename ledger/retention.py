"""Retention per project and event kind, legal holds, and ``gc`` (docs/trust.md,
"Retention").

The policy comes from the configuration (``ledger.toml``)::

    [retention]                 # every project of the tenant
    span = "30d"
    message = "365d"
    state_change = "forever"    # the default for a kind not named: keep
    [retention.projects.web]    # overrides for one project
    span = "7d"

Durations are ``<n>d``, ``<n>h`` or ``forever``; the age is the event's time (the
agent's clock). ``gc`` never removes silently: it removes the expired events of every
project of the tenant that is not under a legal hold, keeps their links in the hash
chain (``chain_removed``: the chain still verifies), and records what it removed as an
event of its own (a ``signal`` with status ``retention_gc`` whose detail is JSON: kind,
cutoff, count, first and last seq, a SHA-256 over the removed event ids). A legal hold
(``ledger hold add``) on a project — or on the whole tenant — suspends every removal
there until it is lifted.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Mapping

from ledger import chain
from ledger.errors import ConfigError
from schemas.enums import PAYLOAD_KINDS

_DURATION = re.compile(r"^\s*(\d+)\s*([dh])\s*$")
NS_PER = {"d": 86_400 * 10**9, "h": 3_600 * 10**9}


def parse_duration(value) -> int | None:
    """``"30d"``/``"12h"`` -> nanoseconds; ``"forever"`` (or None) -> None. Raises
    ``ConfigError`` for anything else."""
    if value is None or str(value).strip().lower() in ("forever", "keep", ""):
        return None
    m = _DURATION.match(str(value))
    if not m:
        raise ConfigError(f"retention: {value!r} is not a duration (use e.g. \"30d\", \"12h\" or \"forever\")")
    return int(m.group(1)) * NS_PER[m.group(2)]


@dataclass
class Policy:
    """Retention per kind (``{kind: ns or None}``) for every project, and per-project
    overrides (``{project: {kind: ns or None}}``)."""

    kinds: dict[str, int | None] = field(default_factory=dict)
    projects: dict[str, dict[str, int | None]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping | None) -> "Policy":
        """From the ``[retention]`` table (see the module docstring). Raises ``ConfigError``."""
        config = dict(config or {})
        projects = config.pop("projects", {}) or {}

        def kinds(table: Mapping, where: str) -> dict[str, int | None]:
            out = {}
            for kind, value in table.items():
                if kind not in PAYLOAD_KINDS:
                    raise ConfigError(f"retention{where}: unknown event kind {kind!r} (kinds: {', '.join(PAYLOAD_KINDS)})")
                out[kind] = parse_duration(value)
            return out
        return cls(kinds(config, ""), {p: kinds(t, f".projects.{p}") for p, t in projects.items()})

    def __bool__(self) -> bool:
        return any(v is not None for v in self.kinds.values()) or any(
            v is not None for t in self.projects.values() for v in t.values())

    def for_project(self, project: str) -> dict[str, int | None]:
        merged = dict(self.kinds)
        merged.update(self.projects.get(project, {}))
        return merged


@dataclass
class GcReport:
    """What ``gc`` did: ``removed`` per project and kind, ``held`` projects skipped
    (with the hold ids), ``recorded`` event ids of the records it wrote, ``dry_run``."""

    tenant_id: str
    removed: dict = field(default_factory=dict)
    held: dict = field(default_factory=dict)
    recorded: list = field(default_factory=list)
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(n for kinds in self.removed.values() for n in kinds.values())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["total"] = self.total
        return d


# --------------------------------------------------------------------------- holds
def add_hold(ledger, *, tenant_id: str, project_id: str | None, reason: str) -> int:
    """Place a legal hold (on ``project_id``, or the whole tenant when None); returns its id."""
    if not reason.strip():
        raise ValueError("a legal hold needs a reason (the matter or ticket it is for)")
    with ledger.write_transaction() as conn:
        return conn.execute("INSERT INTO legal_holds (tenant_id, project_id, reason, created_ns) VALUES (?, ?, ?, ?)",
                            (tenant_id, project_id or "", reason, time.time_ns())).lastrowid


def remove_hold(ledger, *, tenant_id: str, hold_id: int) -> bool:
    """Lift a hold; False when the tenant has no hold of that id."""
    with ledger.write_transaction() as conn:
        return conn.execute("DELETE FROM legal_holds WHERE tenant_id = ? AND id = ?", (tenant_id, hold_id)).rowcount > 0


def list_holds(ledger, *, tenant_id: str) -> list[dict]:
    """The tenant's holds: ``{"id", "project_id" ("" = every project), "reason", "created_ns"}``."""
    rows = ledger._conn().execute(
        "SELECT id, project_id, reason, created_ns FROM legal_holds WHERE tenant_id = ? ORDER BY id", (tenant_id,))
    return [{"id": r[0], "project_id": r[1], "reason": r[2], "created_ns": r[3]} for r in rows]


# --------------------------------------------------------------------------- gc
def gc(ledger, *, tenant_id: str, policy: Policy, now_ns: int | None = None, dry_run: bool = False,
       agent_id: str = "ledger-gc") -> GcReport:
    """Apply ``policy`` to the tenant's projects (see the module docstring). Each
    project's removal and its record are one transaction. Returns a ``GcReport``."""
    from schemas import SwarmEvent, SystemSignal, new_event_id

    now_ns = now_ns if now_ns is not None else time.time_ns()
    report = GcReport(tenant_id, dry_run=dry_run)
    holds = list_holds(ledger, tenant_id=tenant_id)
    projects = [r[0] for r in ledger._conn().execute(
        "SELECT project_id FROM projects WHERE tenant_id = ? ORDER BY project_id", (tenant_id,))]
    for project in projects:
        held = [h["id"] for h in holds if h["project_id"] in ("", project)]
        limits = {k: v for k, v in policy.for_project(project).items() if v is not None}
        if not limits:
            continue
        if held:
            report.held[project] = held
            continue
        with ledger.write_transaction() as conn:
            for kind, keep_ns in sorted(limits.items()):
                cutoff = now_ns - keep_ns
                where = ("tenant_id = ? AND project_id = ? AND kind = ? AND time_ns < ? "
                         "AND NOT (kind = 'signal' AND agent_id = ?)")  # never the gc's own records
                params = (tenant_id, project, kind, cutoff, agent_id)
                rows = conn.execute(f"SELECT seq, event_id FROM events WHERE {where} ORDER BY seq", params).fetchall()
                if not rows:
                    continue
                report.removed.setdefault(project, {})[kind] = len(rows)
                if dry_run:
                    continue
                chain.remember_removed(conn, where, params, reason=f"retention {kind} {keep_ns // NS_PER['h']}h",
                                       removed_ns=now_ns)
                conn.execute(f"DELETE FROM events WHERE {where}", params)
                ids = hashlib.sha256("\n".join(r[1] for r in rows).encode()).hexdigest()
                detail = json.dumps({"kind": kind, "cutoff_ns": cutoff, "count": len(rows), "first_seq": rows[0][0],
                                     "last_seq": rows[-1][0], "event_ids_sha256": ids}, sort_keys=True)
                record = SwarmEvent(event_id=new_event_id(), timestamp=time.time_ns(), tenant_id=tenant_id,
                                    project_id=project, agent_id=agent_id,
                                    signal=SystemSignal(status="retention_gc", detail=detail))
                report.recorded.append(record.event_id)
                ledger.append(record)  # joins this transaction: removal and record commit together
    return report
