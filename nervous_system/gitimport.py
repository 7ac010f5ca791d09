"""Import the first-parent history of a git repository into the ledger.

Each commit becomes one ``decision`` event (the message as rationale, the author as
agent: ``agent_id`` = author e-mail, ``user_id`` = author name, role ``coder``,
``session_id`` = ``related_commit_hash`` = the full commit hash, timestamp = committer
time) followed by one file ``state_change`` per changed path (create, modify, delete,
rename; regular/executable/symlink modes, binary and empty files), each with
``caused_by`` = that commit's decision. Contents go to the ledger's blob store keyed by
SHA-256; symlinks are stored like git stores them: the content is the link target.

What is recorded is the tree as ``git archive <commit>`` exports it, with the
repository's attributes applied (``export-ignore``, ``export-subst``, ``text``/``eol``/
``crlf``/``core.autocrlf``, ``ident``, ``filter``, ``working-tree-encoding``; see
``nervous_system.gitattributes``). ``raw_blobs=True`` records the committed blob bytes
instead, ignoring attributes. When no attribute source exists (no ``.gitattributes``
in any commit of the history, no ``$GIT_DIR/info/attributes``, global or system
attributes file, ``core.autocrlf`` not true) the committed bytes ARE the archive's and
the fast path below runs unchanged; otherwise ``_ArchiveView`` (the slow path) keeps
the git tree and the ledger's recorded tree in memory and turns the differences
between what archive exports and what is recorded into events.

How it runs (fast enough for 10,000+ commits):

* ONE ``git log --first-parent --diff-merges=first-parent -M --raw -z`` stream gives
  every commit and its changed paths with old/new modes and blob ids; merges are
  diffed against their first parent, so replaying the events reproduces the
  first-parent line exactly.
* ONE long-lived ``git cat-file --batch`` process serves the blob contents.
* Slow path only: one ``git read-tree`` + ``git check-attr`` per commit that changes a
  ``.gitattributes``, and at most one ``git archive <commit> -- <paths>`` per commit
  that has paths whose bytes archive may rewrite.
* Events are appended with ``Ledger.append_many`` about ``batch_commits`` commits per
  transaction; a commit's events are always in the same transaction, so an
  interrupted import never leaves half a commit.

Idempotency: event ids are ``schemas.deterministic_event_id(committer_ms, tenant,
project, commit, ...)``; re-importing the same history adds nothing (commits whose
decision is already stored are skipped without reading their contents).

Paths are bytes in git. They are decoded as UTF-8; a path that is not valid UTF-8 (or
is otherwise not a valid relative path) is refused BEFORE anything is written: the
whole history is parsed and checked first. ``skip_invalid_paths=True`` instead imports
the history without those paths and lists them in the summary (a rename from such a
path becomes a create, a rename to one becomes a delete).

Submodules (gitlinks, mode 160000) are not file content of the repository and are
skipped, as ``git archive`` does.
"""

from __future__ import annotations

import bisect
import os
import subprocess
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ledger.blobs import sha256_hex
from ledger.diffs import describe_change
from ledger.errors import EventNotFound, LedgerError
from nervous_system.gitattributes import (
    IGNORED,
    RAW,
    SUBST,
    AttributeReader,
    PathClass,
    ConvertConfig,
    GitAttributesError,
    archive_files,
    attribute_sources,
    is_attributes_file,
    read_config,
)
from ledger.store import Ledger
from schemas import (
    AgentDecision,
    FileMode,
    Operation,
    StateChange,
    SwarmEvent,
    TargetType,
    check_relative_path,
    deterministic_event_id,
)

__all__ = [
    "GitImportError",
    "InvalidGitPath",
    "ImportSummary",
    "SkippedPath",
    "import_git",
    "default_project_name",
    "project_for_repository",
]

#: Commits appended per SQLite transaction (each commit is always whole in one).
DEFAULT_BATCH_COMMITS = 200
#: Bytes of recently read blob contents kept in memory (old sides of modifications).
BLOB_CACHE_BYTES = 64 * 1024 * 1024
#: Changed paths whose contents are read from git at a time.
ENTRIES_PER_FETCH = 500
#: New content held for one batch before it is stored ahead of its events.
SPILL_BLOB_BYTES = 64 * 1024 * 1024

_MARK = b"\x1econtext-ledger-commit\x1e"
_END = b"\x1econtext-ledger-end\x1e"
_GIT_MODES = {
    "100644": FileMode.REGULAR,
    "100755": FileMode.EXECUTABLE,
    "100664": FileMode.REGULAR,  # very old git trees
    "120000": FileMode.SYMLINK,
}
_GITLINK = "160000"
_ABSENT = "000000"


class GitImportError(LedgerError):
    """git failed, the repository or revision is unusable, or its history cannot be imported."""


