#!/usr/bin/env python3
"""Install the pinned agent CLIs into tests/agents/node_modules (idempotent, fast when done).

`npm ci --ignore-scripts` installs exactly what package-lock.json pins, including the
native platform packages (@anthropic-ai/claude-code-linux-x64, @openai/codex-linux-x64).
Install scripts are not needed: runner.py starts Claude Code's platform binary itself
(the postinstall would only copy it over bin/claude.exe), and Gemini CLI falls back from
the node-pty builds. A stamp (sha256 of package.json + package-lock.json + node
version) in node_modules/.harness-stamp makes a second call return at once.

Usage: `python3 tests/agents/install.py` (exit 0 when installed), or `ensure_installed()`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAMP = HERE / "node_modules" / ".harness-stamp"
#: files that must exist after a good install (relative to tests/agents)
REQUIRED = (
    "node_modules/@anthropic-ai/claude-code-linux-x64/claude",
    "node_modules/@openai/codex/bin/codex.js",
    "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex",
    "node_modules/@google/gemini-cli/bundle/gemini.js",
)


def _stamp_value() -> str:
    h = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        h.update((HERE / name).read_bytes())
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    h.update(node.encode())
    return h.hexdigest()


def is_installed() -> bool:
    return (STAMP.exists() and STAMP.read_text().strip() == _stamp_value()
            and all((HERE / r).exists() for r in REQUIRED))


def ensure_installed(*, quiet: bool = False) -> None:
    """Run `npm ci` unless the stamp says the lock file is already installed.

    Raises RuntimeError (with npm's output) when npm or node is missing or npm fails."""
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            raise RuntimeError(f"the agent harness needs `{tool}` (Node.js >= 20) on PATH")
    if is_installed():
        return
    cmd = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    p = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed in {HERE} (exit {p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    missing = [r for r in REQUIRED if not (HERE / r).exists()]
    if missing:
        raise RuntimeError(f"npm ci finished but these files are missing (wrong platform?): {missing}")
    STAMP.write_text(_stamp_value() + "\n")
    if not quiet:
        print(f"installed agent CLIs into {HERE / 'node_modules'}")


if __name__ == "__main__":
    try:
        ensure_installed()
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
