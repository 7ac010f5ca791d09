"""Shared helpers of the analytics tests: crafted histories and ClickHouse look-ups."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ingest.client import connect

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in ns
SEC = 1_000_000_000


class Clock:
    """A settable clock for Recorder (int ns); ``tick(s)`` advances it."""

    def __init__(self, start: int = T0):
        self.now = start

    def __call__(self) -> int:
        return self.now

    def tick(self, seconds: float = 1.0) -> int:
        self.now += int(seconds * SEC)
        return self.now


def analytics_url(data_dir: Path) -> str:
    return f"chdb://{(data_dir / 'analytics').resolve()}"


def ch_rows(url: str, sql: str, params: dict | None = None) -> list[tuple]:
    with connect(url) as ch:
        return [tuple(r) for r in ch.query(sql, params).result_rows]


def make_git_repo(path: Path, commits: int, files: int = 40) -> None:
    """A git repository with ``commits`` commits, built in one ``git fast-import``:
    each commit modifies 1-2 files; every 50th deletes one; every 70th renames one."""
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    lines: list[str] = []
    existing: list[str] = []
    t = 1_700_000_000
    for i in range(1, commits + 1):
        msg = f"commit {i}\n"
        author = ["alice <alice@example.com>", "bob <bob@example.com>", "carol <carol@example.com>"][i % 3]
        lines.append("commit refs/heads/main")
        lines.append(f"author {author} {t + i * 60} +0000")
        lines.append(f"committer {author} {t + i * 60} +0000")
        lines.append(f"data {len(msg.encode())}")
        lines.append(msg.rstrip("\n"))
        ops = []
        name = f"src/file{i % files}.txt"
        body = f"version {i} of {name}\n" + "line\n" * (i % 7)
        ops.append(("M", name, body))
        if name not in existing:
            existing.append(name)
        if i % 50 == 0 and len(existing) > 3:
            victim = existing.pop(0)
            ops.append(("D", victim, None))
        if i % 70 == 0 and len(existing) > 3:
            src = existing.pop(1)
            dst = f"moved/{src.split('/')[-1]}"
            ops.append(("R", src, dst))
            existing.append(dst)
        for op, a, b in ops:
            if op == "M":
                data = b.encode()
                lines.append(f"M 100644 inline {a}")
                lines.append(f"data {len(data)}")
                lines.append(b.rstrip("\n"))
            elif op == "D":
                lines.append(f"D {a}")
            else:
                lines.append(f"R {a} {b}")
        lines.append("")
    stream = "\n".join(lines) + "\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input=stream.encode(), check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=path, check=True)


def kill_rounds(start, url: str, n: int, rng, max_delay_s: float) -> int:
    """Start an ingestor with ``start(batch_size) -> Popen``, SIGKILL it after a random
    delay, restart; up to 7 rounds or until all ``n`` events are in ClickHouse. Asserts no
    duplicates after each round; returns how many kills landed mid-ingest (some but not
    all events in ClickHouse)."""
    import signal
    import time

    partial_kills = 0
    for round_ in range(7):
        # batch sizes change between runs too: the restart must not rely on identical batches
        proc = start(rng.choice([40, 75, 120]))
        time.sleep(rng.uniform(0.1, max_delay_s))
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
        if not killed:
            assert proc.returncode == 0, err.decode()
        count, uniq = ch_rows(url, "SELECT count(), uniqExact(event_id) FROM analytics.swarm_events")[0]
        assert count == uniq, f"duplicates after round {round_}"
        if killed and 0 < count < n:
            partial_kills += 1
        if count == n:
            break
    return partial_kills


#: Python source for ``python -c``: the process SIGKILLs itself right after its third data
#: INSERT returned and before that batch's checkpoint row is written (the window where a
#: naive ingestor would duplicate), then runs the ledger CLI with ``sys.argv[1:]``.
DIE_BEFORE_THIRD_CHECKPOINT = (
    "import os, signal, sys\n"
    "from ingest.client import Analytics\n"
    "real = Analytics.insert\n"
    "state = {'data': 0}\n"
    "def insert(self, table, rows, column_names, settings=None, what='insert'):\n"
    "    if table == 'ingest_checkpoints' and state['data'] == 3:\n"
    "        os.kill(os.getpid(), signal.SIGKILL)\n"
    "    real(self, table, rows, column_names, settings, what)\n"
    "    if table == 'swarm_events':\n"
    "        state['data'] += 1\n"
    "Analytics.insert = insert\n"
    "from cli import cli\n"
    "cli(sys.argv[1:])\n"
)
