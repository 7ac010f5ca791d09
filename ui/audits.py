"""The Audits view's data: ``ledger audit`` reports read from the analytics database
(``ingest.audits.run_audit``), plus activity per agent over time (the ``agents`` report
over consecutive time slices). When analytics is not installed the answer says exactly
what to install; when nothing was ingested yet, what to run."""

from __future__ import annotations

import datetime as dt
import decimal

#: What to install for the Audits view.
INSTALL = "pip install 'context-ledger[analytics]'"
#: Time slices of the activity chart.
SLICES = 12


def _json(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value


def _table(result) -> dict:
    return {"columns": list(result.columns), "rows": [[_json(v) for v in row] for row in result.rows]}


def audit_reports(url: str | None, tenant: str, project: str, summary: dict) -> dict:
    """Every report for ``project`` as tables, and the activity chart's series."""
    try:
        from ingest.audits import run_audit
        from ingest.errors import AnalyticsError
    except ImportError as exc:
        return {"available": False, "install": INSTALL,
                "message": f"The audit reports need the analytics extra ({exc.name or exc} is missing): {INSTALL}"}
    if not url:
        from ledger.config import load_settings

        url = load_settings().analytics_url
    out: dict = {"available": True, "url": url.split("@")[-1], "reports": {}}
    try:
        reports = out["reports"]
        reports["agents"] = _table(run_audit(url, "agents", tenant=tenant, project=project))
        reports["hot_files"] = _table(run_audit(url, "hot-files", tenant=tenant, project=project,
                                                min_changes=2, window_s=10 * 365 * 86400, limit=25))
        reports["reverted"] = _table(run_audit(url, "reverted", tenant=tenant, project=project,
                                               max_confidence=0.6))
        reports["decisions"] = _table(run_audit(url, "decisions", tenant=tenant, project=project,
                                                before=2**62, limit=25))
        out["activity"] = _activity(run_audit, url, tenant, project, summary)
    except ImportError as exc:
        return {"available": False, "install": INSTALL,
                "message": f"The audit reports need the analytics extra ({exc.name or exc} is missing): {INSTALL}"}
    except AnalyticsError as exc:
        out["error"] = f"{exc} (run `ledger ingest` to fill the analytics database, then reload)"
    return out


def _activity(run_audit, url: str, tenant: str, project: str, summary: dict) -> dict:
    """Events per agent in ``SLICES`` equal slices of the project's time range."""
    first, last = summary.get("first_ns"), summary.get("last_ns")
    if first is None:
        return {"slices": [], "agents": {}}
    step = max(1, (last - first + 1) // SLICES + 1)
    edges = [first + i * step for i in range(SLICES + 1)]
    series: dict[str, list[int]] = {}
    for i in range(SLICES):
        result = run_audit(url, "agents", tenant=tenant, project=project, since=edges[i], until=edges[i + 1] - 1)
        for row in result.as_dicts():
            series.setdefault(row["agent_id"], [0] * SLICES)[i] += int(row["events"])
    return {"slices": [e / 1e6 for e in edges], "agents": series}
