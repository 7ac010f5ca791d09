"""Benchmark: import a generated git history, replay it at HEAD, compare with git.

One command::

    python benchmarks/bench_import_replay.py              # 5,000 commits over 2,000 files
    python benchmarks/bench_import_replay.py --quick      # 500 commits over 300 files
    python benchmarks/bench_import_replay.py --commits 2000 --files 1000
    python benchmarks/bench_import_replay.py --repo ~/src/click   # a real repository

It builds a deterministic history with ``git fast-import`` (creates, modifications,
deletes, renames, executable-bit flips, symlinks), imports it with
``nervous_system.gitimport.import_git``, replays HEAD with ``replay.replay_local`` and with the
``ledger replay`` CLI, checks the replay equals ``git archive HEAD | tar -x`` byte for
byte and mode for mode, and prints, from the same run: import events/s and the
ratio of import time to ``git fast-export HEAD > /dev/null`` of the same repository
(best of 3), replay time and the ratio of replay time to ``git archive HEAD | tar -x``
of the same tree (the best of 3 runs of each). ``--repo`` benchmarks a copy
(``git clone --no-local``) of a real repository instead of the generated history.
Replayed and extracted trees go to ``/dev/shm`` when it exists (``--trees-dir``): both
sides write the same files, and on the build machine a disk's write-back stalls made
single runs of either side vary 2-5x. The ledger and the repository stay on disk.
Exactness is checked byte for byte and mode for mode, apart from the files a replay
reports as not restored (secret files, which the default pipeline stores by hash only).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._bytecode import compile_project  # noqa: E402
from ledger import Ledger  # noqa: E402
from nervous_system.gitimport import import_git  # noqa: E402
from replay import resolve_moment  # noqa: E402
from replay import replay_local  # noqa: E402
from replay.snapshots import refresh  # noqa: E402

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
         "sigma tau upsilon phi chi psi omega ledger replay event stream commit").split()


def _line(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 10))) + "\n"


def _content(rng: random.Random) -> list[str]:
    return [_line(rng) for _ in range(rng.randint(5, 200))]


def _edit(rng: random.Random, lines: list[str]) -> list[str]:
    """A typical commit's edit: a few lines replaced, inserted or removed."""
    lines = list(lines)
    for _ in range(rng.randint(1, 5)):
        at = rng.randint(0, len(lines))
        roll = rng.random()
        if roll < 0.4 and at < len(lines):
            lines[at] = _line(rng)
        elif roll < 0.8 or len(lines) < 3:
            lines.insert(at, _line(rng))
        elif at < len(lines):
            del lines[at]
    return lines


