"""Benchmark: work-tree snapshots for ``ledger exec`` and the agent hooks.

One command::

    python benchmarks/bench_worktree.py              # 5,000 files, 40 incremental rounds
    python benchmarks/bench_worktree.py --files 20000 --rounds 20

Builds a git repository of ``--files`` committed files (plus an ignored ``.venv`` of
3,000 files), then measures, in this process:

* cold snapshot: no stat cache (every file hashed), as on a first ``ledger exec``;
* incremental snapshot + diff: one file changed between rounds; the stat cache is
  loaded from disk, the snapshot taken and saved, and diffed against the cached one,
  exactly what a hook does after a tool call;
* the same round in a fresh Python process (start-up + imports + round): the hook's
  own cost without the ledger write;
* ``git status --porcelain`` on the same tree, the baseline: ratios are printed
  against it (median and p95 of each).

Wall times on a busy machine mostly measure the neighbours: the CPU time (this process
and its git children, ``getrusage``) is printed beside each, and its ratio too.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nervous_system.worktree import StatCache, cache_path, cached_entries, diff, snapshot  # noqa: E402

ROUND = """
import sys
sys.path.insert(0, {root!r})
from nervous_system.worktree import StatCache, cached_entries, diff, snapshot
cache = StatCache.load({cache!r}, {work!r})
before = cached_entries(cache)
changes = diff(before, snapshot({work!r}, cache=cache).entries)
assert changes, "no change seen"
"""


def build(work: Path, files: int) -> None:
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    for i in range(files):
        path = work / f"pkg{i % 40}" / f"mod{i % 13}" / f"file_{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"line {j} of file {i}\n" for j in range(20 + i % 80)))
    for i in range(3000):
        path = work / ".venv" / "lib" / f"p{i % 30}" / f"m{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")
    (work / ".gitignore").write_text(".venv/\n")
    subprocess.run(["git", "-C", str(work), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(work), "-c", "user.name=b", "-c", "user.email=b@e", "commit", "-qm", "x"],
                   check=True)
    past = time.time_ns() - 60 * 1_000_000_000  # files older than the snapshots (not racily clean)
    for dirpath, _, names in os.walk(work):
        if "/.git" not in dirpath:
            for name in names:
                os.utime(os.path.join(dirpath, name), ns=(past, past))


def cpu() -> float:
    """CPU seconds of this process and its finished children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Timer:
    """Wall and CPU time of a block, appended to ``wall``/``cpu`` lists."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def __enter__(self) -> "Timer":
        self._w, self._c = time.perf_counter(), cpu()
        return self

    def __exit__(self, *exc) -> None:
        self.wall.append(time.perf_counter() - self._w)
        self.cpu.append(cpu() - self._c)


def stats(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-worktree-"))
    try:
        work = tmp / "work"
        build(work, args.files)
        cache_file = cache_path(tmp / "ledger.db", work)

        cold = Timer()
        for _ in range(5):
            with cold:
                snap = snapshot(work)
        snapshot(work, cache=StatCache.load(cache_file, work))  # the first cached snapshot
        time.sleep(1.1)  # past the racily-clean second of that snapshot

        target = work / "pkg3" / "mod3" / "file_3.py"
        incremental, fresh, status = Timer(), Timer(), Timer()
        for n in range(args.rounds):
            target.write_text(f"round {n}\n")
            with incremental:
                cache = StatCache.load(cache_file, work)
                changes = diff(cached_entries(cache), snapshot(work, cache=cache).entries)
            assert [c.path for c in changes] == ["pkg3/mod3/file_3.py"], changes
            with status:
                subprocess.run(["git", "-C", str(work), "status", "--porcelain"], check=True, capture_output=True)
        for n in range(min(args.rounds, 15)):
            target.write_text(f"fresh round {n}\n")
            code = ROUND.format(root=str(ROOT), cache=str(cache_file), work=str(work))
            with fresh:
                subprocess.run([sys.executable, "-c", code], check=True)

        print(f"work tree: {len(snap.entries):,} files recorded ({args.files:,} tracked + .gitignore; "
              "3,000 ignored in .venv not read)")
        base = {kind: stats(getattr(status, kind)) for kind in ("wall", "cpu")}
        for label, timer in (("git status --porcelain", status), ("cold snapshot (no cache)", cold),
                             ("incremental snapshot + diff", incremental),
                             ("fresh process: import + round", fresh)):
            line = f"{label + ':':31s}"
            for kind in ("wall", "cpu"):
                med, p95 = stats(getattr(timer, kind))
                line += (f"  {kind} median {med * 1000:6.1f} ms p95 {p95 * 1000:6.1f} ms"
                         f" ({med / base[kind][0]:4.1f}x / {p95 / base[kind][1]:4.1f}x)")
            print(line)
        print("(ratios: median / p95 against git status --porcelain of the same tree, same run)")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
