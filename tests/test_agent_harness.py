"""The real coding-agent CLIs, run offline against the scripted model (tests/agents/).

Each test runs one agent (Claude Code, Codex CLI, Gemini CLI, pinned in
tests/agents/package-lock.json) in a loopback-only network namespace on a fresh git
workspace, and checks that the scripted scenario happened (hello.py written by the
agent's write tool; notes.txt, old.txt, run.sh, link.py changed by its shell tool),
that the hook recorder saw the agent's lifecycle and tool events, and that the OTLP
sink received telemetry. Slow (npm install on a fresh machine, ~5-10 s per agent after).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.agents.install import ensure_installed
from tests.agents.model_server import FINAL_TEXT, HELLO_PY, SHELL_COMMAND
from tests.agents.runner import check_unshare, make_workspace, run_agent

pytestmark = pytest.mark.slow

# agent -> (session start, prompt, pre-tool, post-tool, stop, session end, write tool, shell tool)
EXPECTED = {
    "claude": ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SessionEnd", "Write", "Bash"),
    "codex": ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SessionEnd", "apply_patch", "Bash"),
    "gemini": ("SessionStart", "BeforeAgent", "BeforeTool", "AfterTool", "AfterAgent", "SessionEnd", "write_file",
               "run_shell_command"),
}


@pytest.fixture(scope="session")
def agent_clis():
    """Install the pinned CLIs (npm ci, skipped when the lock stamp matches) and check unshare."""
    ensure_installed(quiet=True)
    try:
        check_unshare()
    except RuntimeError as exc:
        pytest.fail(f"agents run only inside a loopback-only network namespace: {exc}")


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_agent_runs_scenario_offline(agent, agent_clis, tmp_path):
    ws = make_workspace(tmp_path / "ws")
    run = run_agent(agent, ws, run_dir=tmp_path / "run", timeout_s=120)
    detail = f"stdout:\n{run.stdout_tail[-2000:]}\nstderr:\n{run.stderr_tail[-2000:]}"
    assert run.exit_code == 0, detail
    assert not run.timed_out

    # the workspace changes of the scenario
    assert (ws / "hello.py").read_text() == HELLO_PY
    assert (ws / "notes.txt").read_text() == "first line\nx\n"
    assert not (ws / "old.txt").exists() and (ws / "renamed.txt").read_text() == "to be renamed\n"
    assert os.stat(ws / "run.sh").st_mode & stat.S_IXUSR
    assert (ws / "link.py").is_symlink() and os.readlink(ws / "link.py") == "hello.py"

    # the scripted server drove the whole conversation, and nothing else
    kinds = [r["kind"] for r in run.model_requests()]
    assert any(k.endswith("write.sse") for k in kinds) and any(k.endswith("shell.sse") for k in kinds), kinds
    assert any(k.endswith("final.sse") for k in kinds), kinds
    assert FINAL_TEXT in run.stdout_tail

    # hooks: lifecycle, prompt and tool events with the tool names we expect
    start, prompt, pre, post, stop, end, write_tool, shell_tool = EXPECTED[agent]
    hooks = run.hooks()
    events = [h["hook_event"] for h in hooks]
    for ev in (start, prompt, pre, post, stop, end):
        assert ev in events, (ev, events)
    assert events.index(start) < events.index(prompt) < events.index(pre) < events.index(stop) < events.index(end)
    assert all(h["agent"] == agent and isinstance(h["payload"], dict) for h in hooks)
    assert all(h["payload"].get("hook_event_name") == h["hook_event"] for h in hooks)
    session_ids = {h["payload"].get("session_id") for h in hooks}
    assert len(session_ids) == 1 and None not in session_ids, session_ids
    pre_tools = [h["payload"]["tool_name"] for h in hooks if h["hook_event"] == pre]
    post_tools = [h["payload"]["tool_name"] for h in hooks if h["hook_event"] == post]
    assert pre_tools == [write_tool, shell_tool] == post_tools, (pre_tools, post_tools)
    shell_pre = next(h for h in hooks if h["hook_event"] == pre and h["payload"]["tool_name"] == shell_tool)
    assert shell_pre["payload"]["tool_input"]["command"] == SHELL_COMMAND
    assert all(h["payload"].get("cwd") == str(ws) for h in hooks)

    # telemetry reached the sink
    otlp = run.otlp_records()
    paths = {r["path"] for r in otlp}
    assert otlp and any(p.endswith("/v1/logs") for p in paths), paths


def test_codex_runs_project_hooks_only_once_trusted(agent_clis, tmp_path):
    """Codex skips untrusted hooks silently; trust persisted through `codex app-server` makes them run."""
    untrusted = run_agent("codex", make_workspace(tmp_path / "ws0"), run_dir=tmp_path / "run0", timeout_s=120,
                          otlp=False, codex_hook_trust="none")
    assert untrusted.exit_code == 0, untrusted.stderr_tail[-2000:]
    assert (untrusted.workspace / "hello.py").exists()
    assert untrusted.hooks() == []

    ws = make_workspace(tmp_path / "ws")
    run = run_agent("codex", ws, run_dir=tmp_path / "run", timeout_s=120, otlp=False, codex_hook_trust="app-server")
    assert run.exit_code == 0, run.stderr_tail[-2000:]
    assert "--dangerously-bypass-hook-trust" not in json.loads((run.run_dir / "spec.json").read_text())["argv"]
    config = (run.home / ".codex" / "config.toml").read_text()
    assert f'[hooks.state."{ws}/.codex/hooks.json:pre_tool_use:0:0"]' in config
    events = [h["hook_event"] for h in run.hooks()]
    for ev in ("SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop", "SessionEnd"):
        assert ev in events, events
