"""False positives of redaction on a real repository's history (issue 15, "Done when").

    .venv/bin/python benchmarks/redaction_false_positives.py [REPO] [--rev main] [--show 40]

Two measurements, both with the default detector (``ledger.detectors.Detector``, what the
write pipeline runs):

1. ``ledger import git`` of REPO into a fresh ledger (redaction on, as users get it), then
   a count of the ``[REDACTED:...]`` placeholders in what was stored (commit messages
   become decisions; git import stores no diff text);
2. every commit's unified diff (``git log -p``, the text an agent's ``diff_patch`` holds)
   and message through the detector, as a producer would send them: number of commits,
   diff lines scanned, commits and lines with a placeholder, placeholders by type, and
   the first ``--show`` findings (type, value, the line) to judge by hand.

On a repository that holds no real secrets every placeholder is a false positive; the
findings list says which were fake test keys on purpose. Nothing is written outside a
temporary directory.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger import Ledger  # noqa: E402
from ledger.detectors import Detector  # noqa: E402


def commits_with_diffs(repo: Path, rev: str):
    """``(commit, message, diff text)`` of every commit reachable from ``rev``, oldest first."""
    start, end = "\x1e\x1fSTART", "\x1e\x1fEND"
    out = subprocess.run(["git", "-C", str(repo), "log", "--reverse", "-p", "--no-color", "--no-ext-diff",
                          f"--format={start}%H%n%B{end}", rev],
                         capture_output=True, check=True).stdout.decode("utf-8", "replace")
    for part in out.split(start)[1:]:
        head, _, diff = part.partition(end)
        commit, _, message = head.partition("\n")
        yield commit, message, diff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repo", nargs="?", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--show", type=int, default=40, help="findings to print")
    args = ap.parse_args()
    repo = Path(args.repo)

    with tempfile.TemporaryDirectory() as tmp:
        from nervous_system.gitimport import import_git

        started = time.perf_counter()
        with Ledger(Path(tmp) / "ledger.db") as lg:
            summary = import_git(lg, repo, project_id="fp")
            stored = collections.Counter()
            for s in lg.events():
                text = s.event.model_dump_json()
                for part in text.split("[REDACTED:")[1:]:
                    stored[part.split("]")[0]] += 1
        print(f"1. ledger import git {repo} ({args.rev} history: {summary.commits} commits, "
              f"{summary.events_added} events, {time.perf_counter() - started:.1f} s)")
        print(f"   placeholders stored: {sum(stored.values())} {dict(stored)}")

    detector = Detector()
    commits = lines = 0
    hit_commits = set()
    hit_lines = 0
    by_type = collections.Counter()
    findings = []
    started = time.perf_counter()
    scanned_bytes = 0
    for commit, message, diff in commits_with_diffs(repo, args.rev):
        commits += 1
        added = [line for line in diff.splitlines() if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]
        lines += len(added)
        for text in (message, diff):
            scanned_bytes += len(text)
            found = detector.find(text)
            for kind, value in found:
                by_type[kind] += 1
                hit_commits.add(commit)
                line = next((ln for ln in text.splitlines() if value in ln), value)
                findings.append((commit[:10], kind, value, line.strip()[:140]))
        hit_lines += sum(1 for line in added if detector.find(line))
    seconds = time.perf_counter() - started
    print(f"2. diffs and messages of {commits} commits ({lines:,} changed lines, {scanned_bytes / 1e6:.1f} MB) "
          f"through the detector in {seconds:.1f} s ({scanned_bytes / 1e6 / seconds:.2f} MB/s)")
    print(f"   commits with a placeholder: {len(hit_commits)} ({len(hit_commits) / max(commits, 1):.1%}); "
          f"changed lines with one: {hit_lines} ({hit_lines / max(lines, 1):.3%})")
    print(f"   distinct values found: {len(findings)}; by type: {dict(by_type.most_common())}")
    for commit, kind, value, line in findings[:args.show]:
        print(f"   {commit} {kind:22} {value[:40]!r:44} | {line}")


if __name__ == "__main__":
    main()
