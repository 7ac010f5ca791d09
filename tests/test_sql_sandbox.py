"""Escape attempts against `ledger sql` (issue 12, items 1-3): through the CLI and the SDK
(``ingest.readonly.run_readonly``), each attempt must be refused with a clear message,
write nothing, show no other tenant's data, make no request (a loopback HTTP server
counts them) and read no file (the "secret" is a FIFO whose writer notices any open).

Two tenants share one embedded analytics database: alpha (the caller) and beta, whose
rationale and diff carry BETA_SECRET."""

from __future__ import annotations

import http.server
import os
import sqlite3
import threading
import time

import pytest
from click.testing import CliRunner

from cli import cli
from ingest.errors import QueryLimitExceeded, SqlRefused
from ingest.ingestor import Ingestor
from ingest.readonly import run_readonly
from ingest.sources import LocalSource
from ledger import Ledger
from nervous_system import Recorder
from tests.analytics_helpers import ch_rows

BETA_SECRET = "BETA-SECRET-7f3a"
FILE_SECRET = "FILE-SECRET-91c2"


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server API
        type(self).hits.append(self.path)
        body = f"a\n{FILE_SECRET}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_HEAD = do_GET  # noqa: N815

    def log_message(self, *args):
        pass


class _Fifo:
    """A FIFO whose writer thread records whether anyone opened it for reading."""

    def __init__(self, path):
        self.path = path
        os.mkfifo(path)
        self.opened = threading.Event()
        self._closing = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        with open(self.path, "w") as f:  # blocks until a reader opens the FIFO
            if not self._closing:
                self.opened.set()
            f.write(FILE_SECRET + "\n")

    def close(self):
        self._closing = True
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self.thread.join(timeout=5)
        os.close(fd)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("sandbox")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fifo = _Fifo(str(root / "secret.fifo"))
    sqlite_path = root / "other.sqlite"
    with sqlite3.connect(sqlite_path) as db:
        db.execute("CREATE TABLE t (secret TEXT)")
        db.execute("INSERT INTO t VALUES (?)", (FILE_SECRET,))
    url = f"chdb://{root / 'analytics'}"
    db_path = root / "ledger.db"
    with Ledger(db_path) as lg:
        for tenant in ("alpha", "beta"):
            rec = Recorder(lg, project_id="web", agent_id="a", tenant_id=tenant)
            rec.decision(f"plan of {tenant}" + (f" {BETA_SECRET}" if tenant == "beta" else ""), confidence=0.5)
            rec.file_change("src/app.py", (BETA_SECRET if tenant == "beta" else "alpha code").encode() + b"\n")
            Ingestor(url, LocalSource(lg, tenant=tenant)).run()
    values = {"port": server.server_address[1], "secret": fifo.path, "sqlite": str(sqlite_path),
              "out": str(root / "out.csv")}
    yield {"url": url, "db": str(db_path), "root": root, "fifo": fifo, "values": values}
    server.shutdown()
    fifo.close()


def _state(world):
    url = world["url"]
    return (ch_rows(url, "SELECT tenant_id, count() FROM analytics.swarm_events GROUP BY tenant_id ORDER BY 1"),
            ch_rows(url, "SELECT database, name FROM system.tables WHERE database NOT IN ('system', "
                         "'INFORMATION_SCHEMA', 'information_schema') ORDER BY 1, 2"),
            ch_rows(url, "SELECT count() FROM system.dictionaries"),
            # files in the directory (SQLite's -wal/-shm come and go with its connections)
            sorted(p.name for p in world["root"].iterdir() if not p.name.endswith(("-wal", "-shm"))))


