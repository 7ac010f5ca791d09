"""Shared fixtures. An autouse fixture points every piece of state at a tmp dir:
no test reads or writes the user's home, config or data directory."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Fixtures for every test: the hub (cluster_file, shared_cluster_file, tenant, other_tenant,
#: hub) and `spawned` (the processes a test started).
pytest_plugins = ["tests.hub_fixtures", "tests.git_fixtures", "tests.gateway_fixtures"]


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    """Point LEDGER_* settings, HOME and XDG dirs at ``tmp_path``; return the data dir."""
    data = tmp_path / "ledger-data"
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("LEDGER_DATA_DIR", str(data))
    monkeypatch.setenv("LEDGER_CONFIG", str(tmp_path / "no-ledger.toml"))
    for var in ("LEDGER_DB_PATH", "LEDGER_TENANT", "LEDGER_PROJECT", "LEDGER_CLICKHOUSE_URL",
                "LEDGER_DURABILITY", "FDB_CLUSTER_FILE", "OTEL_EXPORTER_OTLP_ENDPOINT",
                "TRACEPARENT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.chdir(tmp_path)
    return data


@pytest.fixture
def ledger_path(isolated_state) -> Path:
    """Path of a fresh ledger file inside the test's tmp dir."""
    return isolated_state / "ledger.db"


@pytest.fixture
def python() -> str:
    """The interpreter running the tests (for real subprocesses)."""
    return sys.executable
