"""The transaction engine: FoundationDB client semantics over a ``Store``.

This is the part of the double that plays ``ReadYourWritesTransaction`` +
``NativeAPI Transaction`` + the cluster (proxies, resolvers, storage servers).  It knows
nothing about ctypes; ``capi.py`` adapts it to the C API the real ``fdb.impl`` calls.

Rules and where they come from (FoundationDB upstream):

- Read your writes: reads see the transaction's own sets/clears/atomic ops; a key whose
  value is fully known locally is answered without a read conflict range
  (``ReadYourWrites.actor.cpp``).  Snapshot reads see own writes too (snapshot_ryw_enable,
  the default since API 300) and add no read conflict ranges.
- Optimistic concurrency: a commit fails with not_committed (1020) if any of its read
  conflict ranges intersects a write conflict range of a transaction committed after its
  read version (resolver).  Sets, clears and atomic ops add write conflict ranges; atomic
  ops add no read conflict range.  A versionstamped key adds no client-side write conflict
  range: the commit proxy adds ``singleKeyRange`` of the *final* key after substitution
  (``ResolutionRequestBuilder::addTransaction``), so it conflicts with readers of that key
  only, not of the whole range the stamp could have landed in.
- ``next_write_no_write_conflict_range`` (option 30): consumed by the very next set /
  clear / clear_range / atomic op (including versionstamped key and value), whether or not
  that write would have added a conflict range (RYW ``getAndResetWriteConflictDisabled``
  is the first thing each write does); that write adds no write conflict range.  A
  versionstamped key's proxy-side range cannot be suppressed.
- Errors of void calls (set/clear/atomic_op/add_conflict_range: key_too_large 2102,
  value_too_large 2103, key_outside_legal_range 2004, inverted_range 2005,
  used_during_commit 2017, client_invalid_operation 2000) are *deferred* and surface at
  the next read or at commit (``ThreadSafeTransaction`` ``deferredError``).
- Commit: read-only transactions commit locally (committed version -1, versionstamp
  future fails with no_commit_version 2021); otherwise transaction_too_large (2101) if
  ``commit_size`` (mutations + coalesced read and write conflict ranges, with
  FoundationDB's per-element overheads: see ``link.py``) exceeds the size limit (default
  10,000,000 bytes); transaction_too_old (1007) if the transaction's age (real time since
  its read version + simulated link time, ``link.py``) is over 5 s once the request has
  been sent; on failure the versionstamp future fails with transaction_invalid_version
  (2020) (``NativeAPI commitAndWatch``).
- Reads: transaction_too_old (1007) if the transaction's age is over 5 s when the read is
  issued (storage server ``oldestVersion`` check).
- ``get_approximate_size()``: the RYW running estimate (``approximateSize``), with upstream's
  per-operation increments -- it over-counts (no coalescing) and is not the commit check.
- Test-only (never a real FDB behaviour): a size cap per cluster file (commit raises
  ``TransactionSizeCapExceeded``) and an observer counting every commit's size.
- Timeout option: measured from creation / ``reset()`` (not from ``on_error``); when it
  expires every pending and later operation fails with transaction_timed_out (1031),
  and ``on_error(1031)`` rethrows it (``ReadYourWritesTransaction::timebomb/onError``).
- ``on_error``: retry-limit check, then backoff for the retryable codes in
  ``errors.ON_ERROR_BACKOFF`` / ``ON_ERROR_SHORT_DELAY``, resetting the transaction but
  keeping the persistent options (timeout, retry_limit, max_retry_delay, size_limit);
  any other code is rethrown and the transaction is cancelled (1025) until ``reset()``.
- Using a transaction after ``commit()`` was called fails with used_during_commit (2017)
  and poisons it -- including ``get_versionstamp()``, which must be called before commit.
"""

from __future__ import annotations

import bisect
import random
import struct
import threading
import time
from typing import Iterator, Optional

from . import clock, errors, limits, mutations
from .errors import FDBErr
from .futures import Blocked, DFuture, ready, schedule
from .link import CommitSize, Link, TransactionSizeCapExceeded
from .store import Store

MUT = limits.MUTATION_REF_BYTES
RNG = limits.KEY_RANGE_REF_BYTES

_rng = random.Random()

# -- option codes (fdb/fdboptions.py) ---------------------------------------------------
DB_TRANSACTION_TIMEOUT = 500
DB_TRANSACTION_RETRY_LIMIT = 501
DB_TRANSACTION_MAX_RETRY_DELAY = 502
DB_TRANSACTION_SIZE_LIMIT = 503
DB_SNAPSHOT_RYW_ENABLE = 26
DB_SNAPSHOT_RYW_DISABLE = 27

