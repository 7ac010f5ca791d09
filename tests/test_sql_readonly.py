"""`ledger sql` is read-only: writes are refused by ClickHouse (readonly setting) and by
ClickHouse's parser (one statement, a query); data is unchanged afterwards."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from ingest.client import connect
from ingest.errors import SqlRefused, WriteRefused
from ingest.ingestor import Ingestor
from ingest.readonly import execute_readonly
from ingest.sources import LocalSource
from ledger import Ledger
from cli import cli
from nervous_system import Recorder
from tests.analytics_helpers import analytics_url, ch_rows


@pytest.fixture
def loaded(ledger_path, isolated_state):
    with Ledger(ledger_path) as lg:
        rec = Recorder(lg, project_id="web", agent_id="coder-1", agent_role="coder", tenant_id="acme")
        rec.decision("why", confidence=0.7)
        rec.file_change("a.txt", b"a\n")
        rec.file_change("b.txt", b"b\n")
        url = analytics_url(isolated_state)
        Ingestor(url, LocalSource(lg, tenant="acme")).run()
    return url


def snapshot(url):
    return (ch_rows(url, "SELECT count(), uniqExact(event_id), groupArraySorted(10)(event_id) "
                         "FROM analytics.swarm_events"),
            ch_rows(url, "SELECT name FROM system.tables WHERE database = 'analytics' ORDER BY name"))


WRITES = [
    "INSERT INTO swarm_events (event_id) VALUES ('x')",
    "INSERT INTO analytics.swarm_events SELECT * FROM analytics.swarm_events",
    "DROP TABLE swarm_events",
    "DROP DATABASE analytics",
    "ALTER TABLE swarm_events DELETE WHERE 1",
    "ALTER TABLE swarm_events DROP COLUMN rationale",
    "TRUNCATE TABLE swarm_events",
    "DELETE FROM swarm_events WHERE 1",
    "CREATE TABLE t (a Int8) ENGINE = Memory",
    "RENAME TABLE swarm_events TO gone",
    "OPTIMIZE TABLE swarm_events FINAL",
    "SELECT 1; DROP TABLE swarm_events",
    "SELECT count() FROM swarm_events;\nINSERT INTO swarm_events (event_id) VALUES ('y')",
    "SET readonly = 0",
    "SYSTEM STOP MERGES",
    "SELECT 1 INTO OUTFILE 'out.csv'",
]


@pytest.mark.parametrize("sql", WRITES)
def test_cli_refuses_writes_and_data_is_unchanged(loaded, ledger_path, sql, tmp_path):
    before = snapshot(loaded)
    result = CliRunner().invoke(cli, ["--db", str(ledger_path), "--tenant", "acme", "sql", sql])
    assert result.exit_code == 1
    assert "Error:" in result.output and ("read-only" in result.output or "ONE" in result.output)
    assert "Traceback" not in result.output
    assert snapshot(loaded) == before
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("sql", [
    "INSERT INTO swarm_events (event_id) VALUES ('x')",
    "DROP TABLE swarm_events",
    "ALTER TABLE swarm_events DELETE WHERE 1",
    "SELECT 1; DROP TABLE swarm_events",
    "SELECT count() FROM swarm_events SETTINGS readonly = 0",
    "SELECT * FROM file('/etc/hostname', 'LineAsString')",
    "CREATE TABLE t (a Int8) ENGINE = Memory",
])
def test_the_engine_itself_refuses_writes(loaded, sql):
    """Without the parser check, the engine alone (readonly setting, grants) refuses the write."""
    before = snapshot(loaded)
    with connect(loaded, readonly=True, tenant="acme") as ch:
        with pytest.raises(SqlRefused, match="refused by ClickHouse"):
            execute_readonly(ch, sql, precheck=False)
    assert snapshot(loaded) == before


def test_queries_run_with_parameters_and_formats(loaded, ledger_path):
    runner = CliRunner()
    q = "SELECT target_path, operation FROM swarm_events WHERE event_type = {k:String} ORDER BY target_path"
    as_json = runner.invoke(cli, ["--db", str(ledger_path), "--tenant", "acme", "sql", q, "--param", "k=state_change", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output) == [{"target_path": "a.txt", "operation": "create"},
                                          {"target_path": "b.txt", "operation": "create"}]
    as_csv = runner.invoke(cli, ["--db", str(ledger_path), "--tenant", "acme", "sql", q, "--param", "k=state_change", "--format", "csv"])
    assert list(csv.reader(io.StringIO(as_csv.output))) == [["target_path", "operation"], ["a.txt", "create"],
                                                          ["b.txt", "create"]]
    table = runner.invoke(cli, ["--db", str(ledger_path), "--tenant", "acme", "sql",
                                "WITH x AS (SELECT count() AS n FROM swarm_events) SELECT n FROM x"])
    assert table.exit_code == 0 and "3" in table.output
    bad = runner.invoke(cli, ["--db", str(ledger_path), "--tenant", "acme", "sql", "SELECT nope FROM swarm_events"])
    assert bad.exit_code == 1 and "Error:" in bad.output and "nope" in bad.output