ESCAPES = [
    # files and URLs through table functions, in every statement kind
    "SELECT * FROM file('{secret}', 'LineAsString')",
    "DESCRIBE file('{secret}', 'TSVWithNames')",
    "DESCRIBE TABLE url('http://127.0.0.1:{port}/x.csv', 'CSVWithNames')",
    "SELECT * FROM url(concat('http://127.0.0.1:{port}/leak?d=', (SELECT any(rationale) FROM analytics.swarm_events)), "
    "'CSV', 'a String')",
    "DESCRIBE sqlite('{sqlite}', 't')",
    "SELECT * FROM s3('http://127.0.0.1:{port}/bucket/x.csv', 'CSV', 'a String')",
    "SELECT * FROM remote('127.0.0.1:{port}', analytics.swarm_events)",
    "SELECT * FROM remoteSecure('127.0.0.1:{port}', system.one)",
    "SELECT * FROM mysql('127.0.0.1:{port}', 'db', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:{port}', 'db', 't', 'u', 'p')",
    "SELECT * FROM executable('cat {secret}', 'TSV', 'a String')",
    "SELECT * FROM hdfs('hdfs://127.0.0.1:{port}/x', 'TSV', 'a String')",
    "SELECT * FROM jdbc('jdbc:mysql://127.0.0.1:{port}/db', 't')",
    "SELECT * FROM odbc('DSN=x', 't')",
    "SELECT * FROM input('a String')",
    "SELECT * FROM cluster('default', analytics.swarm_events)",
    "SELECT * FROM merge('analytics', '.*')",
    "SELECT * FROM view(SELECT * FROM analytics.ingest_checkpoints)",
    # dictionaries
    "SELECT dictGet('analytics.d', 'v', toUInt64(1))",
    "SELECT * FROM dictionary('analytics.d')",
    "CREATE DICTIONARY analytics.d (k UInt64, v String) PRIMARY KEY k "
    "SOURCE(HTTP(url 'http://127.0.0.1:{port}/d.csv' format 'CSV')) LAYOUT(FLAT()) LIFETIME(0)",
    # DDL with external engines
    "CREATE TABLE analytics.u (a String) ENGINE = URL('http://127.0.0.1:{port}/u.csv', 'CSV')",
    "ATTACH TABLE analytics.f (a String) ENGINE = File(LineAsString, '{secret}')",
    # SETTINGS that lift readonly, limits or the tenant filter
    "SELECT count() FROM swarm_events SETTINGS readonly = 0",
    "SELECT count() FROM numbers(10) SETTINGS max_execution_time = 0, max_result_rows = 0",
    "SELECT rationale FROM swarm_events SETTINGS additional_table_filters = {{'analytics.swarm_events': '1'}}",
    "SET readonly = 0",
    # system tables and other analytics tables that reveal other tenants or files
    "SELECT * FROM system.parts",
    "SELECT name, total_rows, data_paths FROM system.tables",
    "SELECT * FROM analytics.ingest_checkpoints",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM system.processes",
    "SHOW CREATE TABLE analytics.ingest_checkpoints",
    "SELECT * FROM numbers(3) WHERE toString(number) IN analytics.ingest_checkpoints",
    "SELECT joinGet('analytics.swarm_events', 'rationale', 'x')",
    "SELECT getServerSetting('path')",
    # writes to files, FORMAT tricks
    "SELECT 1 INTO OUTFILE '{out}'",
    "SELECT rationale FROM swarm_events FORMAT Template SETTINGS format_template_row = '{secret}'",
    "SELECT rationale FROM swarm_events FORMAT CSV",
    # obfuscation: comments, case, quoting, several statements
    "/* harmless */ SeLeCt * FrOm FiLe('{secret}', 'LineAsString') -- tail",
    "SELECT * FROM `file`('{secret}', 'LineAsString')",
    "SELECT * FROM \"url\"('http://127.0.0.1:{port}/q.csv', 'CSV', 'a String')",
    "SELECT file('{secret}')",
    "SELECT 1; SELECT * FROM file('{secret}', 'LineAsString')",
    # nested in EXPLAIN, DESCRIBE, WITH, subqueries
    "EXPLAIN SELECT * FROM url('http://127.0.0.1:{port}/e.csv', 'CSVWithNames')",
    "EXPLAIN PLAN SELECT * FROM file('{secret}', 'LineAsString')",
    "EXPLAIN SYNTAX SELECT dictGet('analytics.d', 'v', toUInt64(1))",
    "DESCRIBE (SELECT * FROM file('{secret}', 'LineAsString'))",
    "WITH (SELECT any(line) FROM file('{secret}', 'LineAsString')) AS s SELECT s",
    "WITH leak AS (SELECT * FROM url('http://127.0.0.1:{port}/w.csv', 'CSV', 'a String')) SELECT * FROM leak",
    "SELECT * FROM swarm_events WHERE event_id IN (SELECT * FROM url('http://127.0.0.1:{port}/in.csv', 'CSV', "
    "'a String'))",
    "SELECT (SELECT count() FROM (SELECT * FROM analytics.ingest_checkpoints))",
    # statements ClickHouse's readonly mode lets through
    "SYSTEM RELOAD DICTIONARIES",
    "KILL QUERY WHERE 1",
]


