"""git processes: how git is run, the ``git log`` stream and the blob reader.

* ``Git``: the base command and environment for one repository (``LC_ALL=C``,
  ``core.quotepath=off``, no signatures, ``GIT_DIR``/``GIT_WORK_TREE`` of the caller
  ignored) and ``run`` for short git commands.
* ``log_commits``: ONE ``git log --first-parent --diff-merges=first-parent -M --raw -z``
  stream parsed into ``Commit``s with their ``Entry``s (old/new modes and blob ids);
  merges are diffed against their first parent, so replaying the events reproduces the
  first-parent line exactly.
* ``LineCounts``: ONE ``git diff-tree --stdin --numstat`` process giving git's line
  counts of exactly the commits to import, computed by git on another core while the
  import works (the import never diffs contents itself);
* ``CatFile``: ONE long-lived ``git cat-file --batch`` process; ``GitBlobs`` puts a
  bounded content cache and the SHA-256 of every blob read in front of it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, TypeVar

from ledger.blobs import sha256_hex
from nervous_system.gitimport.errors import GitImportError

__all__ = ["Git", "Entry", "Commit", "log_commits", "LineCounts", "CatFile", "GitBlobs", "ABSENT", "GITLINK",
           "NULL_SHA"]

#: Bytes of recently read blob contents kept in memory (old sides of modifications).
BLOB_CACHE_BYTES = 64 * 1024 * 1024
#: Changed paths whose contents are read from git at a time (bounds memory for huge
#: commits); read at call time, so tests may lower it.
ENTRIES_PER_FETCH = 500

#: The mode git shows for the absent side of a change, and a submodule's mode.
ABSENT = "000000"
GITLINK = "160000"
NULL_SHA = "0" * 40

T = TypeVar("T")

_MARK = b"\x1econtext-ledger-commit\x1e"
_END = b"\x1econtext-ledger-end\x1e"
_NO_GIT = "git is not installed or not on PATH; install git and retry"


class Git:
    """How git is run in one repository: ``base`` (``git -C repo -c ...``) and ``env``."""

    def __init__(self, repo: str | os.PathLike) -> None:
        self.repo = Path(repo)
        self.base = ["git", "-C", str(self.repo), "-c", "core.quotepath=off",
                     "-c", "log.showSignature=false"]
        env = dict(os.environ)
        env["LC_ALL"] = "C"
        env.pop("GIT_DIR", None)
        env.pop("GIT_WORK_TREE", None)
        self.env = env

    def run(self, *args: str, input: bytes | None = None, ok_codes: tuple[int, ...] = (0,),
            env: dict[str, str] | None = None, what: str | None = None,
            error: type[GitImportError] = GitImportError) -> bytes:
        """Run ``git ARGS`` to completion; its stdout. A missing git or an exit status
        outside ``ok_codes`` raises ``error`` naming ``what`` (default: the command)
        with git's message."""
        try:
            proc = subprocess.run(self.base + list(args), input=input, capture_output=True,
                                  env=env or self.env, check=False)
        except FileNotFoundError as exc:
            raise error(_NO_GIT) from exc
        if proc.returncode not in ok_codes:
            message = proc.stderr.decode("utf-8", "replace").strip()
            where = f"{what} failed" if what else f"git {' '.join(args)} failed in {self.repo}"
            raise error(f"{where}: {message}")
        return proc.stdout

    def text(self, *args: str) -> str:
        """``run`` decoded as UTF-8 (invalid bytes replaced) and stripped."""
        return self.run(*args).decode("utf-8", "replace").strip()

    def popen(self, args: list[str], *, env: dict[str, str] | None = None, stdin: int | None = None,
              stderr: int | IO[bytes] = subprocess.PIPE,
              error: type[GitImportError] = GitImportError) -> subprocess.Popen:
        """A git process streaming its stdout (``error`` when git is missing)."""
        try:
            return subprocess.Popen(self.base + args, stdin=stdin, stdout=subprocess.PIPE,
                                    stderr=stderr, env=env or self.env)
        except FileNotFoundError as exc:
            raise error(_NO_GIT) from exc


