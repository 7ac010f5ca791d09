"""An in-memory / single-file FoundationDB double installed *under* the official bindings.

Test support only -- never a product backend.  Production code keeps using the real
``fdb`` package unchanged (``fdb.api_version``, ``fdb.open``, ``@fdb.transactional``,
``fdb.directory``, ``fdb.tuple``, versionstamps); the double replaces only the C library
(``libfdb_c``) that ``fdb/impl.py`` loads with ctypes, so the real ``impl.py``,
``directory_impl.py`` (with its high-contention prefix allocator), ``subspace_impl.py``
and ``tuple.py`` all run on top of it.

Public surface
--------------
``install()``
    Idempotent.  Call before ``fdb.api_version(...)``.  Makes ``import fdb`` use the double.
``should_use_real_cluster() -> bool``
    True when ``$FDB_CLUSTER_FILE`` names a real cluster file and ``libfdb_c`` loads; tests
    then skip ``install()`` and run against the real cluster.
``make_cluster_file(directory, name="fdb.cluster", backend="sqlite") -> str``
    Create a store and a cluster file for it.  ``backend="sqlite"``: one SQLite WAL file
    shared by every process given that cluster file; commits are atomic and survive
    ``kill -9`` of any client.  ``backend="memory"``: this process only.
``set_faults(cluster_file, *Fault, seed=0)`` / ``clear_faults(cluster_file)`` /
``fault_stats(cluster_file) -> list[Fault]``
    Fault injection, stored in the store (so subprocesses obey it), deterministic per seed.
    ``Fault.not_committed()``, ``Fault.commit_unknown_result(applied=True|False)``,
    ``Fault.too_old(on="read"|"commit")``, ``Fault.timed_out(on=...)``,
    ``Fault.unreachable_cluster()``, or ``Fault(code=..., on=..., count=..., probability=...,
    after=..., applied=..., key_prefix=...)``.  ``faults(cluster_file, *Fault)`` is a
    context manager that sets them and clears them on exit.
``dump(cluster_file, prefix=b"") -> list[tuple[bytes, bytes]]``
    Raw committed key/values, sorted.
``clock``
    The double's monotonic clock; ``clock.advance(5.1)`` ages every open transaction past
    the 5-second limit (1007) or its timeout (1031) without sleeping.
``set_link(cluster_file, Link(...) | None)`` / ``get_link`` / ``simulated_link(cluster_file, link)``
    A simulated latency/bandwidth link (stored in the store: subprocesses obey it).
    ``Link(read_seconds_per_byte=, write_seconds_per_byte=, read_latency_s=,
    commit_latency_s=, real_sleep=False)``; ``Link.bandwidth(1_000_000)`` = 1 MB/s.  Reads
    and commits add simulated seconds to the transaction's age, so the 5-second limit
    (1007) and the timeout (1031) bite without sleeping; rules in ``link.py``.
``transaction_stats(cluster_file) -> TransactionStats`` / ``reset_transaction_stats``
    Observer (all processes): ``attempts``, ``commits``, ``max_attempted_bytes``,
    ``max_committed_bytes``, ``over_cap`` -- sizes counted as FoundationDB counts them for
    2101 (mutations + conflict ranges, ``link.py``).
``set_size_cap(cluster_file, max_bytes | None)``
    Test-only cap: a commit over it raises ``TransactionSizeCapExceeded`` (an
    AssertionError naming the size; not retried by ``@fdb.transactional``).
``python -m tests.fdb_double.run MODULE|PKG.MOD:FUNC [ARGS...]``
    Run a program (e.g. ``cli:cli``) in a subprocess with the double installed.

Example
-------
::

    from tests import fdb_double
    fdb_double.install()
    import fdb
    fdb.api_version(730)
    cluster = fdb_double.make_cluster_file(tmp_path)
    db = fdb.open(cluster)

    log = fdb.Subspace(("log",))

    @fdb.transactional
    def append(tr, payload):
        tr.set_versionstamped_key(log.pack_with_versionstamp((fdb.tuple.Versionstamp(),)), payload)

    with fdb_double.faults(cluster, fdb_double.Fault.commit_unknown_result(applied=True)):
        append(db, b"event")          # applied, reported 1021, retried by @transactional
    assert len(fdb_double.dump(cluster, prefix=log.key())) == 2   # the classic duplicate

    # in a subprocess (the store is shared through the cluster file):
    #   python -m tests.fdb_double.run cli:cli sync --cluster-file CLUSTER

What is faithful (see each module's docstring for the upstream source of each rule):
ordered byte keys; get / get_key / get_range with key selectors, limits, reverse and the
streaming modes' batch sizes; read-your-writes (sets, clears, atomic ops, unreadable
versionstamped ranges 1036); snapshot vs serializable reads; explicit conflict ranges;
optimistic concurrency (1020); read versions and committed versions; versionstamps
(8-byte big-endian commit version + 2-byte batch order, 4-byte little-endian offset,
``get_versionstamp`` resolving after commit, 2021 for read-only, 2020 on failure);
size limits (2101 at commit on FoundationDB's own count -- mutations and coalesced conflict
ranges with their per-element overheads; 2102/2103 deferred to the next read or commit);
``get_approximate_size`` (the RYW running estimate); ``next_write_no_write_conflict_range``
(consumed by the next write of any kind); a versionstamped key's write conflict range on
its final key only (added at commit, as the proxy does); the 5-second limit (1007) on
real + simulated time; the timeout option (1031, not retried by on_error); on_error retry
classification, backoff and retry_limit; used_during_commit (2017); error predicates and
messages.

Deliberate differences: no MVCC history beyond what open snapshots need, so
``set_read_version`` older than the latest commit raises 1007; every commit gets its own
version (batch order always 0); watches are unsupported (2108); tenants, CDC and locality
APIs are not emulated; versions are derived from a per-process clock (1e6 per second).
The commit size is counted from the mutations as issued: repeated writes to one key, or
writes later covered by a clear_range, are all counted, where the RYW layer would send
only the surviving ones (the double over-counts, never under-counts).  Simulated link
time is per transaction attempt: it ages that transaction only and does not move the
clock, commit versions or other transactions (``real_sleep=True`` does).
"""

from contextlib import contextmanager

from . import clock
from .cluster import (clear_faults, dump, fault_stats, get_link, make_cluster_file, reset_transaction_stats,
                      set_faults, set_link, set_size_cap, transaction_stats)
from .faults import Fault, FaultPlan
from .install import install, is_installed, should_use_real_cluster
from .link import CommitSize, Link, TransactionSizeCapExceeded, TransactionStats

__all__ = [
    "CommitSize", "Fault", "FaultPlan", "Link", "TransactionSizeCapExceeded", "TransactionStats",
    "clear_faults", "clock", "dump", "fault_stats", "faults", "get_link", "install", "is_installed",
    "make_cluster_file", "reset_transaction_stats", "set_faults", "set_link", "set_size_cap",
    "should_use_real_cluster", "simulated_link", "transaction_stats",
]


@contextmanager
def faults(cluster_file: str, *items: Fault, seed: int = 0):
    """Set ``items`` as the fault plan of ``cluster_file`` for the duration of the block."""
    set_faults(cluster_file, *items, seed=seed)
    try:
        yield
    finally:
        clear_faults(cluster_file)


@contextmanager
def simulated_link(cluster_file: str, link: Link):
    """Simulate ``link`` on ``cluster_file`` for the duration of the block."""
    previous = get_link(cluster_file)
    set_link(cluster_file, link)
    try:
        yield
    finally:
        set_link(cluster_file, previous)