TR_NEXT_WRITE_NO_WRITE_CONFLICT_RANGE = 30
TR_READ_YOUR_WRITES_DISABLE = 51
TR_ACCESS_SYSTEM_KEYS = 301
TR_READ_SYSTEM_KEYS = 302
TR_TIMEOUT = 500
TR_RETRY_LIMIT = 501
TR_MAX_RETRY_DELAY = 502
TR_SIZE_LIMIT = 503
TR_SNAPSHOT_RYW_ENABLE = 600
TR_SNAPSHOT_RYW_DISABLE = 601
TR_BYPASS_UNREADABLE = 1100

INT32_MAX = 2**31 - 1

# StreamingMode byte limits per batch (fdb_c.cpp fdb_transaction_get_range_impl)
_MODE_BYTES = {0: None, 1: 256, 2: 1000, 3: 4096, 4: 80000, -2: 80000}
_ITERATOR_BYTES = [4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288]


def _int_param(param: Optional[bytes]) -> int:
    if param is None or len(param) != 8:
        raise FDBErr(errors.INVALID_OPTION_VALUE)
    return struct.unpack("<q", param)[0]


def _after(key: bytes) -> bytes:
    return key + b"\x00"


def _coalesce(ranges) -> list:
    out: list = []
    for b, e in sorted(r for r in ranges if r[0] < r[1]):
        if out and b <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((b, e))
    return out


class Database:
    """An open database: a store plus the per-database transaction defaults."""

    def __init__(self, store: Store, cluster_file: str):
        self.store = store
        self.cluster_file = cluster_file
        self.defaults = {"timeout": 0.0, "retry_limit": -1,
                         "max_retry_delay": limits.DEFAULT_MAX_BACKOFF, "size_limit": 0}
        self.snapshot_ryw = True

    def set_option(self, code: int, param: Optional[bytes]) -> None:
        """``fdb_database_set_option``: transaction defaults; unknown options are accepted."""
        if code == DB_TRANSACTION_TIMEOUT:
            v = _int_param(param)
            if not 0 <= v <= INT32_MAX:
                raise FDBErr(errors.INVALID_OPTION_VALUE)
            self.defaults["timeout"] = v / 1000.0
        elif code == DB_TRANSACTION_RETRY_LIMIT:
            v = _int_param(param)
            if not -1 <= v <= INT32_MAX:
                raise FDBErr(errors.INVALID_OPTION_VALUE)
            self.defaults["retry_limit"] = v
        elif code == DB_TRANSACTION_MAX_RETRY_DELAY:
            v = _int_param(param)
            if not 0 <= v <= INT32_MAX:
                raise FDBErr(errors.INVALID_OPTION_VALUE)
            self.defaults["max_retry_delay"] = v / 1000.0
        elif code == DB_TRANSACTION_SIZE_LIMIT:
            v = _int_param(param)
            if not 32 <= v <= limits.TRANSACTION_SIZE_LIMIT:
                raise FDBErr(errors.INVALID_OPTION_VALUE)
            self.defaults["size_limit"] = v
        elif code == DB_SNAPSHOT_RYW_ENABLE:
            self.snapshot_ryw = True
        elif code == DB_SNAPSHOT_RYW_DISABLE:
            self.snapshot_ryw = False

    def create_transaction(self) -> "Transaction":
        return Transaction(self)


