"""The REAL Claude Code, Codex and Gemini CLIs, offline, recording into the ledger
through the hooks `ledger agent install` writes (docs/agents.md).

Each agent runs in a loopback-only network namespace against the scripted model
(tests/agents/): it creates hello.py with its edit tool, then one shell command
appends to notes.txt, renames old.txt, chmods run.sh and makes a symlink. Checked:
the prompt, every tool call and every file change are recorded and attributed to the
agent's session; the turn's decision holds the assistant's text and every change of
the turn is caused by it; `ledger replay --at now` equals the work tree (bytes,
executable bits, symlinks; tracked and untracked-not-ignored files); replay through
each tool call's span equals the tree copied right after that tool call's hook.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger import Ledger
from tests.agents import install as agents_install
from tests.agents.ledger_hooks import (
    codex_trust_command,
    failures,
    make_writer,
    replay_tree,
    stop_collector,
    tree,
)
from tests.agents.runner import check_unshare, make_workspace, run_agent

pytestmark = pytest.mark.slow
AGENT_IDS = {"claude": "claude-code", "codex": "codex", "gemini": "gemini-cli"}


@pytest.fixture(scope="module")
def agents_ready():
    try:
        check_unshare()
        agents_install.ensure_installed(quiet=True)
    except RuntimeError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))


def _run(agent: str, tmp_path: Path):
    ws = make_workspace(tmp_path / "ws")
    (ws / "ignored.log").write_text("git ignores this\n")
    db = tmp_path / "data" / "ledger.db"
    snaps = tmp_path / "snaps"
    pre = [codex_trust_command(ws)] if agent == "codex" else None
    try:
        run = run_agent(agent, ws, hooks_config_writer=make_writer(db, snaps), run_dir=tmp_path / "run",
                        codex_hook_trust="none" if agent == "codex" else "bypass", pre_commands=pre,
                        extra_env={"LEDGER_COLLECTOR_IDLE_S": "60"})
    finally:
        stop_collector(db)
    return ws, db, snaps, run


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_real_agent_is_recorded_and_replays_exactly(agent, agents_ready, tmp_path):
    ws, db, snaps, run = _run(agent, tmp_path)
    assert run.exit_code == 0, (run.stdout_tail, run.stderr_tail)
    assert failures(db) == []
    with Ledger(db) as led:
        events = [s.event for s in led.events(tenant_id="default", project_id="ws", order="seq")]
    agent_id = AGENT_IDS[agent]
    mine = [e for e in events if e.agent_id == agent_id]
    sessions = {e.session_id for e in mine}
    assert len(sessions) == 1 and "" not in sessions
    session = sessions.pop()

    start = [e for e in mine if e.signal and e.signal.status == "session start"]
    assert len(start) == 1
    context = json.loads(start[0].signal.detail)
    assert context["git_branch"] == "main" and len(context["git_head"]) == 40 and context["host"]
    assert context["agent_version"], context
    prompts = [e for e in mine if e.message and e.message.sender == "user"]
    assert len(prompts) == 1 and "hello.py" in prompts[0].message.content

    tools = [e for e in mine if e.span and e.span.name.startswith("execute_tool")]
    assert len(tools) == 2, [e.span.name for e in tools]
    assert all(e.span.attributes["ledger.tool.success"] for e in tools)
    shell = tools[1].span.attributes
    assert "mv old.txt renamed.txt" in shell["ledger.tool.input"]

    decisions = [e for e in mine if e.decision]
    assert len(decisions) == 1
    decision = decisions[0]
    assert decision.decision.rationale == "Done: created hello.py and updated files."
    assert "hello.py" in decision.decision.input_trigger

    changes = [e for e in mine if e.state_change]
    by_path = {e.state_change.target_resource: e for e in changes}
    assert by_path["hello.py"].state_change.operation.value == "create"
    assert by_path["hello.py"].span_id == tools[0].span_id
    assert by_path["notes.txt"].state_change.operation.value == "modify"
    assert by_path["renamed.txt"].state_change.operation.value == "rename"
    assert by_path["renamed.txt"].state_change.previous_resource == "old.txt"
    assert by_path["run.sh"].state_change.file_mode.value == "executable"
    assert by_path["link.py"].state_change.file_mode.value == "symlink"
    for path in ("notes.txt", "renamed.txt", "run.sh", "link.py"):
        assert by_path[path].span_id == tools[1].span_id, path
    assert all(e.session_id == session and e.caused_by == decision.event_id for e in changes)
    assert not any("ignored.log" == e.state_change.target_resource for e in events if e.state_change)
    assert not any(e.state_change.target_resource.startswith(".git/") for e in events if e.state_change)

    # replay now == the work tree
    assert replay_tree(db, "now", tmp_path / "replay-now") == tree(ws)
    # replay through each tool call's span == the tree copied right after its hook
    boundaries = sorted(p for p in snaps.iterdir() if p.is_dir())
    assert len(boundaries) == 2
    for snap, span_event in zip(boundaries, tools):
        got = replay_tree(db, span_event.event_id, tmp_path / f"replay-{snap.name}")
        assert got == tree(snap, git_dir=ws / ".git"), snap.name


def test_real_claude_with_http_hooks_and_otel_to_ledger_serve(agents_ready, tmp_path):
    """`ledger agent install claude --http --otel`: SessionStart is the one command hook
    (it starts the collector on 127.0.0.1:4318 inside the namespace), every other hook is
    an HTTP POST from Claude Code itself (no process), and Claude Code's own
    OpenTelemetry (from the settings' env) goes to the same collector, joined to the
    hook session. (Claude Code takes the telemetry env from its USER settings, which
    install writes: the harness's HOME/.claude here.)"""
    ws = make_workspace(tmp_path / "ws")
    db = tmp_path / "data" / "ledger.db"
    try:
        run = run_agent("claude", ws, hooks_config_writer=make_writer(db, None, install_args=("--http", "--otel")),
                        run_dir=tmp_path / "run", otlp=False, extra_env={"LEDGER_COLLECTOR_IDLE_S": "60"})
    finally:
        stop_collector(db)
    assert run.exit_code == 0, (run.stdout_tail, run.stderr_tail)
    assert failures(db) == []
    with Ledger(db) as led:
        events = [s.event for s in led.events(tenant_id="default", project_id="ws", order="seq")]
    mine = [e for e in events if e.agent_id == "claude-code"]
    session = next(e.session_id for e in mine if e.signal and e.signal.status == "session start")
    assert len([e for e in mine if e.span and e.span.name.startswith("execute_tool")]) == 2
    assert next(e for e in mine if e.decision).decision.rationale == "Done: created hello.py and updated files."
    assert {e.state_change.target_resource for e in mine if e.state_change} == {
        "hello.py", "notes.txt", "renamed.txt", "run.sh", "link.py"}
    assert replay_tree(db, "now", tmp_path / "replay-now") == tree(ws)
    otel = [e for e in events if e.agent_id == "claude-code" and (e.signal or e.span) and e.session_id == session
            and not (e.span and e.span.scope_name == "context-ledger.hooks") and not (e.signal and e.signal.status in (
                "session start", "session end"))]
    names = {e.signal.status for e in otel if e.signal} | {e.span.name for e in otel if e.span}
    assert "hook_execution_complete" in names and "claude_code.tool" in names, names