class InvalidGitPath(GitImportError, ValueError):
    """A path in the history is not valid UTF-8 (or not a valid relative path)."""


@dataclass(frozen=True)
class SkippedPath:
    """A path left out by ``skip_invalid_paths``: the commit, the raw bytes shown
    escaped, and why."""

    commit: str
    path: str
    reason: str


@dataclass
class ImportSummary:
    """What an import did. Byte counts are bytes; ``seconds`` is wall time."""

    repo: str
    project_id: str
    tenant_id: str
    rev: str
    head: str
    commits: int = 0
    commits_imported: int = 0
    commits_present: int = 0
    events_added: int = 0
    events_present: int = 0
    new_content_bytes: int = 0
    new_blobs: int = 0
    skipped_submodule_changes: int = 0
    skipped_paths: list[SkippedPath] = field(default_factory=list)
    #: "applied" (the archive view, attributes found), "none found" (the committed
    #: bytes are the archive's: fast path) or "ignored (--raw-blobs)".
    attributes: str = ""
    #: Why attributes apply: .gitattributes in the history, info/attributes, ...
    attribute_sources: list[str] = field(default_factory=list)
    git_archive_runs: int = 0
    paths_from_archive: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """JSON-compatible dict."""
        d = dict(self.__dict__)
        d["skipped_paths"] = [p.__dict__ for p in self.skipped_paths]
        d["events_per_second"] = round(self.events_added / self.seconds, 1) if self.seconds else None
        return d


# ----------------------------------------------------------------- git plumbing
@dataclass
class _Entry:
    status: str  # A, M, D, T, R
    old_mode: str
    new_mode: str
    old_sha: str
    new_sha: str
    path: bytes
    src: bytes | None = None  # rename source


@dataclass
class _Commit:
    sha: str
    parents: list[str]
    author_name: str
    author_email: str
    time_s: int
    message: str
    entries: list[_Entry]


def _git_base(repo: Path) -> list[str]:
    return ["git", "-C", str(repo), "-c", "core.quotepath=off", "-c", "log.showSignature=false"]


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return env


def _run_git(repo: Path, *args: str) -> str:
    try:
        proc = subprocess.run(
            _git_base(repo) + list(args), capture_output=True, env=_git_env(), check=False
        )
    except FileNotFoundError as exc:
        raise GitImportError("git is not installed or not on PATH; install git and retry") from exc
    if proc.returncode != 0:
        raise GitImportError(
            f"git {' '.join(args)} failed in {repo}: {proc.stderr.decode('utf-8', 'replace').strip()}"
        )
    return proc.stdout.decode("utf-8", "replace").strip()


def default_project_name(repo: str | os.PathLike) -> str:
    """A project id from the repository's directory name (``/src/web-app`` -> ``web-app``)."""
    name = Path(os.path.abspath(repo)).name or "repo"
    cleaned = "".join(c if c.isprintable() and c != "/" else "_" for c in name)[:128]
    return cleaned or "repo"


def _tokens(stream) -> Iterator[bytes]:
    """NUL-separated tokens of a binary stream, read in 1 MiB chunks."""
    rest = b""
    while True:
        chunk = stream.read(1 << 20)
        if not chunk:
            break
        parts = (rest + chunk).split(b"\x00")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def _parse_log(tokens: Iterator[bytes]) -> Iterator[_Commit]:
    """Parse ``git log --raw -z`` output made with ``_LOG_FORMAT`` into commits."""
    current: _Commit | None = None
    it = iter(tokens)
    for tok in it:
        if tok == _MARK:
            if current is not None:
                yield current
            fields = [next(it) for _ in range(6)]
            end = next(it)
            if end != _END:
                raise GitImportError("unexpected git log output (a commit message contains NUL?)")
            sha, parents, an, ae, ct, body = fields
            current = _Commit(
                sha=sha.decode("ascii"),
                parents=parents.decode("ascii").split(),
                author_name=an.decode("utf-8", "replace"),
                author_email=ae.decode("utf-8", "replace"),
                time_s=int(ct),
                message=body.decode("utf-8", "replace").rstrip("\n"),
                entries=[],
            )
            continue
        meta = tok.lstrip(b"\n")
        if not meta:
            continue
        if not meta.startswith(b":") or current is None:
            raise GitImportError(f"unexpected git log output near {tok[:80]!r}")
        old_mode, new_mode, old_sha, new_sha, status = meta[1:].decode("ascii").split(" ")
        letter = status[0]
        if letter in ("R", "C"):
            src, dst = next(it), next(it)
            if letter == "C":  # not produced without -C; treat a copy as a create
                current.entries.append(_Entry("A", _ABSENT, new_mode, "0" * 40, new_sha, dst))
            else:
                current.entries.append(_Entry("R", old_mode, new_mode, old_sha, new_sha, dst, src))
        else:
            current.entries.append(_Entry(letter, old_mode, new_mode, old_sha, new_sha, next(it)))
    if current is not None:
        yield current


