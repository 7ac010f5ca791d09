"""``ledger exec``: run any command and record every file change it makes.

Works for agents in any language and for changes made by shell commands (``sed -i``,
``mv``, ``chmod``, generated files) that SDK instrumentation misses: the work tree is
snapshotted before and after the command and the difference is recorded.

The work tree is the repository root (git's top level) of the directory the command
runs in, or ``--root``; the command runs where the user is and paths are relative to
the root. Snapshots, exclusions and the diff between two snapshots are
``nervous_system.worktree`` (shared with the agent hooks): git's view of the tree
(``.gitignore``, ``.git/info/exclude`` and global excludes honoured; never ``.git/``
nor the ledger's own files), a stat cache next to the ledger so only changed files are
re-read, names that are not valid UTF-8 or over the path limits reported and left out.

Changes are recorded in the diff's order (so replay in time order never needs a path
that is still taken, e.g. a file replaced by a directory): deletes, renames,
modifications, creates. Every change is caused by one decision describing the command,
recorded once the command has started (a command that cannot start leaves no decision:
only the baseline, which describes the tree as it is); a system signal ``exit <code>`` records the exit status, duration and working directory. All of
it happens inside a span ``exec <argv0>`` whose ``TRACEPARENT`` is passed to the command,
so events the command records itself (SDK, ``ledger record``) join the same trace.

Baseline: the before-snapshot may differ from what the ledger knows of the project
(files edited outside any recorder, first run). With ``baseline=True`` (default) those
differences are recorded first, by agent ``ledger-exec`` caused by a decision "work tree
state before ...", so that replaying the project reproduces exactly the tree the
command left. With ``baseline=False``, changes to files the ledger does not know are
recorded as creates and their deletes are skipped (counted in ``ExecResult.skipped``).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from opentelemetry.trace import Status, StatusCode, Tracer

from nervous_system.errors import RecorderError
from nervous_system.propagation import child_env
from nervous_system.recorder import Recorder
from nervous_system.worktree import (
    Change,
    Entry,
    Excluder,
    StatCache,
    cache_path,
    diff,
    find_root,
    read_content,
    snapshot,
)


class ExecError(RecorderError):
    """The command could not be started (not found, not executable) or the root is bad."""


@dataclass
class ExecResult:
    """What ``run_and_record`` did. ``exit_code`` follows the shell convention
    (128 + signal number when the command was killed by a signal)."""

    argv: list[str]
    exit_code: int
    duration_s: float
    decision_id: str
    signal_id: str
    trace_id: str
    span_id: str
    changes: list[tuple[Change, str]] = field(default_factory=list)  # (change, event_id)
    baseline: list[tuple[Change, str]] = field(default_factory=list)
    skipped: list[Change] = field(default_factory=list)
    root: str = ""
    #: Paths left out of the snapshots: not valid UTF-8, over the path limits.
    unrecorded: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-ready summary (what ``ledger exec --json`` prints)."""
        counts: dict[str, int] = {}
        for change, _ in self.changes:
            counts[change.op] = counts.get(change.op, 0) + 1
        return {
            "argv": self.argv,
            "exit_code": self.exit_code,
            "duration_s": round(self.duration_s, 3),
            "decision_id": self.decision_id,
            "signal_id": self.signal_id,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "counts": counts,
            "changes": [
                {"op": c.op, "path": c.path, "previous_path": c.previous_path or None,
                 "mode": c.mode or None, "event_id": eid}
                for c, eid in self.changes
            ],
            "baseline_changes": len(self.baseline),
            "skipped": [{"op": c.op, "path": c.path} for c in self.skipped],
            "root": self.root,
            "unrecorded": self.unrecorded,
        }


# ------------------------------------------------------------------------ record
def _apply(recorder: Recorder, root: Path, change: Change, cause: str, known: set[str]) -> str | None:
    """Record one change; returns its event id, or None when it was skipped."""
    if change.op == "delete":
        if change.path not in known:
            return None
        return recorder.file_change(change.path, None, caused_by=cause)
    content = read_content(root, change.path, change.mode)
    if change.op == "rename" and change.previous_path in known:
        return recorder.file_change(change.path, content, mode=change.mode,
                                    previous_path=change.previous_path, caused_by=cause)
    return recorder.file_change(change.path, content, mode=change.mode, caused_by=cause)


def _ledger_view(recorder: Recorder) -> dict[str, Entry]:
    tree = recorder.ledger.current_tree(recorder.tenant_id, recorder.project_id)
    return {p: Entry(p, s.mode, s.hash, 0, ()) for p, s in tree.items()}


def record_baseline(recorder: Recorder, root: Path, current: Mapping[str, Entry],
                    excluder: Excluder, reason: str) -> list[tuple[Change, str]]:
    """Bring the ledger's view of the project in line with ``current`` (the tree on
    disk); returns the recorded ``(change, event_id)`` pairs (none when in line)."""
    known = {p: e for p, e in _ledger_view(recorder).items()
             if not excluder.excluded_file(p) and (p in current or not os.path.lexists(os.path.join(root, p)))}
    changes = [c for c in diff(known, current)]
    if not changes:
        return []
    baseline = Recorder(recorder.ledger, project_id=recorder.project_id, agent_id="ledger-exec",
                        tenant_id=recorder.tenant_id, agent_role="operator",
                        session_id=recorder.session_id, user_id=recorder.user_id)
    cause = baseline.decision(reason, input_trigger="ledger exec baseline", confidence=1.0)
    names = set(known)
    return [(c, _apply(baseline, root, c, cause, names)) for c in changes]


