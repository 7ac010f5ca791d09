"""Votes on risky changes (ledger.approvals): the vote event (schema, SDK, CLI), the
coverage rules (decision approvals, later rejection wins, self-approval), and `ledger
audit unapproved` on a crafted history with a known answer; votes reach the hub and
ClickHouse like every event."""

from __future__ import annotations

import json
import sys
import time

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import Ledger
from ledger.approvals import VoteRecord, audit_unapproved, coverage, coverage_of
from ledger.errors import EventNotFound, VoteRefused
from ledger.risk import RiskRules
from nervous_system import Recorder
from nervous_system.errors import InvalidRecord
from schemas import AgentDecision, SwarmEvent, event_from_bytes, new_event_id
from schemas.convert import generic_event_to_proto
from schemas.errors import InvalidEvent
from tests.hub_fixtures import FakeClock


@pytest.fixture
def lg(ledger_path):
    with Ledger(ledger_path) as ledger:
        yield ledger


def recorder(lg, agent: str, user: str = "", clock=None) -> Recorder:
    return Recorder(lg, project_id="web", agent_id=agent, user_id=user, tenant_id="acme", link_spans=False,
                    clock=clock or time.time_ns)


def run(ledger_path, *args: str, code: int = 0):
    result = CliRunner().invoke(cli, ["--db", str(ledger_path), "--tenant", "acme", *args])
    assert result.exit_code == code, result.output
    return result


def _vote_event(verdict: str = "approve", **over) -> SwarmEvent:
    data = {"event_id": new_event_id(), "timestamp": time.time_ns(), "tenant_id": "acme", "project_id": "web",
            "user_id": "alice", "decision": {"rationale": "looks right"},
            "vote": {"target_event_id": new_event_id(), "verdict": verdict}}
    data.update(over)
    return SwarmEvent.model_validate(data)


# ------------------------------------------------------------------ the event
@pytest.mark.parametrize("verdict", ["approve", "reject"])
def test_a_vote_round_trips_through_protobuf_and_json(verdict):
    vote = _vote_event(verdict)
    body = vote.to_bytes()
    assert body == generic_event_to_proto(vote).SerializeToString(deterministic=True)
    assert event_from_bytes(body) == vote
    assert SwarmEvent.model_validate_json(vote.to_json()) == vote
    assert json.loads(vote.to_json())["vote"] == {"target_event_id": vote.vote.target_event_id, "verdict": verdict}
    plain = SwarmEvent(event_id=new_event_id(), timestamp=1, tenant_id="a", project_id="b",
                       decision=AgentDecision(rationale="no vote"))
    assert "vote" not in json.loads(plain.to_json()) and event_from_bytes(plain.to_bytes()).vote is None


def test_bad_votes_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="only allowed on a decision"):
        _vote_event(decision=None, message={"content": "x"})
    with pytest.raises(ValueError, match="target_event_id must be"):
        _vote_event(vote={"target_event_id": "nope", "verdict": "approve"})
    with pytest.raises(ValueError, match="verdict must be approve or reject"):
        _vote_event(vote={"target_event_id": new_event_id(), "verdict": "unspecified"})
    same = new_event_id()
    with pytest.raises(ValueError, match="cannot name its own event"):
        _vote_event(event_id=same, vote={"target_event_id": same, "verdict": "approve"})


def test_ingest_rows_carry_the_vote_exactly_as_the_event_json():
    pytest.importorskip("orjson")
    from ingest.rows import row_from_body

    for event in (_vote_event("reject"), _vote_event(), SwarmEvent(
            event_id=new_event_id(), timestamp=1, tenant_id="a", project_id="b", decision={"rationale": "r"})):
        row = row_from_body(event.to_bytes(), source="local", stream="s", position="1")
        assert json.loads(row[-1]) == json.loads(event.to_json())


