"""Storage backends of the double: ordered bytes -> bytes with snapshots and a commit log.

Both backends implement the same small set of primitives; every FoundationDB rule
(conflict detection, versions, atomic ops, versionstamps, limits, faults) lives above
them in ``engine.py`` and ``Store.commit``, so the two modes share one implementation of
the semantics.

- ``MemoryStore``: in-process, multi-version (each key keeps a short history tagged with
  commit sequence numbers) so a snapshot sees exactly the commits before it.
- ``SqliteStore``: one SQLite file in WAL mode, shared by every process that opens the
  same cluster file.  A snapshot is an open read transaction on its own connection (WAL
  gives it a stable view); a commit is one ``BEGIN IMMEDIATE`` transaction that checks
  conflicts, applies the mutations, appends its write conflict ranges to the commit log
  and bumps the version -- atomically, so a client killed with SIGKILL leaves either the
  whole commit or none of it (``synchronous=NORMAL`` in WAL mode is durable across process
  crashes).

Snapshot isolation is by commit *sequence* (``seq``); the FoundationDB *version* (what
versionstamps carry, ~1e6 per second) is kept beside it and only ever grows.

Besides data and the fault plan, a store holds the test-only ``Settings`` (simulated link,
size cap) and the ``TransactionStats`` observer (``link.py``), so they are shared by every
process using the cluster file.  A snapshot carries the settings in force when it was
taken (read in the same query as its version, so obtaining a read version costs nothing
extra); an applied commit updates the observer inside its own store transaction.
"""

from __future__ import annotations

import abc
import bisect
import contextlib
import os
import sqlite3
import threading
from typing import Callable, Iterator, Optional, Sequence

from . import errors
from .errors import FDBErr
from .faults import Decision, FaultPlan, decide
from .link import Link, Settings, TransactionStats

Range = tuple  # (begin: bytes, end: bytes), end exclusive
KV = tuple     # (key: bytes, value: bytes)

_CHUNK = 256
_LOG_KEEP_VERSIONS = 20_000_000  # commit-log entries older than this are useless (1007 first)


def _intersects(ranges: Sequence[Range], b: bytes, e: bytes) -> bool:
    return any(rb < e and b < re for rb, re in ranges)


class Snapshot(abc.ABC):
    """A consistent read view. ``seq``: last commit visible; ``version``: its FDB version;
    ``settings``: the store's test-only knobs when the view was taken."""

    seq: int
    version: int
    settings: Settings = Settings()

    @abc.abstractmethod
    def get(self, key: bytes) -> Optional[bytes]:
        """The value of ``key`` in this view, or None."""

    @abc.abstractmethod
    def range(self, begin: bytes, end: bytes, reverse: bool = False) -> Iterator[KV]:
        """Yield (key, value) with begin <= key < end, ascending (or descending)."""

    def close(self) -> None:
        pass


class Writer(abc.ABC):
    """Mutation access inside one exclusive commit (sees its own earlier writes)."""

    seq: int
    version: int

    @abc.abstractmethod
    def get(self, key: bytes) -> Optional[bytes]:
        """The current value of ``key`` including this commit's writes, or None."""

    @abc.abstractmethod
    def set(self, key: bytes, value: bytes) -> None:
        """Write ``key`` = ``value``."""

    @abc.abstractmethod
    def clear_range(self, begin: bytes, end: bytes) -> None:
        """Remove every key with begin <= key < end."""

    @abc.abstractmethod
    def conflicts_after(self, seq: int, ranges: Sequence[Range]) -> bool:
        """True if a commit with sequence > ``seq`` wrote a range intersecting ``ranges``."""

    @abc.abstractmethod
    def log(self, seq: int, version: int, ranges: Sequence[Range]) -> None:
        """Record this commit's write conflict ranges for later conflict checks."""

    @abc.abstractmethod
    def note_commit(self, size: int) -> None:
        """Count this commit (``size`` bytes) in the observer, atomically with the commit."""