def run_and_record(
    argv: Sequence[str],
    *,
    recorder: Recorder,
    tracer: Tracer,
    root: str | os.PathLike | None = None,
    cwd: str | os.PathLike | None = None,
    excludes: Iterable[str] = (),
    baseline: bool = True,
    popen: Callable[..., subprocess.Popen] = subprocess.Popen,
    progress: Callable[[int, int], None] | None = None,
    cache: bool = True,
) -> ExecResult:
    """Run ``argv`` (no shell) in ``cwd`` (default: ``root`` when given, else the
    current directory) and record the changes it makes under ``root`` (default: the
    repository root of ``cwd``, ``worktree.find_root``); paths are relative to
    ``root``. See the module docstring.

    ``progress(done, total)`` reports a first large snapshot; ``cache=False`` keeps no
    stat cache next to the ledger. Returns an ``ExecResult``. Raises ``ExecError`` when
    ``root`` is not a directory or the command cannot be started (nothing but the
    baseline is recorded then: no decision without a command behind it), and
    ``RecordFailed``/``InvalidRecord`` when the ledger refuses a change.
    """
    if not argv:
        raise ExecError("no command given: ledger exec -- CMD [ARGS...]")
    if cwd is None:
        cwd = root if root is not None else os.getcwd()
    run_dir = Path(cwd).resolve()
    root_p = Path(root).resolve() if root is not None else find_root(run_dir)
    if not root_p.is_dir():
        raise ExecError(f"--root {root_p} is not a directory")
    excluder = Excluder(root_p, excludes, recorder.ledger.path)
    command = shlex.join(argv)

    stat_cache = StatCache.load(cache_path(recorder.ledger.path, root_p), root_p) if cache else None
    before = snapshot(root_p, excluder, cache=stat_cache, progress=progress)
    result_baseline: list[tuple[Change, str]] = []
    if baseline:
        result_baseline = record_baseline(
            recorder, root_p, before.entries, excluder,
            f"work tree state before `{command}` (changes made outside the ledger)",
        )
    known = set(_ledger_view(recorder)) if not baseline else set(before.entries)

    argv0 = os.path.basename(argv[0])
    attributes = {
        "process.command_args": list(argv),
        "process.executable.name": argv0,
        "process.working_directory": os.fspath(run_dir),
        "ledger.exec.root": os.fspath(root_p),
    }
    with tracer.start_as_current_span(f"exec {argv0}", attributes=attributes,
                                      record_exception=False, set_status_on_exception=False) as span:
        ctx = span.get_span_context()
        started = time.monotonic()
        try:
            proc = popen(list(argv), cwd=run_dir, env=child_env())
        except OSError as exc:
            span.set_status(Status(StatusCode.ERROR, f"cannot start: {exc}"))
            raise ExecError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from exc
        decision_id = recorder.decision(
            f"run `{command}` in {run_dir}", input_trigger="ledger exec", confidence=1.0)
        exit_code = _wait_forwarding_signals(proc)
        duration = time.monotonic() - started
        after = snapshot(root_p, excluder, cache=before.as_cache())
        if stat_cache is not None:
            stat_cache.save({p: (e.stat_key, e.digest) for p, e in after.entries.items()}, after.taken_ns)
        recorded: list[tuple[Change, str]] = []
        skipped: list[Change] = []
        for change in diff(before.entries, after.entries):
            try:
                event_id = _apply(recorder, root_p, change, decision_id, known)
            except FileNotFoundError:
                skipped.append(change)  # vanished between the snapshot and the read
                continue
            if event_id is None:
                skipped.append(change)
            else:
                recorded.append((change, event_id))
        signal_id = recorder.signal(
            f"exit {exit_code}",
            detail=json.dumps({"argv": list(argv), "exit_code": exit_code,
                               "duration_s": round(duration, 6), "cwd": os.fspath(run_dir),
                               "changes": len(recorded)}),
        )
        span.set_attribute("process.exit.code", exit_code)
        span.set_attribute("ledger.exec.changes", len(recorded))
        if exit_code != 0:
            span.set_status(Status(StatusCode.ERROR, f"exit code {exit_code}"))
    unrecorded = {s.path: s.reason for s in [*before.skipped, *after.skipped]}
    return ExecResult(
        argv=list(argv), exit_code=exit_code, duration_s=duration, decision_id=decision_id,
        signal_id=signal_id, trace_id=f"{ctx.trace_id:032x}", span_id=f"{ctx.span_id:016x}",
        changes=recorded, baseline=result_baseline, skipped=skipped, root=os.fspath(root_p),
        unrecorded=[{"path": p, "reason": r} for p, r in unrecorded.items()],
    )


def _wait_forwarding_signals(proc: subprocess.Popen) -> int:
    """Wait for ``proc``, passing SIGINT/SIGTERM/SIGHUP on to it; returns its exit code
    (128 + N when killed by signal N)."""
    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {}
    try:
        for sig in forwarded:
            try:
                previous[sig] = signal.signal(sig, lambda s, _f: proc.send_signal(s))
            except ValueError:  # not the main thread: no forwarding
                break
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code