# ------------------------------------------------------------------ SDK
def test_sdk_approve_and_reject_record_who_what_and_why(lg):
    coder = recorder(lg, "coder")
    coder.decision("set up CI")
    change = coder.file_change(".github/workflows/ci.yml", b"on: push\n")
    reviewer = recorder(lg, "reviewer-1", user="alice")
    vote_id = reviewer.approve(change[:20], reason="only lints")
    vote = lg.get(vote_id).event
    assert (vote.kind, vote.vote.target_event_id, vote.vote.verdict.value) == ("decision", change, "approve")
    assert (vote.user_id, vote.agent_id, vote.decision.rationale) == ("alice", "reviewer-1", "only lints")
    assert (vote.project_id, vote.tenant_id, vote.session_id) == ("web", "acme", reviewer.session_id)
    assert coverage_of(lg, lg.get(change).event).status == "approved"
    reject_id = reviewer.reject(change, reason="pins no action versions")
    assert lg.get(reject_id).event.vote.verdict.value == "reject"
    assert coverage_of(lg, lg.get(change).event).status == "rejected"


def test_a_vote_does_not_become_the_cause_of_later_changes(lg):
    agent = recorder(lg, "coder")
    why = agent.decision("refactor")
    first = agent.file_change("a.py", b"a = 1\n")
    agent.approve(first, reason="self-check")  # counts for nothing, but must not relink
    later = agent.file_change("b.py", b"b = 1\n")
    assert lg.get(later).event.caused_by == why


def test_sdk_refuses_what_cannot_be_voted_on(lg):
    agent = recorder(lg, "reviewer")
    message = agent.message("hello")
    with pytest.raises(InvalidRecord, match="is a message: only a file change or a decision"):
        agent.approve(message)
    change = recorder(lg, "coder").file_change("x.py", b"x\n")
    with pytest.raises(InvalidRecord, match="needs a reason"):
        agent.reject(change, reason="  ")
    vote = agent.approve(change)
    with pytest.raises(InvalidRecord, match="is itself a vote"):
        agent.reject(vote, reason="no")
    with pytest.raises(InvalidRecord, match="no event"):
        agent.approve("0123456789")
    assert lg.count(kind="decision") == 1  # only the one good vote was written


# ------------------------------------------------------------------ CLI
def test_cli_approve_and_reject_with_json_and_errors(lg, ledger_path):
    change = recorder(lg, "coder").file_change("Dockerfile", b"FROM alpine\n")
    out = json.loads(run(ledger_path, "approve", change[:18], "--reason", "base image ok", "--user", "bob",
                         "--json").output)
    assert out["target"] == change and out["verdict"] == "approve" and out["status"] == "approved"
    assert (out["user_id"], out["agent_id"], out["reason"]) == ("bob", "", "base image ok")
    assert lg.get(out["vote_id"]).event.vote.target_event_id == change
    text = run(ledger_path, "reject", change, "--reason", "use a pinned digest", "--user", "carol").output
    assert text.startswith(f"Rejected state_change {change} (create Dockerfile) as carol; vote ")
    missing = run(ledger_path, "reject", change, "--json", code=2)
    assert json.loads(missing.output.strip().splitlines()[-1])["error"] == "Missing option '--reason'."
    unknown = run(ledger_path, "approve", "ffffffff-ffff", "--json", code=1)
    assert "no event 'ffffffff-ffff'" in json.loads(unknown.output.strip().splitlines()[-1])["error"]
    shown = run(ledger_path, "show", change).output
    assert "approval" in shown and "rejected" in shown and "reject by carol" in shown
    assert json.loads(run(ledger_path, "show", change, "--json").output)["approval"]["status"] == "rejected"


def test_cli_voter_defaults_to_the_os_user(lg, ledger_path, monkeypatch):
    monkeypatch.setenv("LEDGER_USER", "dana")
    change = recorder(lg, "coder").file_change("run.sh", b"echo\n", mode="executable")
    vote_id = json.loads(run(ledger_path, "approve", change, "--json").output)["vote_id"]
    assert lg.get(vote_id).event.user_id == "dana"


