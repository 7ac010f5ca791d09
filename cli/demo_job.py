"""``ledger demo``: the main job end to end on embedded defaults.

A temporary ledger; a real git history imported (the repository the demo runs in, when
there is one) or else a short scripted agent session recorded through the SDK; replays at
several moments, each checked against the truth (``git archive`` of the commit, or the
files the scripted session wrote); a short summary.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ledger import Ledger
from replay import resolve_moment
from replay import replay_local
from replay.verify import compare_snapshots, compare_trees, git_archive_to, snapshot

#: Replays at most this many commits of an imported history (evenly spaced, HEAD last).
MAX_CHECKED_COMMITS = 6
TENANT = "demo"


@dataclass
class ReplayCheck:
    """One replay: the moment asked for, files written, the differences from the truth."""

    at: str
    moment: str
    files: int
    conflicts: int
    seconds: float
    differences: list[str]

    @property
    def ok(self) -> bool:
        return not self.differences and self.conflicts == 0


@dataclass
class DemoReport:
    """What the demo did; ``ok`` is True when every replay matched the truth."""

    workdir: str
    source: str
    project: str
    commits: int = 0
    events: int = 0
    import_seconds: float = 0.0
    checks: list[ReplayCheck] = field(default_factory=list)
    recent: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok, "workdir": self.workdir, "source": self.source, "project": self.project,
            "commits": self.commits, "events": self.events, "import_seconds": round(self.import_seconds, 3),
            "checks": [dict(c.__dict__, ok=c.ok) for c in self.checks], "recent": self.recent,
        }


def find_repository(start: Path) -> Path | None:
    """The top of the git work tree containing ``start`` with at least one commit, or None."""
    try:
        top = subprocess.run(["git", "-C", str(start), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, check=True).stdout.strip()
        subprocess.run(["git", "-C", top, "rev-parse", "--verify", "HEAD^{commit}"],
                       capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(top)


def _first_parent_commits(repo: Path) -> list[str]:
    out = subprocess.run(["git", "-C", str(repo), "rev-list", "--first-parent", "--reverse", "HEAD"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def _spread(items: list[str], n: int) -> list[str]:
    if len(items) <= n:
        return items
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def run_demo(
    workdir: Path,
    repo: Path | None,
    *,
    progress: Callable[[str], None] = lambda message: None,
    import_progress: Callable[[int, int], None] | None = None,
) -> DemoReport:
    """Run the demo inside ``workdir`` (must exist and be empty-ish; nothing is written
    elsewhere). ``repo``: a git repository to import, or None for the scripted session.
    Returns a ``DemoReport``; raises the ledger's errors if a step fails outright."""
    ledger = Ledger(workdir / "ledger.db")
    try:
        if repo is not None:
            return _git_demo(ledger, workdir, repo, progress, import_progress)
        return _sdk_demo(ledger, workdir, progress)
    finally:
        ledger.close()


def _git_demo(ledger: Ledger, workdir: Path, repo: Path, progress, import_progress) -> DemoReport:
    from nervous_system.gitimport import import_git

    progress(f"importing the git history of {repo}")
    summary = import_git(ledger, repo, tenant_id=TENANT, progress=import_progress)
    report = DemoReport(workdir=str(workdir), source=f"git history of {repo}", project=summary.project_id,
                        commits=summary.commits, events=summary.events_added,
                        import_seconds=summary.seconds)
    for i, commit in enumerate(_spread(_first_parent_commits(repo), MAX_CHECKED_COMMITS)):
        progress(f"replaying at commit {commit[:12]} and comparing with git archive")
        truth = git_archive_to(repo, commit, workdir / "truth" / commit)
        report.checks.append(_replay_and_check(ledger, report.project, commit, workdir / "replay" / commit,
                                               lambda out, skip, truth=truth: compare_trees(
                                                   out, _without(truth, skip))))
    report.recent = _recent(ledger, report.project)
    return report


