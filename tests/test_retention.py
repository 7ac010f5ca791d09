"""Retention (issue 15 §3): `ledger gc` removes exactly the expired events of the kinds
with a policy, records what it removed, respects legal holds, and the chain still
verifies afterwards."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import Ledger, retention
from ledger.verify import verify_ledger
from schemas import AgentDecision, AgentMessage, SwarmEvent, SystemSignal, new_event_id

DAY = 86_400 * 10**9
NOW = time.time_ns()


def event(project: str, kind: str, age_days: float) -> SwarmEvent:
    payload = {"decision": {"decision": AgentDecision(rationale="r")},
               "message": {"message": AgentMessage(content="m")},
               "signal": {"signal": SystemSignal(status="ok")}}[kind]
    return SwarmEvent(event_id=new_event_id(), timestamp=NOW - int(age_days * DAY), tenant_id="default",
                      project_id=project, agent_id="a", **payload)


@pytest.fixture
def history(ledger_path):
    """web and api: messages 400 and 10 days old, signals 40 and 5, decisions 1000."""
    ages = {"message": (400, 10), "signal": (40, 5), "decision": (1000,)}
    made = {}
    with Ledger(ledger_path) as lg:
        for project in ("web", "api"):
            for kind, days in ages.items():
                for d in days:
                    e = event(project, kind, d)
                    lg.append(e)
                    made[(project, kind, d)] = e.event_id
    return made


POLICY = {"message": "365d", "signal": "30d", "projects": {"api": {"signal": "forever"}}}


def test_policy_parsing_and_errors():
    p = retention.Policy.from_config(POLICY)
    assert p.for_project("web") == {"message": 365 * DAY, "signal": 30 * DAY}
    assert p.for_project("api") == {"message": 365 * DAY, "signal": None}
    with pytest.raises(Exception, match="not a duration"):
        retention.Policy.from_config({"span": "a month"})
    with pytest.raises(Exception, match="unknown event kind"):
        retention.Policy.from_config({"spans": "30d"})


def test_gc_removes_exactly_the_expired_events_records_it_and_verifies(ledger_path, history):
    with Ledger(ledger_path) as lg:
        report = retention.gc(lg, tenant_id="default", policy=retention.Policy.from_config(POLICY), now_ns=NOW)
        assert report.removed == {"web": {"message": 1, "signal": 1}, "api": {"message": 1}}
        gone = {history[("web", "message", 400)], history[("web", "signal", 40)], history[("api", "message", 400)]}
        left = {r.event_id for r in lg.events(order="seq")}
        assert gone.isdisjoint(left)
        assert set(history.values()) - gone <= left
        records = [lg.get(i).event for i in report.recorded]
        assert [r.signal.status for r in records] == ["retention_gc"] * 3
        details = [json.loads(r.signal.detail) for r in records]
        assert sorted((r.project_id, d["kind"], d["count"]) for r, d in zip(records, details)) == [
            ("api", "message", 1), ("web", "message", 1), ("web", "signal", 1)]
        result = verify_ledger(lg)
        assert result.ok, result.first
        assert result.removed == 3
        again = retention.gc(lg, tenant_id="default", policy=retention.Policy.from_config(POLICY), now_ns=NOW)
        assert again.total == 0 and again.recorded == []  # its own records are never collected


def test_legal_hold_suspends_retention(ledger_path, history):
    runner = CliRunner()
    res = runner.invoke(cli, ["--db", str(ledger_path), "hold", "add", "--project", "web", "--reason", "matter 7",
                              "--json"])
    assert res.exit_code == 0, res.output
    hold_id = json.loads(res.output)["id"]
    with Ledger(ledger_path) as lg:
        report = retention.gc(lg, tenant_id="default", policy=retention.Policy.from_config(POLICY), now_ns=NOW)
        assert report.held == {"web": [hold_id]}
        assert report.removed == {"api": {"message": 1}}
        assert lg.get(history[("web", "message", 400)]).event_id
    res = runner.invoke(cli, ["--db", str(ledger_path), "hold", "list", "--json"])
    assert [h["reason"] for h in json.loads(res.output)] == ["matter 7"]
    assert runner.invoke(cli, ["--db", str(ledger_path), "hold", "rm", str(hold_id)]).exit_code == 0
    with Ledger(ledger_path) as lg:
        report = retention.gc(lg, tenant_id="default", policy=retention.Policy.from_config(POLICY), now_ns=NOW)
        assert report.removed == {"web": {"message": 1, "signal": 1}}


def test_cli_gc_reads_the_policy_from_ledger_toml(ledger_path, history, tmp_path, monkeypatch):
    config = tmp_path / "ledger.toml"
    config.write_text('[retention]\nmessage = "365d"\n')
    monkeypatch.setenv("LEDGER_CONFIG", str(config))
    runner = CliRunner()
    res = runner.invoke(cli, ["--db", str(ledger_path), "gc", "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["removed"] == {"api": {"message": 1}, "web": {"message": 1}}
    res = runner.invoke(cli, ["--db", str(ledger_path), "gc"])
    assert res.exit_code == 0 and "removed from default/web: 1 message" in res.output
    assert runner.invoke(cli, ["--db", str(ledger_path), "verify"]).exit_code == 0


def test_the_syncer_daemon_applies_retention(ledger_path, history, hub, tmp_path, monkeypatch):
    """The daemon runs gc after its passes (here every pass); what it removed is recorded."""
    import threading

    from syncer import daemon

    config = tmp_path / "ledger.toml"
    config.write_text('[retention]\nsignal = "30d"\n')
    monkeypatch.setenv("LEDGER_CONFIG", str(config))
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(ledger_path, "default"),
                              kwargs={"stop": stop, "connect": lambda: hub, "interval": 0.05, "gc_interval": 0})
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with Ledger(ledger_path) as lg:
                records = [e for e in lg.events(order="seq") if e.kind == "signal"
                           and e.event.signal.status == "retention_gc"]
            if len(records) == 2:
                break
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(30)
    assert len(records) == 2  # web's and api's expired signal, each recorded
    with Ledger(ledger_path) as lg:
        assert history[("web", "signal", 40)] not in {e.event_id for e in lg.events(order="seq")}
        assert verify_ledger(lg).ok