class Store(abc.ABC):
    """Backend interface + the shared commit protocol."""

    @abc.abstractmethod
    def snapshot(self) -> Snapshot:
        """A read view at the latest committed version."""

    @abc.abstractmethod
    def _exclusive(self) -> contextlib.AbstractContextManager:
        """Context manager yielding a Writer; commits on clean exit, discards on error."""

    @abc.abstractmethod
    def _plan_update(self, fn: Callable[[FaultPlan], tuple]) -> object:
        """Run ``fn(plan) -> (result, changed)`` atomically; persist the plan if changed."""

    @abc.abstractmethod
    def get_plan(self) -> FaultPlan:
        """The fault plan in force."""

    def set_plan(self, plan: FaultPlan) -> None:
        self._plan_update(lambda _old: (None, plan))

    # -- test-only knobs and the transaction-size observer (link.py) --------------------
    @abc.abstractmethod
    def get_settings(self) -> Settings:
        """The simulated link and size cap in force."""

    @abc.abstractmethod
    def set_settings(self, settings: Settings) -> None:
        """Replace the simulated link and size cap."""

    @abc.abstractmethod
    def get_stats(self) -> TransactionStats:
        """What the observer saw since the last reset."""

    @abc.abstractmethod
    def reset_stats(self) -> None:
        """Zero the observer."""

    @abc.abstractmethod
    def note_attempt(self, size: int, over_cap: bool = False) -> None:
        """Count a commit attempt of ``size`` bytes that was not applied."""

    def set_link(self, link: Optional[Link]) -> None:
        s = self.get_settings()
        self.set_settings(Settings(link=link or Link(), size_cap=s.size_cap))

    def set_size_cap(self, size_cap: Optional[int]) -> None:
        s = self.get_settings()
        self.set_settings(Settings(link=s.link, size_cap=size_cap))

    def dump(self) -> list:
        snap = self.snapshot()
        try:
            return list(snap.range(b"", b"\xff\xff\xff"))
        finally:
            snap.close()

    def decide(self, op: str, ranges: Sequence[Range]) -> Decision:
        """Consult the fault plan for one operation (atomic across processes)."""
        if not self.get_plan().faults:
            return Decision()

        def fn(plan):
            decision, changed = decide(plan, op, ranges)
            return decision, (plan if changed else None)

        return self._plan_update(fn)

    def commit(self, snap_seq: int, read_ranges: Sequence[Range], min_version: int,
               apply: Callable[[Writer, int], Sequence[Range]], size: Optional[int] = None) -> int:
        """Resolve and apply one transaction; return its commit version.

        ``read_ranges`` are checked against write conflict ranges of every commit after
        ``snap_seq`` (not_committed 1020 on intersection).  The commit version is
        ``max(last_version + 1, min_version)``; ``apply(writer, version)`` performs the
        mutations and returns the write conflict ranges to log.  ``size``: the commit's
        size, counted by the observer if the commit is applied.
        """
        with self._exclusive() as w:
            if read_ranges and w.conflicts_after(snap_seq, read_ranges):
                raise FDBErr(errors.NOT_COMMITTED)
            version = max(w.version + 1, min_version)
            write_ranges = apply(w, version)
            w.log(w.seq + 1, version, write_ranges)
            if size is not None:
                w.note_commit(size)
        return version


