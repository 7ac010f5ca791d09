"""Writing a replay's files on a second thread while the next contents are read.

Replaying a tree is two kinds of work per file: reading its content (a SQLite query, a
zstd delta chain, the SHA-256 check) and writing it (open, write, chmod, close). SQLite,
zstd, hashlib and the file system calls all release the GIL, so writing on a second
thread while the caller reads the next contents overlaps the two — as
``git archive | tar -x`` overlaps its two processes.

The reading stays on the caller's thread, so a history source (the local ledger's
per-thread SQLite connection, a hub client) is never used from another thread; the
background thread only runs the caller's ``write`` function. At most ``budget`` bytes
wait to be written, so memory stays bounded whatever the tree.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable, Generic, TypeVar

__all__ = ["PENDING_BYTES", "BackgroundWriter"]

T = TypeVar("T")

#: Bytes of read contents waiting to be written at most (one larger item may exceed it).
PENDING_BYTES = 32 * 1024 * 1024


class BackgroundWriter(Generic[T]):
    """Runs ``write(item)`` on one background thread for each item ``put``, in order.

    ``put(item, size)`` blocks while more than ``budget`` bytes (default
    ``PENDING_BYTES``) wait; ``finish()`` waits for every write; ``abort()`` drops what
    waits and stops. The first exception ``write`` raises stops the writing and is
    raised again by the next ``put`` or by ``finish``. Use as a context manager:
    leaving with an exception aborts, leaving normally finishes.
    """

    def __init__(self, write: Callable[[T], None], budget: int | None = None) -> None:
        self._write = write
        self._budget = PENDING_BYTES if budget is None else budget
        self._items: deque[tuple[T, int]] = deque()
        self._pending = 0
        self._closed = False
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, item: T, size: int) -> None:
        """Queue ``item`` (``size`` bytes) for writing. Raises what an earlier write raised."""
        with self._cond:
            while self._pending > self._budget and self._error is None:
                self._cond.wait()
            if self._error is not None:
                raise self._error
            self._items.append((item, size))
            self._pending += size
            self._cond.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="replay-writer", daemon=True)
            self._thread.start()

    def finish(self) -> None:
        """Wait until every queued item is written; raise what a write raised."""
        self._stop(drop=False)
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Drop the queued items and stop (the write in progress completes)."""
        self._stop(drop=True)

    def __enter__(self) -> "BackgroundWriter[T]":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()

    def _stop(self, *, drop: bool) -> None:
        with self._cond:
            self._closed = True
            if drop:
                self._items.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closed:
                    self._cond.wait()
                if not self._items:
                    return
                item, size = self._items.popleft()
            try:
                self._write(item)
            except BaseException as exc:  # raised again in the caller's thread
                with self._cond:
                    self._error = exc
                    self._items.clear()
                    self._pending = 0
                    self._cond.notify_all()
                return
            with self._cond:
                self._pending -= size
                self._cond.notify_all()