# ------------------------------------------------------------------ git log
@dataclass
class Entry:
    """One changed path of a commit as ``git log --raw`` shows it."""

    status: str  # A, M, D, T, R
    old_mode: str
    new_mode: str
    old_sha: str
    new_sha: str
    path: bytes
    src: bytes | None = None  # rename source
    #: Lines added/removed as git counts them (``LineCounts``); None when git shows
    #: none (binary content) or the entry is ``rewritten``.
    added: int | None = None
    removed: int | None = None
    #: Made by the import from a rename with an invalid side (``paths.check_paths``):
    #: git's counts describe the rename, not this entry.
    rewritten: bool = False


@dataclass
class Commit:
    """One commit of the first-parent line and its changed paths."""

    sha: str
    parents: list[str]
    author_name: str
    author_email: str
    time_s: int
    message: str
    entries: list[Entry]


def _tokens(stream: IO[bytes]) -> Iterator[bytes]:
    """NUL-separated tokens of a binary stream, read in chunks of up to 1 MiB as they
    arrive (``read1``: a ``read(n)`` would wait for n bytes, so the import would stall
    until git had produced a whole MiB, or finished, instead of overlapping with it)."""
    partial: list[bytes] = []  # chunks of a token not ended yet (joined once: no quadratic copying)
    read = getattr(stream, "read1", stream.read)
    while True:
        chunk = read(1 << 20)
        if not chunk:
            break
        if b"\x00" not in chunk:
            partial.append(chunk)
            continue
        parts = chunk.split(b"\x00")
        if partial:
            parts[0] = b"".join(partial) + parts[0]
            partial = []
        last = parts.pop()
        if last:
            partial.append(last)
        yield from parts
    if partial:
        yield b"".join(partial)


