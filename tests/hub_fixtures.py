"""Fixtures for the hub and syncer tests: a FoundationDB cluster per test.

By default the cluster is the FoundationDB double (tests/fdb_double), installed under the
official bindings before anything selects an API version. When FDB_CLUSTER_FILE names a
real cluster (and libfdb_c loads), the same tests run against it: each test then uses its
own random tenant and removes that tenant's directory afterwards. Tests that need fault
injection or the double's raw dump are marked ``requires_double`` and skipped on a real
cluster (a real cluster cannot be told to fail on cue).

Test-only knobs of the double (simulated link, transaction-size observer and cap) are
reached through the ``fdb_knobs`` / ``shared_fdb_knobs`` fixtures (a ``ClusterKnobs`` for
``cluster_file`` / ``shared_cluster_file``), never from product code.  On a real cluster
they do nothing (no link to simulate, no observer), so a test using them still runs there.

The fixtures are registered for every test by ``pytest_plugins`` in ``tests/conftest.py``;
import only the plain helpers (``ClusterKnobs``, ``FakeClock``, ``make_hub``,
``requires_double``, ``USE_REAL``).
"""

from __future__ import annotations

import os
import uuid
from typing import Optional

import pytest

from tests import fdb_double

#: Captured at import: the autouse ``isolated_state`` fixture removes FDB_CLUSTER_FILE.
REAL_CLUSTER_FILE = os.environ.get("FDB_CLUSTER_FILE")
USE_REAL = fdb_double.should_use_real_cluster()
if not USE_REAL:
    fdb_double.install()

requires_double = pytest.mark.skipif(USE_REAL, reason="needs the FoundationDB double's fault injection")

#: Fast per-transaction timeout for tests (ms): an unreachable cluster fails quickly.
TEST_TIMEOUT_MS = 2_000


@pytest.fixture
def cluster_file(tmp_path) -> str:
    """A cluster file for in-process tests (the double's in-memory store, or the real one)."""
    if USE_REAL:
        return REAL_CLUSTER_FILE
    return fdb_double.make_cluster_file(tmp_path / "fdb", backend="memory")


@pytest.fixture
def shared_cluster_file(tmp_path) -> str:
    """A cluster file subprocesses share (the double's SQLite store, or the real one)."""
    if USE_REAL:
        return REAL_CLUSTER_FILE
    return fdb_double.make_cluster_file(tmp_path / "fdb-shared")


class ClusterKnobs:
    """Test-only knobs of the FoundationDB double for one cluster file.

    ``set_link(bytes_per_second=1_000_000)`` simulates a 1 MB/s link (or give
    ``read_seconds_per_byte`` / ``write_seconds_per_byte`` / ``read_latency_s`` /
    ``commit_latency_s``; ``real_sleep=True`` sleeps for real); transactions then age by
    their reads and commits and meet the 5-second limit (1007) as on a slow network.
    ``set_size_cap(n)`` makes any commit over ``n`` bytes raise
    ``fdb_double.TransactionSizeCapExceeded``; ``stats()`` / ``reset_stats()`` read and
    zero the observer (``attempts``, ``commits``, ``max_attempted_bytes``,
    ``max_committed_bytes``, ``over_cap``), fed by every process using the cluster file.
    Sizes are FoundationDB's 2101 count: mutations + conflict ranges (tests/fdb_double/link.py).

    On a real cluster (``is_double`` False) the setters do nothing, ``stats()`` is None and
    ``assert_max_transaction_bytes`` checks nothing.
    """

    def __init__(self, cluster_file: str):
        self.cluster_file = cluster_file
        self.is_double = not USE_REAL

    def set_link(self, bytes_per_second: Optional[float] = None, *, read_seconds_per_byte: float = 0.0,
                 write_seconds_per_byte: float = 0.0, read_latency_s: float = 0.0,
                 commit_latency_s: float = 0.0, real_sleep: bool = False) -> None:
        if not self.is_double:
            return
        if bytes_per_second is not None:
            link = fdb_double.Link.bandwidth(bytes_per_second, read_latency_s=read_latency_s,
                                             commit_latency_s=commit_latency_s, real_sleep=real_sleep)
        else:
            link = fdb_double.Link(read_seconds_per_byte=read_seconds_per_byte,
                                   write_seconds_per_byte=write_seconds_per_byte, read_latency_s=read_latency_s,
                                   commit_latency_s=commit_latency_s, real_sleep=real_sleep)
        fdb_double.set_link(self.cluster_file, link)

    def clear_link(self) -> None:
        if self.is_double:
            fdb_double.set_link(self.cluster_file, None)

    def set_size_cap(self, max_bytes: Optional[int]) -> None:
        if self.is_double:
            fdb_double.set_size_cap(self.cluster_file, max_bytes)

    def stats(self) -> Optional["fdb_double.TransactionStats"]:
        return fdb_double.transaction_stats(self.cluster_file) if self.is_double else None

    def reset_stats(self) -> None:
        if self.is_double:
            fdb_double.reset_transaction_stats(self.cluster_file)

    def assert_max_transaction_bytes(self, limit: int) -> None:
        """Every commit attempt since the last reset was at most ``limit`` bytes (double only)."""
        stats = self.stats()
        if stats is None:
            return
        assert stats.max_attempted_bytes <= limit and stats.over_cap == 0, (
            f"a transaction of {stats.max_attempted_bytes:,} bytes was attempted (limit {limit:,}); {stats}")

    def _restore(self) -> None:
        if self.is_double:
            fdb_double.set_link(self.cluster_file, None)
            fdb_double.set_size_cap(self.cluster_file, None)


