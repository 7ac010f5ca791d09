"""The events of a commit: one ``decision``, then one file ``state_change`` per path.

A commit's decision carries the message as rationale and the author as agent
(``agent_id`` = author e-mail, ``user_id`` = author name, role ``coder``,
``session_id`` = ``related_commit_hash`` = the full commit hash, timestamp = committer
time); each change has ``caused_by`` = that decision. The ``StateChange`` itself is
built by ``ledger.changes.file_state_change`` (the one rule for every producer).

``commit_events`` is the fast path: the committed blob bytes are what is recorded
(no attributes apply, or ``--raw-blobs``).

No diff is computed: ``diff_patch`` is empty (SPEC allows omitting it; ``ledger show
--patch``, ``ledger diff`` and the UI make it from the blobs on demand) and
``lines_added``/``lines_removed`` are git's own counts (``--numstat``): 0 for binary
content (as git sees it: a NUL byte in the first 8,000 bytes, or a ``-diff`` attribute)
and for symlinks.

Deterministic ids depend on what the events describe, so that the same history
imported on two machines (different attributes, hence different bytes) never gives
one id to two different events:

* decision: committer millisecond, tenant, project, commit, and the import ``mode``
  (``RAW``: committed bytes; ``ARCHIVE``: attributes applied);
* change: committer millisecond, the decision's id, path, operation, previous path,
  previous and new SHA-256 and mode, and the line counts.

Whether a commit is already imported is decided from the ledger (a decision of that
commit whose session is the commit, see ``importer``), not by recomputing an id, so
ledgers written with an earlier id scheme are still recognised.
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

__all__ = ["side", "Side", "CommitEvents", "decision_id", "commit_events", "text_lines", "RAW", "ARCHIVE"]

#: Import modes: which bytes are recorded (part of the decision's id).
RAW, ARCHIVE = "raw", "archive"
#: git's binary check: a NUL byte within this many first bytes (``buffer_is_binary``).
_BINARY_PROBE = 8000

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


def text_lines(data: bytes) -> int:
    """Lines of ``data`` as git's numstat counts them for a created or deleted file
    (a last line without a newline counts; 0 for binary content)."""
    if b"\x00" in data[:_BINARY_PROBE]:
        return 0
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def decision_id(commit: Commit, tenant: str, project: str, mode: str) -> str:
    """The deterministic event id of a commit's decision in import ``mode``."""
    return deterministic_event_id(commit.time_s * 1000, tenant, project, commit.sha, "decision", mode)


class CommitEvents:
    """The events of one commit, in order: its decision first, then ``change``s."""

    def __init__(self, commit: Commit, tenant: str, project: str, mode: str) -> None:
        self.commit = commit
        self.decision_id = decision_id(commit, tenant, project, mode)
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
               new: Side | None, lines: tuple[int, int]) -> None:
        """Add one file state change. ``old``/``new`` are None where the path does not
        exist on that side; ``new.data`` must be at hand. ``lines``: (added, removed),
        made 0 when either side is a symlink (its content is a link target)."""
        if FileMode.SYMLINK in (old.mode if old else None, new.mode if new else None):
            lines = (0, 0)
        before = PathState(path=prev_path or path, hash=old.sha256, mode=old.mode.value) if old else None
        change = file_state_change(
            path, new.data if new is not None else None, before=before, old_bytes=UNKNOWN,
            new_mode=new.mode.value if new is not None else None, previous_path=prev_path or None,
            operation=op, new_hash=new.sha256 if new is not None else None, lines=lines,
        )
        described = (path, op.value, prev_path, change.previous_state_hash, change.previous_file_mode.value,
                     change.new_state_hash, change.file_mode.value, str(lines[0]), str(lines[1]))
        self.events.append(SwarmEvent(
            event_id=deterministic_event_id(self.commit.time_s * 1000, self.decision_id, "change", *described),
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


def _new_side(e: Entry) -> list[str]:
    return [e.new_sha] if side(e.new_mode) is not None else []


def commit_events(commit: Commit, tenant: str, project: str, blobs: GitBlobs,
                  writer: BatchWriter) -> tuple[list[SwarmEvent], int]:
    """The events of one commit as committed (fast path) and the number of submodule
    changes skipped. New contents go to ``writer``; old contents are not read (the
    SHA-256 of an old side is known from when it was new, else read once)."""
    built = CommitEvents(commit, tenant, project, RAW)
    skipped = 0
    entries = order_changes(commit.entries, lambda e: e.status, lambda e: e.path, lambda e: e.src)
    old_unknown = {e.old_sha for e in entries if side(e.old_mode) is not None and e.old_sha not in blobs.sha256}
    if old_unknown:  # an old side this import never saw as new (the first imported commit)
        blobs.fetch(old_unknown)
    for e, contents in blobs.chunked(entries, _new_side):
        old_mode, new_mode = side(e.old_mode), side(e.new_mode)
        if old_mode is None and new_mode is None:
            skipped += 1
            continue
        op, path, prev_path = _operation(e, old_mode, new_mode)
        old = Side(old_mode, blobs.sha256[e.old_sha], None) if old_mode is not None else None
        new = Side(new_mode, blobs.sha256[e.new_sha], contents[e.new_sha]) if new_mode is not None else None
        if new is not None:
            writer.keep(new.sha256, new.data, path)  # type: ignore[arg-type]
        built.change(op, path, prev_path=prev_path, old=old, new=new, lines=(e.added or 0, e.removed or 0))
    return built.events, skipped
