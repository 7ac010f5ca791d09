"""What ``git archive`` does to a commit's files: the repository's gitattributes.

``git archive <commit>`` does not export the committed blob bytes verbatim. For every
regular file it applies the checkout conversions of gitattributes(5) and git-config(1)
(``text``/``eol``/``crlf`` line endings, ``core.autocrlf``, ``ident``, ``filter``
smudge drivers, ``working-tree-encoding``), expands ``$Format:...$`` placeholders in
``export-subst`` files for that commit, and leaves out ``export-ignore`` paths and
directories. The attributes come from the archived tree's ``.gitattributes`` files (read
as if from the index), ``$GIT_DIR/info/attributes``, the global file
(``core.attributesFile``, default ``$XDG_CONFIG_HOME/git/attributes``) and the system
file (``$(prefix)/etc/gitattributes``).

This module finds out whether a history can be affected at all
(``attribute_sources``), which paths of a commit are affected (``AttributeReader``:
``git read-tree`` into a temporary index, then one ``git check-attr --cached -z --stdin``
for all paths, the way ``git archive`` itself reads attributes; git 2.39 has no
``check-attr --source``), and reads the exported bytes of chosen paths
(``archive_files``: one ``git archive <commit> -- <paths>`` parsed with ``tarfile``).
Rules mirror git's ``convert.c`` (``convert_attrs``, ``output_eol``) and ``archive.c``
(``write_archive_entry``, ``queue_or_write_archive_entry``), git 2.39.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, NamedTuple

from nervous_system.gitimport.errors import GitAttributesError
from nervous_system.gitimport.plumbing import Git

__all__ = [
    "ATTRIBUTES",
    "RAW",
    "IGNORED",
    "CONVERT",
    "SUBST",
    "GitAttributesError",
    "ConvertConfig",
    "read_config",
    "attribute_sources",
    "is_attributes_file",
    "classify",
    "PathClass",
    "AttributeReader",
    "archive_chunks",
    "archive_files",
]

#: The attributes that change what ``git archive`` writes for a path (gitattributes(5)).
ATTRIBUTES = ("export-ignore", "export-subst", "text", "eol", "crlf", "ident", "filter",
              "working-tree-encoding")

#: Path classes. RAW: archive writes the committed bytes. IGNORED: archive leaves the
#: path out (``export-ignore`` on it or on a parent directory). CONVERT: archive may
#: rewrite the bytes (line endings, ident, filter, encoding), read them from archive.
#: SUBST: ``export-subst`` (plus any conversion): the bytes depend on the commit.
RAW, IGNORED, CONVERT, SUBST = "raw", "ignored", "convert", "subst"

#: Bytes of pathspec arguments per ``git archive`` run (Linux limits one argument to
#: 128 KiB and all of them to ARG_MAX, usually 2 MiB).
MAX_ARG_BYTES = 96 * 1024
#: Paths per ``git archive`` run (bounds the memory one run's output can take).
MAX_ARCHIVE_PATHS = 500


class PathClass(NamedTuple):
    """A path's class and, for CONVERT/SUBST, its attribute values (in ``ATTRIBUTES``
    order): two paths' exports can only differ between two attribute sets when these
    differ (e.g. ``text`` -> ``text=auto`` keeps CONVERT but changes the bytes)."""

    cls: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConvertConfig:
    """The configuration that decides line-ending conversion on checkout.

    ``autocrlf``: ``"false"``, ``"true"`` or ``"input"`` (``core.autocrlf``);
    ``eol``: ``"lf"``, ``"crlf"``, ``"native"`` or ``""`` (``core.eol``);
    ``attributes_file``: ``core.attributesFile`` with ``~`` expanded, or None.
    """

    autocrlf: str = "false"
    eol: str = ""
    attributes_file: str | None = None

    @property
    def text_eol_is_crlf(self) -> bool:
        """git's ``text_eol_is_crlf()``: the line ending of ``text`` files on checkout."""
        if self.autocrlf == "true":
            return True
        if self.autocrlf == "input":
            return False
        if self.eol == "crlf":
            return True
        if self.eol in ("", "native"):
            return os.name == "nt"  # git for Windows is built with NATIVE_CRLF
        return False


