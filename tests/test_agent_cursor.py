"""Cursor (its CLI cannot run here): `ledger agent install cursor` and payloads shaped
as Cursor's hooks documentation gives them (beforeSubmitPrompt, beforeShellExecution,
afterShellExecution, beforeMCPExecution, afterMCPExecution, afterFileEdit,
afterAgentResponse, stop; common fields conversation_id, generation_id,
hook_event_name, workspace_roots). Not verified against a running Cursor."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from ledger import Ledger
from tests.agents.ledger_hooks import ledger, replay_tree, stop_collector, tree
from tests.hook_drive import fire


def _repo(path: Path) -> Path:
    path.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True)
    (path / "README.md").write_text("# app\n")
    (path / ".gitignore").write_text("node_modules/\n")
    (path / "node_modules").mkdir()
    (path / "node_modules" / "dep.js").write_text("ignored\n")
    return path


def test_cursor_hooks_record_prompt_tools_edits_and_the_turn(tmp_path):
    ws, db = _repo(tmp_path / "ws"), tmp_path / "data" / "ledger.db"
    ledger(db, "--project", "app", "agent", "install", "cursor", "--root", str(ws))
    config = json.loads((ws / ".cursor" / "hooks.json").read_text())
    assert config["version"] == 1 and "afterFileEdit" in config["hooks"]
    common = {"conversation_id": "conv-1", "generation_id": "gen-1", "workspace_roots": [str(ws)],
              "cursor_version": "1.7.0"}
    env = {"LEDGER_COLLECTOR_IDLE_S": "60"}
    try:
        fire(ws, "cursor", {**common, "hook_event_name": "beforeSubmitPrompt", "prompt": "add a parser",
                            "attachments": []}, env)
        (ws / "parser.py").write_text("def parse(s):\n    return s.split()\n")
        fire(ws, "cursor", {**common, "hook_event_name": "afterFileEdit", "file_path": str(ws / "parser.py"),
                            "edits": [{"old_string": "", "new_string": "def parse(s): ..."}]}, env)
        fire(ws, "cursor", {**common, "hook_event_name": "beforeShellExecution", "command": "chmod +x parser.py",
                            "cwd": str(ws)}, env)
        os.chmod(ws / "parser.py", 0o755)
        (ws / "out.txt").write_text("made by the shell\n")
        fire(ws, "cursor", {**common, "hook_event_name": "afterShellExecution", "command": "chmod +x parser.py",
                            "output": "", "duration": 12}, env)
        fire(ws, "cursor", {**common, "hook_event_name": "beforeMCPExecution", "tool_name": "fs.rm",
                            "tool_input": json.dumps({"path": "out.txt"}), "command": "mcp-fs"}, env)
        (ws / "out.txt").unlink()
        fire(ws, "cursor", {**common, "hook_event_name": "afterMCPExecution", "tool_name": "fs.rm",
                            "tool_input": json.dumps({"path": "out.txt"}), "result_json": "{\"ok\": true}",
                            "duration": 3}, env)
        fire(ws, "cursor", {**common, "hook_event_name": "afterAgentResponse", "text": "Added parser.py."}, env)
        fire(ws, "cursor", {**common, "hook_event_name": "stop", "status": "completed", "loop_count": 0}, env)
    finally:
        stop_collector(db)
    with Ledger(db) as led:
        events = [s.event for s in led.events(tenant_id="default", project_id="app", order="seq")]
    cursor = [e for e in events if e.agent_id == "cursor"]
    assert {e.session_id for e in cursor} == {"conv-1"}
    prompt = next(e for e in cursor if e.message)
    assert prompt.message.content == "add a parser" and prompt.message.sender == "user"
    spans = [e for e in cursor if e.span and e.span.name.startswith("execute_tool")]
    assert [e.span.name for e in spans] == ["execute_tool Edit", "execute_tool Shell", "execute_tool fs.rm"]
    decision = next(e for e in cursor if e.decision)
    assert decision.decision.rationale == "Added parser.py." and decision.decision.input_trigger == "add a parser"
    changes = [(e.state_change.operation.value, e.state_change.target_resource, e.span_id) for e in cursor
               if e.state_change]
    assert changes == [("create", "parser.py", spans[0].span_id), ("modify", "parser.py", spans[1].span_id),
                       ("create", "out.txt", spans[1].span_id), ("delete", "out.txt", spans[2].span_id)]
    assert all(e.caused_by == decision.event_id for e in cursor if e.state_change)
    assert not any("node_modules" in e.state_change.target_resource for e in events if e.state_change)
    assert replay_tree(db, "now", tmp_path / "replay", project="app") == tree(ws)