def build_history(repo: Path, commits: int, files: int, seed: int = 7) -> None:
    """A deterministic history of ``commits`` commits growing to about ``files`` paths."""
    rng = random.Random(seed)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    live: dict[str, str] = {}  # path -> "644" | "755" | "link"
    text: dict[str, list[str]] = {}  # path -> current lines
    out: list[bytes] = []
    mark = 0
    t = 1_600_000_000
    initial = max(1, files // 10)
    create_p = (files - initial) / max(1, commits - 1)
    for n in range(commits):
        t += rng.randint(30, 600)
        ops: list[bytes] = []
        targets = initial if n == 0 else 0
        if n:
            whole, frac = divmod(create_p * 1.03, 1)
            targets = int(whole) + (rng.random() < frac)
        for _ in range(targets):
            d = f"pkg{rng.randint(0, 40)}/mod{rng.randint(0, 9)}"
            path = f"{d}/file_{len(live)}_{n}.py"
            if rng.random() < 0.01 and live:
                target = rng.choice(sorted(live))
                ops.append(f"M 120000 inline {path}\n".encode() + _data(os.path.relpath(target, d).encode()))
                live[path] = "link"
            else:
                mode = "755" if rng.random() < 0.05 else "644"
                text[path] = _content(rng)
                ops.append(f"M 100{mode} inline {path}\n".encode() + _data("".join(text[path]).encode()))
                live[path] = mode
        if n:
            regular = [p for p, m in live.items() if m != "link"]
            for path in rng.sample(regular, min(len(regular), rng.randint(1, 4))):
                text[path] = _edit(rng, text[path])
                ops.append(f"M 100{live[path]} inline {path}\n".encode() + _data("".join(text[path]).encode()))
            roll = rng.random()
            if roll < 0.03 and len(live) > 10:
                path = rng.choice(sorted(live))
                ops.append(f"D {path}\n".encode())
                del live[path]
            elif roll < 0.06 and regular:
                src = rng.choice(regular)
                if src in live and live[src] != "link":
                    dst = f"moved/{n}/{src.rsplit('/', 1)[1]}"
                    ops.append(f"R {src} {dst}\n".encode())
                    live[dst] = live.pop(src)
                    text[dst] = text.pop(src)
            elif roll < 0.08 and regular:
                path = rng.choice(regular)
                if path in live and live[path] != "link":
                    live[path] = "644" if live[path] == "755" else "755"
                    ops.append(f"M 100{live[path]} inline {path}\n".encode()
                               + _data("".join(text[path]).encode()))
        mark += 1
        msg = f"commit {n}: change {len(ops)} paths\n".encode()
        out.append(b"commit refs/heads/main\n" + f"mark :{mark}\n".encode()
                   + f"author Bench <bench@example.com> {t} +0000\n".encode()
                   + f"committer Bench <bench@example.com> {t} +0000\n".encode()
                   + _data(msg) + b"".join(ops) + b"\n")
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet"], input=b"".join(out), check=True)


def _data(payload: bytes) -> bytes:
    return f"data {len(payload)}\n".encode() + payload + b"\n"


def git_archive_extract(repo: Path, dest: Path, rev: str = "HEAD") -> float:
    dest.mkdir()
    start = time.perf_counter()
    archive = subprocess.Popen(["git", "-C", str(repo), "archive", "--format=tar", rev],
                               stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    archive.stdout.close()
    archive.wait()
    return time.perf_counter() - start


def git_fast_export(repo: Path) -> float:
    """Seconds of ``git fast-export HEAD > /dev/null`` (best of 3; every commit reachable
    from HEAD, the commits the import reads; other refs may be partial in a mirror)."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        with open(os.devnull, "wb") as null:
            subprocess.run(["git", "-C", str(repo), "fast-export", "--reencode=yes", "--signed-tags=strip", "HEAD"], stdout=null, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def head(repo: Path, rev: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", rev], capture_output=True, text=True,
                          check=True).stdout.strip()


def cli_replay_vs_git(db: Path, repo: Path, commit: str, base: Path) -> tuple[float, float, bool]:
    """Best of 3 of the whole ``ledger replay --at COMMIT`` process and of
    ``git archive COMMIT | tar -x``; and whether the trees are equal (see ``same_tree``)."""
    cli_times, git_times = [], []
    base.mkdir()
    for i in range(3):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", "from cli import cli; cli()", "--db", str(db), "--project",
                               "bench", "replay", "--at", commit, "--out", str(base / f"cli-{i}"), "--json"],
                              check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        cli_times.append(time.perf_counter() - start)
        withheld = [u["path"] for u in json.loads(done.stdout)["unrestored"]]
        dest = base / f"git-{i}"
        dest.mkdir()
        start = time.perf_counter()
        archive = subprocess.Popen(["git", "-C", str(repo), "archive", "--format=tar", commit], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
        archive.stdout.close()
        archive.wait()
        git_times.append(time.perf_counter() - start)
    return min(cli_times), min(git_times), same_tree(base / "cli-0", base / "git-0", withheld)


def ledger_sizes(lg: Ledger) -> dict:
    """Bytes of the ledger file (after a WAL checkpoint) and of what it holds."""
    conn = lg._conn()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    one = lambda sql: conn.execute(sql).fetchone()[0] or 0  # noqa: E731
    return {"file": lg.path.stat().st_size, "blobs": one("SELECT sum(length(data)) FROM blobs"),
            "n_blobs": one("SELECT count(*) FROM blobs"),
            "deltas": one("SELECT count(*) FROM blobs WHERE encoding = 'zstd-delta'"),
            "events": one("SELECT sum(body_bytes) FROM events"),
            "snapshots": one("SELECT sum(length(data)) FROM replay_snapshots")}


def git_pack_size(repo: Path, repack: bool = True) -> int:
    """Bytes of the repository's packs after ``git repack -adf`` (git's own compression
    of every object: default window 10, depth 50), or as they are."""
    if repack:
        subprocess.run(["git", "-C", str(repo), "repack", "-adfq"], check=True)
    pack_dir = repo / ".git" / "objects" / "pack"
    return sum(p.stat().st_size for p in pack_dir.glob("*.pack"))


def same_tree(replayed: Path, archive: Path, withheld: Sequence[str] = ()) -> bool:
    """The replayed tree equals ``git archive``'s byte for byte, mode for mode, apart from
    the ``withheld`` paths the replay reported as not restored (secret files whose content
    the default write pipeline never stores, ``ledger.secret_files``; printed by the caller)."""
    from replay.verify import snapshot

    expected = snapshot(archive)
    for path in withheld:
        expected.pop(os.fsencode(path), None)
    return snapshot(replayed) == expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=5000)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="500 commits over 300 files")
    parser.add_argument("--repo", type=Path, default=None,
                        help="benchmark a copy of this repository instead of a generated history")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--trees-dir", type=Path, default=None,
                        help="where replayed and extracted trees are written (default: a directory in /dev/shm "
                             "when it exists: both sides write the same files, and a disk's write-back stalls "
                             "made single runs vary 2-5x; the ledger and the repository stay on disk)")
    parser.add_argument("--pack-as-is", action="store_true",
                        help="compare with the clone's pack as fetched instead of running `git repack -adf` "
                             "(minutes on a large repository)")
    args = parser.parse_args()
    compile_project()  # as an installed copy has (see benchmarks/_bytecode.py)
    if args.quick:
        args.commits, args.files = 500, 300
    work = Path(tempfile.mkdtemp(prefix="bench-import-replay-"))
    trees_root = args.trees_dir or (Path("/dev/shm") if Path("/dev/shm").is_dir() else None)
    trees = Path(tempfile.mkdtemp(prefix="bench-trees-", dir=trees_root))
    try:
        repo = work / "repo"
        t0 = time.perf_counter()
        if args.repo is not None:
            subprocess.run(["git", "clone", "-q", "--no-local", str(args.repo), str(repo)], check=True)
        else:
            build_history(repo, args.commits, args.files)
        built = time.perf_counter() - t0
        tracked = int(subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", "HEAD"], capture_output=True,
                                     check=True).stdout.count(b"\n"))
        commits = int(subprocess.run(["git", "-C", str(repo), "rev-list", "--first-parent", "--count", "HEAD"],
                                     capture_output=True, check=True, text=True).stdout)
        print(f"replayed and extracted trees are written under {trees} (both sides alike)")
        print(f"history: {commits:,} first-parent commits, {tracked:,} files at HEAD "
              f"({'cloned' if args.repo else 'built'} in {built:.1f} s)")
        fast_export = git_fast_export(repo)

        db = work / "ledger.db"
        with Ledger(db) as lg:
            summary = import_git(lg, repo, project_id="bench")
            t_snap = time.perf_counter()
            made = refresh(lg, "default", "bench")
            snap_s = time.perf_counter() - t_snap
            rate = summary.events_added / summary.seconds
            print(f"import: {summary.events_added:,} events, {summary.new_content_bytes:,} bytes of content "
                  f"in {summary.seconds:.2f} s = {rate:,.0f} events/s ({summary.commits / summary.seconds:,.0f} commits/s)"
                  f" + {made} replay snapshots in {snap_s:.2f} s")
            print(f"git fast-export HEAD > /dev/null: {fast_export:.2f} s (best of 3); "
                  f"ratio import / fast-export: {summary.seconds / fast_export:.2f}x "
                  f"(with the snapshot pass: {(summary.seconds + snap_s) / fast_export:.2f}x)"
                  + (f" (attributes: {summary.attributes})" if summary.attributes != "none found" else ""))
            again = import_git(lg, repo, project_id="bench")
            print(f"re-import: {again.events_added} events added, {again.events_present:,} present, "
                  f"{again.seconds:.2f} s")
            moment = resolve_moment(lg, "default", "bench", head(repo, "HEAD"))
            replay_times, git_times = [], []
            for i in range(3):
                out = trees / f"replay-{i}"
                start = time.perf_counter()
                report = replay_local(lg, "default", "bench", moment, out)
                replay_times.append(time.perf_counter() - start)
                git_times.append(git_archive_extract(repo, trees / f"archive-{i}"))
            withheld = [u.path for u in report.unrestored]
            exact = same_tree(trees / "replay-0", trees / "archive-0", withheld)
            sizes = ledger_sizes(lg)
        best_replay, best_git = min(replay_times), min(git_times)
        print(f"replay at HEAD (library): {report.files:,} files + {report.symlinks} symlinks, {report.bytes:,} bytes "
              f"from {report.changes:,} changes in {best_replay:.3f} s (best of 3); "
              f"git archive HEAD | tar -x: {best_git:.3f} s; ratio {best_replay / best_git:.2f}x")
        if withheld:
            print(f"  not restored (secret files: hash only, content never stored): {', '.join(withheld)}")

        order = subprocess.run(["git", "-C", str(repo), "rev-list", "--first-parent", "--reverse", "HEAD"],
                               capture_output=True, text=True, check=True).stdout.split()
        picks = {"first": order[0], "middle": order[len(order) // 2], "last": order[-1]}
        with Ledger(db) as lg:
            for label, commit in picks.items():
                at = resolve_moment(lg, "default", "bench", commit)
                lib_times = []
                for i in range(3):
                    start = time.perf_counter()
                    rep = replay_local(lg, "default", "bench", at, trees / f"lib-{label}-{i}")
                    lib_times.append(time.perf_counter() - start)
                git_s = min(git_archive_extract(repo, trees / f"lib-git-{label}-{i}", commit) for i in range(3))
                print(f"replay --at {label} commit (library): {rep.files + rep.symlinks:,} entries, "
                      f"{rep.changes - rep.snapshot_changes:,} of {rep.changes:,} changes applied after a snapshot, "
                      f"{min(lib_times):.3f} s; git archive | tar -x: {git_s:.3f} s; "
                      f"ratio {min(lib_times) / git_s:.2f}x (best of 3)")
        for label, commit in picks.items():
            cli_s, git_s, ok = cli_replay_vs_git(db, repo, commit, trees / f"at-{label}")
            exact = exact and ok
            print(f"replay --at {label} commit ({commit[:12]}), whole `ledger replay` process: {cli_s:.3f} s; "
                  f"git archive | tar -x: {git_s:.3f} s; ratio {cli_s / git_s:.2f}x (best of 3; exact: {ok})")

        pack = git_pack_size(repo, repack=not args.pack_as_is)
        print(f"ledger file: {sizes['file'] / 1e6:,.1f} MB (content {sizes['blobs'] / 1e6:,.1f} MB in "
              f"{sizes['n_blobs']:,} blobs, {sizes['deltas']:,} of them deltas; events {sizes['events'] / 1e6:,.1f} MB; "
              f"snapshots {sizes['snapshots'] / 1e6:,.1f} MB; the rest indexes and tables)")
        how = "as cloned" if args.pack_as_is else "after `git repack -adf`"
        print(f"git pack {how}: {pack / 1e6:,.1f} MB; ratio ledger / pack: {sizes['file'] / pack:.2f}x")
        print(f"every replay equals git archive (bytes, modes, symlinks; apart from secret files listed above): {exact}")
        return 0 if exact else 1
    finally:
        if args.keep:
            print(f"kept {work} and {trees}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(trees, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
