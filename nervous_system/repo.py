"""The repository a command stands in: its root and identity, for the project registry
(``ledger.registry``): ``ledger import git``, ``ledger exec`` and ``ledger agent install``
record the root so that any later command run inside the repository picks its project."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def _git(cwd: str | os.PathLike, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", os.fspath(cwd), *args], capture_output=True, text=True,
                              timeout=30, env={**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def repository_root(path: str | os.PathLike) -> Path | None:
    """The top-level directory of the git work tree containing ``path`` (absolute, real
    path: ``worktree.find_root``, no process started), or None outside git."""
    from nervous_system.worktree import find_root
    from nervous_system.worktree.listing import git_dir_of

    root = find_root(os.path.realpath(path))
    return root if git_dir_of(root) else None


def repository_identity(root: str | os.PathLike) -> str | None:
    """``git:<root commit>`` — the first commit of the repository's history (the oldest
    root commit when there are several), the same on every clone — or None for a
    repository without commits."""
    roots = _git(root, "rev-list", "--max-parents=0", "HEAD")
    return f"git:{sorted(roots.split())[0]}" if roots else None
