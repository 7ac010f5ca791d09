"""Fixtures for the hub and syncer tests: a FoundationDB cluster per test.

By default the cluster is the FoundationDB double (tests/fdb_double), installed under the
official bindings before anything selects an API version. When FDB_CLUSTER_FILE names a
real cluster (and libfdb_c loads), the same tests run against it: each test then uses its
own random tenant and removes that tenant's directory afterwards. Tests that need fault
injection or the double's raw dump are marked ``requires_double`` and skipped on a real
cluster (a real cluster cannot be told to fail on cue).

The fixtures are registered for every test by ``pytest_plugins`` in ``tests/conftest.py``;
import only the plain helpers (``FakeClock``, ``make_hub``, ``requires_double``, ``USE_REAL``).
"""

from __future__ import annotations

import os
import uuid

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


class FakeClock:
    """A deterministic clock for Recorders: ns, advancing ``step`` per call."""

    def __init__(self, start_ns: int = 1_763_700_000_000_000_000, step: int = 1_000_000):
        self.now = start_ns
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now
