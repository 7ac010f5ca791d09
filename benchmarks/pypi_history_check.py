"""Real-input check: a git history built from successive PyPI releases of a package.

    python benchmarks/pypi_history_check.py --package click --versions 50
    python benchmarks/pypi_history_check.py --package six --cache ~/.cache/sdists --offline

Downloads the source distributions (``pip download --no-deps --no-binary :all:``; cached
in ``--cache``, so later runs need no network with ``--offline``), commits each release's
unpacked tree as one commit (strictly increasing committer times), imports the history
with ``ledger import git`` and checks, for EVERY commit, that ``replay --at <commit>``
and ``replay --at <that commit's time>`` equal ``git archive <commit> | tar -x`` byte
for byte and mode for mode. Prints the numbers; exit status 1 on any mismatch.
Not a test: it needs the network on the first run. ``git archive`` is used as is: the
sdists' own ``.gitattributes`` apply (e.g. ``.git_archival.txt export-subst``, which
setuptools-scm projects ship), and the import records what archive exports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ledger import Ledger  # noqa: E402
from nervous_system.gitimport import import_git  # noqa: E402
from replay import resolve_moment  # noqa: E402
from replay import replay_local  # noqa: E402
from tests.git_fixtures import GitRepo, git_archive_tree, snapshot  # noqa: E402


def released_versions(package: str) -> list[str]:
    """Final releases, oldest first (``pip index versions``)."""
    out = subprocess.run([sys.executable, "-m", "pip", "index", "versions", package],
                         capture_output=True, text=True, check=True).stdout
    found = re.search(r"Available versions: (.*)", out)
    if not found:
        raise SystemExit(f"cannot list versions of {package}: {out}")
    versions = [v.strip() for v in found.group(1).split(",")]
    finals = [v for v in versions if re.fullmatch(r"\d+(\.\d+)*", v)]
    return sorted(finals, key=lambda v: tuple(int(x) for x in v.split(".")))


def sdist_for(cache: Path, package: str, version: str) -> Path | None:
    names = {package.lower(), package.lower().replace("-", "_")}
    for p in cache.iterdir():
        stem = p.name.lower()
        for n in names:
            if stem.startswith(f"{n}-{version}.") and (stem.endswith(".tar.gz") or stem.endswith(".zip")):
                return p
    return None


def download(cache: Path, package: str, version: str) -> Path | None:
    found = sdist_for(cache, package, version)
    if found:
        return found
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                           "--quiet", f"{package}=={version}", "-d", str(cache)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  {package} {version}: no usable sdist ({proc.stderr.strip().splitlines()[-1:]})")
        return None
    return sdist_for(cache, package, version)


def unpack(archive: Path, dest: Path) -> None:
    """Unpack an sdist's top-level directory contents into ``dest``."""
    tmp = Path(tempfile.mkdtemp(dir=dest.parent))
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="tar")
        entries = list(tmp.iterdir())
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        for item in top.iterdir():
            shutil.move(str(item), dest / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", default="click")
    parser.add_argument("--versions", type=int, default=50, help="the latest N final releases")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "pypi-sdists")
    parser.add_argument("--offline", action="store_true", help="use only cached sdists")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)

    if args.offline:
        pattern = re.compile(rf"^{re.escape(args.package)}-(\d+(?:\.\d+)*)\.(tar\.gz|zip)$", re.I)
        versions = sorted({m.group(1) for p in args.cache.iterdir() if (m := pattern.match(p.name))},
                          key=lambda v: tuple(int(x) for x in v.split(".")))
    else:
        versions = released_versions(args.package)
    versions = versions[-args.versions:]
    work = Path(tempfile.mkdtemp(prefix="pypi-history-"))
    try:
        repo = GitRepo(work / "repo", start=1_500_000_000, step=86_400)
        commits: list[tuple[str, str]] = []
        t0 = time.perf_counter()
        for version in versions:
            sdist = download(args.cache, args.package, version)
            if sdist is None:
                continue
            for item in repo.path.iterdir():
                if item.name != ".git":
                    shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()
            unpack(sdist, repo.path)
            commits.append((version, repo.commit(f"{args.package} {version}", allow_empty=True)))
        built = time.perf_counter() - t0
        print(f"{args.package}: {len(commits)} releases ({commits[0][0]} .. {commits[-1][0]}) committed "
              f"in {built:.1f} s")

        with Ledger(work / "ledger.db") as lg:
            summary = import_git(lg, repo.path, project_id=args.package)
            print(f"import: {summary.commits} commits, {summary.events_added:,} events, "
                  f"{summary.new_content_bytes:,} bytes in {summary.seconds:.2f} s "
                  f"({summary.events_added / summary.seconds:,.0f} events/s)")
            print(f"attributes: {summary.attributes}"
                  + (f" ({'; '.join(summary.attribute_sources)}): {summary.paths_from_archive:,} path "
                     f"states read through {summary.git_archive_runs:,} git archive runs"
                     if summary.attribute_sources else ""))
            again = import_git(lg, repo.path, project_id=args.package)
            print(f"re-import: {again.events_added} events added")
            bad = 0
            files = 0
            t1 = time.perf_counter()
            for i, (version, commit) in enumerate(commits):
                expected = snapshot(git_archive_tree(repo, commit, work / f"a{i}"))
                files += len(expected)
                by_commit = resolve_moment(lg, "default", args.package, commit)
                r1 = replay_local(lg, "default", args.package, by_commit, work / f"c{i}", strict=True)
                when = dt.datetime.fromtimestamp(repo.commit_time(commit), dt.timezone.utc).isoformat()
                by_time = resolve_moment(lg, "default", args.package, when)
                r2 = replay_local(lg, "default", args.package, by_time, work / f"t{i}", strict=True)
                ok1 = snapshot(work / f"c{i}") == expected
                ok2 = snapshot(work / f"t{i}") == expected
                if not (ok1 and ok2) or r1.conflicts or r2.conflicts:
                    bad += 1
                    print(f"  MISMATCH at {version} {commit[:12]}: commit={ok1} time={ok2}")
                for d in (f"a{i}", f"c{i}", f"t{i}"):
                    shutil.rmtree(work / d)
            checked = time.perf_counter() - t1
        print(f"checked {len(commits)} commits x 2 replays (--at commit, --at time) against git archive, "
              f"{files:,} files in total, in {checked:.1f} s: "
              f"{len(commits) - bad} equal, {bad} different")
        return 1 if bad else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
