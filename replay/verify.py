"""Checking a replayed tree against the truth: snapshots of directory trees and
``git archive`` extraction. Used by ``ledger demo`` and the tests.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

#: ``{relative path bytes: ("file", content, executable) | ("link", target bytes)}``
Snapshot = dict[bytes, tuple]


def snapshot(root: str | os.PathLike) -> Snapshot:
    """Every regular file and symlink under ``root`` (empty directories are ignored,
    as git does not track them). Symlinks are read, never followed."""
    out: Snapshot = {}
    base = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, base)
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(full))
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as fh:
                    out[rel] = ("file", fh.read(), bool(st.st_mode & 0o100))
    return out


def compare_snapshots(actual: Snapshot, expected: Snapshot, limit: int = 10) -> list[str]:
    """Human-readable differences (at most ``limit`` of each kind); empty when equal."""
    problems = []
    for path in sorted(set(expected) - set(actual))[:limit]:
        problems.append(f"missing {os.fsdecode(path)}")
    for path in sorted(set(actual) - set(expected))[:limit]:
        problems.append(f"unexpected {os.fsdecode(path)}")
    differ = sorted(p for p in set(actual) & set(expected) if actual[p] != expected[p])
    for path in differ[:limit]:
        a, e = actual[path], expected[path]
        if a[0] != e[0]:
            what = f"is a {a[0]}, expected a {e[0]}"
        elif a[0] == "link":
            what = f"points to {a[1]!r}, expected {e[1]!r}"
        elif a[1] != e[1]:
            what = f"content differs ({len(a[1])} bytes, expected {len(e[1])})"
        else:
            what = "executable bit differs"
        problems.append(f"{os.fsdecode(path)} {what}")
    return problems


def compare_trees(actual: str | os.PathLike, expected: str | os.PathLike) -> list[str]:
    """``compare_snapshots`` of two directories: bytes, executable bits, symlink targets."""
    return compare_snapshots(snapshot(actual), snapshot(expected))


def git_archive_to(repo: str | os.PathLike, commit: str, dest: str | os.PathLike) -> Path:
    """Extract ``git archive <commit>`` of ``repo`` into ``dest`` (created); returns it.

    Raises ``subprocess.CalledProcessError`` if git or tar fails.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=False)
    archive = subprocess.Popen(
        ["git", "-C", os.fspath(repo), "archive", "--format=tar", commit], stdout=subprocess.PIPE
    )
    try:
        subprocess.run(["tar", "-x", "-C", os.fspath(dest)], stdin=archive.stdout, check=True)
    finally:
        archive.stdout.close()
        code = archive.wait()
    if code != 0:
        raise subprocess.CalledProcessError(code, ["git", "archive", commit])
    return dest
