"""Test support: long git histories built in seconds with ``git fast-import``.

``fast_history(path, commits, seed)`` makes a deterministic first-parent history: a
few new files now and then, 1-3 small edits of existing files per commit (so versions
of a path become delta chains), and now and then a delete, a rename, an executable-bit
flip or a symlink. Returns the commit ids, oldest first.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

BASE = 1_704_067_200


def _data(payload: bytes) -> bytes:
    return b"data %d\n" % len(payload) + payload + b"\n"


def fast_history(path: Path, commits: int, *, seed: int = 1, files: int = 300) -> list[str]:
    rng = random.Random(seed)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    live: dict[str, str] = {}  # path -> "100644" | "100755" | "120000"
    text: dict[str, list[bytes]] = {}
    out = []
    for n in range(commits):
        ops = []
        creates = 5 if n == 0 else (1 if len(live) < files and rng.random() < 0.15 else 0)
        for _ in range(creates):
            name = f"d{rng.randrange(12)}/s{rng.randrange(4)}/f{n}_{rng.randrange(10**6)}.txt"
            if live and rng.random() < 0.03:
                ops.append(b"M 120000 inline %s\n" % name.encode() + _data(b"../" + rng.choice(sorted(live)).encode()))
                live[name] = "120000"
                continue
            text[name] = [b"line %d of %s\n" % (i, name.encode()) for i in range(rng.randrange(5, 60))]
            live[name] = "100644"
            ops.append(b"M 100644 inline %s\n" % name.encode() + _data(b"".join(text[name])))
        regular = sorted(p for p, m in live.items() if m != "120000")
        if n and regular:
            for name in rng.sample(regular, min(len(regular), rng.randint(1, 3))):
                lines = text[name]
                at = rng.randrange(len(lines) + 1)
                lines.insert(at, b"commit %d edits here %d\n" % (n, rng.randrange(1000)))
                if len(lines) > 80:
                    del lines[rng.randrange(len(lines))]
                ops.append(b"M %s inline %s\n" % (live[name].encode(), name.encode()) + _data(b"".join(lines)))
            roll = rng.random()
            victim = rng.choice(regular)
            if roll < 0.01 and len(live) > 10:
                ops.append(b"D %s\n" % victim.encode())
                del live[victim]
            elif roll < 0.02:
                new = f"moved/{n}/{victim.rsplit('/', 1)[1]}"
                ops.append(b"R %s %s\n" % (victim.encode(), new.encode()))
                live[new], text[new] = live.pop(victim), text.pop(victim)
            elif roll < 0.03:
                live[victim] = "100755" if live[victim] == "100644" else "100644"
                ops.append(b"M %s inline %s\n" % (live[victim].encode(), victim.encode())
                           + _data(b"".join(text[victim])))
        if not ops:
            continue
        t = BASE + 60 * n
        out.append(b"commit refs/heads/main\nmark :%d\n" % (n + 1)
                   + b"author A <a@example.com> %d +0000\ncommitter A <a@example.com> %d +0000\n" % (t, t)
                   + _data(b"commit %d" % n) + b"".join(ops) + b"\n")
    subprocess.run(["git", "-C", str(path), "fast-import", "--quiet"], input=b"".join(out), check=True)
    return subprocess.run(["git", "-C", str(path), "rev-list", "--first-parent", "--reverse", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.split()