# ======================================================================================
# Memory backend
# ======================================================================================
class MemoryStore(Store):
    """Multi-version in-process store; thread-safe."""

    def __init__(self):
        self._lock = threading.RLock()
        self._keys: list = []                 # sorted, every key ever written
        self._hist: dict = {}                 # key -> [(seq, value|None), ...] ascending
        self._seq = 0
        self._version = 0
        self._log: list = []                  # [(seq, version, begin, end)]
        self._open: dict = {}                 # snapshot seq -> count (for history GC)
        self._plan = FaultPlan()
        self._settings = Settings()
        self._stats = TransactionStats()

    # -- reads -----------------------------------------------------------------------
    def _visible(self, key: bytes, seq: int) -> Optional[bytes]:
        for s, v in reversed(self._hist.get(key, ())):
            if s <= seq:
                return v
        return None

    def snapshot(self) -> Snapshot:
        with self._lock:
            snap = _MemSnapshot(self, self._seq, self._version)
            snap.settings = self._settings
            self._open[snap.seq] = self._open.get(snap.seq, 0) + 1
            return snap

    def _release(self, seq: int) -> None:
        with self._lock:
            n = self._open.get(seq, 0) - 1
            if n <= 0:
                self._open.pop(seq, None)
            else:
                self._open[seq] = n

    # -- commits ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self):
        with self._lock:
            w = _MemWriter(self)
            yield w
            w.flush()

    def _gc(self, key: bytes) -> None:
        floor = min(self._open) if self._open else self._seq
        hist = self._hist[key]
        keep_from = 0
        for i, (s, _v) in enumerate(hist):
            if s <= floor:
                keep_from = i
        if keep_from:
            del hist[:keep_from]

    # -- faults ----------------------------------------------------------------------
    def get_plan(self) -> FaultPlan:
        return self._plan

    def _plan_update(self, fn):
        with self._lock:
            result, new_plan = fn(self._plan)
            if new_plan is not None:
                self._plan = new_plan
            return result

    # -- knobs and observer --------------------------------------------------------------
    def get_settings(self) -> Settings:
        return self._settings

    def set_settings(self, settings: Settings) -> None:
        with self._lock:
            self._settings = settings

    def get_stats(self) -> TransactionStats:
        with self._lock:
            return TransactionStats(**vars(self._stats))

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = TransactionStats()

    def note_attempt(self, size: int, over_cap: bool = False) -> None:
        with self._lock:
            self._stats = self._stats.noted(size, committed=False, over_cap=over_cap)


class _MemSnapshot(Snapshot):
    def __init__(self, store: MemoryStore, seq: int, version: int):
        self._store, self.seq, self.version = store, seq, version
        self._closed = False

    def get(self, key):
        with self._store._lock:
            return self._store._visible(key, self.seq)

    def range(self, begin, end, reverse=False):
        st = self._store
        lo, hi = begin, end
        while True:
            with st._lock:
                keys = st._keys
                if reverse:
                    j = bisect.bisect_left(keys, hi)
                    i = max(bisect.bisect_left(keys, lo), j - _CHUNK)
                    chunk = [(k, st._visible(k, self.seq)) for k in reversed(keys[i:j])]
                else:
                    i = bisect.bisect_left(keys, lo)
                    j = min(bisect.bisect_left(keys, hi), i + _CHUNK)
                    chunk = [(k, st._visible(k, self.seq)) for k in keys[i:j]]
            if not chunk:
                return
            for k, v in chunk:
                if v is not None:
                    yield k, v
            if reverse:
                hi = chunk[-1][0]
            else:
                lo = chunk[-1][0] + b"\x00"

    def close(self):
        if not self._closed:
            self._closed = True
            self._store._release(self.seq)


class _MemWriter(Writer):
    def __init__(self, store: MemoryStore):
        self._st = store
        self.seq, self.version = store._seq, store._version
        self._pending: dict = {}       # key -> value|None, final state of touched keys
        self._cleared: list = []       # ranges cleared in this commit
        self._log_entry = None
        self._noted: Optional[int] = None

    def get(self, key):
        if key in self._pending:
            return self._pending[key]
        if _intersects(self._cleared, key, key + b"\x00"):
            return None
        return self._st._visible(key, self.seq)

    def set(self, key, value):
        self._pending[key] = value

    def clear_range(self, begin, end):
        for k in self._pending:
            if begin <= k < end:
                self._pending[k] = None
        self._cleared.append((begin, end))

    def conflicts_after(self, seq, ranges):
        for s, _v, b, e in reversed(self._st._log):
            if s <= seq:
                break
            if _intersects(ranges, b, e):
                return True
        return False

    def log(self, seq, version, ranges):
        self._log_entry = (seq, version, list(ranges))

    def note_commit(self, size):
        self._noted = size

    def flush(self):
        st = self._st
        if self._noted is not None:
            st._stats = st._stats.noted(self._noted, committed=True)
        seq, version, ranges = self._log_entry
        touched = dict(self._pending)
        for b, e in self._cleared:
            i, j = bisect.bisect_left(st._keys, b), bisect.bisect_left(st._keys, e)
            for k in st._keys[i:j]:
                if k not in touched and st._visible(k, self.seq) is not None:
                    touched[k] = None
        for k, v in touched.items():
            if k not in st._hist:
                bisect.insort(st._keys, k)
                st._hist[k] = []
            st._hist[k].append((seq, v))
        st._seq, st._version = seq, version
        st._log.extend((seq, version, b, e) for b, e in ranges)
        if len(st._log) > 4096:
            floor = version - _LOG_KEEP_VERSIONS
            st._log = [x for x in st._log if x[1] >= floor]
        for k in touched:
            st._gc(k)


