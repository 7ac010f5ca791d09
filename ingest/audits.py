"""The ``ledger audit`` reports: each one a documented SQL file in ``ingest/audits/``.

Users can copy a file into clickhouse-client or ``ledger sql`` and adapt it; parameters
are ClickHouse query parameters (``{name:Type}``). ``run_audit`` runs one read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.errors import AnalyticsError
from ingest.readonly import QueryResult, run_readonly

AUDIT_DIR = Path(__file__).resolve().parent / "audits"


@dataclass(frozen=True)
class Audit:
    """A report: CLI name, SQL file, one-line summary, its parameters and defaults."""

    name: str
    file: str
    summary: str
    defaults: dict[str, Any]

    @property
    def path(self) -> Path:
        return AUDIT_DIR / self.file

    def sql(self) -> str:
        return self.path.read_text()


AUDITS: dict[str, Audit] = {a.name: a for a in (
    Audit("hot-files", "hot_files.sql", "paths changed at least N times within a time window (hot files, loops)",
          {"project": "", "window_s": 3600, "min_changes": 5, "limit": 100}),
    Audit("decisions", "decisions.sql", "decisions up to a moment, newest first, with the changes they caused",
          {"project": "", "limit": 50}),
    Audit("reverted", "reverted.sql", "low-confidence changes later reverted",
          {"project": "", "max_confidence": 0.5}),
    Audit("agents", "agents.sql", "activity per agent and role",
          {"project": "", "since": 0, "until": 9_223_372_036_000_000_000}),
    Audit("why", "why.sql", "every change of a path with the decision behind it", {"project": ""}),
)}

#: Parameters holding a time (int nanoseconds since the epoch in Python).
_TIME_PARAMS = ("before", "since", "until")
_MAX_NS = 9_223_372_036_000_000_000


def _bind_time(ns: int) -> str:
    """DateTime64(9) parameter text (UTC) for int nanoseconds since the epoch, clamped to
    DateTime64(9)'s range (1900-01-01 .. 2262-04-11)."""
    import datetime as dt

    ns = max(0, min(int(ns), _MAX_NS))
    seconds, frac = divmod(ns, 1_000_000_000)
    base = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)
    return f"{base:%Y-%m-%d %H:%M:%S}.{frac:09d}"


def audit_parameters(name: str, tenant: str, **params: Any) -> dict[str, Any]:
    """The query parameters of report ``name``: defaults, then ``params`` (None ignored).
    Time parameters are int nanoseconds. Raises ``AnalyticsError`` for an unknown report."""
    audit = AUDITS.get(name)
    if audit is None:
        raise AnalyticsError(f"unknown audit {name!r}; reports: {', '.join(AUDITS)}")
    values = {"tenant": tenant, **audit.defaults, **{k: v for k, v in params.items() if v is not None}}
    for key in _TIME_PARAMS:
        if key in values:
            values[key] = _bind_time(values[key])
    return values


def run_audit(url: str, name: str, *, tenant: str, limits=None, refresh=None, **params: Any) -> QueryResult:
    """Run report ``name`` for ``tenant`` in the SQL sandbox (``ingest.readonly``) against
    the analytics database at ``url``; ``limits``/``refresh`` as for ``run_readonly``
    (``refresh=ledger`` ingests the tenant's new local events first).

    ``params`` per report (see the SQL file's header): ``project`` ('' = all),
    hot-files ``window_s``, ``min_changes``, ``limit``; decisions ``before`` (ns),
    ``limit``; reverted ``max_confidence``; agents ``since``/``until`` (ns); why ``path``.
    Raises ``AnalyticsError`` subclasses.
    """
    values = audit_parameters(name, tenant, **params)
    return run_readonly(url, AUDITS[name].sql(), values, tenant=tenant, limits=limits, refresh=refresh)