# ------------------------------------------------------------------ rules
def _v(target: str, verdict: str, t: int, user: str = "alice", agent: str = "") -> VoteRecord:
    return VoteRecord(f"0000000{t:d}-0000-7000-8000-000000000000", t, target, verdict, user, agent, "")


def _c(agent: str = "coder", caused_by: str = "") -> SwarmEvent:
    return SwarmEvent(event_id=new_event_id(), timestamp=1, tenant_id="a", project_id="p", agent_id=agent,
                      caused_by=caused_by, state_change={"target_resource": "x", "operation": "delete"})


def test_a_later_rejection_wins_over_an_earlier_approval():
    c = _c()
    assert coverage(c, [_v(c.event_id, "approve", 1), _v(c.event_id, "reject", 2)]).status == "rejected"
    assert coverage(c, [_v(c.event_id, "approve", 1), _v(c.event_id, "reject", 2, user="bob")]).status == "rejected"
    # the same voter may lift their rejection; another voter's approval does not
    assert coverage(c, [_v(c.event_id, "reject", 1), _v(c.event_id, "approve", 2)]).status == "approved"
    assert coverage(c, [_v(c.event_id, "reject", 1), _v(c.event_id, "approve", 2, user="bob")]).status == "rejected"
    assert coverage(c, []).status == "unreviewed"
    assert coverage(c, [_v(new_event_id(), "approve", 1)]).status == "unreviewed"  # another event's vote


def test_a_decision_vote_covers_the_changes_it_caused():
    decision = new_event_id()
    c = _c(caused_by=decision)
    assert coverage(c, [_v(decision, "approve", 1)]).status == "approved"
    assert coverage(c, [_v(decision, "approve", 1), _v(c.event_id, "reject", 2, user="bob")]).status == "rejected"
    assert coverage(c, [_v(c.event_id, "approve", 1), _v(decision, "reject", 2)]).status == "rejected"
    assert coverage(_c(), [_v(decision, "approve", 1)]).status == "unreviewed"  # not caused by it


def test_an_agent_cannot_approve_its_own_change_unless_allowed():
    c = _c(agent="coder")
    own = [_v(c.event_id, "approve", 1, user="", agent="coder")]
    assert coverage(c, own).status == "unreviewed"
    assert coverage(c, own, allow_self=True).status == "approved"
    assert coverage(c, [_v(c.event_id, "reject", 1, user="", agent="coder")]).status == "rejected"


# ------------------------------------------------------------------ the audit
def _crafted_history(lg):
    """12 file changes, exactly 5 risky; 2 of those approved (one directly, one through its
    decision); of the other 3, one approved then rejected, one approved only by its own
    agent, one never voted on. Returns (the 3 expected ids, the 12 change ids)."""
    clock = FakeClock()
    coder = recorder(lg, "coder", clock=clock)
    reviewer = recorder(lg, "reviewer", user="alice", clock=clock)
    lead = recorder(lg, "lead", user="bob", clock=clock)
    coder.decision("scaffold the service")
    harmless = [coder.file_change(f"src/m{i}.py", f"value = {i}\n".encode()) for i in range(5)]
    harmless.append(coder.file_change("README.md", b"# service\n"))
    harmless.append(coder.file_change("docs/ops.md", b"run eval(x) never\n"))
    ci = coder.file_change(".github/workflows/ci.yml", b"on: push\n")  # risky 1
    deploy_plan = coder.decision("ship a container")
    docker = coder.file_change("Dockerfile", b"FROM python:3.11\n")  # risky 2 (caused by deploy_plan)
    coder.decision("clean up")
    deleted = coder.file_change("README.md", None)  # risky 3
    script = coder.file_change("tool.sh", b"echo hi\n", mode="executable")  # risky 4
    dangerous = coder.file_change("src/m0.py", b"value = 0\nresult = eval(expr)\n")  # risky 5
    reviewer.approve(ci, reason="lint only")  # 1: approved directly
    lead.approve(deploy_plan, reason="the container plan is fine")  # 2: approved through its decision
    reviewer.approve(harmless[0], reason="fine")  # a harmless change: changes nothing
    reviewer.approve(deleted, reason="stale")  # 3: approved ...
    lead.reject(deleted, reason="the README is still linked")  # ... then rejected later by another voter
    coder.approve(script, reason="my script")  # 4: self-approval does not count
    changes = harmless + [ci, docker, deleted, script, dangerous]
    return [deleted, script, dangerous], changes


