"""Change notification for the warm collector: which paths of a work tree may have
changed since the last hook (Linux inotify through ctypes; nothing elsewhere).

The collector snapshots the work tree at almost every hook. A full walk stats every
file (5,000 files: ~100-300 ms of Python on a loaded 2-core machine); with a watch on
every directory, a hook only re-reads the paths the kernel reported. The snapshot and
the diff stay the shared ones (``nervous_system.worktree``): this module only
says which entries of the previous snapshot to refresh, and gives up — the caller then
takes a full snapshot — whenever it cannot be sure: the kernel's event queue overflowed,
a watch could not be added (watch limit), a ``.gitignore`` or git's exclude file
changed, or the platform has no inotify.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
import sys

__all__ = ["Watcher", "available"]

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800
IN_Q_OVERFLOW, IN_IGNORED = 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_ISDIR = 0x1000000, 0x2000000, 0x40000000
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000
MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)
_HEADER = struct.Struct("iIII")

_libc = None


def _lib():
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            lib.inotify_init1.argtypes = [ctypes.c_int]
            lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
            _libc = lib
        except (OSError, AttributeError):
            _libc = False
    return _libc or None


def available() -> bool:
    return _lib() is not None


class Unsure(Exception):
    """The watcher cannot vouch for the tree: take a full snapshot."""


class Watcher:
    """Watches every directory under ``root`` that ``skip_dir(rel)`` does not exclude.

    ``drain()`` returns the relative paths reported since the last call (files, and
    for a directory that appeared or vanished every path under it: ``dirs_added``,
    ``dirs_removed``), or raises ``Unsure``.
    """

    def __init__(self, root: str, skip_dir):
        lib = _lib()
        if lib is None:
            raise Unsure("no inotify on this platform")
        self.root = os.fspath(root)
        self.skip_dir = skip_dir
        self.fd = lib.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise Unsure(f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        self.dirs: dict[int, str] = {}  # watch descriptor -> relative dir ("" = root)
        self.wds: dict[str, int] = {}
        self.broken = False
        self.add_tree("")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def add_tree(self, rel: str) -> list[str]:
        """Watch ``rel`` and every directory below it (iteratively); returns the files
        and symlinks found (all of them are new to the caller)."""
        found: list[str] = []
        stack = [rel]
        while stack:
            d = stack.pop()
            full = os.path.join(self.root, d) if d else self.root
            wd = _lib().inotify_add_watch(self.fd, os.fsencode(full), MASK)
            if wd < 0:
                err = ctypes.get_errno()
                if err in (errno.ENOENT, errno.ENOTDIR):
                    continue  # gone already: its parent's event says so
                self.broken = True
                raise Unsure(f"inotify_add_watch {full}: {os.strerror(err)}")
            self.dirs[wd] = d
            self.wds[d] = wd
            try:
                with os.scandir(full) as it:
                    for entry in it:
                        child = f"{d}/{entry.name}" if d else entry.name
                        if entry.is_dir(follow_symlinks=False):
                            if not self.skip_dir(child):
                                stack.append(child)
                        else:
                            found.append(child)
            except (FileNotFoundError, NotADirectoryError):
                continue
        return found

    def _forget(self, rel: str) -> None:
        prefix = rel + "/"
        for d in [d for d in self.wds if d == rel or d.startswith(prefix)]:
            wd = self.wds.pop(d)
            self.dirs.pop(wd, None)
            _lib().inotify_rm_watch(self.fd, wd)

    def drain(self) -> tuple[set[str], set[str], set[str]]:
        """(paths, dirs_added, dirs_removed) reported since the last call."""
        if self.broken:
            raise Unsure("an earlier watch failed")
        paths: set[str] = set()
        added: set[str] = set()
        removed: set[str] = set()
        while True:
            try:
                buf = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            pos = 0
            while pos + _HEADER.size <= len(buf):
                wd, mask, _cookie, length = _HEADER.unpack_from(buf, pos)
                name = buf[pos + _HEADER.size: pos + _HEADER.size + length].rstrip(b"\0")
                pos += _HEADER.size + length
                if mask & IN_Q_OVERFLOW:
                    self.broken = True
                    raise Unsure("inotify queue overflow")
                if mask & IN_IGNORED:
                    d = self.dirs.pop(wd, None)
                    if d is not None and self.wds.get(d) == wd:
                        del self.wds[d]
                    continue
                d = self.dirs.get(wd)
                if d is None:
                    continue
                if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
                    if d == "":
                        self.broken = True
                        raise Unsure("the work tree root itself was removed or moved")
                    continue
                rel = f"{d}/{os.fsdecode(name)}" if d else os.fsdecode(name)
                if mask & IN_ISDIR:
                    if mask & (IN_CREATE | IN_MOVED_TO):
                        added.add(rel)
                    elif mask & (IN_DELETE | IN_MOVED_FROM):
                        removed.add(rel)
                        self._forget(rel)
                    continue
                paths.add(rel)
        return paths, added, removed