class _CatFile:
    """One long-lived ``git cat-file --batch`` process; requests are pipelined per call."""

    def __init__(self, repo: Path) -> None:
        self.proc = subprocess.Popen(
            _git_base(repo) + ["cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_git_env(),
        )

    def read_many(self, shas: list[str]) -> dict[str, bytes]:
        """Contents of blobs by git object id (raises ``GitImportError`` if missing)."""
        out: dict[str, bytes] = {}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        # Up to 1,000 requests (~41 KB) fit in the pipe buffer, so writing them all
        # before reading cannot deadlock against git's output.
        for start in range(0, len(shas), 1000):
            chunk = shas[start:start + 1000]
            self.proc.stdin.write(b"".join(s.encode("ascii") + b"\n" for s in chunk))
            self.proc.stdin.flush()
            for sha in chunk:
                header = self.proc.stdout.readline()
                parts = header.split()
                if len(parts) != 3:
                    raise GitImportError(
                        f"git cat-file cannot read blob {sha}: {header.decode('utf-8', 'replace').strip()}"
                        " (is the repository complete? run `git fsck`)"
                    )
                size = int(parts[2])
                data = self.proc.stdout.read(size)
                self.proc.stdout.read(1)  # the LF after the content
                if len(data) != size:
                    raise GitImportError(f"git cat-file ended early while reading blob {sha}")
                out[sha] = data
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


class _Blobs:
    """Blob contents and SHA-256 by git object id, with a bounded content cache."""

    def __init__(self, cat: _CatFile) -> None:
        self.cat = cat
        self.sha256: dict[str, str] = {}
        self.cache: OrderedDict[str, bytes] = OrderedDict()
        self.cache_bytes = 0

    def fetch(self, shas: set[str]) -> dict[str, bytes]:
        found = {s: self.cache[s] for s in shas if s in self.cache}
        missing = sorted(s for s in shas if s not in found)
        if missing:
            for sha, data in self.cat.read_many(missing).items():
                found[sha] = data
                self._remember(sha, data)
        for sha, data in found.items():
            if sha not in self.sha256:
                self.sha256[sha] = sha256_hex(data)
        return found

    def _remember(self, sha: str, data: bytes) -> None:
        if len(data) > BLOB_CACHE_BYTES // 8:
            return
        self.cache[sha] = data
        self.cache_bytes += len(data)
        while self.cache_bytes > BLOB_CACHE_BYTES:
            _, old = self.cache.popitem(last=False)
            self.cache_bytes -= len(old)


# ------------------------------------------------------------------ path checks
def _decode_path(raw: bytes) -> str:
    """UTF-8 text of a git path; raises ``ValueError`` when invalid."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"path {raw!r} is not valid UTF-8 (byte {exc.start})") from exc
    check_relative_path(text)
    return text


def _check_paths(commits: list[_Commit], skip: bool, summary: ImportSummary) -> None:
    """Refuse (or, with ``skip``, drop and report) entries whose paths are invalid."""
    for commit in commits:
        kept: list[_Entry] = []
        for e in commit.entries:
            problems: dict[str, str] = {}
            for side, raw in (("path", e.path), ("src", e.src)):
                if raw is None:
                    continue
                try:
                    _decode_path(raw)
                except ValueError as exc:
                    problems[side] = str(exc)
            if not problems:
                kept.append(e)
                continue
            if not skip:
                reason = next(iter(problems.values()))
                raise InvalidGitPath(
                    f"commit {commit.sha}: {reason}; nothing was imported. Rename the file in "
                    "the repository, or pass --skip-invalid-paths to import the history "
                    "without such paths (they are listed in the summary)"
                )
            for side, reason in problems.items():
                raw = e.path if side == "path" else e.src
                summary.skipped_paths.append(SkippedPath(commit.sha, repr(raw)[2:-1], reason))
            if e.status == "R":
                if "path" not in problems:  # invalid source: the new path appears
                    kept.append(_Entry("A", _ABSENT, e.new_mode, "0" * 40, e.new_sha, e.path))
                elif "src" not in problems:  # invalid target: the old path goes away
                    kept.append(_Entry("D", e.old_mode, _ABSENT, e.old_sha, "0" * 40, e.src))
        commit.entries = kept


def _ordered(entries: list[_Entry]) -> list[_Entry]:
    """Order a commit's changes so every intermediate state is a valid tree: deletes
    first (they free paths a new file or directory needs), then renames (one that frees
    a path before one that needs it), then modifications and creates."""
    return _order_changes(entries, lambda e: e.status, lambda e: e.path, lambda e: e.src)


def _order_changes(items: list, status: Callable, path: Callable, src: Callable) -> list:
    """``_ordered`` for any change records: ``status(item)`` is "D" (delete), "R"
    (rename) or anything else; ``path``/``src`` give the (rename source) path, str or
    bytes."""
    deletes, renames, rest = [], [], []
    for e in items:
        kind = status(e)
        (deletes if kind == "D" else renames if kind == "R" else rest).append(e)
    ordered_renames: list = []
    pending = renames
    while pending:
        srcs = {src(e) for e in pending}
        sep = "/" if pending and isinstance(path(pending[0]), str) else b"/"
        src_dirs = {s[:i] for s in srcs for i in range(len(s)) if s[i:i + 1] == sep}

        def blocked(e) -> bool:
            dst, source = path(e), src(e)
            if dst in srcs and dst != source:
                return True
            if dst in src_dirs:
                return True
            return any(dst[:i] in srcs and dst[:i] != source for i in range(len(dst)) if dst[i:i + 1] == sep)

        ready = [e for e in pending if not blocked(e)]
        if not ready:  # a cycle (cannot happen without -B); keep git's order
            ordered_renames.extend(pending)
            break
        ordered_renames.extend(ready)
        ready_ids = {id(e) for e in ready}
        pending = [e for e in pending if id(e) not in ready_ids]
    return deletes + ordered_renames + rest


# ---------------------------------------------------------------------- events
def _side(mode: str) -> FileMode | None:
    """The FileMode of one side of a raw entry, or None when absent/a submodule."""
    if mode in (_ABSENT, _GITLINK):
        return None
    try:
        return _GIT_MODES[mode]
    except KeyError:
        raise GitImportError(f"unsupported git file mode {mode}") from None


def _decision(commit: _Commit, tenant: str, project: str) -> tuple[list[SwarmEvent], dict, str]:
    """The decision event of a commit (in a list, to which its changes are appended),
    the envelope fields its changes share, and its event id."""
    ts_ns = commit.time_s * 1_000_000_000
    ms = commit.time_s * 1000
    decision_id = deterministic_event_id(ms, tenant, project, commit.sha, "decision")
    envelope = dict(
        timestamp=ts_ns,
        tenant_id=tenant,
        project_id=project,
        user_id=commit.author_name,
        session_id=commit.sha,
        agent_id=commit.author_email or commit.author_name,
        agent_role="coder",
        related_commit_hash=commit.sha,
    )
    events = [SwarmEvent(
        event_id=decision_id,
        decision=AgentDecision(
            rationale=commit.message,
            input_trigger=f"git commit {commit.sha}",
        ),
        **envelope,
    )]
    return events, envelope, decision_id


def _change_event(
    commit: _Commit,
    envelope: dict,
    tenant: str,
    project: str,
    decision_id: str,
    *,
    op: Operation,
    path: str,
    prev_path: str,
    old: tuple[FileMode, str, bytes | None] | None,
    new: tuple[FileMode, str, bytes] | None,
) -> SwarmEvent:
    """One file state change of a commit. ``old``/``new`` are ``(mode, SHA-256 hex,
    content)`` or None where the path does not exist on that side; an old content of
    None (not available) leaves the diff out. The id is
    ``deterministic_event_id(committer_ms, tenant, project, commit, "change", path)``."""
    old_mode, old_hash, old_bytes = old if old is not None else (None, "", None)
    new_mode, new_hash, new_bytes = new if new is not None else (None, "", None)
    if old is not None and old_bytes is None:  # old content not available: no diff
        patch, added, removed = "", 0, 0
    else:
        patch, added, removed = describe_change(
            path, old_bytes, new_bytes, previous_path=prev_path or None,
            old_mode=old_mode.value if old_mode else "", new_mode=new_mode.value if new_mode else "")
    change = StateChange(
        target_type=TargetType.FILE,
        target_resource=path,
        operation=op,
        previous_resource=prev_path,
        previous_state_hash=old_hash,
        previous_file_mode=old_mode or FileMode.UNSPECIFIED,
        new_state_hash=new_hash,
        file_mode=new_mode or FileMode.UNSPECIFIED,
        diff_patch=patch,
        size_bytes=len(new_bytes) if new_bytes is not None else 0,
        is_reversible=True,
        lines_added=added,
        lines_removed=removed,
    )
    return SwarmEvent(
        event_id=deterministic_event_id(commit.time_s * 1000, tenant, project, commit.sha, "change", path),
        caused_by=decision_id,
        state_change=change,
        **envelope,
    )


def _commit_events(
    commit: _Commit,
    tenant: str,
    project: str,
    blobs: _Blobs,
    summary: ImportSummary,
    spill: Callable[[dict[str, bytes]], None],
) -> tuple[list[SwarmEvent], dict[str, bytes]]:
    """The events of one commit and the new contents they name (SHA-256 -> bytes).

    Contents are read ``ENTRIES_PER_FETCH`` entries at a time; when more than
    ``SPILL_BLOB_BYTES`` of new content piles up, ``spill`` stores it ahead of the
    events (the events of a commit are still appended in one transaction)."""
    events, envelope, decision_id = _decision(commit, tenant, project)
    entries = _ordered(commit.entries)
    new_blobs: dict[str, bytes] = {}
    pending_bytes = 0
    contents: dict[str, bytes] = {}
    for index, e in enumerate(entries):
        if index % ENTRIES_PER_FETCH == 0:
            # contents of the next chunk of entries: bounded memory for huge commits
            wanted: set[str] = set()
            for x in entries[index:index + ENTRIES_PER_FETCH]:
                if _side(x.old_mode) is not None:
                    wanted.add(x.old_sha)
                if _side(x.new_mode) is not None:
                    wanted.add(x.new_sha)
            contents = blobs.fetch(wanted) if wanted else {}
        old_mode, new_mode = _side(e.old_mode), _side(e.new_mode)
        if old_mode is None and new_mode is None:
            summary.skipped_submodule_changes += 1
            continue
        path = e.path.decode("utf-8")
        prev_path = ""
        if old_mode is None:
            op = Operation.CREATE
        elif new_mode is None:
            op = Operation.DELETE
            if e.src is not None:  # the old side of a rename is what goes away
                path = e.src.decode("utf-8")
        elif e.status == "R":
            op = Operation.RENAME
            prev_path = e.src.decode("utf-8")  # type: ignore[union-attr]
        else:
            op = Operation.MODIFY
        old = contents[e.old_sha] if old_mode is not None else None
        new = contents[e.new_sha] if new_mode is not None else None
        if new is not None and blobs.sha256[e.new_sha] not in new_blobs:
            new_blobs[blobs.sha256[e.new_sha]] = new
            pending_bytes += len(new)
            if pending_bytes > SPILL_BLOB_BYTES:
                spill(new_blobs)  # content first: an orphan blob is harmless, a half commit is not
                new_blobs = {}
                pending_bytes = 0
        events.append(_change_event(
            commit, envelope, tenant, project, decision_id, op=op, path=path, prev_path=prev_path,
            old=(old_mode, blobs.sha256[e.old_sha], old) if old is not None else None,
            new=(new_mode, blobs.sha256[e.new_sha], new) if new is not None else None,
        ))
    return events, new_blobs


# ------------------------------------------------------------ archive view (attributes)
@dataclass(frozen=True)
class _Recorded:
    """What the ledger holds for a path: mode, SHA-256 of the bytes, and the git blob
    id when those bytes are that blob's (None for converted content or unknown)."""

    mode: FileMode
    sha256: str
    git_sha: str | None = None


def _touches_attributes(commit: _Commit) -> bool:
    return any(is_attributes_file(e.path) or (e.src is not None and is_attributes_file(e.src))
               for e in commit.entries)


class _ArchiveView:
    """The slow path: events that make the ledger hold, at every commit, the tree as
    ``git archive <commit>`` exports it (attributes applied).

    * ``tree`` is the commit's git tree (files and symlinks: mode and blob id), kept
      up to date from the ``git log --raw`` entries of every commit.
    * ``recorded`` is what the ledger holds (seeded from ``Ledger.current_tree`` when
      the first commit to import comes, again after an already-stored commit).
    * Attribute classes (``nervous_system.gitattributes``) only change in commits that change a
      ``.gitattributes`` file: such a commit starts an "epoch". One ``read-tree`` +
      ``check-attr`` per epoch classifies every path present in it (the epoch's first
      tree plus every path added later in the epoch), so no commit needs its own
      attribute lookup.
    * Per commit the DIRTY paths are: its changed paths; every ``export-subst`` file
      holding a ``$Format:`` placeholder (its expansion depends on the commit); at the
      start of an epoch every path whose attributes changed; after seeding every path that
      is not RAW (a ledger imported with raw blobs gets corrected).
    * Each dirty path's desired state (absent when export-ignored) is compared with
      ``recorded``; differences become create/modify/delete/rename events (git's
      renames are kept when both sides still apply). Bytes of CONVERT/SUBST paths come
      from ONE ``git archive <commit> -- <paths>`` per commit.
    """

    def __init__(self, ledger: Ledger, repo: Path, config: ConvertConfig, commits: list[_Commit],
                 blobs: _Blobs, tenant: str, project: str, summary: ImportSummary) -> None:
        self.ledger = ledger
        self.git = _git_base(repo)
        self.env = _git_env()
        self.commits = commits
        self.blobs = blobs
        self.tenant = tenant
        self.project = project
        self.summary = summary
        self.starts = [0] + [i for i, c in enumerate(commits) if i and _touches_attributes(c)]
        self.tree: dict[str, tuple[FileMode, str]] = {}
        self.recorded: dict[str, _Recorded] | None = None
        self.maps: dict[int, dict[str, PathClass]] = {}
        self.reader = AttributeReader(self.git, self.env, config)

    def close(self) -> None:
        self.reader.close()

    @property
    def needs_seed(self) -> bool:
        """True when the next imported commit starts from the ledger's current tree."""
        return self.recorded is None

    def skip(self, commit: _Commit) -> None:
        """An already-stored commit: follow its tree; the ledger's view must be re-read."""
        self._apply(commit)
        self.recorded = None

    # -- helpers
    def _apply(self, commit: _Commit) -> None:
        removed: list[bytes] = []
        added: list[tuple[bytes, tuple[FileMode, str]]] = []
        for e in commit.entries:
            if e.src is not None:
                removed.append(e.src)
            mode = _side(e.new_mode)
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
                if _side(e.new_mode) is not None}

    def _load(self, epoch: int, commit: str, paths: set[str]) -> None:
        try:
            self.maps[epoch] = self.reader.classes(commit, paths)
        except GitAttributesError as exc:
            raise GitImportError(str(exc)) from exc

    def _seed(self) -> dict[str, _Recorded]:
        modes = {m.value: m for m in FileMode}
        return {path: _Recorded(modes.get(state.mode, FileMode.REGULAR), state.hash)
                for path, state in self.ledger.current_tree(self.tenant, self.project).items()
                if state.hash}

    def _dirty(self, index: int, commit: _Commit, seeding: bool,
               before: set[str] | None) -> tuple[set[str], dict[str, PathClass]]:
        recorded = self.recorded
        assert recorded is not None
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

    # -- the events of one commit
    def commit_events(
        self,
        index: int,
        commit: _Commit,
        spill: Callable[[dict[str, bytes]], None],
        stored_content: Callable[[str], bytes | None],
    ) -> tuple[list[SwarmEvent], dict[str, bytes]]:
        """The events of commit number ``index`` (in ``commits``) and the new contents
        they name (SHA-256 -> bytes). ``stored_content(sha256)`` returns content already
        handed over (pending in the batch or in the ledger), or None."""
        events, envelope, decision_id = _decision(commit, self.tenant, self.project)
        seeding = self.recorded is None
        if seeding:
            self.recorded = self._seed()
        recorded = self.recorded
        assert recorded is not None
        epoch = self._epoch(index)
        before = set(self.tree) if (epoch == index and index > 0 and self._epoch(index - 1) not in self.maps) else None
        self._apply(commit)
        self.summary.skipped_submodule_changes += sum(
            1 for e in commit.entries if _side(e.old_mode) is None and _side(e.new_mode) is None)
        dirty, classes = self._dirty(index, commit, seeding, before)

        new_blobs: dict[str, bytes] = {}
        pending = [0]

        def keep(digest: str, data: bytes) -> None:
            nonlocal new_blobs
            if digest in new_blobs:
                return
            new_blobs[digest] = data
            pending[0] += len(data)
            if pending[0] > SPILL_BLOB_BYTES:
                spill(new_blobs)  # content first: an orphan blob is harmless, a half commit is not
                new_blobs = {}
                pending[0] = 0

        # the desired (archive) state of every dirty path
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
        for start in range(0, len(need), ENTRIES_PER_FETCH):
            chunk = need[start:start + ENTRIES_PER_FETCH]
            self.blobs.fetch({self.tree[p][1] for p in chunk})
            for path in chunk:
                mode, git_sha = self.tree[path]
                desired[path] = _Recorded(mode, self.blobs.sha256[git_sha], git_sha)
        if from_archive:
            def on_file(path: str, data: bytes) -> None:
                digest = sha256_hex(data)
                desired[path] = _Recorded(from_archive[path], digest)
                was = recorded.get(path)
                if was is None or (was.mode, was.sha256) != (from_archive[path], digest):
                    keep(digest, data)

            for path in from_archive:
                desired[path] = None  # unless archive exports it
            try:
                runs = archive_files(self.git, self.env, commit.sha, from_archive, on_file)
            except GitAttributesError as exc:
                raise GitImportError(str(exc)) from exc
            self.summary.git_archive_runs += runs
            self.summary.paths_from_archive += len(from_archive)

        # what changes, paired into renames where git saw one and both sides still apply
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
        items: list[tuple[str, str, str | None, _Recorded | None, _Recorded | None]] = []
        paired: set[str] = set()
        for e in commit.entries:
            if e.status != "R" or e.src is None:
                continue
            src, dst = e.src.decode("utf-8"), e.path.decode("utf-8")
            gone, came = changes.get(src), changes.get(dst)
            if (gone and came and gone[1] is None and came[0] is None
                    and src not in paired and dst not in paired):
                items.append(("R", dst, src, gone[0], came[1]))
                paired.update((src, dst))
        for path, (was, want) in changes.items():
            if path not in paired:
                items.append(("D" if want is None else "A" if was is None else "M", path, None, was, want))
        items = _order_changes(items, lambda i: i[0], lambda i: i[1], lambda i: i[2])

        ops = {"D": Operation.DELETE, "R": Operation.RENAME, "A": Operation.CREATE, "M": Operation.MODIFY}
        contents: dict[str, bytes] = {}

        def content(rec: _Recorded) -> bytes | None:
            if rec.git_sha is not None:
                return contents[rec.git_sha]
            if rec.sha256 in new_blobs:
                return new_blobs[rec.sha256]
            return stored_content(rec.sha256)

        for n, (status, path, src, was, want) in enumerate(items):
            if n % ENTRIES_PER_FETCH == 0:
                wanted = {r.git_sha for item in items[n:n + ENTRIES_PER_FETCH] for r in item[3:]
                          if r is not None and r.git_sha is not None}
                contents = self.blobs.fetch(wanted) if wanted else {}
            old = content(was) if was is not None else None
            new = content(want) if want is not None else None
            if want is not None:
                if new is None:
                    raise GitImportError(f"commit {commit.sha}: the exported content of {path} went missing")
                if want.git_sha is not None:
                    keep(want.sha256, new)
            events.append(_change_event(
                commit, envelope, self.tenant, self.project, decision_id, op=ops[status], path=path,
                prev_path=src or "",
                old=(was.mode, was.sha256, old) if was is not None else None,
                new=(want.mode, want.sha256, new) if want is not None else None,
            ))
            if src is not None:
                recorded.pop(src, None)
            if want is None:
                recorded.pop(path, None)
            else:
                recorded[path] = want
        return events, new_blobs