def test_audit_unapproved_on_a_crafted_history_gives_exactly_the_known_answer(lg, ledger_path, monkeypatch):
    expected, changes = _crafted_history(lg)
    assert len(changes) == 12 and lg.count(kind="state_change") == 12
    risky = [c for c in changes if RiskRules().tags(lg.get(c).event, lambda d: lg.get_blob(d))]
    assert len(risky) == 5
    # the analytics extra is not needed: importing ClickHouse or chdb would fail here
    monkeypatch.setitem(sys.modules, "chdb", None)
    monkeypatch.setitem(sys.modules, "clickhouse_connect", None)
    rows = json.loads(run(ledger_path, "audit", "unapproved", "--json").output)
    assert [r["event_id"] for r in rows] == expected
    by_id = {r["event_id"]: r for r in rows}
    deleted, script, dangerous = expected
    assert by_id[deleted]["status"] == "rejected"
    assert [(v["verdict"], v["user_id"], v["reason"]) for v in by_id[deleted]["votes"]] == [
        ("reject", "bob", "the README is still linked")]
    assert [t["tag"] for t in by_id[deleted]["risk"]] == ["delete"]
    assert by_id[script]["status"] == "unreviewed" and [t["tag"] for t in by_id[script]["risk"]] == ["executable"]
    assert by_id[dangerous]["risk"] == [{"tag": "dangerous-code",
                                         "reason": "src/m0.py line 2 adds eval: result = eval(expr)"}]
    text = run(ledger_path, "audit", "unapproved").output
    assert "3 risky changes not approved" in text and "rejected by bob/lead: the README is still linked" in text
    run(ledger_path, "audit", "unapproved", "--exit-code", code=1)
    # --since: only the last change is at or after its own time
    later = json.loads(run(ledger_path, "audit", "unapproved", "--since", dangerous, "--json").output)
    assert [r["event_id"] for r in later] == [dangerous]
    # the library answers the same
    found = audit_unapproved(lg, tenant_id="acme", rules=RiskRules())
    assert [c.event_id for c in found] == expected


def test_approving_the_rest_empties_the_audit_and_self_approval_can_be_allowed(lg, ledger_path, monkeypatch):
    expected, _ = _crafted_history(lg)
    deleted, script, dangerous = expected
    monkeypatch.setenv("LEDGER_APPROVALS_ALLOW_SELF", "true")
    rows = json.loads(run(ledger_path, "audit", "unapproved", "--json").output)
    assert [r["event_id"] for r in rows] == [deleted, dangerous]  # the self-approval counts now
    monkeypatch.delenv("LEDGER_APPROVALS_ALLOW_SELF")
    run(ledger_path, "approve", deleted, "--user", "bob", "--agent", "lead", "--reason", "link removed")
    run(ledger_path, "approve", script, "--user", "alice")
    run(ledger_path, "approve", dangerous, "--user", "alice")
    assert json.loads(run(ledger_path, "audit", "unapproved", "--json").output) == []
    assert run(ledger_path, "audit", "unapproved", "--exit-code").output.startswith("No risky change")


def test_audit_is_per_tenant(lg, ledger_path):
    other = Recorder(lg, project_id="web", agent_id="coder", tenant_id="globex", link_spans=False)
    other.file_change("Dockerfile", b"FROM scratch\n")
    assert json.loads(run(ledger_path, "audit", "unapproved", "--json").output) == []
    with pytest.raises(EventNotFound):
        from ledger.approvals import record_vote

        record_vote(lg, lg.events(tenant_id="globex").__next__().event_id, "approve", tenant_id="acme")


