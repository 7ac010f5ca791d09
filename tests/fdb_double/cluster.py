"""Cluster files of the double: how a process finds a store.

A double cluster file is a one-line FoundationDB connection string whose description is
``fdbdouble`` (SQLite store, shared between processes) or ``fdbdoublemem`` (in-process
memory store), e.g. ``fdbdouble:3f2a9c0e1b7d4e55@127.0.0.1:4500``.  The SQLite store of
``/x/fdb.cluster`` is ``/x/fdb.cluster.store.sqlite``; fault plans live inside the store,
so every process opening the cluster file sees the same faults.
"""

from __future__ import annotations

import os
import secrets
import threading
from typing import Optional

from . import errors
from .engine import Database
from .errors import FDBErr
from .faults import Fault, FaultPlan
from .link import Link, TransactionStats
from .store import MemoryStore, SqliteStore, Store

SQLITE = "fdbdouble"
MEMORY = "fdbdoublemem"
DEFAULT_CLUSTER_FILE = "/etc/foundationdb/fdb.cluster"

_stores: dict = {}
_lock = threading.Lock()


def store_path(cluster_file: str) -> str:
    """Path of the SQLite store behind ``cluster_file``."""
    return os.path.abspath(cluster_file) + ".store.sqlite"


def make_cluster_file(directory, name: str = "fdb.cluster", backend: str = "sqlite") -> str:
    """Create a store and a cluster file pointing at it; return the cluster file path.

    backend: "sqlite" (default; shared by subprocesses, survives kill -9 of clients) or
    "memory" (this process only, fastest).
    """
    if backend not in ("sqlite", "memory"):
        raise ValueError("backend must be 'sqlite' or 'memory'")
    os.makedirs(directory, exist_ok=True)
    path = os.path.abspath(os.path.join(os.fspath(directory), name))
    description = SQLITE if backend == "sqlite" else MEMORY
    with open(path, "w") as f:
        f.write(f"{description}:{secrets.token_hex(8)}@127.0.0.1:4500\n")
    if backend == "sqlite":
        SqliteStore(store_path(path), create=True)
    return path


def is_double_cluster_file(path: str) -> bool:
    try:
        with open(path) as f:
            first = f.readline()
    except OSError:
        return False
    return first.split(":", 1)[0] in (SQLITE, MEMORY)


def resolve_cluster_file(cluster_file: Optional[str]) -> str:
    """The cluster file the C client would use: argument, $FDB_CLUSTER_FILE, ./fdb.cluster, default."""
    for candidate in (cluster_file, os.environ.get("FDB_CLUSTER_FILE"), "fdb.cluster", DEFAULT_CLUSTER_FILE):
        if candidate and os.path.exists(candidate):
            return os.path.abspath(candidate)
    raise FDBErr(errors.NO_CLUSTER_FILE_FOUND)


def open_store(cluster_file: Optional[str]) -> Store:
    """The (per-process cached) store behind a cluster file."""
    path = resolve_cluster_file(cluster_file)
    with _lock:
        store = _stores.get(path)
        if store is not None:
            return store
        with open(path) as f:
            line = f.readline().strip()
        description, _, rest = line.partition(":")
        ident = rest.partition("@")[0]
        if description == SQLITE:
            store = SqliteStore(store_path(path))
        elif description == MEMORY:
            store = _stores.get(ident) or MemoryStore()
            _stores[ident] = store
        else:
            raise FDBErr(errors.CONNECTION_STRING_INVALID)
        _stores[path] = store
        return store


def open_database(cluster_file: Optional[str]) -> Database:
    """What ``fdb_create_database`` returns for the double."""
    path = resolve_cluster_file(cluster_file)
    return Database(open_store(path), path)


# -- test helpers --------------------------------------------------------------------------
def set_faults(cluster_file: str, *faults: Fault, seed: int = 0) -> None:
    """Replace the fault plan of ``cluster_file`` (affects every process using it)."""
    open_store(cluster_file).set_plan(FaultPlan(faults=list(faults), seed=seed))


def clear_faults(cluster_file: str) -> None:
    """Remove every fault (an unreachable cluster becomes reachable again)."""
    open_store(cluster_file).set_plan(FaultPlan())


def fault_stats(cluster_file: str) -> list:
    """Current faults with their counters: a list of ``Fault`` (``seen``, ``fired``)."""
    return list(open_store(cluster_file).get_plan().faults)


def set_link(cluster_file: str, link: Optional[Link]) -> None:
    """Simulate ``link`` between every client and this cluster (None: instant); see link.py."""
    open_store(cluster_file).set_link(link)


def get_link(cluster_file: str) -> Link:
    return open_store(cluster_file).get_settings().link


def set_size_cap(cluster_file: str, max_bytes: Optional[int]) -> None:
    """Fail every commit whose ``commit_size`` exceeds ``max_bytes`` with
    ``TransactionSizeCapExceeded`` (test-only; None removes the cap)."""
    if max_bytes is not None and max_bytes < 0:
        raise ValueError("max_bytes must be >= 0")
    open_store(cluster_file).set_size_cap(max_bytes)


def transaction_stats(cluster_file: str) -> TransactionStats:
    """Commits and the largest transaction sizes seen on ``cluster_file`` (all processes)."""
    return open_store(cluster_file).get_stats()


def reset_transaction_stats(cluster_file: str) -> None:
    open_store(cluster_file).reset_stats()


def dump(cluster_file: str, prefix: bytes = b"") -> list:
    """Committed contents as a sorted list of (key, value), optionally under ``prefix``."""
    return [(k, v) for k, v in open_store(cluster_file).dump() if k.startswith(prefix)]