def _config_bool(value: str | None) -> bool:
    """git's ``git_config_bool``: no value is true; "" is false; yes/on/true/1..."""
    if value is None:
        return True
    v = value.strip().lower()
    if v in ("", "false", "no", "off"):
        return False
    if v in ("true", "yes", "on"):
        return True
    try:
        return int(v, 0) != 0
    except ValueError:
        return False


def read_config(git: Git) -> ConvertConfig:
    """``core.autocrlf``, ``core.eol`` and ``core.attributesFile`` as git sees them in
    the repository (all config levels, ``-c`` and ``GIT_CONFIG_*`` included).
    One git process. Raises ``GitAttributesError`` if git fails."""
    proc = git.run("config", "-z", "--get-regexp", r"^core\.(autocrlf|eol|attributesfile)$",
                   what="git config", ok_codes=(0, 1), error=GitAttributesError)  # 1: none is set
    values: dict[str, str | None] = {}
    for item in proc.split(b"\x00"):
        if not item:
            continue
        key, sep, value = item.partition(b"\n")
        values[key.decode("utf-8", "replace").lower()] = value.decode("utf-8", "replace") if sep else None
    raw_autocrlf = values.get("core.autocrlf", "false")
    if raw_autocrlf is not None and raw_autocrlf.strip().lower() == "input":
        autocrlf = "input"
    else:
        autocrlf = "true" if _config_bool(raw_autocrlf) else "false"
    eol = (values.get("core.eol") or "").strip().lower()
    attributes_file = values.get("core.attributesfile")
    if attributes_file:
        attributes_file = os.path.expanduser(attributes_file)
    return ConvertConfig(autocrlf=autocrlf, eol=eol, attributes_file=attributes_file or None)


def is_attributes_file(path: bytes) -> bool:
    """Whether a repository path is a ``.gitattributes`` file (at any depth)."""
    return path == b".gitattributes" or path.endswith(b"/.gitattributes")


def _global_attributes_file(config: ConvertConfig) -> str:
    if config.attributes_file:
        return config.attributes_file
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return os.path.join(xdg, "git", "attributes")
    return os.path.join(os.path.expanduser("~"), ".config", "git", "attributes")


def _system_attributes_files() -> list[str]:
    """Where git may read system-wide attributes: ``/etc/gitattributes`` and
    ``$(prefix)/etc/gitattributes`` next to the git binary (unless GIT_ATTR_NOSYSTEM)."""
    if "GIT_ATTR_NOSYSTEM" in os.environ and _config_bool(os.environ["GIT_ATTR_NOSYSTEM"]):
        return []
    found = ["/etc/gitattributes"]
    git = shutil.which("git")
    if git:
        prefix = os.path.dirname(os.path.dirname(os.path.realpath(git)))
        found.append(os.path.join(prefix, "etc", "gitattributes"))
    return found


def attribute_sources(first_attributes_commit: str | None, info_attributes: str,
                      config: ConvertConfig) -> list[str]:
    """Why ``git archive`` may differ from the committed bytes in this repository;
    empty when it cannot (then the committed bytes ARE the archive's bytes).

    ``first_attributes_commit``: the first commit of the imported history that has a
    ``.gitattributes`` file (any depth), or None; ``info_attributes``: the path of
    ``$GIT_DIR/info/attributes`` (``git rev-parse --git-path info/attributes``)."""
    reasons: list[str] = []
    if first_attributes_commit:
        reasons.append(f".gitattributes in the history (from commit {first_attributes_commit[:12]})")
    if os.path.isfile(info_attributes):
        reasons.append(f"{info_attributes}")
    global_file = _global_attributes_file(config)
    if os.path.isfile(global_file):
        reasons.append(f"global attributes file {global_file}")
    for system_file in _system_attributes_files():
        if os.path.isfile(system_file):
            reasons.append(f"system attributes file {system_file}")
            break
    if config.autocrlf == "true":
        reasons.append("core.autocrlf=true")
    return reasons


# ------------------------------------------------------------------ classes
_SPECIAL = ("unspecified", "unset")

# git's enum convert_crlf_action
_UNDEFINED, _BINARY, _TEXT, _TEXT_INPUT, _TEXT_CRLF, _AUTO, _AUTO_INPUT, _AUTO_CRLF = range(8)


