"""Baselines for the SDK on an existing repository: the state a path had before the
first change the ledger hears of.

An agent recording with the SDK in a repository that was never imported changes files
the ledger has no state for. Recording such a change as a ``create`` (or refusing its
delete) would make replay disagree with the repository. So, before the first change of a
path the ledger does not know, its previous state is taken from git's ``HEAD`` (a
tracked file: the committed bytes and mode) or, for an untracked file, from the work
tree when it still holds something other than the new content, and recorded first as a
baseline change (agent ``ledger-baseline``, caused by a decision saying so). Replay then
reproduces both the baseline and the change.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

__all__ = ["BASELINE_AGENT", "baseline_state"]

#: The agent baseline changes are recorded as.
BASELINE_AGENT = "ledger-baseline"
_GIT_MODES = {"100644": "regular", "100755": "executable", "120000": "symlink"}


def _git_head(root: Path, path: str) -> tuple[bytes, str] | None:
    env = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
    try:
        listed = subprocess.run(["git", "-C", str(root), "ls-tree", "-z", "HEAD", "--", path],
                                capture_output=True, timeout=30, env=env)
        if listed.returncode != 0 or not listed.stdout:
            return None
        meta, _, _ = listed.stdout.rstrip(b"\0").partition(b"\t")
        mode, kind, sha = meta.decode("ascii").split()
        if kind != "blob" or mode not in _GIT_MODES:
            return None
        blob = subprocess.run(["git", "-C", str(root), "cat-file", "blob", sha],
                              capture_output=True, timeout=60, env=env)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return (blob.stdout, _GIT_MODES[mode]) if blob.returncode == 0 else None


def _work_tree(root: Path, path: str) -> tuple[bytes, str] | None:
    full = root / path
    try:
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            return os.fsencode(os.readlink(full)), "symlink"
        if not stat.S_ISREG(st.st_mode):
            return None
        return full.read_bytes(), "executable" if st.st_mode & stat.S_IXUSR else "regular"
    except OSError:
        return None


def baseline_state(root: str | os.PathLike, path: str, new_bytes: bytes | None) -> tuple[bytes, str] | None:
    """``(content, mode)`` the path had before a change to ``new_bytes`` (None: a
    delete) that the ledger has no state for: git ``HEAD``'s, else the work tree's when it
    differs from ``new_bytes``; None when the path is new."""
    root = Path(root)
    found = _git_head(root, path)
    if found is not None:
        return found
    found = _work_tree(root, path)
    if found is not None and found[0] != new_bytes:
        return found
    return None