class Transaction:
    """One FDB transaction (RYW semantics).  Thread-safe; all public methods lock."""

    def __init__(self, db: Database):
        self.db = db
        self.store = db.store
        self._lock = threading.RLock()
        self._snap = None
        self._tracked: set = set()
        self._vs_future: Optional[DFuture] = None
        self._full_reset()

    # ==================================================================================
    # lifecycle
    # ==================================================================================
    def _full_reset(self) -> None:
        """``reset()``: fresh timer, retry count, backoff and options."""
        self._persist = dict(self.db.defaults)
        self._creation = clock.now()
        self._sim_total = 0.0            # simulated link seconds since creation/reset (timeout)
        self._retries = 0
        self._backoff = limits.DEFAULT_BACKOFF
        self._reset_attempt()

    def _reset_attempt(self) -> None:
        """``resetRyow()``: drop reads, writes and non-persistent options; keep the timer."""
        self._release_snapshot()
        self._cancel_tracked(errors.TRANSACTION_CANCELLED)
        self._dead: Optional[int] = None
        self._rv: Optional[int] = None
        self._explicit_rv: Optional[int] = None
        self._writes: dict = {}          # key -> ("known", value|None) | ("ops", [(op, param)]) | ("unreadable",)
        self._wkeys: list = []           # sorted keys of _writes
        self._cleared: list = []         # ranges cleared by this transaction
        self._unreadable: list = []      # ranges made unreadable by versionstamped keys
        self._mutations: list = []       # ordered, applied at commit
        self._read_ranges: list = []
        self._write_ranges: list = []    # client-side write conflict ranges
        self._vs_ranges: list = []       # where those keys can land (fault targeting, unreadable)
        self._mutation_bytes = 0         # sum of MUT + len(param1) + len(param2)
        self._approx = 0                 # RYW approximateSize
        self._sim = 0.0                  # simulated link seconds of this attempt (age)
        self._link = Link()              # link in force for this attempt (read with the read version)
        self._deferred: Optional[int] = None
        self._commit_started = False
        self._committed_version = -1
        self._no_write_conflict_next = False
        self._ryw_disabled = False
        self._snapshot_ryw = self.db.snapshot_ryw
        self._read_system = False
        self._write_system = False
        self._bypass_unreadable = False
        self._vs_future = DFuture(owner=self)
        self._tracked.add(self._vs_future)

    def _release_snapshot(self) -> None:
        if self._snap is not None:
            snap, self._snap = self._snap, None
            snap.close()

    def _cancel_tracked(self, code: int) -> None:
        tracked, self._tracked = self._tracked, set()
        for f in tracked:
            f.resolve(error=code)

    def track(self, f: DFuture) -> None:
        """Fail ``f`` along with the transaction (timeout, cancel, reset)."""
        with self._lock:
            if self._dead is not None:
                f.resolve(error=self._dead)
            else:
                self._tracked.add(f)

    def kill(self, code: int) -> None:
        """Set the transaction's terminal error (upstream ``resetPromise.sendError``)."""
        with self._lock:
            if self._dead is None:
                self._dead = code
            self._cancel_tracked(self._dead)

    def expired(self) -> bool:
        t = self._persist["timeout"]
        return bool(t) and clock.now() + self._sim_total >= self._creation + t

    def kill_timed_out(self) -> None:
        self.kill(errors.TRANSACTION_TIMED_OUT)

    def reset(self) -> None:
        with self._lock:
            self._full_reset()

    def cancel(self) -> None:
        self.kill(errors.TRANSACTION_CANCELLED)

    def destroy(self) -> None:
        with self._lock:
            self._cancel_tracked(errors.TRANSACTION_CANCELLED)
            self._release_snapshot()

    # ==================================================================================
    # checks
    # ==================================================================================
    def _check_alive(self) -> None:
        if self._dead is None and self.expired():
            self.kill_timed_out()
        if self._dead is not None:
            raise FDBErr(self._dead)

    def _check_used_during_commit(self) -> None:
        if self._commit_started:
            self.kill(errors.USED_DURING_COMMIT)
            raise FDBErr(errors.USED_DURING_COMMIT)

    def _check_read(self) -> None:
        """Entry check of every read (deferred error, commit started, dead/timeout)."""
        self._check_used_during_commit()
        if self._deferred is not None:
            raise FDBErr(self._deferred)
        self._check_alive()

    def _max_read_key(self) -> bytes:
        return limits.MAX_SYSTEM_KEY if (self._read_system or self._write_system) else limits.MAX_NORMAL_KEY

    def _max_write_key(self) -> bytes:
        return limits.MAX_SYSTEM_KEY if self._write_system else limits.MAX_NORMAL_KEY

    def _deferring(self, fn, *args) -> None:
        """Run a void operation; an error becomes the deferred error (ThreadSafeTransaction)."""
        with self._lock:
            try:
                fn(*args)
            except FDBErr as e:
                if self._deferred is None:
                    self._deferred = e.code

    # ==================================================================================
    # read version and store access
    # ==================================================================================
    def _fault(self, op: str, ranges) -> None:
        d = self.store.decide(op, ranges)
        if d.unreachable:
            raise Blocked(lambda: None)
        if d.code:
            if d.code == errors.TRANSACTION_TIMED_OUT:
                self.kill_timed_out()
            raise FDBErr(d.code)

    def _ensure_read_version(self) -> None:
        """GRV: take a snapshot of the store; the read version is max(last commit, clock)."""
        if self._snap is not None:
            return
        self._fault("grv", [])
        snap = self.store.snapshot()
        if self._explicit_rv is not None:
            if self._explicit_rv < snap.version:
                snap.close()
                raise FDBErr(errors.TRANSACTION_TOO_OLD)  # the double keeps no history
            self._rv = self._explicit_rv
        else:
            self._rv = max(snap.version, clock.now_version())
        self._snap = snap
        self._link = snap.settings.link

    # -- age: real time since the read version + simulated link time ---------------------
    def _age_versions(self) -> int:
        return clock.now_version() + int(self._sim * clock.VERSIONS_PER_SECOND) - self._rv

    def _check_too_old(self) -> None:
        """transaction_too_old (1007) once the transaction is more than 5 s old."""
        if self._age_versions() > limits.MAX_TRANSACTION_LIFE_VERSIONS:
            raise FDBErr(errors.TRANSACTION_TOO_OLD)

    def _spend(self, seconds: float, link: Link) -> None:
        """Time on the simulated link: accumulated (default) or slept for real."""
        if seconds <= 0:
            return
        if link.real_sleep:
            time.sleep(seconds)
        else:
            self._sim += seconds
            self._sim_total += seconds

    def _received(self, nbytes: int) -> None:
        """A storage reply of ``nbytes`` came back over the link."""
        self._spend(self._link.read_seconds(nbytes), self._link)

    def _storage(self, ranges) -> None:
        """Before reading the store: read version, read faults, 5-second limit, request latency."""
        self._ensure_read_version()
        self._fault("read", ranges)
        self._check_too_old()
        self._spend(self._link.read_latency_s, self._link)

    def _blocking(self, fn, *args):
        """Run a read under the lock; if Blocked, retry the whole read later."""
        with self._lock:
            try:
                return fn(*args)
            except Blocked:
                raise Blocked(lambda: self._blocking(fn, *args))

    # ==================================================================================
    # public reads
    # ==================================================================================
    def get_read_version(self) -> int:
        def body():
            self._check_read()
            self._ensure_read_version()
            return self._rv
        return self._blocking(body)

    def set_read_version(self, version: int) -> None:
        with self._lock:
            if self._snap is not None or self._explicit_rv is not None:
                self._deferred = self._deferred or errors.READ_VERSION_ALREADY_SET
                return
            self._explicit_rv = version

    def _ryw(self, snapshot: bool) -> bool:
        return not self._ryw_disabled and (not snapshot or self._snapshot_ryw)

    def _in(self, ranges, key: bytes) -> bool:
        return any(b <= key < e for b, e in ranges)

    def get(self, key: bytes, snapshot: bool) -> Optional[bytes]:
        return self._blocking(self._get, key, snapshot)

    def _get(self, key: bytes, snapshot: bool) -> Optional[bytes]:
        self._check_read()
        if key >= self._max_read_key():
            raise FDBErr(errors.KEY_OUTSIDE_LEGAL_RANGE)
        if self._ryw(snapshot):
            entry = self._writes.get(key)
            if entry is not None:
                if entry[0] == "known":
                    return entry[1]
                if entry[0] == "unreadable" and not self._bypass_unreadable:
                    raise FDBErr(errors.ACCESSED_UNREADABLE)
            if self._in(self._unreadable, key) and not self._bypass_unreadable:
                raise FDBErr(errors.ACCESSED_UNREADABLE)
            if entry is None and self._in(self._cleared, key):
                return None
        self._storage([(key, _after(key))])
        value = self._snap.get(key)
        self._received(len(value) if value is not None else 0)
        if not snapshot:
            self._add_read_range(key, _after(key))
        if self._ryw(snapshot):
            entry = self._writes.get(key)
            if entry is not None and entry[0] == "ops":
                for op, param in entry[1]:
                    value = mutations.apply_atomic(op, value, param)
        return value

    def _merged(self, begin: bytes, end: bytes, reverse: bool, snapshot: bool) -> Iterator[tuple]:
        """(key, value) pairs of the transaction's view of [begin, end), in order."""
        store_it = self._snap.range(begin, end, reverse)
        if not self._ryw(snapshot):
            yield from store_it
            return
        if not self._bypass_unreadable and any(b < end and begin < e for b, e in self._unreadable):
            raise FDBErr(errors.ACCESSED_UNREADABLE)
        i, j = bisect.bisect_left(self._wkeys, begin), bisect.bisect_left(self._wkeys, end)
        wkeys = self._wkeys[i:j]
        if reverse:
            wkeys.reverse()
        w_it = iter(wkeys)
        s = next(store_it, None)
        w = next(w_it, None)
        before = (lambda a, b: a > b) if reverse else (lambda a, b: a < b)
        while s is not None or w is not None:
            if w is None or (s is not None and before(s[0], w)):
                key, value = s
                s = next(store_it, None)
                if self._in(self._cleared, key):
                    continue
            else:
                key, base = w, None
                if s is not None and s[0] == w:
                    base = s[1]
                    s = next(store_it, None)
                w = next(w_it, None)
                entry = self._writes[key]
                if entry[0] == "known":
                    value = entry[1]
                elif entry[0] == "ops":
                    value = base
                    for op, param in entry[1]:
                        value = mutations.apply_atomic(op, value, param)
                elif self._bypass_unreadable:
                    value = base
                else:
                    raise FDBErr(errors.ACCESSED_UNREADABLE)
            if value is not None:
                yield key, value

    def _resolve(self, key: bytes, or_equal: bool, offset: int, snapshot: bool, exact_ok: bool) -> bytes:
        """Resolve a key selector against the transaction's view; add its read conflict range.

        (k, or_equal=True, n) is (k + b"\\x00", False, n); (k, False, 1) is "first key >= k",
        which a range read can use as k itself without reading (``exact_ok``).
        """
        maxk = self._max_read_key()
        if or_equal:
            key, or_equal = _after(key), False
        key = min(key, maxk)
        if offset == 1 and exact_ok:
            return key
        if offset >= 1:
            scan = (key, maxk)
            self._storage([scan])
            found = maxk
            for n, (k, _v) in enumerate(self._merged(key, maxk, False, snapshot), start=1):
                if n == offset:
                    found = k
                    break
            conflict = (key, _after(found) if found < maxk else maxk)
        else:
            scan = (b"", key)
            self._storage([scan])
            found = b""
            for n, (k, _v) in enumerate(self._merged(b"", key, True, snapshot), start=1):
                if n == 1 - offset:
                    found = k
                    break
            conflict = (found, key)
        self._received(len(found))
        if not snapshot and conflict[0] < conflict[1]:
            self._add_read_range(*conflict)
        return found

    def get_key(self, key: bytes, or_equal: bool, offset: int, snapshot: bool) -> bytes:
        def body():
            self._check_read()
            if key > self._max_read_key():
                raise FDBErr(errors.KEY_OUTSIDE_LEGAL_RANGE)
            return self._resolve(key, or_equal, offset, snapshot, exact_ok=False)
        return self._blocking(body)

    def get_range(self, begin: tuple, end: tuple, limit: int, target_bytes: int, mode: int,
                  iteration: int, snapshot: bool, reverse: bool) -> tuple:
        """One batch of a range read.

        begin/end: (key, or_equal, offset) selectors.  Returns ``(kvs, more)`` where kvs
        is a list of (key, value) and ``more`` says the range may hold more rows.
        """
        return self._blocking(self._get_range, begin, end, limit, target_bytes, mode,
                              iteration, snapshot, reverse)

    def _get_range(self, begin, end, limit, target_bytes, mode, iteration, snapshot, reverse):
        self._check_read()
        maxk = self._max_read_key()
        if begin[0] > maxk or end[0] > maxk:
            raise FDBErr(errors.KEY_OUTSIDE_LEGAL_RANGE)
        if limit < 0 or target_bytes < 0:
            raise FDBErr(2012)  # range_limits_invalid
        if mode == 0 and limit == 0 and target_bytes == 0:
            raise FDBErr(errors.EXACT_MODE_WITHOUT_LIMITS)
        b = self._resolve(*begin, snapshot=snapshot, exact_ok=True)
        e = self._resolve(*end, snapshot=snapshot, exact_ok=True)
        if b >= e:
            return [], False
        self._storage([(b, e)])
        if mode == -1:
            byte_limit = _ITERATOR_BYTES[min(max(iteration, 1), len(_ITERATOR_BYTES)) - 1]
        else:
            byte_limit = _MODE_BYTES.get(mode)
        if target_bytes:
            byte_limit = min(byte_limit or target_bytes, target_bytes)
        rows, size, more = [], 0, False
        it = self._merged(b, e, reverse, snapshot)
        for kv in it:
            if (limit and len(rows) >= limit) or (byte_limit is not None and size >= byte_limit):
                more = True
                break
            rows.append(kv)
            size += len(kv[0]) + len(kv[1])
        self._received(size)
        if not snapshot:
            if more and rows:
                self._add_read_range(*((rows[-1][0], e) if reverse else (b, _after(rows[-1][0]))))
            else:
                self._add_read_range(b, e)
        return rows, more

    def get_estimated_range_size_bytes(self, begin: bytes, end: bytes) -> int:
        def body():
            self._check_read()
            self._storage([(begin, end)])
            return sum(len(k) + len(v) for k, v in self._snap.range(begin, end))
        return self._blocking(body)

    # ==================================================================================
    # writes (void calls: errors are deferred)
    # ==================================================================================
    def _put_write(self, key: bytes, entry: tuple) -> None:
        if key not in self._writes:
            bisect.insort(self._wkeys, key)
        self._writes[key] = entry

    # -- what a commit will send, and the running estimate -------------------------------
    def _add_mutation(self, mutation: tuple, param1: bytes, param2: bytes, approx_overhead: int = MUT) -> None:
        """Queue a mutation: ``MUT`` + params in the commit size; upstream's RYW increment
        (``sizeof(MutationRef)``, or ``sizeof(KeyRangeRef)`` for a single-key clear) in the estimate."""
        self._mutations.append(mutation)
        self._mutation_bytes += MUT + len(param1) + len(param2)
        self._approx += approx_overhead + len(param1) + len(param2)

    def _add_read_range(self, b: bytes, e: bytes) -> None:
        self._read_ranges.append((b, e))
        self._approx += RNG + len(b) + len(e)

    def _add_write_range(self, b: bytes, e: bytes) -> None:
        self._write_ranges.append((b, e))
        self._approx += RNG + len(b) + len(e)

    def _take_write_conflict_flag(self) -> bool:
        """True if the write being made adds a write conflict range; consumes option 30
        (RYW ``getAndResetWriteConflictDisabled``, the first thing every write does)."""
        disabled, self._no_write_conflict_next = self._no_write_conflict_next, False
        return not disabled

    def _check_key_for_write(self, key: bytes) -> None:
        self._check_used_during_commit()
        if key >= self._max_write_key():
            raise FDBErr(errors.KEY_OUTSIDE_LEGAL_RANGE)
        if len(key) > limits.max_key_size(key):
            raise FDBErr(errors.KEY_TOO_LARGE)

    def set(self, key: bytes, value: bytes) -> None:
        self._deferring(self._set, key, value)

    def _set(self, key, value):
        conflict = self._take_write_conflict_flag()
        self._check_key_for_write(key)
        if len(value) > limits.VALUE_SIZE_LIMIT:
            raise FDBErr(errors.VALUE_TOO_LARGE)
        self._put_write(key, ("known", value))
        self._add_mutation(("set", key, value), key, value)
        if conflict:
            self._add_write_range(key, _after(key))

    def clear(self, key: bytes) -> None:
        self._deferring(self._clear, key)

    def _clear(self, key):
        conflict = self._take_write_conflict_flag()
        self._check_used_during_commit()
        if key >= self._max_write_key():
            raise FDBErr(errors.KEY_OUTSIDE_LEGAL_RANGE)
        if len(key) > limits.max_key_size(key):
            return  # no such key can exist (getMaxClearKeySize)
        self._put_write(key, ("known", None))
        self._add_mutation(("clear", key, _after(key)), key, _after(key), approx_overhead=RNG)
        if conflict:
            self._add_write_range(key, _after(key))

    def clear_range(self, begin: bytes, end: bytes) -> None:
        self._deferring(self._clear_range, begin, end)

    def _clear_range(self, begin, end):
        if begin > end:
            raise FDBErr(errors.INVERTED_RANGE)  # KeyRangeRef() in fdb_c, before RYW sees the call
        conflict = self._take_write_conflict_flag()
        self._check_used_during_commit()
        maxk = self._max_write_key()
        if begin > maxk or end > maxk:
            raise FDBErr(errors.KEY_OUTSIDE_LEGAL_RANGE)
        if begin >= end:  # upstream counts it in the estimate before finding it empty
            self._approx += MUT + len(begin) + len(end) + ((RNG + len(begin) + len(end)) if conflict else 0)
            return
        i, j = bisect.bisect_left(self._wkeys, begin), bisect.bisect_left(self._wkeys, end)
        for k in self._wkeys[i:j]:
            del self._writes[k]
        del self._wkeys[i:j]
        self._cleared.append((begin, end))
        self._add_mutation(("clear", begin, end), begin, end)
        if conflict:
            self._add_write_range(begin, end)

    def atomic_op(self, key: bytes, param: bytes, opcode: int) -> None:
        self._deferring(self._atomic_op, key, param, opcode)

    def _atomic_op(self, key, param, opcode):
        conflict = self._take_write_conflict_flag()
        self._check_key_for_write(key)
        mutations.check_opcode(opcode)
        if len(param) > limits.VALUE_SIZE_LIMIT:
            raise FDBErr(errors.VALUE_TOO_LARGE)
        if opcode == mutations.SET_VERSIONSTAMPED_KEY:
            pos = mutations.versionstamp_position(key)
            body = key[:-4]
            low = mutations.make_versionstamp(self._rv + 1) if self._rv is not None else b"\x00" * 10
            rng = (body[:pos] + low + body[pos + 10:], _after(body[:pos] + b"\xff" * 10 + body[pos + 10:]))
            self._unreadable.append(rng)
            self._vs_ranges.append(rng)
            # no write conflict range here: the proxy adds one for the final key (_apply)
            self._add_mutation(("vkey", key, param), key, param)
            return
        if opcode == mutations.SET_VERSIONSTAMPED_VALUE:
            mutations.versionstamp_position(param)
            self._put_write(key, ("unreadable",))
            self._add_mutation(("vvalue", key, param), key, param)
            if conflict:
                self._add_write_range(key, _after(key))
            return
        entry = self._writes.get(key)
        if entry is not None and entry[0] == "known":
            new = ("known", mutations.apply_atomic(opcode, entry[1], param))
        elif entry is not None and entry[0] == "ops":
            new = ("ops", entry[1] + [(opcode, param)])
        elif entry is not None:
            new = entry  # stays unreadable
        elif self._in(self._cleared, key):
            new = ("known", mutations.apply_atomic(opcode, None, param))
        else:
            new = ("ops", [(opcode, param)])
        self._put_write(key, new)
        self._add_mutation(("atomic", key, param, opcode), key, param)
        if conflict:
            self._add_write_range(key, _after(key))

    def add_conflict_range(self, begin: bytes, end: bytes, kind: int) -> None:
        """kind 0 = read, 1 = write (ConflictRangeType)."""
        self._deferring(self._add_conflict_range, begin, end, kind)

    def _add_conflict_range(self, begin, end, kind):
        self._check_used_during_commit()
        maxk = self._max_read_key() if kind == 0 else self._max_write_key()
        if begin > maxk or end > maxk:
            raise FDBErr(errors.KEY_OUTSIDE_LEGAL_RANGE)
        if begin >= end:
            return
        if kind == 0:
            self._add_read_range(begin, end)
        else:
            self._add_write_range(begin, end)

    # ==================================================================================
    # options
    # ==================================================================================
    def set_option(self, code: int, param: Optional[bytes]) -> None:
        """``fdb_transaction_set_option``; raises invalid_option_value (2006) on bad values."""
        with self._lock:
            if code == TR_TIMEOUT:
                v = _int_param(param)
                if not 0 <= v <= INT32_MAX:
                    raise FDBErr(errors.INVALID_OPTION_VALUE)
                self._persist["timeout"] = v / 1000.0
            elif code == TR_RETRY_LIMIT:
                v = _int_param(param)
                if not -1 <= v <= INT32_MAX:
                    raise FDBErr(errors.INVALID_OPTION_VALUE)
                self._persist["retry_limit"] = v
            elif code == TR_MAX_RETRY_DELAY:
                v = _int_param(param)
                if not 0 <= v <= INT32_MAX:
                    raise FDBErr(errors.INVALID_OPTION_VALUE)
                self._persist["max_retry_delay"] = v / 1000.0
                self._backoff = min(self._backoff, v / 1000.0)
            elif code == TR_SIZE_LIMIT:
                v = _int_param(param)
                if not 32 <= v <= limits.TRANSACTION_SIZE_LIMIT:
                    raise FDBErr(errors.INVALID_OPTION_VALUE)
                self._persist["size_limit"] = v
            elif code == TR_NEXT_WRITE_NO_WRITE_CONFLICT_RANGE:
                self._no_write_conflict_next = True
            elif code == TR_READ_YOUR_WRITES_DISABLE:
                if self._snap is not None or self._writes or self._mutations:
                    raise FDBErr(errors.CLIENT_INVALID_OPERATION)
                self._ryw_disabled = True
            elif code == TR_ACCESS_SYSTEM_KEYS:
                self._write_system = True
            elif code == TR_READ_SYSTEM_KEYS:
                self._read_system = True
            elif code == TR_SNAPSHOT_RYW_ENABLE:
                self._snapshot_ryw = True
            elif code == TR_SNAPSHOT_RYW_DISABLE:
                self._snapshot_ryw = False
            elif code == TR_BYPASS_UNREADABLE:
                self._bypass_unreadable = True
            # every other option is accepted and has no effect in the double

    # ==================================================================================
    # commit
    # ==================================================================================
    def commit(self) -> DFuture:
        """``fdb_transaction_commit``: returns a future (pending while the cluster is unreachable)."""
        from .futures import run_op
        with self._lock:
            try:
                self._check_used_during_commit()
                if self._deferred is not None:
                    raise FDBErr(self._deferred)
                self._check_alive()
            except FDBErr as e:
                return ready(error=e.code)
            self._commit_started = True
        return run_op(self, self._commit_body)

    def commit_size(self) -> CommitSize:
        """What FoundationDB's ``Transaction::getSize()`` would count for this commit request:
        mutations + read and write conflict ranges as the RYW layer sends them (coalesced),
        each with its ``sizeof`` overhead.  Versionstamped keys' conflict ranges are added
        by the proxy, later, and are not counted (as upstream)."""
        def ranges(rs):
            return sum(RNG + len(b) + len(e) for b, e in _coalesce(rs))
        return CommitSize(self._mutation_bytes, ranges(self._read_ranges), ranges(self._write_ranges))

    def _commit_body(self):
        with self._lock:
            try:
                return self._commit_locked()
            except Blocked:
                raise Blocked(self._commit_body)
            except (FDBErr, TransactionSizeCapExceeded) as e:
                self._vs_future.resolve(error=errors.TRANSACTION_INVALID_VERSION)
                self._release_snapshot()
                if isinstance(e, FDBErr) and e.code == errors.TRANSACTION_TIMED_OUT:
                    self.kill_timed_out()
                raise

    def _commit_locked(self):
        self._check_alive()
        if not self._mutations and not self._write_ranges:
            self._committed_version = -1
            self._vs_future.resolve(error=errors.NO_COMMIT_VERSION)
            self._release_snapshot()
            return None
        size = self.commit_size()
        total = size.total
        # the link and cap in force: read with the read version, or now for a blind write
        settings = self._snap.settings if self._snap is not None else self.store.get_settings()
        over_cap = settings.size_cap is not None and total > settings.size_cap
        limit = self._persist["size_limit"] or limits.TRANSACTION_SIZE_LIMIT
        if total > limit:
            self.store.note_attempt(total, over_cap=over_cap)
            raise FDBErr(errors.TRANSACTION_TOO_LARGE)
        if over_cap:
            self.store.note_attempt(total, over_cap=True)
            raise TransactionSizeCapExceeded(size, settings.size_cap, self.db.cluster_file)
        self._ensure_read_version()
        write_ranges = _coalesce(self._write_ranges)
        decision = self.store.decide("commit", write_ranges + self._vs_ranges)
        if decision.unreachable:
            raise Blocked(self._commit_body)
        if decision.code and not decision.applied:
            self.store.note_attempt(total)
            raise FDBErr(decision.code)
        # the request travels over the link; the resolver then checks the read version's age
        self._spend(settings.link.commit_seconds(total), settings.link)
        try:
            self._check_too_old()
        except FDBErr:
            self.store.note_attempt(total)
            raise
        min_version = max(self._rv, clock.now_version()) + 1
        try:
            version = self.store.commit(self._snap.seq, _coalesce(self._read_ranges), min_version,
                                        lambda w, v: self._apply(w, v, write_ranges), size=total)
        except FDBErr:
            self.store.note_attempt(total)
            raise
        if decision.code:  # applied, but the client is told otherwise (e.g. 1021)
            raise FDBErr(decision.code)
        self._committed_version = version
        self._vs_future.resolve(mutations.make_versionstamp(version))
        self._release_snapshot()
        return None

    def _apply(self, w, version: int, write_ranges: list) -> list:
        """Apply the mutations in order inside the store's commit; return the write conflict
        ranges to log: the client's, plus ``[key, key+\\x00)`` for each versionstamped key
        once substituted (what the commit proxy adds)."""
        write_ranges = list(write_ranges)
        stamp = mutations.make_versionstamp(version)
        for m in self._mutations:
            kind, key = m[0], m[1]
            if kind == "set":
                w.set(key, m[2])
            elif kind == "clear":
                w.clear_range(key, m[2])
            elif kind == "atomic":
                new = mutations.apply_atomic(m[3], w.get(key), m[2])
                if new is None:
                    w.clear_range(key, _after(key))
                else:
                    w.set(key, new)
            elif kind == "vkey":
                final = mutations.substitute_versionstamp(key, stamp)
                w.set(final, m[2])
                write_ranges.append((final, _after(final)))
            elif kind == "vvalue":
                w.set(key, mutations.substitute_versionstamp(m[2], stamp))
        return write_ranges

    # ==================================================================================
    # after commit / retry loop
    # ==================================================================================
    def get_versionstamp(self) -> DFuture:
        """Future of the 10-byte versionstamp; must be requested before commit()."""
        with self._lock:
            try:
                self._check_used_during_commit()
            except FDBErr as e:
                return ready(error=e.code)
            return self._vs_future

    def get_committed_version(self) -> int:
        return self._committed_version

    def get_approximate_size(self) -> int:
        """RYW ``getApproximateSize()``: the running estimate (see ``_add_mutation``)."""
        with self._lock:
            return self._approx

    def on_error(self, code: int) -> DFuture:
        """``ReadYourWritesTransaction::onError`` + ``Transaction::onError``."""
        with self._lock:
            if self._dead is None and self.expired():
                self.kill_timed_out()
            if self._dead is not None:
                return ready(error=self._dead)
            limit_hit = self._persist["retry_limit"] != -1 and self._retries >= self._persist["retry_limit"]
            self._retries += 1
            if limit_hit:
                self.kill(errors.TRANSACTION_CANCELLED)
                return ready(error=code)
            max_delay = self._persist["max_retry_delay"]
            if code in errors.ON_ERROR_BACKOFF:
                delay = self._backoff * _rng.random()
                self._backoff = min(self._backoff * limits.BACKOFF_GROWTH_RATE, max_delay)
            elif code in errors.ON_ERROR_SHORT_DELAY:
                delay = min(limits.FUTURE_VERSION_RETRY_DELAY, max_delay)
            else:
                self.kill(errors.TRANSACTION_CANCELLED)
                return ready(error=code)
            self._reset_attempt()
            f = DFuture(owner=self)
            if delay <= 0:
                f.resolve()
                return f
            f.ready_at = clock.now() + delay
            self._tracked.add(f)
            schedule(f)
            return f