def _crlf_action(value: str) -> int:
    """git's ``git_path_check_crlf`` for a ``text`` or ``crlf`` value."""
    if value == "set":
        return _TEXT
    if value == "unset":
        return _BINARY
    if value == "input":
        return _TEXT_INPUT
    if value == "auto":
        return _AUTO
    return _UNDEFINED


def _writes_crlf(values: Mapping[str, str], config: ConvertConfig) -> bool:
    """Whether checkout may turn LF into CRLF for a path (git's ``convert_attrs`` then
    ``output_eol``); when False, checkout leaves the line endings as committed."""
    action = _crlf_action(values.get("text", "unspecified"))
    if action == _UNDEFINED:
        action = _crlf_action(values.get("crlf", "unspecified"))
    if action != _BINARY:
        eol = values.get("eol", "unspecified")
        if action == _AUTO and eol == "lf":
            action = _AUTO_INPUT
        elif action == _AUTO and eol == "crlf":
            action = _AUTO_CRLF
        elif eol == "lf":
            action = _TEXT_INPUT
        elif eol == "crlf":
            action = _TEXT_CRLF
    if action == _TEXT:
        action = _TEXT_CRLF if config.text_eol_is_crlf else _TEXT_INPUT
    if action == _UNDEFINED:
        action = {"true": _AUTO_CRLF, "input": _AUTO_INPUT}.get(config.autocrlf, _BINARY)
    if action in (_TEXT_CRLF, _AUTO_CRLF):
        return True
    return action == _AUTO and config.text_eol_is_crlf


def classify(values: Mapping[str, str], config: ConvertConfig, *, in_ignored_dir: bool = False) -> str:
    """The class (``RAW``, ``IGNORED``, ``CONVERT``, ``SUBST``) of a path from its
    ``git check-attr`` values (``"set"``, ``"unset"``, ``"unspecified"`` or a value).

    Conservative: anything that might change the bytes is CONVERT, and the bytes are
    then read from ``git archive`` itself; only RAW is a promise that archive writes
    the committed blob."""
    if in_ignored_dir or values.get("export-ignore") == "set":
        return IGNORED
    if values.get("export-subst") == "set":
        return SUBST
    for attr in ("ident", "filter", "working-tree-encoding"):
        if values.get(attr, "unspecified") not in _SPECIAL:
            return CONVERT
    return CONVERT if _writes_crlf(values, config) else RAW


# ------------------------------------------------------------------ git processes
def _parents(path: str) -> Iterable[str]:
    """``a/b/c`` -> ``a/``, ``a/b/`` (how git archive names directories for attributes)."""
    at = path.find("/")
    while at != -1:
        yield path[:at + 1]
        at = path.find("/", at + 1)


