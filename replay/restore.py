"""Restore in place: rewind a project's work tree to a moment, safely.

``ledger restore --at WHEN [PATH...]`` puts the files of the project's work tree back as
they were at WHEN — the rewind agent users want. The rules:

* Only paths the project records are touched (the union of the tree at WHEN and the
  ledger's current view); untracked files the ledger never saw, ignored files and
  ``.git`` are never read or written. ``PATH`` arguments narrow it to files or
  directories.
* Changes the ledger has not seen (a path whose bytes or mode on disk differ from what
  the ledger last recorded) are never overwritten silently: the restore is refused,
  listing them, unless ``force``; with ``force`` they are first recorded (agent
  ``ledger-restore``) so they can be restored again.
* Writes go through directories opened relative to the work tree's root without
  following links (``O_NOFOLLOW``): a symlink in the work tree can never redirect a
  write; a file is written to a temporary name and renamed over the old one.
* The restore itself is recorded after the files are written: a decision "restore to
  WHEN" and one state change per path it wrote or deleted, caused by that decision. The
  ledger's view then equals the work tree, and the restore can be undone like any other
  change: ``ledger restore --at <decision>^`` (the moment just before it).

``plan_restore`` computes what would change (``--dry-run`` prints it); ``apply_restore``
does it.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from ledger.changes import UNKNOWN, file_state_change
from ledger.records import PathState
from ledger.store import Ledger
from replay.errors import ReplayError
from replay.history import LocalHistory
from replay.materialize import Unrestored
from replay.moments import Moment
from replay.snapshots import tree_of
from schemas import AgentDecision, SwarmEvent, new_event_id

__all__ = ["RestorePlan", "Unseen", "plan_restore", "apply_restore", "UnseenChanges", "RESTORE_AGENT"]

#: The agent restores are recorded as.
RESTORE_AGENT = "ledger-restore"
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_O_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)

#: A path's state: ``(sha256_hex, mode)``, or None when absent. On disk, "directory" and
#: "other" (a socket, a device) are modes too.
State = tuple[str, str] | None


class UnseenChanges(ReplayError):
    """The work tree has changes the ledger has not seen; ``unseen`` lists them."""

    def __init__(self, message: str, unseen: list["Unseen"]):
        super().__init__(message)
        self.unseen = unseen
        self.hint = "record them first (ledger exec, the agent hooks) or pass --force (they are recorded, then replaced)"


@dataclass(frozen=True)
class Unseen:
    """A path whose state on disk differs from the ledger's last record of it."""

    path: str
    recorded: State
    on_disk: State

    def to_dict(self) -> dict:
        return {"path": self.path, "recorded": _state_dict(self.recorded), "on_disk": _state_dict(self.on_disk)}


def _state_dict(state: State) -> dict | None:
    return None if state is None else {"hash": state[0], "mode": state[1]}


@dataclass
class RestorePlan:
    """What a restore does under ``root``: ``writes`` (path -> target ``(hash, mode)``),
    ``deletes`` (paths), ``unseen`` changes it would overwrite, and how many paths in
    scope already match."""

    root: Path
    moment: Moment
    tenant: str
    project: str
    writes: dict[str, tuple[str, str]] = field(default_factory=dict)
    deletes: list[str] = field(default_factory=list)
    unseen: list[Unseen] = field(default_factory=list)
    unchanged: int = 0
    recorded: dict[str, PathState] = field(default_factory=dict)
    on_disk: dict[str, State] = field(default_factory=dict)
    #: Paths left as they are because their content was withheld when recorded (a
    #: secret file): the bytes at WHEN cannot be written, and the file on disk is not
    #: deleted (its content is in no store, so that could not be undone).
    unrestored: list[Unrestored] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "root": str(self.root), "tenant": self.tenant, "project": self.project,
            "moment": self.moment.to_dict(),
            "writes": [{"path": p, "hash": h, "mode": m, "create": self.on_disk.get(p) is None}
                       for p, (h, m) in sorted(self.writes.items())],
            "deletes": sorted(self.deletes),
            "unseen": [u.to_dict() for u in self.unseen],
            "unchanged": self.unchanged,
            "unrestored": [u.to_dict() for u in self.unrestored],
        }


def _in_scope(path: str, scopes: list[str] | None) -> bool:
    if not scopes:
        return True
    return any(path == s or path.startswith(s.rstrip("/") + "/") for s in scopes)