def _parse_log(tokens: Iterator[bytes]) -> Iterator[Commit]:
    """Parse ``git log --raw -z`` output made with ``_LOG_FORMAT`` into commits: per
    commit the raw entries (``:modes ids status`` then one path, two for a rename or
    copy)."""
    current: Commit | None = None
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
            current = Commit(
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
                current.entries.append(Entry("A", ABSENT, new_mode, NULL_SHA, new_sha, dst))
            else:
                current.entries.append(Entry("R", old_mode, new_mode, old_sha, new_sha, dst, src))
        else:
            current.entries.append(Entry(letter, old_mode, new_mode, old_sha, new_sha, next(it)))
    if current is not None:
        yield current


_LOG_FORMAT = "%x00" + "%x00".join(
    [_MARK.decode(), "%H", "%P", "%an", "%ae", "%ct", "%B", _END.decode()]) + "%x00"


def log_commits(git: Git, head: str) -> list[Commit]:
    """The first-parent history of ``head``, oldest first, from ONE ``git log`` stream."""
    proc = git.popen([
        "log", "--first-parent", "--diff-merges=first-parent", "--root", "-M", "--raw", "-z",
        "--no-abbrev", "--reverse", "--no-ext-diff", "--no-textconv", f"--format={_LOG_FORMAT}",
        head, "--",
    ])
    try:
        assert proc.stdout is not None
        commits = list(_parse_log(_tokens(proc.stdout)))
    finally:
        err = proc.stderr.read() if proc.stderr else b""
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    if proc.returncode != 0:
        raise GitImportError(f"git log failed in {git.repo}: {err.decode('utf-8', 'replace').strip()}")
    return commits


# ------------------------------------------------------------------ line counts
def _count(text: bytes) -> int | None:
    return None if text == b"-" else int(text)


class LineCounts:
    """git's line counts (``--numstat``) of the given commits, each against its first
    parent (the root against the empty tree), with the same rename detection as
    ``log_commits`` and Myers diff whatever ``diff.algorithm`` says (every machine
    counts alike).

    ONE ``git diff-tree --stdin -z --numstat`` process; a thread feeds it the commits
    while ``take`` reads the counts, in the same order. Per commit git writes the
    commit id, then one record per changed path: ``added<TAB>removed<TAB>path``; for
    a rename the path is empty and the source and destination follow as two more
    tokens; ``-`` counts for binary content (None here)."""

    def __init__(self, git: Git, commits: list[Commit]) -> None:
        self._err = tempfile.TemporaryFile()
        self.proc = git.popen(["diff-tree", "--stdin", "-z", "-r", "--root", "--always", "-M", "--numstat",
                               "--diff-algorithm=myers", "--no-ext-diff", "--no-textconv"],
                              stdin=subprocess.PIPE, stderr=self._err)
        lines = b"".join(f"{c.sha} {c.parents[0] if c.parents else ''}".rstrip().encode("ascii") + b"\n"
                         for c in commits)
        self._feeder = threading.Thread(target=self._feed, args=(lines,), daemon=True)
        self._feeder.start()
        assert self.proc.stdout is not None
        self._tokens = _tokens(self.proc.stdout)
        self._next: bytes | None = next(self._tokens, None)

    def _feed(self, lines: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(lines)
            self.proc.stdin.close()
        except OSError:  # git went away: take() reports it
            pass

    def take(self, commit: Commit) -> None:
        """Set ``added``/``removed`` of ``commit``'s entries (the next commit fed);
        ``--numstat`` keys a rename by its destination, like the entry's ``path``."""
        header = self._next
        if header is None or header.lstrip(b"\n").decode("ascii", "replace") != commit.sha:
            self._err.seek(0)
            problem = self._err.read().decode("utf-8", "replace").strip() or f"got {header!r}"
            raise GitImportError(f"git diff-tree --numstat failed at commit {commit.sha}: {problem}")
        stats: dict[bytes, tuple[int | None, int | None]] = {}
        for tok in self._tokens:
            if b"\t" not in tok:
                self._next = tok
                break
            added, removed, path = tok.split(b"\t", 2)
            if not path:  # a rename: source and destination follow
                next(self._tokens)
                path = next(self._tokens)
            stats[path] = (_count(added), _count(removed))
        else:
            self._next = None
        for e in commit.entries:
            if not e.rewritten:
                e.added, e.removed = stats.get(e.path, (None, None))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._feeder.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()


# ------------------------------------------------------------------ blob contents
class CatFile:
    """One long-lived ``git cat-file --batch`` process; requests are pipelined per call."""

    def __init__(self, git: Git) -> None:
        self.proc = git.popen(["cat-file", "--batch"], stdin=subprocess.PIPE)

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


class GitBlobs:
    """Blob contents and SHA-256 by git object id, with a bounded content cache."""

    def __init__(self, cat: CatFile) -> None:
        self.cat = cat
        self.sha256: dict[str, str] = {}
        self.cache: OrderedDict[str, bytes] = OrderedDict()
        self.cache_bytes = 0

    def fetch(self, shas: set[str]) -> dict[str, bytes]:
        """``{git id: bytes}`` of ``shas``; fills ``sha256`` for each."""
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

    def chunked(self, items: list[T], shas: Callable[[T], Iterable[str]]) -> Iterator[tuple[T, dict[str, bytes]]]:
        """Each item with the contents it needs (``shas(item)``: git ids), read
        ``ENTRIES_PER_FETCH`` items at a time: bounded memory for huge commits."""
        for start in range(0, len(items), ENTRIES_PER_FETCH):
            chunk = items[start:start + ENTRIES_PER_FETCH]
            wanted = {sha for item in chunk for sha in shas(item)}
            contents = self.fetch(wanted) if wanted else {}
            for item in chunk:
                yield item, contents

    def read_ahead(self, commits: list[Commit], start: int, skip: set[str]) -> int:
        """Read the new contents of ``commits[start:]`` (but those in ``skip``) into the
        cache in ONE round trip, up to ``ENTRIES_PER_FETCH`` entries (at least one
        commit); returns the index of the first commit not read. One ``cat-file``
        request per commit would wait for git once per commit."""
        wanted: set[str] = set()
        end = start
        while end < len(commits) and (end == start or len(wanted) < ENTRIES_PER_FETCH):
            if commits[end].sha not in skip:
                wanted.update(e.new_sha for e in commits[end].entries
                              if e.new_mode not in (ABSENT, GITLINK) and e.new_sha not in self.cache)
            end += 1
        if wanted:
            self.fetch(wanted)
        return end

    def _remember(self, sha: str, data: bytes) -> None:
        if len(data) > BLOB_CACHE_BYTES // 8:
            return
        self.cache[sha] = data
        self.cache_bytes += len(data)
        while self.cache_bytes > BLOB_CACHE_BYTES:
            _, old = self.cache.popitem(last=False)
            self.cache_bytes -= len(old)
