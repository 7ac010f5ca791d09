"""The archive view (the slow path): events that make the ledger hold, at every commit,
the tree as ``git archive <commit>`` exports it, with the repository's attributes
applied (``nervous_system.gitimport.gitattributes``).

* ``tree`` is the commit's git tree (files and symlinks: mode and blob id), kept up to
  date from the ``git log --raw`` entries of every commit.
* ``recorded`` is what the ledger holds (seeded from ``Ledger.current_tree`` when the
  first commit to import comes, again after an already-stored commit).
* Attribute classes only change in commits that change a ``.gitattributes`` file: such
  a commit starts an "epoch". One ``read-tree`` + ``check-attr`` per epoch classifies
  every path present in it (the epoch's first tree plus every path added later in the
  epoch), so no commit needs its own attribute lookup.
* Per commit the DIRTY paths are: its changed paths; every ``export-subst`` file
  holding a ``$Format:`` placeholder (its expansion depends on the commit); at the
  start of an epoch every path whose attributes changed; after seeding every path that
  is not RAW (a ledger imported with raw blobs gets corrected).
* Each dirty path's desired state (absent when export-ignored) is compared with
  ``recorded``; differences become create/modify/delete/rename events (git's renames
  are kept when both sides still apply). Bytes of CONVERT/SUBST paths come from ONE
  ``git archive <commit> -- <paths>`` per commit.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from ledger.blobs import sha256_hex
from ledger.store import Ledger
from nervous_system.gitimport.errors import GitImportError
from nervous_system.gitimport.events import ARCHIVE, CommitEvents, Side, side, text_lines
from nervous_system.gitimport.gitattributes import (
    IGNORED,
    RAW,
    SUBST,
    AttributeReader,
    ConvertConfig,
    PathClass,
    archive_chunks,
    archive_files,
    is_attributes_file,
)
from nervous_system.gitimport.paths import order_changes
from nervous_system.gitimport.plumbing import Commit, Entry, Git, GitBlobs
from nervous_system.gitimport.writer import BatchWriter
from schemas import FileMode, Operation, SwarmEvent

__all__ = ["ArchiveView", "touches_attributes"]

_OPS = {"D": Operation.DELETE, "R": Operation.RENAME, "A": Operation.CREATE, "M": Operation.MODIFY}
#: git's raw status letters as the archive view's change kinds (T: a type change).
_GIT_STATUS = {"A": "A", "D": "D", "M": "M", "T": "M", "R": "R"}


@dataclass(frozen=True)
class _Recorded:
    """What the ledger holds for a path: mode, SHA-256 of the bytes, and the git blob
    id when those bytes are that blob's (None for converted content or unknown)."""

    mode: FileMode
    sha256: str
    git_sha: str | None = None


@dataclass(frozen=True)
class _Item:
    """One change of a commit in the archive view: status D/R/A/M, path, rename
    source, and the recorded (``was``) and desired (``want``) states."""

    status: str
    path: str
    src: str | None
    was: _Recorded | None
    want: _Recorded | None


def touches_attributes(commit: Commit) -> bool:
    """Whether ``commit`` changes a ``.gitattributes`` file (any depth)."""
    return any(is_attributes_file(e.path) or (e.src is not None and is_attributes_file(e.src))
               for e in commit.entries)