class _Root:
    """The work tree's root, walked only through real directories (never links)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fd = os.open(root, _O_DIR)

    def close(self) -> None:
        os.close(self.fd)

    def parent_fd(self, path: str, *, create: bool) -> int | None:
        """An fd of the directory holding ``path`` (caller closes it unless it is the
        root's); None when a parent is missing and not ``create``. Raises ``ReplayError``
        when a parent is a symlink or not a directory (the write would leave the tree)."""
        parts = path.split("/")[:-1]
        fd = self.fd
        for i, name in enumerate(parts):
            try:
                child = os.open(name, _O_DIR, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    child = None
                else:
                    os.mkdir(name, 0o777, dir_fd=fd)
                    child = os.open(name, _O_DIR, dir_fd=fd)
            except (NotADirectoryError, OSError) as exc:
                if fd != self.fd:
                    os.close(fd)
                raise ReplayError(
                    f"cannot restore {path!r}: {'/'.join(parts[:i + 1])!r} in the work tree is not a real "
                    f"directory (a symlink or a file: {exc.strerror}); nothing is written through it") from None
            if fd != self.fd:
                os.close(fd)
            if child is None:
                return None
            fd = child
        return fd

    def state(self, path: str) -> State:
        """``(sha256, mode)`` of ``path`` on disk (mode regular/executable/symlink, or
        "directory"/"other" with an empty hash), or None when absent."""
        try:
            fd = self.parent_fd(path, create=False)
        except ReplayError:
            return ("", "other")  # below a link or a file: not the recorded path
        if fd is None:
            return None
        name = path.rsplit("/", 1)[-1]
        try:
            st = os.lstat(name, dir_fd=fd)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(name, dir_fd=fd)
                return hashlib.sha256(os.fsencode(target)).hexdigest(), "symlink"
            if stat.S_ISDIR(st.st_mode):
                return "", "directory"
            if not stat.S_ISREG(st.st_mode):
                return "", "other"
            digest = hashlib.sha256()
            with os.fdopen(os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=fd), "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
            return digest.hexdigest(), "executable" if st.st_mode & stat.S_IXUSR else "regular"
        except FileNotFoundError:
            return None
        finally:
            if fd != self.fd:
                os.close(fd)


def _ledger_files(ledger: Ledger, root: Path) -> set[str]:
    """The ledger's own files, as paths relative to ``root`` when they are inside it."""
    out = set()
    for suffix in ("", "-wal", "-shm", "-journal"):
        full = os.path.realpath(str(ledger.path) + suffix)
        try:
            rel = Path(full).relative_to(root)
        except ValueError:
            continue
        out.add(rel.as_posix())
    return out


def plan_restore(ledger: Ledger, tenant: str, project: str, root: str | os.PathLike, moment: Moment,
                 paths: list[str] | None = None) -> RestorePlan:
    """What restoring ``project``'s work tree at ``root`` to ``moment`` would do (see the
    module docstring); ``paths`` (relative to ``root``) narrow it. Reads the work tree
    only at recorded paths; the ledger's own files are never part of a restore (even if
    some event names them). Raises ``ReplayError`` (e.g. an unsafe parent)."""
    history = LocalHistory(ledger, tenant, project)
    target, _ = tree_of(history, moment)
    recorded = ledger.current_tree(tenant, project)
    plan = RestorePlan(root=Path(os.path.realpath(root)), moment=moment, tenant=tenant, project=project,
                       recorded=recorded)
    own = _ledger_files(ledger, plan.root)
    disk = _Root(plan.root)
    try:
        for path in sorted(set(target) | set(recorded)):
            if not _in_scope(path, paths) or path in own:
                continue
            want = target.get(path)
            known = recorded.get(path)
            known_state = (known.hash, known.mode) if known is not None else None
            now = disk.state(path)
            plan.on_disk[path] = now
            if now == want:
                plan.unchanged += 1
                continue
            if want is not None and want[1] != "symlink" and not ledger.has_blob(want[0], tenant_id=tenant):
                reason = history.withheld(want[0])
                if reason:  # the bytes at WHEN are in no store: leave the file alone
                    plan.unrestored.append(Unrestored(path, want[0], reason))
                    continue
            if want is None and now is not None and now[1] not in ("directory", "other", "symlink") \
                    and not ledger.has_blob(now[0], tenant_id=tenant):
                reason = history.withheld(now[0])
                if reason:  # deleting it could not be undone: its content is in no store
                    plan.unrestored.append(Unrestored(path, now[0], reason))
                    continue
            if now != known_state:
                plan.unseen.append(Unseen(path, known_state, now))
            if want is None:
                if now is not None:
                    plan.deletes.append(path)
            else:
                plan.writes[path] = want
    finally:
        disk.close()
    return plan


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write(disk: _Root, path: str, data: bytes, mode: str, umask: int) -> None:
    fd = disk.parent_fd(path, create=True)
    name = path.rsplit("/", 1)[-1]
    tmp = f".{name[:200]}.ledger-restore-{os.getpid()}-{time.monotonic_ns()}"
    try:
        try:  # a directory where the file goes (the tree had one there): only if empty
            if stat.S_ISDIR(os.lstat(name, dir_fd=fd).st_mode):
                os.rmdir(name, dir_fd=fd)
        except FileNotFoundError:
            pass
        if mode == "symlink":
            os.symlink(data, tmp, dir_fd=fd)
        else:
            out = os.open(tmp, _O_NEW, 0o600, dir_fd=fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(out, view):]
                os.fchmod(out, (0o777 if mode == "executable" else 0o666) & ~umask)
                os.fsync(out)
            finally:
                os.close(out)
        os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=fd)
        except OSError:
            pass
        raise
    finally:
        if fd != disk.fd:
            os.close(fd)