def _attempt(world, via: str, template: str):
    sql = template.format(**world["values"])
    if via == "cli":
        result = CliRunner().invoke(cli, ["--db", world["db"], "--tenant", "alpha", "sql", "--no-ingest",
                                          "--clickhouse", world["url"], sql])
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        message = result.output
        assert message.startswith("Error: ")
    else:
        with pytest.raises(SqlRefused) as info:
            run_readonly(world["url"], sql, tenant="alpha")
        message = str(info.value)
    return message


def test_at_least_thirty_escape_attempts():
    assert len(ESCAPES) >= 30


@pytest.mark.parametrize("via", ["cli", "sdk"])
@pytest.mark.parametrize("template", ESCAPES)
def test_escape_attempt_is_refused(world, via, template):
    before = _state(world)
    hits = len(_Counter.hits)
    message = _attempt(world, via, template)
    assert any(word in message for word in ("refused", "read-only", "ONE read-only")), message
    assert BETA_SECRET not in message and FILE_SECRET not in message and "beta" not in message
    time.sleep(0.05)  # a request in flight would have arrived by now
    assert len(_Counter.hits) == hits, _Counter.hits[hits:]
    assert not world["fifo"].opened.is_set(), "the secret file was opened"
    assert _state(world) == before  # nothing written: rows, tables, dictionaries, files


def test_query_parameter_as_a_table_name_is_checked_too(world):
    with pytest.raises(SqlRefused, match="ingest_checkpoints"):
        run_readonly(world["url"], "SELECT * FROM {t:Identifier}", {"t": "analytics.ingest_checkpoints"},
                     tenant="alpha")


CROSS_TENANT = [
    "SELECT tenant_id, rationale, event_json FROM swarm_events",
    "SELECT * FROM analytics.swarm_events FINAL WHERE tenant_id = 'beta'",
    "SELECT count() FROM swarm_events WHERE tenant_id != 'alpha'",
    "SELECT groupArray(event_json) FROM (SELECT event_json FROM swarm_events UNION ALL "
    "SELECT event_json FROM analytics.swarm_events)",
    "WITH t AS (SELECT * FROM swarm_events) SELECT a.event_json FROM t AS a JOIN analytics.swarm_events AS b "
    "ON a.event_id != b.event_id",
]


@pytest.mark.parametrize("sql", CROSS_TENANT)
def test_a_tenant_sees_only_its_rows(world, sql):
    result = CliRunner().invoke(cli, ["--db", world["db"], "--tenant", "alpha", "sql", "--no-ingest",
                                      "--clickhouse", world["url"], "--format", "json", sql])
    assert result.exit_code == 0, result.output
    assert BETA_SECRET not in result.output and '"beta"' not in result.output
    theirs = run_readonly(world["url"], sql, tenant="beta")
    assert "alpha code" not in str(theirs.rows) and "plan of alpha" not in str(theirs.rows)


def test_each_tenant_counts_its_own_rows(world):
    for tenant in ("alpha", "beta"):
        rows = run_readonly(world["url"], "SELECT tenant_id, count() FROM swarm_events GROUP BY tenant_id",
                            tenant=tenant).rows
        assert rows == [(tenant, 2)]
    assert run_readonly(world["url"], "SELECT count() FROM swarm_events", tenant="gamma").rows == [(0,)]