# ----------------------------------------------------------------------- import
def import_git(
    ledger: Ledger,
    repo: str | os.PathLike,
    *,
    tenant_id: str = "default",
    project_id: str | None = None,
    rev: str = "HEAD",
    batch_commits: int = DEFAULT_BATCH_COMMITS,
    skip_invalid_paths: bool = False,
    raw_blobs: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Import the first-parent history of ``rev`` in the git repository ``repo``.

    What is recorded at each commit is the tree as ``git archive <commit>`` exports it,
    with the repository's attributes applied (``export-ignore`` paths left out,
    ``export-subst`` placeholders expanded for that commit, ``text``/``eol``/``ident``/
    ``filter``/``working-tree-encoding`` and ``core.autocrlf`` conversions), so that
    ``ledger replay --at <commit>`` equals ``git archive <commit> | tar -x``. When no
    attributes can apply (no ``.gitattributes`` in the history, no
    ``$GIT_DIR/info/attributes``, global or system attributes file, ``core.autocrlf``
    not true) the committed bytes are the archive's and are read directly (fast path).
    ``raw_blobs=True`` records the committed blob bytes instead, ignoring attributes.

    ``project_id`` defaults to the repository's directory name. ``progress(done,
    total)`` is called with commit counts. Returns an ``ImportSummary``. Raises
    ``GitImportError`` (git missing, not a repository, unknown revision, git failure)
    and ``InvalidGitPath`` (a path that is not valid UTF-8; nothing is written then).
    Idempotent: importing the same history again adds no events (commits already
    stored are kept as they were recorded, whatever mode recorded them).
    """
    started = time.perf_counter()
    repo_path = Path(repo)
    if not repo_path.exists():
        raise GitImportError(f"{repo}: no such directory")
    top = _run_git(repo_path, "rev-parse", "--git-dir", "--git-path", "info/attributes").splitlines()
    if len(top) != 2:
        raise GitImportError(f"{repo} is not a git repository")
    info_attributes = str(repo_path / top[1])
    head = _run_git(repo_path, "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}")
    project = project_id or default_project_name(repo_path)
    summary = ImportSummary(repo=str(repo_path), project_id=project, tenant_id=tenant_id,
                            rev=rev, head=head)

    fmt = "%x00" + "%x00".join(
        [_MARK.decode(), "%H", "%P", "%an", "%ae", "%ct", "%B", _END.decode()]) + "%x00"
    cmd = _git_base(repo_path) + [
        "log", "--first-parent", "--diff-merges=first-parent", "--root", "-M", "--raw", "-z",
        "--no-abbrev", "--reverse",
        "--no-ext-diff", "--no-textconv", f"--format={fmt}", head, "--",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_git_env())
    try:
        commits = list(_parse_log(_tokens(proc.stdout)))
    finally:
        err = proc.stderr.read() if proc.stderr else b""
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    if proc.returncode != 0:
        raise GitImportError(f"git log failed in {repo}: {err.decode('utf-8', 'replace').strip()}")
    summary.commits = len(commits)
    config: ConvertConfig | None = None
    if raw_blobs:
        summary.attributes = "ignored (--raw-blobs)"
    else:
        try:
            config = read_config(_git_base(repo_path), _git_env())
        except GitAttributesError as exc:
            raise GitImportError(str(exc)) from exc
        first = next((c.sha for c in commits if _touches_attributes(c)), None)
        summary.attribute_sources = attribute_sources(first, info_attributes, config)
        summary.attributes = "applied" if summary.attribute_sources else "none found"
    _check_paths(commits, skip_invalid_paths, summary)

    cat = _CatFile(repo_path)
    view: _ArchiveView | None = None
    try:
        blobs = _Blobs(cat)
        if summary.attribute_sources and config is not None:
            view = _ArchiveView(ledger, repo_path, config, commits, blobs, tenant_id, project, summary)
        batch_events: list[SwarmEvent] = []
        batch_blobs: dict[str, bytes] = {}

        def count_new(contents: dict[str, bytes]) -> None:
            for digest, data in contents.items():
                if not ledger.has_blob(digest, tenant_id=tenant_id):
                    summary.new_blobs += 1
                    summary.new_content_bytes += len(data)

        def spill(contents: dict[str, bytes]) -> None:
            contents = {**batch_blobs, **contents}
            batch_blobs.clear()
            count_new(contents)
            ledger.put_blobs(contents, tenant_id=tenant_id)

        def flush() -> None:
            if not batch_events:
                return
            count_new(batch_blobs)
            results = ledger.append_many(batch_events, batch_blobs)
            added = sum(1 for r in results if r.inserted)
            summary.events_added += added
            summary.events_present += len(results) - added
            batch_events.clear()
            batch_blobs.clear()

        def stored_content(digest: str) -> bytes | None:
            if digest in batch_blobs:
                return batch_blobs[digest]
            try:
                return ledger.get_blob(digest, tenant_id=tenant_id)
            except LedgerError:
                return None

        in_batch = batch_bytes = 0
        for done, commit in enumerate(commits, 1):
            decision_id = deterministic_event_id(
                commit.time_s * 1000, tenant_id, project, commit.sha, "decision")
            if _is_stored(ledger, decision_id):
                # a commit's events are appended in one transaction: all are there
                summary.commits_present += 1
                if view is not None:
                    view.skip(commit)
                    summary.events_present += sum(
                        1 for _ in ledger.events(tenant_id=tenant_id, project_id=project, commit=commit.sha))
                else:
                    summary.events_present += 1 + sum(
                        1 for e in commit.entries
                        if not (_side(e.old_mode) is None and _side(e.new_mode) is None))
            else:
                if view is not None:
                    if view.needs_seed and batch_events:
                        flush()  # the ledger's tree must include every event before this commit
                        in_batch = batch_bytes = 0
                    events, new_blobs = view.commit_events(done - 1, commit, spill, stored_content)
                else:
                    events, new_blobs = _commit_events(commit, tenant_id, project, blobs, summary, spill)
                batch_events.extend(events)
                batch_blobs.update(new_blobs)
                summary.commits_imported += 1
                in_batch += 1
                batch_bytes += sum(len(d) for d in new_blobs.values())
                if in_batch >= batch_commits or len(batch_events) >= 20_000 or batch_bytes > SPILL_BLOB_BYTES:
                    batch_bytes = 0
                    flush()
                    in_batch = 0
            if progress is not None:
                progress(done, len(commits))
        flush()
    finally:
        cat.close()
        if view is not None:
            view.close()
    summary.seconds = time.perf_counter() - started
    return summary


def project_for_repository(ledger: Ledger, tenant_id: str, repo: str | os.PathLike,
                           requested: str | None = None) -> str:
    """The project a repository's history is recorded in, registered with the
    repository's root and identity (``ledger.registry``): ``requested``, else the project
    already registered for that root, else the root directory's name. Raises
    ``StoreError`` when the root belongs to another project."""
    from nervous_system.repo import repository_identity, repository_root

    root = repository_root(repo) or Path(os.path.realpath(repo))
    known = ledger.project_for_path(tenant_id, root)
    owner = known.project_id if known is not None and known.root == str(root) else None
    if requested is None:
        requested = owner or default_project_name(root)
    # one work tree, one project: a second project imported from the same repository
    # is registered without the root (commands inside it keep picking the first)
    ledger.register_project(tenant_id, requested, root=root if owner in (None, requested) else None,
                            identity=repository_identity(root))
    return requested


def _is_stored(ledger: Ledger, event_id: str) -> bool:
    try:
        ledger.get(event_id)
    except EventNotFound:
        return False
    return True