def _delete(disk: _Root, path: str) -> None:
    fd = disk.parent_fd(path, create=False)
    if fd is None:
        return
    try:
        os.unlink(path.rsplit("/", 1)[-1], dir_fd=fd)
    except FileNotFoundError:
        pass
    finally:
        if fd != disk.fd:
            os.close(fd)
    parts = path.split("/")[:-1]  # remove directories the delete left empty, like git
    while parts:
        try:
            parent = disk.parent_fd("/".join(parts), create=False)
            if parent is None:
                break
            try:
                os.rmdir(parts[-1], dir_fd=parent)
            finally:
                if parent != disk.fd:
                    os.close(parent)
        except OSError:
            break
        parts.pop()


def _record(ledger: Ledger, plan: RestorePlan, states: dict[str, State], rationale: str,
            trigger: str, contents: dict[str, bytes]) -> str:
    """Record a decision and one state change per path whose state became ``states[path]``
    (None: deleted), in one transaction; returns the decision's id."""
    now = time.time_ns()
    session = new_event_id()
    common = dict(tenant_id=plan.tenant, project_id=plan.project, agent_id=RESTORE_AGENT,
                  agent_role="operator", session_id=session)
    decision = SwarmEvent(event_id=new_event_id(), timestamp=now, decision=AgentDecision(
        rationale=rationale, input_trigger=trigger, confidence_score=1.0), **common)
    events, blobs = [decision], {}
    for path, state in sorted(states.items()):
        before = plan.recorded.get(path)
        data = contents.get(path)
        change = file_state_change(path, data, before=before, old_bytes=UNKNOWN,
                                   new_mode=state[1] if state is not None else None)
        events.append(SwarmEvent(event_id=new_event_id(), timestamp=time.time_ns(), caused_by=decision.event_id,
                                 state_change=change, **common))
        if data is not None:
            blobs[change.new_state_hash] = data
        plan.recorded[path] = None if state is None else PathState(path, change.new_state_hash, state[1])
    ledger.append_many(events, blobs)
    return decision.event_id


def apply_restore(ledger: Ledger, plan: RestorePlan, *, force: bool = False) -> str:
    """Carry out ``plan`` (from ``plan_restore``) and record it; returns the id of the
    restore's decision. Unseen changes raise ``UnseenChanges`` (nothing written) unless
    ``force``, which records them first. Raises ``ReplayError`` for an unsafe path and
    ``OSError`` for filesystem errors (the ledger then records nothing of the restore;
    files already written show up as unseen changes next time)."""
    if plan.unseen and not force:
        shown = ", ".join(u.path for u in plan.unseen[:10]) + (" ..." if len(plan.unseen) > 10 else "")
        raise UnseenChanges(
            f"{len(plan.unseen)} path(s) in {plan.root} have changes the ledger has not seen ({shown}); "
            "restoring would overwrite them. Record them first, or pass --force (they are recorded, "
            "then replaced, so they can be restored again)", plan.unseen)
    disk = _Root(plan.root)
    try:
        if plan.unseen:  # --force: keep what would be lost, then restore over it
            contents, states = {}, {}
            for u in plan.unseen:
                if u.on_disk is None or u.on_disk[1] in ("directory", "other"):
                    if u.recorded is not None:  # gone (or no longer a file): record the delete
                        states[u.path] = None
                    continue
                contents[u.path] = _read(disk, u.path, u.on_disk[1])
                states[u.path] = u.on_disk
            _record(ledger, plan, states, f"work tree before restoring to {plan.moment.describe()} "
                    "(changes the ledger had not seen)", "ledger restore --force", contents)
        umask = _umask()
        for path in sorted(plan.deletes, key=lambda p: -p.count("/")):
            _delete(disk, path)
        contents = {}
        links = [p for p, (_, m) in plan.writes.items() if m == "symlink"]
        for path, (digest, mode) in sorted(plan.writes.items()):
            if mode == "symlink":
                continue
            contents[path] = ledger.get_blob(digest, tenant_id=plan.tenant)
            _write(disk, path, contents[path], mode, umask)
        for path in sorted(links):  # last: no later write can go through them
            contents[path] = ledger.get_blob(plan.writes[path][0], tenant_id=plan.tenant)
            _write(disk, path, contents[path], "symlink", umask)
    finally:
        disk.close()
    states: dict[str, State] = {p: None for p in plan.deletes}
    states.update(plan.writes)
    return _record(ledger, plan, states, f"restore to {plan.moment.describe()}",
                   f"ledger restore --at {plan.moment.text}", contents)


def _read(disk: _Root, path: str, mode: str) -> bytes:
    fd = disk.parent_fd(path, create=False)
    name = path.rsplit("/", 1)[-1]
    try:
        if mode == "symlink":
            return os.fsencode(os.readlink(name, dir_fd=fd))
        with os.fdopen(os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0), dir_fd=fd), "rb") as fh:
            return fh.read()
    finally:
        if fd is not None and fd != disk.fd:
            os.close(fd)