def test_a_tenant_id_with_quotes_cannot_widen_the_filter(world):
    sneaky = "alpha' OR '1'='1"
    assert run_readonly(world["url"], "SELECT count() FROM swarm_events", tenant=sneaky).rows == [(0,)]


def test_harmless_queries_still_work(world):
    ok = [
        ("SELECT count() FROM numbers(10)", [(10,)]),
        ("SELECT * FROM values('a UInt8', 1, 2)", [(1,), (2,)]),
        ("WITH x AS (SELECT event_id FROM swarm_events) SELECT count() FROM x", [(2,)]),
        ("SELECT name FROM system.one, system.settings WHERE name = 'readonly'", [("readonly",)]),
        ("EXISTS swarm_events", [(1,)]),
    ]
    for sql, rows in ok:
        assert run_readonly(world["url"], sql, tenant="alpha").rows == rows, sql
    describe = run_readonly(world["url"], "DESCRIBE swarm_events", tenant="alpha").rows
    assert ("tenant_id", "LowCardinality(String)") == describe[0][:2]
    assert run_readonly(world["url"], "SHOW TABLES", tenant="alpha").rows == [("schema_migrations",),
                                                                             ("swarm_events",)]


# ---------------------------------------------------------------------- limits (issue 12, item 2)
def test_default_limits_are_set_in_the_engine(world):
    rows = run_readonly(world["url"], "SELECT getSetting('max_execution_time'), getSetting('max_memory_usage'), "
                                      "getSetting('max_result_rows'), getSetting('readonly')", tenant="alpha").rows
    assert rows == [(30.0, 2_000_000_000, 1_000_000, 1)]


def test_a_long_query_stops_at_the_time_limit(world, monkeypatch):
    monkeypatch.setenv("LEDGER_SQL_MAX_EXECUTION_TIME", "1")
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["--db", world["db"], "--tenant", "alpha", "sql", "--no-ingest",
                                      "--clickhouse", world["url"], "SELECT count() FROM numbers(1e12)"])
    assert result.exit_code == 1 and "sql_max_execution_time" in result.output, result.output
    assert time.monotonic() - started < 30


def test_a_memory_hungry_query_stops_at_the_memory_limit(world):
    from ingest.sandbox import Limits

    with pytest.raises(QueryLimitExceeded, match="sql_max_memory_usage"):
        run_readonly(world["url"], "SELECT length(groupArray(number)) FROM numbers(2e8)", tenant="alpha",
                     limits=Limits(max_memory_usage=100_000_000))


@pytest.mark.parametrize("limit", [50, 20_000])
def test_a_large_result_stops_at_the_row_limit_never_silently(world, limit):
    from ingest.sandbox import Limits

    with pytest.raises(QueryLimitExceeded, match="sql_max_result_rows"):
        run_readonly(world["url"], f"SELECT number FROM numbers({limit + 100_000})", tenant="alpha",
                     limits=Limits(max_result_rows=limit))
    assert len(run_readonly(world["url"], f"SELECT number FROM numbers({limit})", tenant="alpha",
                            limits=Limits(max_result_rows=limit)).rows) == limit


def test_server_reader_ddl_parses_and_quotes_the_tenant(world):
    from ingest.access import tenant_reader_ddl

    for tenant in ("acme", "ac'me`x\\y"):
        for statement in tenant_reader_ddl(tenant, "pw"):
            normalized = ch_rows(world["url"], "SELECT formatQuerySingleLine({q:String})", {"q": statement})[0][0]
            assert "pw" not in normalized
        policy = tenant_reader_ddl(tenant, "pw")[-1]
        assert policy.endswith(f"USING tenant_id = {__import__('ingest.sandbox').sandbox.sql_string(tenant)} "
                               f"TO {__import__('ingest.access').access.quote_identifier('ledger_reader_' + tenant)}")
