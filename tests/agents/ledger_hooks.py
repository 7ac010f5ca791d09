"""Test support: install the REAL ledger hooks (`ledger agent install`) into an agent run
of the harness, snapshot the tree at every tool-call boundary, compare trees."""

from __future__ import annotations

import json
import os
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LEDGER = str(Path(sys.executable).parent / "ledger")
WRAPPER = HERE / "tree_snapshot_hook.py"
HARNESS_AGENT = {"claude": "claude-code", "codex": "codex", "gemini": "gemini"}
CONFIG = {"claude": ".claude/settings.json", "codex": ".codex/hooks.json", "gemini": ".gemini/settings.json"}


def ledger(db: Path, *args: str, env: dict | None = None, check: bool = True, **kw) -> subprocess.CompletedProcess:
    p = subprocess.run([LEDGER, "--db", str(db), *args], capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, timeout=300, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"ledger {' '.join(args)} failed ({p.returncode}): {p.stderr[-3000:]}")
    return p


def make_writer(db: Path, snapdir: Path | None, *, tenant: str = "default", project: str = "ws",
                install_args: tuple[str, ...] = ()):
    """A runner `hooks_config_writer` that runs `ledger agent install` (no Codex trust:
    that must run inside the namespace) and wraps our hook commands with the tree
    snapshot wrapper when `snapdir` is given."""

    def writer(agent: str, workspace: Path, home: Path, hooks_log: Path) -> list[Path]:
        env = {"HOME": str(home), "CODEX_HOME": str(home / ".codex"), "CLAUDE_CONFIG_DIR": str(home / ".claude")}
        ledger(db, "--tenant", tenant, "--project", project, "agent", "install", HARNESS_AGENT[agent],
               "--root", str(workspace), "--no-trust", *install_args, env=env)
        if snapdir is not None:
            path = workspace / CONFIG[agent]
            data = json.loads(path.read_text())
            for groups in data["hooks"].values():
                for group in groups:
                    for h in group["hooks"]:
                        if "nervous_system/hooks/hook" in h.get("command", ""):
                            h["command"] = shlex.join([sys.executable, str(WRAPPER), str(snapdir), "--"]) + " " + h["command"]
            path.write_text(json.dumps(data, indent=2))
        return []

    return writer


def codex_trust_command(workspace: Path) -> list[str]:
    """Runs install's own Codex trust step (codex app-server) inside the namespace."""
    codex_js = HERE / "node_modules" / "@openai" / "codex" / "bin" / "codex.js"
    code = ("import sys; from pathlib import Path; from nervous_system.hooks.install import trust_codex_hooks; "
            f"n = trust_codex_hooks(['node', {str(codex_js)!r}], Path({str(workspace)!r})); print(n); "
            "sys.exit(0 if n else 1)")
    return [sys.executable, "-c", code]


def stop_collector(db: Path, timeout: float = 20) -> None:
    """Stop the collector the hooks started (SIGTERM to the pid in its port file)."""
    info = Path(str(db) + ".hooks") / "collector.json"
    try:
        pid = json.loads(info.read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def failures(db: Path) -> list[dict]:
    path = Path(str(db) + ".hooks") / "failures.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def tree(root: Path, git_dir: Path | None = None) -> dict[str, tuple[str, bytes]]:
    """{path: (mode, bytes)} of the files git would see (tracked and untracked, not
    ignored; `git_dir` lets a copy without .git use the original's index and ignores);
    without git, every file but .git/."""
    root = Path(root)
    gd = git_dir or (root / ".git")
    if gd.exists():
        out = subprocess.run(["git", f"--git-dir={gd}", f"--work-tree={root}", "ls-files", "-z", "-co",
                              "--exclude-standard"], capture_output=True, check=True, cwd=root).stdout
        paths = sorted({p.decode() for p in out.split(b"\0") if p})
    else:
        paths = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                       if (p.is_file() or p.is_symlink()) and ".git" not in p.relative_to(root).parts)
    result = {}
    for rel in paths:
        full = root / rel
        if not os.path.lexists(full):
            continue
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            result[rel] = ("symlink", os.readlink(full).encode())
        elif stat.S_ISREG(st.st_mode):
            result[rel] = ("executable" if st.st_mode & stat.S_IXUSR else "regular", full.read_bytes())
    return result


def replay_tree(db: Path, when: str, out: Path, *, tenant: str = "default", project: str = "ws",
                strict: bool = False) -> dict[str, tuple[str, bytes]]:
    args = ["--tenant", tenant, "--project", project, "replay", "--at", when, "--out", str(out), "--force"]
    ledger(db, *args, *(["--strict"] if strict else []))
    return tree(out, git_dir=Path("/nonexistent"))