def _sdk_demo(ledger: Ledger, workdir: Path, progress) -> DemoReport:
    from nervous_system import Recorder

    progress("no git repository here: recording a scripted agent session through the SDK")
    clock = {"ns": time.time_ns() - 3600 * 10**9}

    def tick() -> int:
        clock["ns"] += 60 * 10**9  # one simulated minute per event
        return clock["ns"]

    rec = Recorder(ledger, tenant_id=TENANT, project_id="scripted-session", agent_id="architect-1",
                   agent_role="architect", clock=tick)
    truth: dict[str, dict[bytes, tuple]] = {}
    files: dict[bytes, tuple] = {}

    def write(path: str, data: bytes | None, mode: str | None = None, previous: str | None = None) -> None:
        rec.file_change(path, data, mode=mode, previous_path=previous)  # None: keep the current mode
        if previous is not None:
            files[path.encode()] = files.pop(previous.encode())
        elif data is None:
            files.pop(path.encode())
        elif mode == "symlink":
            files[path.encode()] = ("link", data)
        else:
            files[path.encode()] = ("file", data, mode == "executable")

    rec.decision("scaffold a greeting CLI", confidence=0.9, rejected_alternatives=["a web service"])
    write("README.md", b"# greeter\n")
    write("greet.py", b"print('hello')\n")
    truth[str(clock["ns"])] = dict(files)
    rec.decision("make it runnable and support names", confidence=0.7)
    write("greet.py", b"#!/usr/bin/env python3\nimport sys\nprint('hello', *sys.argv[1:])\n", "executable")
    write("docs/usage.md", "Run `./greet.py Zoë` — ünïcödé works.\n".encode())
    write("greet", b"greet.py", "symlink")
    truth[str(clock["ns"])] = dict(files)
    rec.message("please review greet.py", recipients=["reviewer-1"])
    rec.decision("rename to hello.py; drop the docs folder", confidence=0.4)
    write("hello.py", None, previous="greet.py")
    write("docs/usage.md", None)
    write("greet", b"hello.py", "symlink")
    write("empty.txt", b"")
    truth[str(clock["ns"])] = dict(files)
    rec.signal("ok", cpu_load_percent=12.5, memory_usage_mb=256)

    report = DemoReport(workdir=str(workdir), source="scripted agent session (SDK)",
                        project="scripted-session", events=ledger.count())
    for i, (at_ns, expected) in enumerate(truth.items()):
        from schemas import format_timestamp_ns

        at = format_timestamp_ns(int(at_ns))
        progress(f"replaying at {at} and comparing with what the session wrote")
        report.checks.append(_replay_and_check(
            ledger, report.project, at, workdir / "replay" / f"moment-{i}",
            lambda out, skip, expected=expected: compare_snapshots(snapshot(out), expected)))
    report.recent = _recent(ledger, report.project)
    return report


def _replay_and_check(ledger: Ledger, project: str, at: str, out: Path, check) -> ReplayCheck:
    moment = resolve_moment(ledger, TENANT, project, at)
    started = time.perf_counter()
    result = replay_local(ledger, TENANT, project, moment, out)
    seconds = time.perf_counter() - started
    return ReplayCheck(at=at, moment=moment.describe(), files=result.files + result.symlinks,
                       conflicts=len(result.conflicts), seconds=seconds,
                       differences=check(out, [u.path for u in result.unrestored]))


def _without(truth: Path, paths: list[str]) -> Path:
    """``truth`` minus ``paths``: files whose content the ledger withheld (secret files,
    ``ledger.secret_files``) are not restored by replay, so they are not compared."""
    for path in paths:
        (truth / path).unlink(missing_ok=True)
    return truth


def _recent(ledger: Ledger, project: str, n: int = 5) -> list[str]:
    lines = []
    for stored in ledger.events(tenant_id=TENANT, project_id=project, descending=True, limit=n):
        e = stored.event
        if e.state_change:
            what = f"{e.state_change.operation.value} {e.state_change.target_resource}"
        elif e.decision:
            what = (e.decision.rationale.strip().splitlines() or [""])[0][:60]
        else:
            what = e.kind
        lines.append(f"{e.event_id[:18]}  {e.kind:<12} {e.agent_id[:24]:<24} {what}")
    return lines