def test_build_vote_refuses_an_unknown_verdict(lg):
    from ledger.approvals import build_vote

    change = lg.get(recorder(lg, "coder").file_change("a", b"a")).event
    with pytest.raises(VoteRefused, match="verdict must be"):
        build_vote(change, "maybe", reason="", event_id=new_event_id(), timestamp=1)


# ------------------------------------------------------------------ hub and ClickHouse
def test_votes_sync_to_the_hub_and_are_ingested_like_every_event(lg, hub, tenant, tmp_path):
    pytest.importorskip("chdb")
    from ingest.ingestor import Ingestor
    from ingest.sources import LocalSource
    from syncer.syncer import Syncer
    from tests.analytics_helpers import ch_rows

    coder = Recorder(lg, project_id="web", agent_id="coder", tenant_id=tenant, link_spans=False)
    change = coder.file_change("Dockerfile", b"FROM alpine\n")
    reviewer = Recorder(lg, project_id="web", agent_id="rev", user_id="alice", tenant_id=tenant, link_spans=False)
    approve = reviewer.approve(change, reason="ok")
    reject = reviewer.reject(change, reason="not pinned")
    Syncer(lg, hub).sync_once()
    on_hub = {r.event.event_id: r.event for r in hub.iter_log("web")}
    assert on_hub[approve].vote.verdict.value == "approve" and on_hub[reject].vote.target_event_id == change
    assert on_hub[reject].to_bytes() == lg.get(reject).body  # the same bytes, exactly
    url = f"chdb://{(tmp_path / 'analytics').resolve()}"
    Ingestor(url, LocalSource(lg, tenant=tenant)).run()
    rows = ch_rows(url, "SELECT event_id, JSONExtractString(event_json, 'vote', 'verdict'), input_trigger "
                        "FROM analytics.swarm_events WHERE event_type = 'decision' ORDER BY event_id")
    assert rows == [(approve, "approve", f"approve {change}"), (reject, "reject", f"reject {change}")]


def test_votes_recorded_as_json_lines_never_become_a_cause(ledger_path):
    """`ledger record` (any language): a vote line is a decision with `vote`; the session's
    later changes keep pointing at its last real decision, in the same batch and after."""
    session = new_event_id()

    def record(lines):
        text = "".join(json.dumps(line) + "\n" for line in lines)
        res = CliRunner().invoke(cli, ["--db", str(ledger_path), "--tenant", "acme", "--project", "web", "record",
                                       "--json"], input=text)
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)["event_ids"]

    plan, change = record([
        {"session_id": session, "agent_id": "coder", "decision": {"rationale": "add CI"}},
        {"session_id": session, "agent_id": "coder", "state_change": {"target_resource": ".gitlab-ci.yml"},
         "content": "test:\n  script: make\n"}])
    vote, after = record([
        {"session_id": session, "agent_id": "reviewer", "decision": {"rationale": "fine"},
         "vote": {"target_event_id": change, "verdict": "approve"}},
        {"session_id": session, "agent_id": "coder", "state_change": {"target_resource": "Makefile"},
         "content": "all:\n"}])
    (later,) = record([{"session_id": session, "agent_id": "coder",
                        "state_change": {"target_resource": "Makefile"}, "content": "all: test\n"}])
    with Ledger(ledger_path) as lg:
        assert lg.get(vote).event.vote.target_event_id == change
        assert lg.get(after).event.caused_by == plan and lg.get(later).event.caused_by == plan
        assert coverage_of(lg, lg.get(change).event).status == "approved"


def test_views_say_what_a_vote_is_about():
    from replay.views import summary_line
    from schemas import events_pb2
    from ui.index import row_from_proto

    vote = _vote_event("reject", decision={"rationale": "not pinned\nmore text"})
    target = vote.vote.target_event_id
    assert summary_line(vote) == f"reject {target}: not pinned"
    msg = events_pb2.SwarmEvent()
    msg.ParseFromString(vote.to_bytes())
    assert f"reject {target[:18]}: not pinned" in row_from_proto(msg, 1)
