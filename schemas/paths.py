"""What a recorded path and a symlink target may be: the rules checked when an event is
recorded (so no stored event can block a replay later) and again when replaying.

A path is relative to the project root, ``/``-separated, valid UTF-8, and:

* not empty, not absolute, no empty, ``.`` or ``..`` component, no NUL;
* at most ``MAX_PATH_BYTES`` bytes (4096, Linux ``PATH_MAX``) and every component at
  most ``MAX_COMPONENT_BYTES`` (255, ``NAME_MAX`` of ext4, XFS, APFS, NTFS): what common
  filesystems accept, so every recorded path can be written back;
* no component that git would treat as its own directory: ``.git`` in any case
  spelling, with trailing dots or spaces (NTFS drops them), with Unicode code points
  that HFS+ ignores (``.g\\u200cit``), or its NTFS short name ``git~1`` — the rules of
  git's ``verify_path`` (``is_hfs_dotgit``, ``is_ntfs_dotgit``). A replayed tree with a
  working ``.git/config`` would let whoever recorded it run commands in the next
  ``git status`` (``core.fsmonitor``).

A symlink is recorded with its target as content: the target must be 1 to
``MAX_SYMLINK_TARGET_BYTES`` bytes (4095: ``PATH_MAX`` less the terminating NUL) without
NUL, and a symlink may not be named ``.gitmodules``, ``.gitattributes``, ``.gitignore`` or
``.mailmap`` (git refuses these as symlinks: CVE-2018-11235 and its 2.32 follow-ups).
No I/O here.
"""

from __future__ import annotations

import re

__all__ = [
    "MAX_PATH_BYTES",
    "MAX_COMPONENT_BYTES",
    "MAX_SYMLINK_TARGET_BYTES",
    "check_relative_path",
    "check_symlink",
    "is_git_dir_name",
]

#: Longest recorded path, in UTF-8 bytes (Linux PATH_MAX).
MAX_PATH_BYTES = 4096
#: Longest path component, in UTF-8 bytes (NAME_MAX of ext4/XFS/APFS/NTFS).
MAX_COMPONENT_BYTES = 255
#: Longest symlink target, in bytes (PATH_MAX less the terminating NUL).
MAX_SYMLINK_TARGET_BYTES = 4095

#: Code points HFS+ ignores when comparing names (git's ``is_hfs_dotgit``).
_HFS_IGNORABLE = re.compile("[\u200c\u200d\u200e\u200f\u202a-\u202e\u206a-\u206f\ufeff]")
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
#: Files git refuses as symlinks (``.gitmodules`` since 2.18, the others since 2.32).
_NO_SYMLINK = frozenset({".gitmodules", ".gitattributes", ".gitignore", ".mailmap"})


def _canonical(component: str) -> str:
    """A component as git's HFS+/NTFS checks see it: ignorable code points removed,
    trailing dots and spaces stripped (NTFS), case folded."""
    return _HFS_IGNORABLE.sub("", component).rstrip(". ").casefold()


def is_git_dir_name(component: str) -> bool:
    """True when ``component`` names git's own directory on some filesystem: ``.git``
    in any case spelling or disguise (HFS+, NTFS), or the NTFS short name ``git~1``."""
    name = _canonical(component)
    return name in (".git", "git~1")


def check_relative_path(path: str) -> str:
    """Validate a project-relative, '/'-separated path and return it unchanged.

    Refused (see the module docstring): empty, absolute (leading '/' or a drive letter),
    '.' or '..' or empty components, NUL, text that is not valid UTF-8 (surrogates from
    ``os.fsdecode`` of undecodable bytes), over ``MAX_PATH_BYTES`` or a component over
    ``MAX_COMPONENT_BYTES``, and a ``.git`` component in any spelling. Other control
    characters (a tab, a newline) are legal in git paths and kept; they are escaped
    when shown. Raises ``ValueError`` saying which rule and where.
    """
    if not path:
        raise ValueError("path is empty")
    try:
        size = len(path.encode("utf-8"))  # surrogates (undecodable bytes) cannot be encoded
    except UnicodeEncodeError:
        raise ValueError(f"path {path!r} is not valid UTF-8") from None
    if "\x00" in path:
        raise ValueError(f"path {path[:200]!r} contains a NUL byte")
    if size > MAX_PATH_BYTES:
        raise ValueError(f"path {path[:80]!r}... is {size:,} bytes long; paths may have at most "
                         f"{MAX_PATH_BYTES:,} bytes (PATH_MAX)")
    if path.startswith("/") or _DRIVE.match(path):
        raise ValueError(f"path {path!r} is absolute; paths are relative to the project root")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(
                f"path {path!r} has an empty, '.' or '..' component; "
                "use a normalized path relative to the project root"
            )
        if len(part) * 4 > MAX_COMPONENT_BYTES and len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise ValueError(
                f"path {path[:80]!r} has a component of {len(part.encode('utf-8')):,} bytes; "
                f"a file name may have at most {MAX_COMPONENT_BYTES} bytes (NAME_MAX)")
        if is_git_dir_name(part):
            raise ValueError(
                f"path {path!r} goes through {part!r}, git's own directory: it is never recorded or "
                "replayed (a replayed .git could run commands on the next `git status`)")
    return path


def check_symlink(path: str, target: bytes) -> None:
    """Validate a symlink recorded at ``path`` with link target ``target`` (its content).
    Raises ``ValueError``: an empty target, a NUL byte, over ``MAX_SYMLINK_TARGET_BYTES``,
    or a name git refuses as a symlink (``.gitmodules``, ``.gitattributes``, ...)."""
    name = _canonical(path.rsplit("/", 1)[-1])
    if name in _NO_SYMLINK:
        raise ValueError(f"{path!r} cannot be a symlink: git refuses {name} as a symlink "
                         "(it would let a checkout read or write outside the repository)")
    if not target:
        raise ValueError(f"symlink {path!r} has an empty target")
    if b"\x00" in target:
        raise ValueError(f"symlink {path!r} has a NUL byte in its target")
    if len(target) > MAX_SYMLINK_TARGET_BYTES:
        raise ValueError(f"symlink {path!r} has a target of {len(target):,} bytes; at most "
                         f"{MAX_SYMLINK_TARGET_BYTES:,} bytes are allowed (PATH_MAX)")