@pytest.fixture
def fdb_knobs(cluster_file) -> ClusterKnobs:
    """Link, size cap and observer of ``cluster_file`` (reset to instant / no cap afterwards)."""
    knobs = ClusterKnobs(cluster_file)
    yield knobs
    knobs._restore()


@pytest.fixture
def shared_fdb_knobs(shared_cluster_file) -> ClusterKnobs:
    """Link, size cap and observer of ``shared_cluster_file`` (subprocesses obey and report)."""
    knobs = ClusterKnobs(shared_cluster_file)
    yield knobs
    knobs._restore()


def _drop_tenants(tenants):
    if not USE_REAL:
        return
    import fdb

    from hub.connection import open_database
    from hub.layout import ROOT

    db = open_database(REAL_CLUSTER_FILE)
    for t in tenants:
        fdb.directory.remove_if_exists(db, (ROOT, t))


@pytest.fixture
def tenant() -> str:
    """A tenant id unique to the test (removed from a real cluster afterwards)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    yield name
    _drop_tenants([name])


@pytest.fixture
def other_tenant() -> str:
    """A second tenant id unique to the test."""
    name = f"u-{uuid.uuid4().hex[:10]}"
    yield name
    _drop_tenants([name])


@pytest.fixture
def hub(cluster_file, tenant):
    """The tenant's ``Hub`` on the test cluster."""
    from hub.connection import open_database
    from hub.hub import Hub

    return Hub(open_database(cluster_file, timeout_ms=TEST_TIMEOUT_MS), tenant)


def make_hub(cluster, tenant_id, timeout_ms: int = TEST_TIMEOUT_MS):
    """A ``Hub`` for ``tenant_id`` on ``cluster``."""
    from hub.connection import open_database
    from hub.hub import Hub

    return Hub(open_database(cluster, timeout_ms=timeout_ms), tenant_id)


def fill(lg, tenant, n=40, project="web"):
    """``n`` events in ``lg``: decisions, file changes (with content) and messages in turn."""
    from nervous_system.recorder import Recorder

    rec = Recorder(lg, project_id=project, agent_id="coder", tenant_id=tenant, clock=FakeClock())
    for i in range(n):
        if i % 3 == 0:
            rec.decision(f"step {i}", confidence=0.5)
        elif i % 3 == 1:
            rec.file_change(f"src/f{i % 7}.py", f"v{i}\n".encode() * (i + 1))
        else:
            rec.message(f"message {i}")
    return rec


class FakeClock:
    """A deterministic clock for Recorders: ns, advancing ``step`` per call."""

    def __init__(self, start_ns: int = 1_763_700_000_000_000_000, step: int = 1_000_000):
        self.now = start_ns
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now
