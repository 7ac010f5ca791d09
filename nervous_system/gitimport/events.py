"""The events of a commit: one ``decision``, then one file ``state_change`` per path.

A commit's decision carries the message as rationale and the author as agent
(``agent_id`` = author e-mail, ``user_id`` = author name, role ``coder``,
``session_id`` = ``related_commit_hash`` = the full commit hash, timestamp = committer
time); each change has ``caused_by`` = that decision. The ``StateChange`` itself is
built by ``ledger.changes.file_state_change`` (the one rule for every producer).

``commit_events`` is the fast path: the committed blob bytes are what is recorded
(no attributes apply, or ``--raw-blobs``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.changes import UNKNOWN, file_state_change
from ledger.records import PathState
from nervous_system.gitimport.errors import GitImportError
from nervous_system.gitimport.paths import order_changes
from nervous_system.gitimport.plumbing import ABSENT, GITLINK, Commit, Entry, GitBlobs
from nervous_system.gitimport.writer import BatchWriter
from schemas import AgentDecision, FileMode, Operation, SwarmEvent, deterministic_event_id

__all__ = ["side", "Side", "CommitEvents", "decision_id", "commit_events"]

_GIT_MODES = {
    "100644": FileMode.REGULAR,
    "100755": FileMode.EXECUTABLE,
    "100664": FileMode.REGULAR,  # very old git trees
    "120000": FileMode.SYMLINK,
}


def side(mode: str) -> FileMode | None:
    """The FileMode of one side of a raw entry, or None when absent/a submodule."""
    if mode in (ABSENT, GITLINK):
        return None
    try:
        return _GIT_MODES[mode]
    except KeyError:
        raise GitImportError(f"unsupported git file mode {mode}") from None


@dataclass(frozen=True)
class Side:
    """One side of a file change: mode, SHA-256 hex of the bytes, and the bytes (None:
    not at hand, so no diff is made)."""

    mode: FileMode
    sha256: str
    data: bytes | None


def decision_id(commit: Commit, tenant: str, project: str) -> str:
    """The deterministic event id of a commit's decision."""
    return deterministic_event_id(commit.time_s * 1000, tenant, project, commit.sha, "decision")


class CommitEvents:
    """The events of one commit, in order: its decision first, then ``change``s."""

    def __init__(self, commit: Commit, tenant: str, project: str) -> None:
        self.commit = commit
        self.tenant = tenant
        self.project = project
        self.decision_id = decision_id(commit, tenant, project)
        self.envelope = dict(
            timestamp=commit.time_s * 1_000_000_000,
            tenant_id=tenant,
            project_id=project,
            user_id=commit.author_name,
            session_id=commit.sha,
            agent_id=commit.author_email or commit.author_name,
            agent_role="coder",
            related_commit_hash=commit.sha,
        )
        self.events: list[SwarmEvent] = [SwarmEvent(
            event_id=self.decision_id,
            decision=AgentDecision(rationale=commit.message, input_trigger=f"git commit {commit.sha}"),
            **self.envelope,
        )]

    def change(self, op: Operation, path: str, *, prev_path: str = "", old: Side | None,
               new: Side | None) -> None:
        """Add one file state change. ``old``/``new`` are None where the path does not
        exist on that side. The id is ``deterministic_event_id(committer_ms, tenant,
        project, commit, "change", path)``."""
        before = PathState(path=prev_path or path, hash=old.sha256, mode=old.mode.value) if old else None
        change = file_state_change(
            path, new.data if new is not None else None, before=before,
            old_bytes=(UNKNOWN if old.data is None else old.data) if old is not None else None,
            new_mode=new.mode.value if new is not None else None, previous_path=prev_path or None,
            operation=op, new_hash=new.sha256 if new is not None else None,
        )
        self.events.append(SwarmEvent(
            event_id=deterministic_event_id(self.commit.time_s * 1000, self.tenant, self.project,
                                            self.commit.sha, "change", path),
            caused_by=self.decision_id,
            state_change=change,
            **self.envelope,
        ))


def _operation(e: Entry, old_mode: FileMode | None, new_mode: FileMode | None) -> tuple[Operation, str, str]:
    """``(operation, path, previous path)`` of a raw entry with at least one side."""
    path = e.path.decode("utf-8")
    if old_mode is None:
        return Operation.CREATE, path, ""
    if new_mode is None:  # the old side of a rename is what goes away
        return Operation.DELETE, e.src.decode("utf-8") if e.src is not None else path, ""
    if e.status == "R":
        return Operation.RENAME, path, e.src.decode("utf-8")  # type: ignore[union-attr]
    return Operation.MODIFY, path, ""


def _wanted(e: Entry) -> list[str]:
    return ([e.old_sha] if side(e.old_mode) is not None else []) + \
        ([e.new_sha] if side(e.new_mode) is not None else [])


def commit_events(commit: Commit, tenant: str, project: str, blobs: GitBlobs,
                  writer: BatchWriter) -> tuple[list[SwarmEvent], int]:
    """The events of one commit as committed (fast path) and the number of submodule
    changes skipped. New contents go to ``writer``."""
    built = CommitEvents(commit, tenant, project)
    skipped = 0
    entries = order_changes(commit.entries, lambda e: e.status, lambda e: e.path, lambda e: e.src)
    for e, contents in blobs.chunked(entries, _wanted):
        old_mode, new_mode = side(e.old_mode), side(e.new_mode)
        if old_mode is None and new_mode is None:
            skipped += 1
            continue
        op, path, prev_path = _operation(e, old_mode, new_mode)
        old = Side(old_mode, blobs.sha256[e.old_sha], contents[e.old_sha]) if old_mode is not None else None
        new = Side(new_mode, blobs.sha256[e.new_sha], contents[e.new_sha]) if new_mode is not None else None
        if new is not None:
            writer.keep(new.sha256, new.data)  # type: ignore[arg-type]
        built.change(op, path, prev_path=prev_path, old=old, new=new)
    return built.events, skipped
