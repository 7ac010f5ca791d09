"""ClickHouse analytics: the exactly-once ingestor and the SQL audits.

One client for two engines (``ingest.client``): embedded ClickHouse through chdb by
default (``chdb:///<data dir>/analytics``, no server to run), or a ClickHouse server when
``LEDGER_CLICKHOUSE_URL`` / ``--clickhouse`` is an ``http(s)://`` URL. Same schema, same
SQL, same code path.

Public API::

    from ingest import connect, Ingestor, LocalSource, run_readonly, run_audit
    with connect(url) as ch:                      # runs the schema migrations
        stats = Ingestor(ch, LocalSource(ledger)).run()
    result = run_readonly(url, "SELECT count() FROM swarm_events")
    report = run_audit(url, "hot-files", tenant="acme", min_changes=5, window_s=3600)

See docs/analytics.md.
"""

from ingest.errors import *  # noqa: F401,F403
from ingest.errors import __all__ as _errors


def __getattr__(name):  # lazy: `import ingest` must not load chdb
    lazy = {
        "connect": "ingest.client",
        "Analytics": "ingest.client",
        "Ingestor": "ingest.ingestor",
        "IngestStats": "ingest.ingestor",
        "LocalSource": "ingest.sources",
        "HubSource": "ingest.sources",
        "run_readonly": "ingest.readonly",
        "QueryResult": "ingest.readonly",
        "run_audit": "ingest.audits",
        "AUDITS": "ingest.audits",
        "migrate": "ingest.schema",
    }
    if name in lazy:
        import importlib

        return getattr(importlib.import_module(lazy[name]), name)
    raise AttributeError(name)


__all__ = ["connect", "Analytics", "Ingestor", "IngestStats", "LocalSource", "HubSource",
           "run_readonly", "QueryResult", "run_audit", "AUDITS", "migrate", *_errors]
