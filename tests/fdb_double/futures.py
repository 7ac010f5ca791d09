"""Futures of the double and the emulated network thread that completes them.

A ``DFuture`` is what an ``FDBFuture*`` points at.  Most operations of the double finish
synchronously, so their futures are born ready; three kinds stay pending and are
completed by ``run_network`` (which the real ``fdb.impl`` runs on its daemon
"fdb-network-thread" through ``fdb_run_network``), as upstream completes futures on the
network thread:

- ``ready_at``: on_error backoff delays;
- ``retry``: operations blocked by an *unreachable cluster* fault, re-attempted on every
  tick until the fault is cleared;
- futures owned by a transaction (versionstamp, blocked operations), failed with
  transaction_timed_out (1031) when the transaction's timeout expires.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from . import clock
from .errors import INTERNAL_ERROR, FDBErr

TICK_SECONDS = 0.005


class Blocked(Exception):
    """Raised by an operation that cannot proceed (unreachable cluster).

    ``retry`` continues the operation later; it may raise Blocked again.
    """

    def __init__(self, retry: Callable[[], Any]):
        super().__init__("cluster unreachable")
        self.retry = retry


class DFuture:
    """A settable future: ``value`` or ``error`` (FDB code), plus callbacks."""

    def __init__(self, owner=None):
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._callbacks: list = []
        self.ready = False
        self.error = 0
        self.value: Any = None
        self.owner = owner                      # engine Transaction or None
        self.retry: Optional[Callable[[], Any]] = None
        self.ready_at: Optional[float] = None
        self.exception: Optional[BaseException] = None   # a non-FDB error met by a retried op

    def resolve(self, value: Any = None, error: int = 0) -> bool:
        """Complete the future once; later calls are ignored. Returns True if it completed now."""
        with self._lock:
            if self.ready:
                return False
            self.value, self.error, self.ready = value, error, True
            callbacks, self._callbacks = self._callbacks, []
        self._event.set()
        _pending.discard(self)
        for cb in callbacks:
            cb()
        return True

    def add_callback(self, cb: Callable[[], None]) -> None:
        """Call ``cb()`` when ready -- immediately, on this thread, if already ready (C API rule)."""
        with self._lock:
            if not self.ready:
                self._callbacks.append(cb)
                return
        cb()

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self._event.wait(timeout)

    # -- driven by the network thread --------------------------------------------------
    def poll(self) -> None:
        if self.ready:
            return
        owner = self.owner
        if owner is not None and owner.expired():
            owner.kill_timed_out()
            return
        if self.ready_at is not None and clock.now() >= self.ready_at:
            self.resolve()
            return
        if self.retry is not None:
            try:
                value = self.retry()
            except Blocked as b:
                self.retry = b.retry
            except FDBErr as e:
                self.resolve(error=e.code)
            except Exception as e:  # e.g. TransactionSizeCapExceeded: never kill the network thread
                self.exception = e
                self.resolve(error=INTERNAL_ERROR)
            else:
                self.resolve(value)


_pending: set = set()
_pending_lock = threading.Lock()


def schedule(f: DFuture) -> None:
    """Let the network thread poll ``f`` until it is ready."""
    with _pending_lock:
        if not f.ready:
            _pending.add(f)


def ready(value: Any = None, error: int = 0, owner=None) -> DFuture:
    f = DFuture(owner)
    f.resolve(value, error)
    return f


def run_op(owner, thunk: Callable[[], Any]) -> DFuture:
    """Run an operation; return a ready future, or a pending one if it is Blocked."""
    f = DFuture(owner)
    try:
        f.resolve(thunk())
    except FDBErr as e:
        f.resolve(error=e.code)
    except Blocked as b:
        f.retry = b.retry
        if owner is not None:
            owner.track(f)
        schedule(f)
    return f


def poll_all() -> None:
    """One network tick: poll every pending future."""
    with _pending_lock:
        todo = list(_pending)
    for f in todo:
        f.poll()
