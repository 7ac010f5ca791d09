"""The secret-file write policy: changes of files whose path looks like a secret file are
recorded with their hash and size but WITHOUT content (issue 15, section 1).

File content is needed for exact replay, so it is never rewritten; instead a file such as
``.env``, ``deploy/key.pem`` or ``~/.ssh/id_rsa`` keeps its bytes out of every store: the
policy sets ``state_change.content_withheld = "secret-file"``, empties ``diff_patch`` and
drops the bytes from the blobs handed to the ledger; the ledger then neither needs nor
stores the content (``ledger.changes.content_hash`` is None), the syncer and bundles
carry none, and replay reports the file as not restored ("content withheld: secret
file") instead of writing anything.

Matching (``fnmatch``, case-sensitive): a pattern without ``/`` is matched against the
file name, one with ``/`` against the whole path; a change matches when its path or its
rename source matches a pattern and neither matches an ``allow`` pattern. Symlinks are
never withheld (their target is a path, not a secret, and replay needs it).

On by default with ``DEFAULT_PATTERNS``; settings ``secret_files`` (replaces the list),
``secret_files_allow`` (e.g. ``.env.example``) and ``redact = false`` (off), see
``ledger.config``.
"""

from __future__ import annotations

import re
from fnmatch import translate
from typing import Mapping, Sequence

from schemas import FileMode, Operation, SwarmEvent, TargetType

__all__ = ["SecretFilesPolicy", "DEFAULT_PATTERNS", "DEFAULT_ALLOW", "WITHHELD_SECRET_FILE"]

#: ``content_withheld`` reason written by this policy.
WITHHELD_SECRET_FILE = "secret-file"

#: Secret-file patterns on by default (file names unless they hold a "/").
DEFAULT_PATTERNS: tuple[str, ...] = (
    ".env", ".env.*", "*.env", ".envrc",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.kdbx",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    ".npmrc", ".pypirc", ".netrc", "_netrc", ".git-credentials", ".pgpass", ".htpasswd",
    "credentials", "credentials.json", "credentials.*", "*-credentials.json", "secrets.*",
    "*.tfvars", "service-account*.json", "kubeconfig",
    ".aws/credentials", ".docker/config.json",
)
#: Allowed by default: templates meant to be committed.
DEFAULT_ALLOW: tuple[str, ...] = (
    ".env.example", ".env.sample", ".env.template", ".env.dist", "*.env.example", "*.pub",
)


class _Matcher:
    """fnmatch patterns compiled into two regexes: file-name patterns (no "/") and path
    patterns (matched against the path and any of its tails)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        names = [translate(p) for p in patterns if "/" not in p]
        paths = [translate(p) for p in patterns if "/" in p] + [translate("*/" + p) for p in patterns if "/" in p]
        self.names = re.compile("|".join(names)) if names else None
        self.paths = re.compile("|".join(paths)) if paths else None

    def __call__(self, path: str) -> bool:
        name = path.rsplit("/", 1)[-1]
        return bool((self.names is not None and self.names.match(name))
                    or (self.paths is not None and self.paths.match(path)))


class SecretFilesPolicy:
    """``WritePolicy`` withholding the content of secret files (module docstring).

    ``patterns``/``allow``: fnmatch patterns (defaults ``DEFAULT_PATTERNS``/
    ``DEFAULT_ALLOW``).
    """

    name = "secret-files"

    def __init__(self, patterns: Sequence[str] | None = None, allow: Sequence[str] | None = None) -> None:
        self.patterns = tuple(DEFAULT_PATTERNS if patterns is None else patterns)
        self.allow = tuple(DEFAULT_ALLOW if allow is None else allow)
        self._secret = _Matcher(self.patterns)
        self._allowed = _Matcher(self.allow)

    def is_secret(self, path: str) -> bool:
        """True when the content of ``path`` (project-relative, '/'-separated) is withheld."""
        return bool(path) and self._secret(path) and not self._allowed(path)

    def apply(self, event: SwarmEvent, blobs: Mapping[str, bytes]) -> tuple[SwarmEvent, Mapping[str, bytes]]:
        """``WritePolicy.apply``: a matching file change gets ``content_withheld`` and no
        diff (so the ledger stores none of its content); other events pass unchanged."""
        sc = event.state_change
        if (sc is None or sc.target_type != TargetType.FILE or sc.operation == Operation.DELETE
                or sc.file_mode == FileMode.SYMLINK or sc.content_withheld):
            return event, blobs
        if not (self.is_secret(sc.target_resource) or self.is_secret(sc.previous_resource)):
            return event, blobs
        changed = sc.model_copy(update={"content_withheld": WITHHELD_SECRET_FILE, "diff_patch": ""})
        # The bytes may stay in ``blobs``: the ledger stores only the content an event
        # names (``content_hash``), and a withheld change names none. (Removing them
        # would break another change of the same batch with the same bytes.)
        return event.model_copy(update={"state_change": changed}), blobs
