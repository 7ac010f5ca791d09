"""Import the first-parent history of a git repository into the ledger.

Each commit becomes one ``decision`` event (the message as rationale, the author as
agent: ``agent_id`` = author e-mail, ``user_id`` = author name, role ``coder``,
``session_id`` = ``related_commit_hash`` = the full commit hash, timestamp = committer
time) followed by one file ``state_change`` per changed path (create, modify, delete,
rename; regular/executable/symlink modes, binary and empty files), each with
``caused_by`` = that commit's decision. Contents go to the ledger's blob store keyed by
SHA-256; symlinks are stored like git stores them: the content is the link target.

How it runs (fast enough for 10,000+ commits):

* ONE ``git log --first-parent --diff-merges=first-parent -M --raw -z`` stream gives
  every commit and its changed paths with old/new modes and blob ids; merges are
  diffed against their first parent, so replaying the events reproduces the
  first-parent line exactly.
* ONE long-lived ``git cat-file --batch`` process serves the blob contents.
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

import os
import subprocess
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ledger import blobs as blobstore
from ledger.blobs import sha256_hex
from ledger.diffs import describe_change
from ledger.errors import EventNotFound, LedgerError
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
    deletes, renames, rest = [], [], []
    for e in entries:
        (deletes if e.status == "D" else renames if e.status == "R" else rest).append(e)
    ordered_renames: list[_Entry] = []
    pending = renames
    while pending:
        srcs = {e.src for e in pending}
        src_dirs = {s[:i] for s in srcs for i in range(len(s)) if s[i:i + 1] == b"/"}

        def blocked(e: _Entry) -> bool:
            dst = e.path
            if dst in srcs and dst != e.src:
                return True
            if dst in src_dirs:
                return True
            return any(dst[:i] in srcs and dst[:i] != e.src for i in range(len(dst)) if dst[i:i + 1] == b"/")

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
        is_link = FileMode.SYMLINK in (old_mode, new_mode)
        patch, added, removed = ("", 0, 0) if is_link else describe_change(
            path, old, new, previous_path=prev_path or None)
        change = StateChange(
            target_type=TargetType.FILE,
            target_resource=path,
            operation=op,
            previous_resource=prev_path,
            previous_state_hash=blobs.sha256[e.old_sha] if old is not None else "",
            previous_file_mode=old_mode or FileMode.UNSPECIFIED,
            new_state_hash=blobs.sha256[e.new_sha] if new is not None else "",
            file_mode=new_mode or FileMode.UNSPECIFIED,
            diff_patch=patch,
            size_bytes=len(new) if new is not None else 0,
            is_reversible=True,
            lines_added=added,
            lines_removed=removed,
        )
        events.append(SwarmEvent(
            event_id=deterministic_event_id(ms, tenant, project, commit.sha, "change", path),
            caused_by=decision_id,
            state_change=change,
            **envelope,
        ))
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
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Import the first-parent history of ``rev`` in the git repository ``repo``.

    ``project_id`` defaults to the repository's directory name. ``progress(done,
    total)`` is called with commit counts. Returns an ``ImportSummary``. Raises
    ``GitImportError`` (git missing, not a repository, unknown revision, git failure)
    and ``InvalidGitPath`` (a path that is not valid UTF-8; nothing is written then).
    Idempotent: importing the same history again adds no events.
    """
    started = time.perf_counter()
    repo_path = Path(repo)
    if not repo_path.exists():
        raise GitImportError(f"{repo}: no such directory")
    top = _run_git(repo_path, "rev-parse", "--git-dir")
    if not top:
        raise GitImportError(f"{repo} is not a git repository")
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
    _check_paths(commits, skip_invalid_paths, summary)

    cat = _CatFile(repo_path)
    try:
        blobs = _Blobs(cat)
        batch_events: list[SwarmEvent] = []
        batch_blobs: dict[str, bytes] = {}

        def count_new(contents: dict[str, bytes]) -> None:
            for digest, data in contents.items():
                if not ledger.has_blob(digest):
                    summary.new_blobs += 1
                    summary.new_content_bytes += len(data)

        def spill(contents: dict[str, bytes]) -> None:
            contents = {**batch_blobs, **contents}
            batch_blobs.clear()
            count_new(contents)
            with ledger.write_transaction() as conn:
                for digest, data in contents.items():
                    blobstore.put(conn, data, digest)

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

        in_batch = batch_bytes = 0
        for done, commit in enumerate(commits, 1):
            decision_id = deterministic_event_id(
                commit.time_s * 1000, tenant_id, project, commit.sha, "decision")
            if _is_stored(ledger, decision_id):
                # a commit's events are appended in one transaction: all are there
                summary.commits_present += 1
                summary.events_present += 1 + sum(
                    1 for e in commit.entries
                    if not (_side(e.old_mode) is None and _side(e.new_mode) is None))
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
    summary.seconds = time.perf_counter() - started
    return summary


def _is_stored(ledger: Ledger, event_id: str) -> bool:
    try:
        ledger.get(event_id)
    except EventNotFound:
        return False
    return True
