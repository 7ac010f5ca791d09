"""Test support: run the hook command `ledger agent install` wrote, as the agent would."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

CONFIG = {"claude-code": ".claude/settings.json", "codex": ".codex/hooks.json", "gemini": ".gemini/settings.json",
          "cursor": ".cursor/hooks.json"}


def installed_command(root: Path, agent: str, event: str) -> str:
    data = json.loads((root / CONFIG[agent]).read_text())
    groups = data["hooks"][event]
    if agent == "cursor":
        return next(h["command"] for h in groups if "hooks/hook" in h.get("command", ""))
    return next(h["command"] for g in groups for h in g["hooks"] if "hooks/hook" in h.get("command", ""))


def fire(root: Path, agent: str, payload: dict, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the installed command for payload's hook_event_name through a shell, stdin = payload."""
    cmd = installed_command(root, agent, payload["hook_event_name"])
    p = subprocess.run(["sh", "-c", cmd], input=json.dumps(payload).encode(), capture_output=True, cwd=root,
                       env={**os.environ, **(env or {})}, timeout=120)
    assert (p.returncode, p.stdout) == (0, b""), (p.returncode, p.stdout, p.stderr)
    return p
