"""`ledger agent install|uninstall|status`: merged into existing settings without
touching other hooks or keys, idempotent, and uninstall removes exactly what install
added (files and directories it created included)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from nervous_system.hooks.agents import AGENTS
from tests.agents.ledger_hooks import ledger

FILES = {"claude": ".claude/settings.json", "codex": ".codex/hooks.json", "gemini": ".gemini/settings.json",
         "cursor": ".cursor/hooks.json"}
EXISTING = {
    "claude": {"model": "opus", "env": {"FOO": "1"}, "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}],
                                                             "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "guard.sh"}]}]}},
    "codex": {"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify"}]}]}},
    "gemini": {"ui": {"theme": "dark"}, "hooks": {"BeforeTool": [{"matcher": "run_shell_command", "hooks": [
        {"type": "command", "name": "guard", "command": "guard.sh"}]}]}},
    "cursor": {"version": 1, "hooks": {"afterFileEdit": [{"command": "./format.sh"}]}},
}
CANON = {"claude": "claude-code", "codex": "codex", "gemini": "gemini", "cursor": "cursor"}


def _repo(tmp_path: Path) -> Path:
    ws = tmp_path / "repo"
    ws.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    return ws


def _ours(handler: dict) -> bool:
    return "nervous_system/hooks/hook" in handler.get("command", "") or "/hook/claude-code" in handler.get("url", "")


def _handlers(data: dict, agent: str) -> dict[str, list[dict]]:
    out = {}
    for event, groups in data.get("hooks", {}).items():
        hs = groups if agent == "cursor" else [h for g in groups for h in g["hooks"]]
        out[event] = [h for h in hs if _ours(h)]
    return out


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini", "cursor"])
def test_install_merges_is_idempotent_and_uninstall_restores(agent, tmp_path):
    ws, db = _repo(tmp_path), tmp_path / "data" / "ledger.db"
    env = {"CODEX_HOME": str(tmp_path / "codex-home"), "PATH": "/usr/bin:/bin"}  # no codex on PATH
    path = ws / FILES[agent]
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(EXISTING[agent], indent=4))
    p = ledger(db, "--tenant", "acme", "--project", "web", "agent", "install", agent, "--root", str(ws), env=env)
    data = json.loads(path.read_text())
    ours = _handlers(data, agent)
    assert sorted(e for e, hs in ours.items() if hs) == sorted(AGENTS[CANON[agent]].install)
    assert all(len(hs) <= 1 for hs in ours.values())
    cmd = next(hs[0] for hs in ours.values() if hs)["command"]
    assert f"--db {db}" in cmd and "--tenant acme" in cmd and "--project web" in cmd and f"--root {ws}" in cmd
    assert "hooks/hook.sh" in cmd or " -S -I " in cmd
    for key, value in EXISTING[agent].items():  # other keys and hooks untouched
        if key != "hooks":
            assert data[key] == value
    for event, groups in EXISTING[agent]["hooks"].items():
        for g in groups:
            assert g in data["hooks"][event]
    first = path.read_text()
    ledger(db, "--tenant", "acme", "--project", "web", "agent", "install", agent, "--root", str(ws), env=env)
    assert path.read_text() == first
    if agent == "codex":
        cfg = (tmp_path / "codex-home" / "config.toml").read_text()
        assert f'[projects."{ws}"]\ntrust_level = "trusted"' in cfg
        assert "Codex not found on PATH" in p.stdout
    if agent == "gemini":
        assert "GEMINI_CLI_TRUST_WORKSPACE=true" in p.stdout
    status = json.loads(ledger(db, "agent", "status", "--root", str(ws), "--json", env=env).stdout)
    assert [(i["agent"], i["project"], i["tenant"], i["present"]) for i in status["installed"]] == [
        (CANON[agent], "web", "acme", True)]
    ledger(db, "agent", "uninstall", agent, "--root", str(ws), env=env)
    assert json.loads(path.read_text()) == EXISTING[agent]
    if agent == "codex":
        assert "trust_level" not in (tmp_path / "codex-home" / "config.toml").read_text()
    assert json.loads(ledger(db, "agent", "status", "--root", str(ws), "--json", env=env).stdout)["installed"] == []


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini", "cursor"])
def test_uninstall_removes_files_and_directories_install_created(agent, tmp_path):
    ws, db = _repo(tmp_path), tmp_path / "ledger.db"
    env = {"CODEX_HOME": str(tmp_path / "codex-home"), "PATH": "/usr/bin:/bin",
           "CLAUDE_CONFIG_DIR": str(tmp_path / "claude-config")}
    ledger(db, "agent", "install", agent, "--root", str(ws), "--otel", env=env)
    assert (ws / FILES[agent]).exists()
    ledger(db, "agent", "uninstall", agent, "--root", str(ws), env=env)
    assert sorted(p.name for p in ws.iterdir()) == [".git"]


def test_claude_http_hooks_and_otel_env(tmp_path):
    ws, db = _repo(tmp_path), tmp_path / "ledger.db"
    cfg_dir = tmp_path / "claude-config"
    cfg_dir.mkdir()
    user = cfg_dir / "settings.json"
    user.write_text(json.dumps({"env": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.internal:4318"}}))
    env = {"CLAUDE_CONFIG_DIR": str(cfg_dir)}
    ledger(db, "--project", "web", "agent", "install", "claude", "--root", str(ws), "--http", "--otel", env=env)
    data = json.loads((ws / ".claude" / "settings.json").read_text())
    start = data["hooks"]["SessionStart"][0]["hooks"][0]
    assert start["type"] == "command"  # Claude Code sends no HTTP hook for SessionStart
    post = data["hooks"]["PostToolUse"][0]["hooks"][0]
    assert post["type"] == "http" and post["url"].startswith("http://127.0.0.1:4318/hook/claude-code?project=web")
    token = (Path(str(db) + ".hooks") / "token").read_text()
    assert post["headers"] == {"X-Ledger-Token": token}
    # telemetry env goes to the USER settings (Claude Code ignores the project's for OTel)
    udata = json.loads(user.read_text())
    assert udata["env"]["CLAUDE_CODE_ENABLE_TELEMETRY"] == "1"
    assert udata["env"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector.internal:4318"  # the user's stays
    ledger(db, "agent", "uninstall", "claude", "--root", str(ws), env=env)
    assert json.loads(user.read_text()) == {"env": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.internal:4318"}}
    assert not (ws / ".claude").exists()


def test_codex_user_level_hooks(tmp_path):
    ws, db = _repo(tmp_path), tmp_path / "ledger.db"
    home = tmp_path / "codex-home"
    env = {"CODEX_HOME": str(home), "PATH": "/usr/bin:/bin"}
    ledger(db, "agent", "install", "codex", "--root", str(ws), "--user", env=env)
    assert (home / "hooks.json").exists() and not (ws / ".codex").exists()
    ledger(db, "agent", "uninstall", "codex", "--root", str(ws), "--user", env=env)
    assert not (home / "hooks.json").exists()


def test_git_hook_appends_to_an_existing_post_commit(tmp_path):
    ws, db = _repo(tmp_path), tmp_path / "ledger.db"
    hook = ws / ".git" / "hooks" / "post-commit"
    hook.write_text("#!/bin/sh\necho existing\n")
    hook.chmod(0o755)
    ledger(db, "agent", "install", "git", "--root", str(ws))
    ledger(db, "agent", "install", "git", "--root", str(ws))
    text = hook.read_text()
    assert text.startswith("#!/bin/sh\necho existing\n") and text.count("context-ledger >>>") == 1
    ledger(db, "agent", "uninstall", "git", "--root", str(ws))
    assert hook.read_text() == "#!/bin/sh\necho existing\n"


def test_status_reports_hook_failures(tmp_path):
    ws, db = _repo(tmp_path), tmp_path / "ledger.db"
    ledger(db, "agent", "install", "codex", "--root", str(ws), env={"CODEX_HOME": str(tmp_path / "ch"), "PATH": "/usr/bin:/bin"})
    hdir = Path(str(db) + ".hooks")
    (hdir / "failures.jsonl").write_text(json.dumps({"time_ns": 1, "agent": "codex", "event": "Stop",
                                                     "stage": "collector", "error": "boom"}) + "\n")
    out = ledger(db, "agent", "status", "--root", str(ws)).stdout
    assert "hook failures: 1" in out and "boom" in out and "codex" in out