# ======================================================================================
# SQLite backend
# ======================================================================================
_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv(key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta(id INTEGER PRIMARY KEY CHECK (id = 0),
                                seq INTEGER NOT NULL, version INTEGER NOT NULL, faults TEXT);
CREATE TABLE IF NOT EXISTS clog(seq INTEGER NOT NULL, version INTEGER NOT NULL,
                                begin BLOB NOT NULL, end BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS clog_seq ON clog(seq);
INSERT OR IGNORE INTO meta(id, seq, version, faults) VALUES (0, 0, 0, NULL);
CREATE TABLE IF NOT EXISTS knobs(id INTEGER PRIMARY KEY CHECK (id = 0), settings TEXT);
INSERT OR IGNORE INTO knobs(id, settings) VALUES (0, NULL);
CREATE TABLE IF NOT EXISTS txstats(id INTEGER PRIMARY KEY CHECK (id = 0),
                                   attempts INTEGER NOT NULL, commits INTEGER NOT NULL,
                                   max_attempted INTEGER NOT NULL, max_committed INTEGER NOT NULL,
                                   over_cap INTEGER NOT NULL);
INSERT OR IGNORE INTO txstats VALUES (0, 0, 0, 0, 0, 0);
"""


class SqliteStore(Store):
    """A store in one SQLite WAL file, shareable between processes."""

    def __init__(self, path: str, create: bool = False):
        self.path = path
        if not create and not os.path.exists(path):
            raise FDBErr(errors.CONNECTION_STRING_INVALID)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._pool: list = []
        self._wconn: Optional[sqlite3.Connection] = None
        self._wlock = threading.RLock()
        if create:
            conn = self._connect()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=60000")
        return conn

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:  # connections must not cross fork(); drop them unclosed
            self._pid, self._pool, self._wconn = os.getpid(), [], None
            self._wlock = threading.RLock()

    def _take(self) -> sqlite3.Connection:
        with self._lock:
            self._check_fork()
            return self._pool.pop() if self._pool else self._connect()

    def _give(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if os.getpid() == self._pid and len(self._pool) < 32:
                self._pool.append(conn)
            else:
                conn.close()

    def snapshot(self) -> Snapshot:
        conn = self._take()
        conn.execute("BEGIN")
        seq, version, settings = conn.execute(
            "SELECT m.seq, m.version, k.settings FROM meta m, knobs k WHERE m.id = 0 AND k.id = 0").fetchone()
        snap = _SqlSnapshot(self, conn, seq, version)
        snap.settings = Settings.loads(settings)
        return snap

    @contextlib.contextmanager
    def _exclusive(self):
        with self._lock:
            self._check_fork()
        with self._wlock:
            if self._wconn is None:
                self._wconn = self._connect()
            conn = self._wconn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqlWriter(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def get_plan(self) -> FaultPlan:
        conn = self._take()
        try:
            (text,) = conn.execute("SELECT faults FROM meta WHERE id = 0").fetchone()
        finally:
            self._give(conn)
        return FaultPlan.loads(text)

    def _plan_update(self, fn):
        with self._exclusive() as w:
            (text,) = w.conn.execute("SELECT faults FROM meta WHERE id = 0").fetchone()
            result, new_plan = fn(FaultPlan.loads(text))
            if new_plan is not None:
                w.conn.execute("UPDATE meta SET faults = ? WHERE id = 0", (new_plan.dumps(),))
        return result

    # -- knobs and observer --------------------------------------------------------------
    def _query_one(self, sql: str) -> tuple:
        conn = self._take()
        try:
            return conn.execute(sql).fetchone()
        finally:
            self._give(conn)

    def get_settings(self) -> Settings:
        (text,) = self._query_one("SELECT settings FROM knobs WHERE id = 0")
        return Settings.loads(text)

    def set_settings(self, settings: Settings) -> None:
        with self._exclusive() as w:
            w.conn.execute("UPDATE knobs SET settings = ? WHERE id = 0", (settings.dumps(),))

    def get_stats(self) -> TransactionStats:
        row = self._query_one("SELECT attempts, commits, max_attempted, max_committed, over_cap "
                              "FROM txstats WHERE id = 0")
        return TransactionStats(*row)

    def reset_stats(self) -> None:
        with self._exclusive() as w:
            w.conn.execute("UPDATE txstats SET attempts = 0, commits = 0, max_attempted = 0, "
                           "max_committed = 0, over_cap = 0 WHERE id = 0")

    def note_attempt(self, size: int, over_cap: bool = False) -> None:
        with self._exclusive() as w:
            w.conn.execute("UPDATE txstats SET attempts = attempts + 1, max_attempted = MAX(max_attempted, ?), "
                           "over_cap = over_cap + ? WHERE id = 0", (size, int(over_cap)))


class _SqlSnapshot(Snapshot):
    def __init__(self, store: SqliteStore, conn, seq: int, version: int):
        self._store, self._conn, self.seq, self.version = store, conn, seq, version
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            row = self._conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def range(self, begin, end, reverse=False):
        lo, hi = begin, end
        while lo < hi:
            with self._lock:
                if reverse:
                    rows = self._conn.execute(
                        "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key DESC LIMIT ?",
                        (lo, hi, _CHUNK)).fetchall()
                else:
                    rows = self._conn.execute(
                        "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key LIMIT ?",
                        (lo, hi, _CHUNK)).fetchall()
            for k, v in rows:
                yield bytes(k), bytes(v)
            if len(rows) < _CHUNK:
                return
            if reverse:
                hi = bytes(rows[-1][0])
            else:
                lo = bytes(rows[-1][0]) + b"\x00"

    def close(self):
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                conn.close()
                return
            self._store._give(conn)


class _SqlWriter(Writer):
    def __init__(self, conn):
        self.conn = conn
        self.seq, self.version = conn.execute("SELECT seq, version FROM meta WHERE id = 0").fetchone()

    def get(self, key):
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def set(self, key, value):
        self.conn.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)", (key, value))

    def clear_range(self, begin, end):
        self.conn.execute("DELETE FROM kv WHERE key >= ? AND key < ?", (begin, end))

    def conflicts_after(self, seq, ranges):
        for b, e in ranges:
            if self.conn.execute("SELECT 1 FROM clog WHERE seq > ? AND begin < ? AND end > ? LIMIT 1",
                                 (seq, e, b)).fetchone():
                return True
        return False

    def log(self, seq, version, ranges):
        self.conn.executemany("INSERT INTO clog(seq, version, begin, end) VALUES (?, ?, ?, ?)",
                              [(seq, version, b, e) for b, e in ranges])
        self.conn.execute("UPDATE meta SET seq = ?, version = ? WHERE id = 0", (seq, version))
        if seq % 512 == 0:
            self.conn.execute("DELETE FROM clog WHERE version < ?", (version - _LOG_KEEP_VERSIONS,))

    def note_commit(self, size):
        self.conn.execute("UPDATE txstats SET attempts = attempts + 1, commits = commits + 1, "
                          "max_attempted = MAX(max_attempted, ?), max_committed = MAX(max_committed, ?) "
                          "WHERE id = 0", (size, size))