class ArchiveView:
    """The archive view of one import (see the module docstring). Counters:
    ``git_archive_runs``, ``paths_from_archive``, ``skipped_submodule_changes``."""

    def __init__(self, ledger: Ledger, git: Git, config: ConvertConfig, commits: list[Commit],
                 blobs: GitBlobs, tenant: str, project: str) -> None:
        self.ledger = ledger
        self.git = git
        self.commits = commits
        self.blobs = blobs
        self.tenant = tenant
        self.project = project
        self.starts = [0] + [i for i, c in enumerate(commits) if i and touches_attributes(c)]
        self.tree: dict[str, tuple[FileMode, str]] = {}
        self.recorded: dict[str, _Recorded] | None = None
        self.maps: dict[int, dict[str, PathClass]] = {}
        self.reader = AttributeReader(git, config)
        self.git_archive_runs = 0
        self.paths_from_archive = 0
        self.skipped_submodule_changes = 0

    def close(self) -> None:
        self.reader.close()

    @property
    def needs_seed(self) -> bool:
        """True when the next imported commit starts from the ledger's current tree."""
        return self.recorded is None

    def skip(self, commit: Commit) -> None:
        """An already-stored commit: follow its tree; the ledger's view must be re-read."""
        self._apply(commit)
        self.recorded = None

    # -- helpers
    def _apply(self, commit: Commit) -> None:
        removed: list[bytes] = []
        added: list[tuple[bytes, tuple[FileMode, str]]] = []
        for e in commit.entries:
            if e.src is not None:
                removed.append(e.src)
            mode = side(e.new_mode)
            if mode is None:
                removed.append(e.path)
            else:
                added.append((e.path, (mode, e.new_sha)))
        for raw in removed:
            self.tree.pop(raw.decode("utf-8"), None)
        for raw, value in added:
            self.tree[raw.decode("utf-8")] = value

    def _epoch(self, index: int) -> int:
        return self.starts[bisect.bisect_right(self.starts, index) - 1]

    def _later_paths(self, index: int) -> set[str]:
        """Paths added by the commits after ``index`` in the same epoch."""
        k = bisect.bisect_right(self.starts, index)
        end = self.starts[k] if k < len(self.starts) else len(self.commits)
        return {e.path.decode("utf-8") for c in self.commits[index + 1:end] for e in c.entries
                if side(e.new_mode) is not None}

    def _load(self, epoch: int, commit: str, paths: set[str]) -> None:
        self.maps[epoch] = self.reader.classes(commit, paths)

    def _seed(self) -> dict[str, _Recorded]:
        modes = {m.value: m for m in FileMode}
        return {path: _Recorded(modes.get(state.mode, FileMode.REGULAR), state.hash)
                for path, state in self.ledger.current_tree(self.tenant, self.project).items()
                if state.hash}

    def _dirty(self, index: int, commit: Commit, recorded: dict[str, _Recorded], seeding: bool,
               before: set[str] | None) -> tuple[set[str], dict[str, PathClass]]:
        epoch = self._epoch(index)
        previous = self._epoch(index - 1) if index > 0 else None
        if epoch not in self.maps:
            self._load(epoch, commit.sha, set(self.tree) | set(recorded) | self._later_paths(index))
        classes = self.maps[epoch]
        dirty: set[str] = set()
        for e in commit.entries:
            dirty.add(e.path.decode("utf-8"))
            if e.src is not None:
                dirty.add(e.src.decode("utf-8"))
        if epoch == index and previous is not None:  # a .gitattributes changed here
            if previous not in self.maps:
                self._load(previous, self.commits[index - 1].sha, (before or set()) | set(recorded))
            old = self.maps[previous]
            dirty.update(p for p in old.keys() | classes.keys()
                         if old.get(p) != classes.get(p) and (p in self.tree or p in recorded))
        if seeding:
            dirty.update(p for p in classes if p in self.tree or p in recorded)
        for kept in [e for e in self.maps if e not in (epoch, previous)]:
            del self.maps[kept]
        subst = [p for p, cls in classes.items()
                 if cls.cls == SUBST and p not in dirty and p in self.tree and self.tree[p][0] != FileMode.SYMLINK]
        if subst:
            contents = self.blobs.fetch({self.tree[p][1] for p in subst})
            dirty.update(p for p in subst if b"$Format:" in contents[self.tree[p][1]])
        return dirty, classes

    def _desired(self, commit: Commit, dirty: set[str], classes: dict[str, PathClass],
                 recorded: dict[str, _Recorded], writer: BatchWriter) -> dict[str, _Recorded | None]:
        """The archive state of every dirty path (None: absent). Converted bytes that
        differ from what is recorded go to ``writer``."""
        desired: dict[str, _Recorded | None] = {}
        from_archive: dict[str, FileMode] = {}
        need: list[str] = []
        for path in sorted(dirty):
            entry = self.tree.get(path)
            cls = classes[path].cls if path in classes else RAW
            if entry is None or cls == IGNORED:
                desired[path] = None
            elif cls == RAW or entry[0] == FileMode.SYMLINK:
                mode, git_sha = entry
                was = recorded.get(path)
                if was is not None and was.git_sha == git_sha and was.mode == mode:
                    desired[path] = was
                else:
                    need.append(path)
            else:
                from_archive[path] = entry[0]
                desired[path] = None  # unless archive exports it
        for path, _ in self.blobs.chunked(need, lambda p: [self.tree[p][1]]):
            mode, git_sha = self.tree[path]
            desired[path] = _Recorded(mode, self.blobs.sha256[git_sha], git_sha)
        if from_archive:
            for chunk in archive_chunks(from_archive):
                self.git_archive_runs += 1
                for path, data in archive_files(self.git, commit.sha, chunk):
                    digest = sha256_hex(data)
                    desired[path] = _Recorded(from_archive[path], digest)
                    was = recorded.get(path)
                    if was is None or (was.mode, was.sha256) != (from_archive[path], digest):
                        writer.keep(digest, data, path)
            self.paths_from_archive += len(from_archive)
        return desired

    @staticmethod
    def _items(commit: Commit, dirty: set[str], desired: dict[str, _Recorded | None],
               recorded: dict[str, _Recorded]) -> list[_Item]:
        """What changes, paired into renames where git saw one and both sides still
        apply, in recording order."""
        changes: dict[str, tuple[_Recorded | None, _Recorded | None]] = {}
        for path in sorted(dirty):
            was, want = recorded.get(path), desired.get(path)
            if was is None and want is None:
                continue
            if was is not None and want is not None and (was.mode, was.sha256) == (want.mode, want.sha256):
                if want.git_sha and was.git_sha != want.git_sha:
                    recorded[path] = want
                continue
            changes[path] = (was, want)
        items: list[_Item] = []
        paired: set[str] = set()
        for e in commit.entries:
            if e.status != "R" or e.src is None:
                continue
            src, dst = e.src.decode("utf-8"), e.path.decode("utf-8")
            gone, came = changes.get(src), changes.get(dst)
            if (gone and came and gone[1] is None and came[0] is None
                    and src not in paired and dst not in paired):
                items.append(_Item("R", dst, src, gone[0], came[1]))
                paired.update((src, dst))
        for path, (was, want) in changes.items():
            if path not in paired:
                items.append(_Item("D" if want is None else "A" if was is None else "M", path, None, was, want))
        return order_changes(items, lambda i: i.status, lambda i: i.path, lambda i: i.src)

    # -- the events of one commit
    def commit_events(self, index: int, commit: Commit, writer: BatchWriter) -> list[SwarmEvent]:
        """The events of commit number ``index`` (in ``commits``); the new contents they
        name go to ``writer`` (which also serves contents handed over earlier)."""
        built = CommitEvents(commit, self.tenant, self.project, ARCHIVE)
        seeding = self.recorded is None
        if self.recorded is None:
            self.recorded = self._seed()
        recorded = self.recorded
        epoch = self._epoch(index)
        before = set(self.tree) if (epoch == index and index > 0 and self._epoch(index - 1) not in self.maps) else None
        self._apply(commit)
        self.skipped_submodule_changes += sum(
            1 for e in commit.entries if side(e.old_mode) is None and side(e.new_mode) is None)
        dirty, classes = self._dirty(index, commit, recorded, seeding, before)
        desired = self._desired(commit, dirty, classes, recorded, writer)
        items = self._items(commit, dirty, desired, recorded)
        entries = {e.path.decode("utf-8"): e for e in commit.entries}

        def new_git_sha(item: _Item) -> list[str]:
            return [item.want.git_sha] if item.want is not None and item.want.git_sha is not None else []

        for item, contents in self.blobs.chunked(items, new_git_sha):
            new = None
            if item.want is not None:
                want = item.want
                data = contents[want.git_sha] if want.git_sha is not None else writer.content(want.sha256)
                if data is None and not writer.ledger.pipeline.withholds(item.path):
                    raise GitImportError(f"commit {commit.sha}: the exported content of {item.path} went missing")
                if want.git_sha is not None and data is not None:
                    writer.keep(want.sha256, data, item.path)
                new = Side(want.mode, want.sha256, data)
            old = Side(item.was.mode, item.was.sha256, None) if item.was is not None else None
            built.change(_OPS[item.status], item.path, prev_path=item.src or "", old=old, new=new,
                         lines=self._lines(item, entries.get(item.path), new, writer))
            if item.src is not None:
                recorded.pop(item.src, None)
            if item.want is None:
                recorded.pop(item.path, None)
            else:
                recorded[item.path] = item.want
        return built.events

    @staticmethod
    def _lines(item: _Item, entry: Entry | None, new: Side | None, writer: BatchWriter) -> tuple[int, int]:
        """Line counts of a change: git's (``--numstat`` of the committed blobs) when
        git made the same change to the same path in this commit (conversions such as
        eol or ident keep the count of changed lines); else, for a create or delete,
        the lines of the content; else (a rewrite only attributes cause) 0."""
        if entry is not None and _GIT_STATUS.get(entry.status) == item.status and (
                item.src is None or (entry.src is not None and entry.src.decode("utf-8") == item.src)):
            return entry.added or 0, entry.removed or 0
        if item.status == "A" and new is not None and new.data is not None:
            return text_lines(new.data), 0
        if item.status == "D" and item.was is not None:
            old = writer.content(item.was.sha256)
            return 0, text_lines(old) if old is not None else 0
        return 0, 0
