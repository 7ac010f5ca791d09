"""``import_git``: the first-parent history of a git repository into the ledger.

How it runs (fast enough for 10,000+ commits): ONE ``git log`` stream for the whole
history, ONE ``git diff-tree --stdin --numstat`` for git's line counts of the commits
to import and ONE long-lived ``git cat-file --batch`` for contents
(``nervous_system.gitimport.plumbing``); events per commit from
``nervous_system.gitimport.events`` (fast path: the committed bytes) or
``nervous_system.gitimport.archive`` (slow path, when attributes can apply); a
``BatchWriter`` appends about ``batch_commits`` whole commits per transaction (on a
second thread, while the next batch is built).

Idempotency: a commit whose decision is already stored (a decision event of that
commit whose session is the commit, whatever id scheme or import mode wrote it) is
skipped without reading its contents, so re-importing the same history adds nothing;
event ids are deterministic (``events``: they include what each event describes), so
a retried batch is a no-op too.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ledger.store import Ledger
from nervous_system.gitimport.archive import ArchiveView, touches_attributes
from nervous_system.gitimport.errors import GitImportError
from nervous_system.gitimport.events import commit_events, side
from nervous_system.gitimport.gitattributes import ConvertConfig, attribute_sources, read_config
from nervous_system.gitimport.paths import SkippedPath, check_paths, default_project_name
from nervous_system.gitimport.plumbing import CatFile, Commit, Git, GitBlobs, LineCounts, log_commits
from nervous_system.gitimport.writer import BatchWriter

__all__ = ["ImportSummary", "import_git", "project_for_repository", "DEFAULT_BATCH_COMMITS"]

#: Commits appended per SQLite transaction (each commit is always whole in one).
DEFAULT_BATCH_COMMITS = 1000


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


def _is_imported(ledger: Ledger, tenant: str, project: str, commit: str) -> bool:
    """Whether ``commit`` is already imported into the project: a decision of that
    commit whose session is the commit (what ``events.CommitEvents`` writes, in every
    id scheme and mode; an agent's decision that merely names the commit has its own
    session). Looked up by session (an indexed, selective column)."""
    return any(s.tenant_id == tenant and s.project_id == project
               for s in ledger.events(session_id=commit, commit=commit, kind="decision", order="seq"))


def _submodule_only(commit: Commit) -> int:
    return sum(1 for e in commit.entries if side(e.old_mode) is None and side(e.new_mode) is None)


def _config(git: Git, commits: list[Commit], info_attributes: str, summary: ImportSummary,
            raw_blobs: bool) -> ConvertConfig | None:
    """The conversion config when attributes can apply (then ``summary`` says why), else None."""
    if raw_blobs:
        summary.attributes = "ignored (--raw-blobs)"
        return None
    config = read_config(git)
    first = next((c.sha for c in commits if touches_attributes(c)), None)
    summary.attribute_sources = attribute_sources(first, info_attributes, config)
    summary.attributes = "applied" if summary.attribute_sources else "none found"
    return config if summary.attribute_sources else None


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
    git = Git(repo_path)
    top = git.text("rev-parse", "--git-dir", "--git-path", "info/attributes").splitlines()
    if len(top) != 2:
        raise GitImportError(f"{repo} is not a git repository")
    head = git.text("rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}")
    project = project_id or default_project_name(repo_path)
    summary = ImportSummary(repo=str(repo_path), project_id=project, tenant_id=tenant_id,
                            rev=rev, head=head)
    commits = log_commits(git, head)
    summary.commits = len(commits)
    config = _config(git, commits, str(repo_path / top[1]), summary, raw_blobs)
    summary.skipped_paths = check_paths(commits, skip_invalid_paths)

    named = {row[0] for row in ledger.commits(tenant_id, project, "")}  # commits any event names
    present = {c.sha for c in commits if c.sha in named and _is_imported(ledger, tenant_id, project, c.sha)}
    cat = CatFile(git)
    blobs = GitBlobs(cat)
    counts = LineCounts(git, [c for c in commits if c.sha not in present]) if len(present) < len(commits) else None
    view = ArchiveView(ledger, git, config, commits, blobs, tenant_id, project) if config else None
    writer = BatchWriter(ledger, tenant_id=tenant_id, batch_commits=batch_commits)
    read_until = 0
    try:
        for done, commit in enumerate(commits, 1):
            if view is None and done > read_until:
                read_until = blobs.read_ahead(commits, done - 1, present)
            if commit.sha in present:
                # a commit's events are appended in one transaction: all are there
                summary.commits_present += 1
                if view is not None:
                    view.skip(commit)
                    summary.events_present += sum(
                        1 for _ in ledger.events(tenant_id=tenant_id, project_id=project, commit=commit.sha))
                else:
                    summary.events_present += 1 + len(commit.entries) - _submodule_only(commit)
            elif view is not None:
                assert counts is not None
                counts.take(commit)
                if view.needs_seed:
                    writer.flush()  # the ledger's tree must include every event before this commit
                writer.add_commit(view.commit_events(done - 1, commit, writer))
                summary.commits_imported += 1
            else:
                assert counts is not None
                counts.take(commit)
                events, skipped = commit_events(commit, tenant_id, project, blobs, writer)
                summary.skipped_submodule_changes += skipped
                writer.add_commit(events)
                summary.commits_imported += 1
            if progress is not None:
                progress(done, len(commits))
        writer.flush()
    except BaseException:
        with contextlib.suppress(Exception):  # the first error is the one to report
            writer.close()
        raise
    finally:
        writer.close()  # waits for the batch in flight, stops the writer thread
        cat.close()
        if counts is not None:
            counts.close()
        if view is not None:
            view.close()
            summary.git_archive_runs = view.git_archive_runs
            summary.paths_from_archive = view.paths_from_archive
            summary.skipped_submodule_changes += view.skipped_submodule_changes
        summary.events_added += writer.events_added
        summary.events_present += writer.events_present
        summary.new_blobs = writer.new_blobs
        summary.new_content_bytes = writer.new_content_bytes
    summary.seconds = time.perf_counter() - started
    return summary
