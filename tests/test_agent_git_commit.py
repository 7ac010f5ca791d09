"""`ledger agent install git`: the post-commit hook links each commit to the session's
recorded changes and decisions and records only what the ledger does not know; after
an agent session plus a commit, `ledger replay --at now --strict` is clean and
`--at <commit>` resolves."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ledger import Ledger
from tests.agents.ledger_hooks import ledger, replay_tree, stop_collector, tree
from tests.hook_drive import fire

GIT_ENV = {"GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.invalid", "GIT_COMMITTER_NAME": "dev",
           "GIT_COMMITTER_EMAIL": "dev@example.invalid", "LEDGER_COLLECTOR_IDLE_S": "60"}


def _git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


def test_post_commit_links_the_session_and_replay_is_strictly_clean(tmp_path):
    ws, db = tmp_path / "ws", tmp_path / "data" / "ledger.db"
    ws.mkdir()
    _git(ws, "init", "-q", "-b", "main")
    (ws / "app.py").write_text("print('v1')\n")
    ledger(db, "--project", "app", "agent", "install", "claude", "--root", str(ws))
    ledger(db, "--project", "app", "agent", "install", "git", "--root", str(ws))
    hook = Path(_git(ws, "rev-parse", "--git-path", "hooks"))
    assert "context-ledger" in (ws / hook / "post-commit").read_text()
    s = {"session_id": "sess-1", "transcript_path": "", "cwd": str(ws)}
    try:
        fire(ws, "claude-code", {**s, "hook_event_name": "SessionStart", "source": "startup"}, GIT_ENV)
        fire(ws, "claude-code", {**s, "hook_event_name": "UserPromptSubmit", "prompt": "bump", "prompt_id": "p1"},
             GIT_ENV)
        fire(ws, "claude-code", {**s, "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "t1",
                                 "tool_input": {"command": "sed"}, "prompt_id": "p1"}, GIT_ENV)
        (ws / "app.py").write_text("print('v2')\n")
        fire(ws, "claude-code", {**s, "hook_event_name": "PostToolUse", "tool_name": "Bash", "tool_use_id": "t1",
                                 "tool_input": {"command": "sed"}, "tool_response": {}, "prompt_id": "p1"}, GIT_ENV)
        fire(ws, "claude-code", {**s, "hook_event_name": "Stop", "last_assistant_message": "bumped",
                                 "prompt_id": "p1"}, GIT_ENV)
        _git(ws, "add", "-A")
        _git(ws, "commit", "-q", "-m", "bump to v2")
        first = _git(ws, "rev-parse", "HEAD")
        (ws / "notes.md").write_text("by hand\n")  # a change no agent made
        _git(ws, "add", "notes.md")
        _git(ws, "commit", "-q", "-m", "notes by hand")
        second = _git(ws, "rev-parse", "HEAD")
    finally:
        stop_collector(db)
    with Ledger(db) as led:
        events = [st.event for st in led.events(tenant_id="default", project_id="app", order="seq")]
    commits = [e for e in events if e.agent_id == "git" and e.decision]
    assert [(e.related_commit_hash, e.decision.rationale.strip()) for e in commits] == [
        (first, "bump to v2"), (second, "notes by hand")]
    assert commits[0].session_id == "sess-1"
    turn = next(e for e in events if e.decision and e.agent_id == "claude-code")
    assert commits[0].decision.context_hash == turn.event_id  # the session's last decision
    # the first commit adds nothing the session did not record; the second records notes.md
    git_changes = [e for e in events if e.agent_id == "git" and e.state_change]
    assert [(e.state_change.target_resource, e.related_commit_hash) for e in git_changes] == [("notes.md", second)]
    assert replay_tree(db, "now", tmp_path / "now", project="app", strict=True) == tree(ws)
    at_first = replay_tree(db, first[:10], tmp_path / "first", project="app", strict=True)
    assert at_first["app.py"] == ("regular", b"print('v2')\n") and "notes.md" not in at_first
    ledger(db, "--project", "app", "agent", "uninstall", "git", "--root", str(ws))
    assert not (ws / hook / "post-commit").exists()
