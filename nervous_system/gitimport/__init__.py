"""Import the first-parent history of a git repository into the ledger.

Each commit becomes one ``decision`` event (the message as rationale, the author as
agent: ``agent_id`` = author e-mail, ``user_id`` = author name, role ``coder``,
``session_id`` = ``related_commit_hash`` = the full commit hash, timestamp = committer
time) followed by one file ``state_change`` per changed path (create, modify, delete,
rename; regular/executable/symlink modes, binary and empty files), each with
``caused_by`` = that commit's decision. Contents go to the ledger's blob store keyed by
SHA-256; symlinks are stored like git stores them: the content is the link target.

What is recorded is the tree as ``git archive <commit>`` exports it, with the
repository's attributes applied (see ``gitattributes``); ``raw_blobs=True`` records
the committed blob bytes instead. Submodules (gitlinks, mode 160000) are skipped, as
``git archive`` does. Paths that are not valid UTF-8 are refused before anything is
written (or, with ``skip_invalid_paths``, left out and listed).

Modules, in the order data flows:

* ``plumbing``: git processes (the ``git log`` stream, the ``diff-tree --numstat`` line
  counts, the ``cat-file`` blob reader);
* ``paths``: decoding and checking paths, ordering a commit's changes;
* ``events``: a commit's decision and file state changes (fast path);
* ``gitattributes`` and ``archive``: what ``git archive`` exports (slow path);
* ``writer``: the batch writer (whole commits per transaction, content ahead);
* ``importer``: ``import_git`` and its ``ImportSummary``;
* ``errors``: ``GitImportError``, ``InvalidGitPath``, ``GitAttributesError``.
"""

from nervous_system.gitimport.errors import GitAttributesError, GitImportError, InvalidGitPath
from nervous_system.gitimport.importer import ImportSummary, import_git, project_for_repository
from nervous_system.gitimport.paths import SkippedPath, default_project_name

__all__ = [
    "GitImportError",
    "InvalidGitPath",
    "GitAttributesError",
    "ImportSummary",
    "SkippedPath",
    "import_git",
    "default_project_name",
    "project_for_repository",
]
