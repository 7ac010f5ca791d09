"""Ingest takes only the chosen tenant, reports and skips bad stored rows by seq and id
(never crashes), and loads a 15-year history (issues 11, 12 item 3, 13)."""

from __future__ import annotations

import json
import sqlite3

from click.testing import CliRunner

from cli import cli
from ingest.ingestor import MAX_PARTITIONS_PER_INSERT, Ingestor
from ingest.sources import LocalSource
from ledger import Ledger
from nervous_system import Recorder
from schemas import events_pb2
from tests.analytics_helpers import SEC, Clock, analytics_url, ch_rows


def _ingest(ledger_path, tenant, *extra):
    result = CliRunner().invoke(cli, ["--db", str(ledger_path), "--tenant", tenant, "ingest", "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_ingest_takes_only_the_chosen_tenant(ledger_path, isolated_state):
    with Ledger(ledger_path) as lg:
        for tenant, n in (("acme", 3), ("beta", 2), ("acme", 1)):
            rec = Recorder(lg, project_id="web", agent_id="a", tenant_id=tenant)
            for i in range(n):
                rec.decision(f"{tenant} {i}")
    url = analytics_url(isolated_state)
    assert _ingest(ledger_path, "acme")["inserted"] == 4
    assert ch_rows(url, "SELECT DISTINCT tenant_id FROM analytics.swarm_events") == [("acme",)]
    # the other tenant keeps its own checkpoint: nothing of it was skipped
    assert _ingest(ledger_path, "beta")["inserted"] == 2
    assert _ingest(ledger_path, "acme")["inserted"] == 0
    assert ch_rows(url, "SELECT tenant_id, count(), uniqExact(event_id) FROM analytics.swarm_events "
                        "GROUP BY tenant_id ORDER BY 1") == [("acme", 4, 4), ("beta", 2, 2)]


def _corrupt(ledger_path, seq: int, body: bytes) -> None:
    with sqlite3.connect(ledger_path) as db:
        db.execute("UPDATE events SET body = ? WHERE seq = ?", (body, seq))


def _body(ledger_path, seq: int) -> bytes:
    with sqlite3.connect(ledger_path) as db:
        return db.execute("SELECT body FROM events WHERE seq = ?", (seq,)).fetchone()[0]


def _mutated(body: bytes, change) -> bytes:
    msg = events_pb2.SwarmEvent()
    msg.ParseFromString(body)
    change(msg)
    return msg.SerializeToString()


def test_bad_stored_rows_are_reported_by_seq_and_id_and_skipped(ledger_path, isolated_state):
    with Ledger(ledger_path) as lg:
        rec = Recorder(lg, project_id="web", agent_id="a", tenant_id="acme")
        ids = [rec.decision(f"d{i}", confidence=0.5) for i in range(10)]
        rec.file_change("a.txt", b"a\n")
        seqs = {s.event_id: s.seq for s in lg.events(order="seq")}
    s = [seqs[i] for i in ids]
    good_other = _body(ledger_path, s[9])
    bad = {
        s[0]: b"\xff\xfe not a protobuf",                                              # DecodeError
        s[1]: _mutated(_body(ledger_path, s[1]), lambda m: setattr(m, "agent_role", 99)),   # KeyError before
        s[2]: _mutated(_body(ledger_path, s[2]), lambda m: setattr(m.timestamp, "seconds", 10**15)),  # Overflow
        s[3]: _mutated(_body(ledger_path, s[3]), lambda m: setattr(m, "schema_version", 2)),
        s[4]: good_other,                                                             # body of another row
        s[5]: _mutated(_body(ledger_path, s[5]), lambda m: m.ClearField("decision")),  # no payload
        s[6]: _mutated(_body(ledger_path, s[6]), lambda m: setattr(m, "tenant_id", "zeta")),
    }
    for seq, body in bad.items():
        _corrupt(ledger_path, seq, body)
    stats = _ingest(ledger_path, "acme")
    assert stats["refused"] == len(bad) and stats["inserted"] == 11 - len(bad)
    listed = {r["seq"]: r for r in stats["refused_rows"]}
    assert set(listed) == set(bad)
    assert "schema_version 2" in listed[s[3]]["reason"]
    assert "differs from the id" in listed[s[4]]["reason"]
    assert "zeta" not in listed[s[6]]["reason"] and "another tenant" in listed[s[6]]["reason"]
    for seq in bad:
        assert listed[seq]["event_id"] == ids[s.index(seq)]
    url = analytics_url(isolated_state)
    assert ch_rows(url, "SELECT count(), uniqExact(event_id) FROM analytics.swarm_events") == [(4, 4)]
    assert ch_rows(url, "SELECT count() FROM analytics.ingest_refused") == [(len(bad),)]
    # the human summary names them too; a re-run does not report them again
    again = CliRunner().invoke(cli, ["--db", str(ledger_path), "--tenant", "acme", "ingest"])
    assert again.exit_code == 0 and "refused" not in again.output


def test_a_fifteen_year_history_ingests_in_one_batch(ledger_path, isolated_state):
    """A sparse history (one event every 2 weeks for 15 years, 180+ months) in one 10,000
    event batch: ClickHouse refuses an INSERT touching more than 100 partitions, so the
    ingestor splits the batch by month range (before the fix: "Too many partitions")."""
    clock = Clock(start=1_262_304_000 * SEC)  # 2010-01-01
    with Ledger(ledger_path) as lg:
        rec = Recorder(lg, project_id="click", agent_id="git", tenant_id="acme", clock=clock)
        n = 0
        while clock.now < 1_735_689_600 * SEC:  # 2025-01-01
            rec.file_change(f"src/f{n % 7}.py", f"v{n}\n".encode())
            clock.tick(14 * 86_400)
            n += 1
        url = analytics_url(isolated_state)
        stats = Ingestor(url, LocalSource(lg, tenant="acme"), batch_size=10_000).run()
    assert stats.batches == 1 and stats.inserted == n > 380
    months = ch_rows(url, "SELECT uniqExact(toYYYYMM(time)) FROM analytics.swarm_events")[0][0]
    assert months == 180
    assert stats.inserts == -(-months // MAX_PARTITIONS_PER_INSERT)
    assert ch_rows(url, "SELECT count(), uniqExact(event_id) FROM analytics.swarm_events") == [(n, n)]


def test_sql_and_audit_ingest_new_local_events_first(ledger_path, isolated_state):
    with Ledger(ledger_path) as lg:
        Recorder(lg, project_id="web", agent_id="a", tenant_id="acme").decision("one", confidence=0.4)
    runner = CliRunner(mix_stderr=False) if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else CliRunner()
    base = ["--db", str(ledger_path), "--tenant", "acme"]
    first = runner.invoke(cli, [*base, "sql", "--format", "csv", "SELECT count() FROM swarm_events"])
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[-1] == "1" and "ingested 1 new event" in first.stderr
    again = runner.invoke(cli, [*base, "sql", "--format", "csv", "SELECT count() FROM swarm_events"])
    assert again.stdout.splitlines()[-1] == "1" and "ingested" not in again.stderr
    with Ledger(ledger_path) as lg:
        Recorder(lg, project_id="web", agent_id="b", tenant_id="acme").decision("two", confidence=0.9)
    stale = runner.invoke(cli, [*base, "sql", "--no-ingest", "--format", "csv", "SELECT count() FROM swarm_events"])
    assert stale.stdout.splitlines()[-1] == "1"
    agents = runner.invoke(cli, [*base, "audit", "agents", "--json"])
    assert agents.exit_code == 0, agents.output
    assert sorted(r["agent_id"] for r in json.loads(agents.stdout)) == ["a", "b"]
    assert "ingested 1 new event" in agents.stderr