class AttributeReader:
    """Classes of paths as ``git archive <commit>`` sees them.

    ``classes(commit, paths)`` reads the tree of ``commit`` into a temporary index
    (``GIT_INDEX_FILE``; the repository's own index is never touched) and asks ONE
    ``git check-attr --cached -z --stdin`` about every path and every parent directory
    (with a trailing slash, as archive does: ``export-ignore`` on a directory drops its
    whole subtree). Attributes only change when a ``.gitattributes`` changes, so one
    call per such commit serves every commit up to the next one. Use as a context
    manager (or call ``close``) to delete the temporary index."""

    def __init__(self, git: Git, config: ConvertConfig) -> None:
        self.git = git
        self.config = config
        self.calls = 0
        self._dir = tempfile.mkdtemp(prefix="ledger-gitattributes-")

    def classes(self, commit: str, paths: Iterable[str]) -> dict[str, PathClass]:
        """``{path: PathClass}`` for the given paths (files and symlinks,
        repository-relative, ``/``-separated) at ``commit``, leaving out RAW paths. Two
        git processes. Raises ``GitAttributesError``."""
        files = sorted(set(paths))
        if not files:
            return {}
        env = dict(self.git.env)
        env["GIT_INDEX_FILE"] = os.path.join(self._dir, "index")
        self.git.run("read-tree", commit, env=env, what=f"git read-tree {commit}", error=GitAttributesError)
        dirs = sorted({d for p in files for d in _parents(p)})
        query = b"".join(p.encode("utf-8") + b"\x00" for p in dirs + files)
        out = self.git.run("check-attr", "--cached", "-z", "--stdin", *ATTRIBUTES, env=env, input=query,
                           what=f"git check-attr (attributes at commit {commit})", error=GitAttributesError)
        self.calls += 1
        tokens = out.split(b"\x00")
        if tokens and tokens[-1] == b"":
            tokens.pop()
        if len(tokens) % 3:
            raise GitAttributesError("unexpected git check-attr output (not path/attribute/value triples)")
        values: dict[str, dict[str, str]] = {}
        for i in range(0, len(tokens), 3):
            path = tokens[i].decode("utf-8", "surrogateescape")
            values.setdefault(path, {})[tokens[i + 1].decode("ascii", "replace")] = \
                tokens[i + 2].decode("utf-8", "surrogateescape")
        ignored_dirs = {d for d in dirs if values.get(d, {}).get("export-ignore") == "set"}
        out_classes: dict[str, PathClass] = {}
        for path in files:
            in_ignored = bool(ignored_dirs) and any(d in ignored_dirs for d in _parents(path))
            own = values.get(path, {})
            cls = classify(own, self.config, in_ignored_dir=in_ignored)
            if cls == IGNORED:
                out_classes[path] = PathClass(cls)
            elif cls != RAW:
                out_classes[path] = PathClass(cls, tuple(own.get(a, "unspecified") for a in ATTRIBUTES))
        return out_classes

    def close(self) -> None:
        """Delete the temporary index."""
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "AttributeReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def archive_chunks(paths: Iterable[str]) -> list[list[str]]:
    """``paths`` sorted, deduplicated and cut into the pathspec lists of one
    ``git archive`` run each (``MAX_ARG_BYTES``, ``MAX_ARCHIVE_PATHS``)."""
    chunks: list[list[str]] = []
    chunk: list[str] = []
    size = 0
    for p in sorted(set(paths)):
        n = len(p.encode("utf-8")) + 1
        if chunk and (size + n > MAX_ARG_BYTES or len(chunk) >= MAX_ARCHIVE_PATHS):
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(p)
        size += n
    if chunk:
        chunks.append(chunk)
    return chunks


def archive_files(git: Git, commit: str, chunk: list[str]) -> Iterator[tuple[str, bytes]]:
    """``(path, bytes)`` for each path of ``chunk`` (one of ``archive_chunks``) that
    ``git archive <commit>`` exports as a regular file, with the bytes it exports
    (conversions and export-subst applied). Paths that archive leaves out
    (``export-ignore``) are not reported.

    Every path must be a regular file of ``commit``'s tree (archive refuses a pathspec
    that matches nothing). Pathspecs are literal (``GIT_LITERAL_PATHSPECS=1``). ONE
    ``git archive`` run, its tar output streamed through ``tarfile``. Raises
    ``GitAttributesError``."""
    env = dict(git.env)
    env["GIT_LITERAL_PATHSPECS"] = "1"
    chosen = set(chunk)
    with tempfile.TemporaryFile() as err:
        proc = git.popen(["archive", "--format=tar", commit, "--", *chunk], env=env, stderr=err,
                         error=GitAttributesError)
        problem: Exception | None = None
        try:
            assert proc.stdout is not None
            with tarfile.open(fileobj=proc.stdout, mode="r|", encoding="utf-8",
                              errors="surrogateescape") as tar:
                for member in tar:
                    if not member.isreg() or member.name not in chosen:
                        continue
                    handle = tar.extractfile(member)
                    assert handle is not None
                    yield member.name, handle.read()
            # tarfile stops at the end-of-archive marker; git still writes the
            # padding to a whole record: read it, or git dies of SIGPIPE
            while proc.stdout.read(1 << 16):
                pass
        except (tarfile.TarError, OSError) as exc:
            problem = exc
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
            code = proc.wait()
        if code != 0 or problem is not None:
            err.seek(0)
            message = (err.read().decode("utf-8", "replace").strip() or
                       (str(problem) if problem is not None else f"exit status {code}"))
            raise GitAttributesError(
                f"git archive {commit} failed: {message} (is the repository complete? run `git fsck`)"
            ) from problem
