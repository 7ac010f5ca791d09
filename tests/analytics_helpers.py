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


#: The ingestor's crash points (``ledger.faults``), in the order one batch passes them.
INGEST_CRASH_POINTS = ("ingest.after_insert", "ingest.before_checkpoint", "ingest.after_checkpoint")


def crash_env(spec: str) -> dict[str, str]:
    """This process's environment plus ``LEDGER_CRASH_AT=spec`` (a process started with it
    SIGKILLs itself at that named point: ``ledger.faults``)."""
    import os

    return {**os.environ, "LEDGER_CRASH_AT": spec}


def kill_rounds(start, url: str, n: int, rng) -> int:
    """Crash-and-restart rounds: each round starts an ingestor with ``start(batch_size, env)
    -> Popen`` armed to SIGKILL itself at a crash point and pass drawn from ``rng`` (1st-3rd
    pass of one of ``INGEST_CRASH_POINTS``), so where it dies depends on the seed, never on
    the machine's speed. Up to 7 rounds or until all ``n`` events are in ClickHouse. Asserts
    after each round that a run either died by SIGKILL or finished cleanly, and that
    ClickHouse holds no duplicate; returns how many kills left some but not all events."""
    import signal

    partial_kills = 0
    for round_ in range(7):
        point = f"{rng.choice(INGEST_CRASH_POINTS)}:{rng.randint(1, 3)}"
        # batch sizes change between runs too: the restart must not rely on identical batches
        proc = start(rng.choice([40, 75, 120]), crash_env(point))
        _out, err = proc.communicate(timeout=300)
        killed = proc.returncode == -signal.SIGKILL
        assert killed or proc.returncode == 0, f"round {round_} ({point}): {err.decode()}"
        count, uniq = ch_rows(url, "SELECT count(), uniqExact(event_id) FROM analytics.swarm_events")[0]
        assert count == uniq, f"duplicates after round {round_} ({point})"
        if killed and 0 < count < n:
            partial_kills += 1
        if count == n:
            break
    return partial_kills


#: Where ``ledger ingest`` dies in the deterministic variants: right after its third data
#: INSERT returned and before that batch's checkpoint row is written (the window where a
#: naive ingestor would duplicate).
DIE_BEFORE_THIRD_CHECKPOINT = "ingest.before_checkpoint:3"
