"""The ClickHouse ingestor: rows, schema migrations, exact counts, resume, follow, hub source."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter

import pytest
from click.testing import CliRunner

from ingest.client import connect
from ingest.errors import AnalyticsBusy, AnalyticsSchemaError
from ingest.ingestor import Ingestor
from ingest.rows import COLUMNS, row_from_body
from ingest.schema import migrate, migrations
from ingest.sources import HubSource, LocalSource
from ledger import Ledger
from cli import cli
from nervous_system.gitimport import import_git
from nervous_system import Recorder
from schemas import (
    SpanEventRecord, SpanLinkRecord, SpanRecord, SwarmEvent, new_event_id,
)
from tests.analytics_helpers import T0, Clock, analytics_url, ch_rows, make_git_repo


def sdk_scenario(ledger: Ledger) -> None:
    """The core issue's SDK scenario: two agents, decisions, every file operation, messages,
    signals, spans."""
    clock = Clock()
    arch = Recorder(ledger, project_id="web", agent_id="architect-1", agent_role="architect",
                    tenant_id="acme", clock=clock)
    coder = Recorder(ledger, project_id="web", agent_id="coder-1", agent_role="coder",
                     tenant_id="acme", clock=clock)
    arch.decision("split the parser", confidence=0.8, rejected_alternatives=["regex"])
    clock.tick()
    arch.message("please split src/parser.py", recipients=["coder-1"])
    clock.tick()
    coder.decision("do the split", confidence=0.6)
    for i in range(5):
        clock.tick()
        coder.file_change("src/parser.py", f"v{i}\n".encode() * (i + 1))
    clock.tick()
    coder.file_change("src/run.sh", b"#!/bin/sh\n", mode="executable")
    clock.tick()
    coder.file_change("src/lexer.py", None, previous_path="src/parser.py")
    clock.tick()
    coder.file_change("link", b"src/lexer.py", mode="symlink")
    clock.tick()
    coder.file_change("src/run.sh", None)
    clock.tick()
    coder.signal(status="ok", cpu_load_percent=12.5, memory_usage_mb=300)
    clock.tick()
    coder.record(SwarmEvent(
        event_id=new_event_id(), timestamp=clock.tick(), tenant_id="acme", project_id="web",
        agent_id="coder-1", agent_role="coder", trace_id="0" * 31 + "1", span_id="0" * 15 + "2",
        span=SpanRecord(name="tool.call", kind="client", start_time=clock.now - 5, end_time=clock.now,
                        status_code="ok", attributes={"a": 1, "b": [True, 2.5, "x"]},
                        events=[SpanEventRecord(name="e", time=clock.now - 1, attributes={"k": "v"})],
                        links=[SpanLinkRecord(trace_id="0" * 31 + "3", span_id="0" * 15 + "4")])))


def ledger_counts(ledger: Ledger):
    evs = [s.event for s in ledger.events(order="seq")]
    kinds = Counter(e.kind for e in evs)
    agents = Counter(e.agent_id for e in evs)
    paths = Counter(e.state_change.target_resource for e in evs if e.state_change)
    return len(evs), kinds, agents, paths


def analytics_counts(url: str):
    total = ch_rows(url, "SELECT count(), uniqExact(event_id) FROM analytics.swarm_events")[0]
    kinds = dict(ch_rows(url, "SELECT event_type, count() FROM analytics.swarm_events GROUP BY 1"))
    agents = dict(ch_rows(url, "SELECT agent_id, count() FROM analytics.swarm_events GROUP BY 1"))
    paths = dict(ch_rows(url, "SELECT target_path, count() FROM analytics.swarm_events "
                              "WHERE event_type = 'state_change' GROUP BY 1"))
    return total, kinds, agents, paths


def assert_same(ledger: Ledger, url: str) -> None:
    n, kinds, agents, paths = ledger_counts(ledger)
    (count, uniq), ch_kinds, ch_agents, ch_paths = analytics_counts(url)
    assert count == uniq == n
    assert ch_kinds == dict(kinds)
    assert ch_agents == dict(agents)
    assert ch_paths == dict(paths)


def test_row_json_is_the_event_json_for_every_kind(ledger_path):
    with Ledger(ledger_path) as lg:
        sdk_scenario(lg)
        stored = list(lg.events(order="seq"))
    assert {s.kind for s in stored} == {"decision", "state_change", "message", "signal", "span"}
    for s in stored:
        row = dict(zip(COLUMNS, row_from_body(s.body, source="local", stream="x", position="1")))
        assert json.loads(row["event_json"]) == json.loads(s.event.to_json())
        assert row["event_id"] == s.event_id and row["time"] == s.time_ns and row["event_type"] == s.kind


def test_git_history_and_sdk_scenario_counts_match_exactly(tmp_path, ledger_path, isolated_state):
    repo = tmp_path / "repo"
    make_git_repo(repo, 1100)
    with Ledger(ledger_path) as lg:
        summary = import_git(lg, repo, tenant_id="acme", project_id="repo")
        assert summary.commits_imported == 1100
        sdk_scenario(lg)
    result = CliRunner().invoke(cli, ["--db", str(ledger_path), "--tenant", "acme", "ingest", "--batch-size", "700", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    url = analytics_url(isolated_state)
    with Ledger(ledger_path) as lg:
        assert stats["inserted"] == lg.count() > 2200
        assert_same(lg, url)
        # the decision behind each imported change is there too (caused_by joins)
        orphans = ch_rows(url, "SELECT count() FROM analytics.swarm_events c WHERE c.event_type = 'state_change' "
                               "AND c.project_id = 'repo' AND c.caused_by NOT IN "
                               "(SELECT event_id FROM analytics.swarm_events WHERE event_type = 'decision')")
        assert orphans == [(0,)]
    # a second run adds nothing; new events are picked up incrementally
    again = CliRunner().invoke(cli, ["--db", str(ledger_path), "--tenant", "acme", "ingest", "--json"])
    assert json.loads(again.output)["inserted"] == 0
    with Ledger(ledger_path) as lg:
        Recorder(lg, project_id="web", agent_id="late", tenant_id="acme").decision("one more", confidence=0.1)
    more = CliRunner().invoke(cli, ["--db", str(ledger_path), "--tenant", "acme", "ingest", "--json"])
    assert json.loads(more.output)["inserted"] == 1
    with Ledger(ledger_path) as lg:
        assert_same(lg, url)


def test_columns_carry_the_event_fields(ledger_path, isolated_state):
    with Ledger(ledger_path) as lg:
        sdk_scenario(lg)
        url = analytics_url(isolated_state)
        Ingestor(url, LocalSource(lg, tenant="acme")).run()
        seq_of_first = next(lg.events(order="seq")).seq
    rename = ch_rows(url, "SELECT operation, target_path, previous_path, file_mode, agent_role, caused_by != '', "
                          "source, local_seq > 0, toUnixTimestamp64Nano(time) > 0 "
                          "FROM analytics.swarm_events WHERE operation = 'rename'")
    assert rename == [("rename", "src/lexer.py", "src/parser.py", "regular", "coder", True, "local", True, True)]
    dec = ch_rows(url, "SELECT confidence, rationale, rejected_alternatives FROM analytics.swarm_events "
                       "WHERE event_type = 'decision' ORDER BY time")
    assert dec[0] == (0.8, "split the parser", ["regex"])
    first = ch_rows(url, "SELECT toUnixTimestamp64Nano(time), local_seq FROM analytics.swarm_events "
                         "ORDER BY time LIMIT 1")
    assert first == [(T0, seq_of_first)]
    span = ch_rows(url, "SELECT span_name, span_kind, span_status, trace_id FROM analytics.swarm_events "
                        "WHERE event_type = 'span'")
    assert span == [("tool.call", "client", "ok", "0" * 31 + "1")]


def test_schema_migrations_are_recorded_and_newer_schema_is_refused(isolated_state):
    url = analytics_url(isolated_state)
    with connect(url) as ch:
        versions = sorted(r[0] for r in ch.query("SELECT version FROM analytics.schema_migrations").result_rows)
        assert versions == [m.version for m in migrations()]
        tables = {r[0] for r in ch.query("SHOW TABLES FROM analytics").result_rows}
        assert {"swarm_events", "ingest_checkpoints", "schema_migrations"} <= tables
    with connect(url) as ch:  # applying again is a no-op
        assert migrate(ch) == []
        ch.insert("schema_migrations", [(9999, "from_the_future")], ["version", "name"])
    with pytest.raises(AnalyticsSchemaError, match="upgrade context-ledger"):
        connect(url)


def test_embedded_database_busy_in_another_process_is_a_clear_error(isolated_state, python):
    url = analytics_url(isolated_state)
    with connect(url):
        pass
    holder = subprocess.Popen(
        [python, "-c", "import sys; from ingest.client import connect; c = connect(sys.argv[1]); "
                       "print('ready', flush=True); sys.stdin.read()", url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(AnalyticsBusy, match=rf"in use by another process \(pid {holder.pid}\)"):
            connect(url, lock_timeout_s=0.2)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with connect(url, lock_timeout_s=5) as ch:  # free again once it exits
        assert ch.query("SELECT 1").result_rows == [(1,)]


def test_follow_ingests_new_events_and_frees_the_database_between_polls(ledger_path, isolated_state):
    url = analytics_url(isolated_state)
    with Ledger(ledger_path) as lg:
        rec = Recorder(lg, project_id="web", agent_id="a", tenant_id="acme")
        rec.decision("first", confidence=0.5)
        stop = threading.Event()
        ingestor = Ingestor(url, LocalSource(lg, tenant="acme"), batch_size=10)
        thread = threading.Thread(target=ingestor.follow, kwargs={"poll_interval_s": 0.05, "stop": stop})
        thread.start()
        try:
            for i in range(25):
                rec.decision(f"next {i}", confidence=0.5)
            deadline = time.monotonic() + 60
            while ingestor.positions.get(LocalSource(lg, tenant="acme").stream) != f"{lg.max_seq():020d}":
                assert time.monotonic() < deadline, "follow did not catch up"
                time.sleep(0.02)
        finally:
            stop.set()
            thread.join(timeout=60)
        assert_same(lg, url)


class FakeRecord:
    def __init__(self, versionstamp, event):
        self.versionstamp = versionstamp
        self.event = event


class FakeHub:
    """A hub reader with the hub.hub.Hub read interface (projects, read_log)."""

    def __init__(self, tenant_id, logs):
        self.tenant_id = tenant_id
        self.logs = logs  # project -> [FakeRecord] in hub order
        self.reads = []

    def projects(self):
        return list(self.logs)

    def read_log(self, project_id, after_versionstamp=None, limit=1000):
        self.reads.append((project_id, after_versionstamp, limit))
        log = self.logs[project_id]
        start = 0 if after_versionstamp is None else next(
            i + 1 for i, r in enumerate(log) if r.versionstamp == after_versionstamp)
        return log[start:start + limit]


def test_hub_source_with_a_hub_reader(ledger_path, isolated_state):
    with Ledger(ledger_path) as lg:
        sdk_scenario(lg)
        events = [s.event for s in lg.events(order="seq")]
    logs = {"web": [FakeRecord(i.to_bytes(8, "big") + b"\x00\x00", e) for i, e in enumerate(events[:10], 1)],
            "api": [FakeRecord((100 + i).to_bytes(8, "big") + b"\x00\x00", e.model_copy(update={"project_id": "api"}))
                    for i, e in enumerate(events[10:], 1)]}
    hub = FakeHub("acme", logs)
    url = analytics_url(isolated_state)
    stats = Ingestor(url, HubSource(hub), batch_size=4).run()
    assert stats.inserted == len(events)
    assert ch_rows(url, "SELECT project_id, count(), uniqExact(event_id), countIf(source = 'hub'), "
                        "countIf(length(hub_versionstamp) = 20) FROM analytics.swarm_events GROUP BY 1 ORDER BY 1") == [
        ("api", len(events) - 10, len(events) - 10, len(events) - 10, len(events) - 10), ("web", 10, 10, 10, 10)]
    # resumes after the checkpointed versionstamp: nothing new, and the reader was asked from there
    hub.reads.clear()
    assert Ingestor(url, HubSource(hub), batch_size=4).run().inserted == 0
    assert ("web", logs["web"][-1].versionstamp, 4) in hub.reads
    logs["web"].append(FakeRecord((11).to_bytes(8, "big") + b"\x00\x00", events[0].model_copy(
        update={"event_id": new_event_id()})))
    assert Ingestor(url, HubSource(hub)).run().inserted == 1
    assert ch_rows(url, "SELECT count(), uniqExact(event_id) FROM analytics.swarm_events") == [(len(events) + 1,) * 2]


def test_hub_source_refuses_events_of_another_tenant(ledger_path, isolated_state):
    """A hub record of another tenant is refused (reported, not loaded, its tenant not
    named) and the run goes on with the next record."""
    with Ledger(ledger_path) as lg:
        Recorder(lg, project_id="web", agent_id="a", tenant_id="zeta").decision("x")
        Recorder(lg, project_id="web", agent_id="a", tenant_id="acme").decision("y")
        theirs, ours = [s.event for s in lg.events(order="seq")]
    hub = FakeHub("acme", {"web": [FakeRecord(b"\x00" * 9 + b"\x01", theirs), FakeRecord(b"\x00" * 9 + b"\x02", ours)]})
    stats = Ingestor(analytics_url(isolated_state), HubSource(hub)).run()
    assert (stats.inserted, stats.refused) == (1, 1)
    assert "another tenant" in stats.refused_rows[0].reason and "zeta" not in stats.refused_rows[0].reason
    assert ch_rows(analytics_url(isolated_state), "SELECT tenant_id, event_id FROM analytics.swarm_events") == [
        ("acme", ours.event_id)]


def test_an_older_analytics_database_is_upgraded_in_place(ledger_path, isolated_state, monkeypatch):
    """A database made by an older version (fewer migrations) gets the missing ones on
    the next connect, and keeps its rows."""
    import ingest.schema as schema

    every = schema.migrations()
    assert len(every) >= 2
    monkeypatch.setattr(schema, "migrations", lambda: every[:-1])
    url = analytics_url(isolated_state)
    with connect(url) as ch:
        assert schema.applied_versions(ch) == {m.version for m in every[:-1]}
        ch.insert("swarm_events", [("acme", "web", "01a1fe4b-6b70-7000-8000-000000000001")],
                  ["tenant_id", "project_id", "event_id"])
    monkeypatch.setattr(schema, "migrations", lambda: every)
    with connect(url) as ch:  # every entry point migrates first
        assert schema.applied_versions(ch) == {m.version for m in every}
    assert ch_rows(url, "SELECT event_id FROM analytics.swarm_events") == [
        ("01a1fe4b-6b70-7000-8000-000000000001",)]
