"""Group commit: many appends share one SQLite transaction and one fsync.

Used by ``Ledger(path, durability="group")``. Writes from every thread of the process
go through ONE connection, serialized by a re-entrant lock. The first write opens a
``BEGIN IMMEDIATE`` transaction; every write runs inside its own ``SAVEPOINT`` (so a
failing append rolls back alone and raises in its caller, synchronously, like in
``full`` mode); the transaction commits (``synchronous=FULL``: one fsync for the whole
group) when the first of these happens:

* it has been open ``window_s`` seconds (default 0.010 s = 10 ms),
* it holds ``max_events`` writes (default 1000),
* someone calls ``flush()`` (or ``Ledger.flush()``/``close()``, or the process exits
  normally: an ``atexit`` hook flushes).

**Durability window.** A record call in group mode returns once its event is written
into the open transaction, *before* it is durable: a ``kill -9`` or power loss can lose
the writes of the last ``window_s`` seconds (at most ``max_events`` writes).
``flush()`` returns only when everything appended before it was called is committed
and fsynced. A commit that fails (disk full) loses that group: the error is raised by
the next write or ``flush()`` of this ledger (and logged), never swallowed.

**Visibility.** Until its group commits, an event is visible only inside the writer
(``Ledger`` reads made *within* a write transaction, e.g. ``record_with_state``).
Other connections, threads' plain reads and other processes see it after the commit.

The open transaction holds SQLite's write lock for at most ``window_s``; writers in
other processes wait for it through ``busy_timeout`` (they never fail with
``database is locked`` unless the lock is held longer than the busy timeout).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import sqlite3
import threading
import time
import weakref
from typing import Callable, Iterator

from ledger.errors import StoreError

log = logging.getLogger(__name__)

#: Default longest time (seconds) an appended event waits for its commit.
DEFAULT_WINDOW_S = 0.010
#: Default largest number of writes in one group (one transaction, one fsync).
DEFAULT_MAX_EVENTS = 1000


class GroupCommitter:
    """Owns the shared write connection of a group-commit ``Ledger``.

    ``connect`` opens a configured SQLite connection (called once, here).
    ``window_s`` (seconds) and ``max_events`` bound the durability window.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        window_s: float = DEFAULT_WINDOW_S,
        max_events: int = DEFAULT_MAX_EVENTS,
        describe: str = "ledger",
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"group commit window must be > 0 seconds, not {window_s}")
        if max_events < 1:
            raise ValueError(f"group commit max_events must be >= 1, not {max_events}")
        self.window_s = window_s
        self.max_events = max_events
        self.describe = describe
        self._conn = connect()
        self._lock = threading.RLock()
        self._depth = 0  # savepoint nesting depth of the lock holder
        self._opened_at: float | None = None  # monotonic time the group began
        self._pending = 0  # writes in the open group
        self._failure: StoreError | None = None
        self._wake = threading.Condition(threading.Lock())
        self._closed = False
        #: Totals since open: committed groups and writes (for benchmarks and status).
        self.groups_committed = 0
        self.writes_committed = 0
        self._thread = threading.Thread(target=self._committer, name="ledger-group-commit", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        self._atexit = lambda: (lambda gc: gc and gc.close())(ref())
        atexit.register(self._atexit)

    @property
    def connection(self) -> sqlite3.Connection:
        """The shared write connection (use only inside ``transaction()``)."""
        return self._conn

    # ----------------------------------------------------------------- writes
    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write inside the open group: a SAVEPOINT released on success, rolled back
        (alone) on error. Nested use by the same thread nests savepoints.

        Raises ``StoreError`` if the ledger is closed or a previous group failed.
        """
        with self._lock:
            if self._closed:
                raise StoreError(f"{self.describe} is closed")
            self._raise_failure()
            conn = self._conn
            if not conn.in_transaction:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    raise StoreError(f"{self.describe}: cannot start a write: {exc}") from exc
                self._opened_at = time.monotonic()
                with self._wake:
                    self._wake.notify()
            self._depth += 1
            name = f"g{self._depth}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                self._depth -= 1
                raise
            conn.execute(f"RELEASE {name}")
            self._depth -= 1
            if self._depth == 0:
                self._pending += 1
                if self._pending >= self.max_events or self._age() >= self.window_s:
                    self._commit()
                    self._raise_failure()

    def flush(self) -> None:
        """Commit the open group now; returns when everything appended before the call
        is durable. Raises ``StoreError`` if this or an earlier group failed to commit."""
        with self._lock:
            if self._depth == 0:
                self._commit()
            self._raise_failure()

    def close(self) -> None:
        """Flush, stop the committer thread and close the connection (idempotent)."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._depth == 0:
                    self._commit()
            finally:
                self._closed = True
                with self._wake:
                    self._wake.notify()
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
        with contextlib.suppress(Exception):
            atexit.unregister(self._atexit)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    # ----------------------------------------------------------------- internals
    def _age(self) -> float:
        return 0.0 if self._opened_at is None else time.monotonic() - self._opened_at

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _commit(self) -> None:
        """Commit the open group (caller holds the lock and is not inside a savepoint)."""
        conn = self._conn
        if not conn.in_transaction:
            return
        count = self._pending
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._failure = StoreError(
                f"{self.describe}: group commit of {count} write(s) failed and they were lost: "
                f"{exc} (free disk space, then record again)"
            )
            self._failure.__cause__ = exc
            log.error("%s", self._failure)
        else:
            self.groups_committed += 1
            self.writes_committed += count
        finally:
            self._pending = 0
            self._opened_at = None

    def _committer(self) -> None:
        """Background thread: commits a group once it is ``window_s`` old."""
        while True:
            with self._wake:
                if self._closed:
                    return
                opened = self._opened_at
                if opened is None:
                    self._wake.wait(timeout=1.0)
                    continue
                delay = opened + self.window_s - time.monotonic()
                if delay > 0:
                    self._wake.wait(timeout=delay)
                    continue
            with self._lock:
                if self._closed:
                    return
                if self._depth == 0 and self._opened_at is not None and self._age() >= self.window_s:
                    self._commit()
