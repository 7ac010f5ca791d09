"""The syncer daemon: background start/stop/status, one instance per ledger (lock file),
graceful SIGTERM that finishes the current batch, rotating log file, CLI commands."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from click.testing import CliRunner

from ledger import Ledger
from cli import cli
from nervous_system.recorder import Recorder
from syncer import daemon
from syncer.errors import SyncerAlreadyRunning, SyncerNotRunning
from tests.hub_fixtures import FakeClock, make_hub


@pytest.fixture
def launcher(python):
    return [python, "-m", "tests.fdb_double.run", "syncer.daemon"]


def _fill(path, tenant_id, n):
    with Ledger(path, durability="normal") as lg:
        rec = Recorder(lg, project_id="web", agent_id="a", tenant_id=tenant_id, clock=FakeClock())
        for i in range(n):
            rec.message(f"m{i}" + "x" * 2000)


def _wait(cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_start_status_stop_single_instance(ledger_path, shared_cluster_file, tenant, launcher):
    _fill(ledger_path, tenant, 50)
    assert daemon.daemon_status(ledger_path)["running"] is False
    with pytest.raises(SyncerNotRunning):
        daemon.stop(ledger_path)
    pid = daemon.start(ledger_path, tenant, shared_cluster_file, interval=0.05, launcher=launcher)
    try:
        st = daemon.daemon_status(ledger_path)
        assert st["running"] and st["pid"] == pid
        paths = daemon.DaemonPaths.for_ledger(ledger_path)
        assert paths.pid.read_text().strip() == str(pid)
        # single instance: a second start and an in-process run are refused
        with pytest.raises(SyncerAlreadyRunning, match=f"pid {pid}"):
            daemon.start(ledger_path, tenant, shared_cluster_file, launcher=launcher)
        with pytest.raises(SyncerAlreadyRunning):
            daemon.run(ledger_path, tenant, shared_cluster_file)
        with Ledger(ledger_path) as lg:
            assert _wait(lambda: lg.outbox_status()["pending"] == 0)
            # keeps forwarding new events while running
            Recorder(lg, project_id="web", agent_id="a", tenant_id=tenant).message("late")
            assert _wait(lambda: lg.outbox_status()["pending"] == 0)
    finally:
        stopped = daemon.stop(ledger_path, wait_s=30)
    assert stopped == pid
    assert daemon.daemon_status(ledger_path)["running"] is False
    assert not paths.pid.exists()
    log_text = paths.log.read_text()
    assert "syncer started" in log_text and "syncer stopped" in log_text
    assert len(list(make_hub(shared_cluster_file, tenant).iter_log("web"))) == 51


def test_sigterm_finishes_the_current_batch(ledger_path, shared_cluster_file, tenant, launcher):
    """After a graceful stop mid-outbox, every event the hub holds is marked synced
    locally: the batch in flight was committed AND marked, not abandoned."""
    _fill(ledger_path, tenant, 600)
    pid = daemon.start(ledger_path, tenant, shared_cluster_file, interval=0.05,
                       launcher=[*launcher])
    with Ledger(ledger_path) as lg:
        assert _wait(lambda: lg.outbox_status()["synced"] > 0)
        daemon.stop(ledger_path, wait_s=30)
        status = lg.outbox_status()
        on_hub = list(make_hub(shared_cluster_file, tenant).iter_log("web"))
        assert len(on_hub) == status["synced"]
        assert {r.event.event_id for r in on_hub} == {e.event_id for e in lg.events() if e.hub_versionstamp}
    assert pid


def test_run_in_process_stops_on_event_and_rotates_log(ledger_path, shared_cluster_file, tenant, monkeypatch):
    _fill(ledger_path, tenant, 20)
    monkeypatch.setattr(daemon, "LOG_MAX_BYTES", 300)
    stop = threading.Event()
    t = threading.Thread(target=daemon.run, args=(ledger_path, tenant, shared_cluster_file),
                         kwargs={"interval": 0.01, "stop": stop})
    t.start()
    try:
        with Ledger(ledger_path) as lg:
            assert _wait(lambda: lg.outbox_status()["pending"] == 0)
        paths = daemon.DaemonPaths.for_ledger(ledger_path)
        assert _wait(lambda: paths.log.with_name(paths.log.name + ".1").exists())
        assert daemon.running_pid(ledger_path) is not None
    finally:
        stop.set()
        t.join(30)
    assert not t.is_alive()
    assert daemon.running_pid(ledger_path) is None
    assert not logging.getLogger("syncer").handlers  # handlers removed on exit


def test_start_reports_a_child_that_dies(ledger_path, tenant, tmp_path, python):
    from syncer.errors import DaemonError

    bogus = tmp_path / "fdb.cluster"
    bogus.write_text("fdbdouble:abc@127.0.0.1:4500\n")
    with pytest.raises(DaemonError, match="exited at start"):
        daemon.start(ledger_path, tenant, bogus, launcher=[python, "-c", "import sys; sys.exit(3)"])


def test_cli_syncer_commands(ledger_path, shared_cluster_file, tenant, launcher, monkeypatch):
    _fill(ledger_path, tenant, 10)
    monkeypatch.setattr(daemon, "DEFAULT_LAUNCHER", launcher)
    base = ["--db", str(ledger_path), "--tenant", tenant]
    runner = CliRunner()
    res = runner.invoke(cli, [*base, "syncer", "status", "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["running"] is False
    res = runner.invoke(cli, [*base, "syncer", "start", "--cluster-file", shared_cluster_file, "--interval", "0.05"])
    assert res.exit_code == 0, res.output
    assert "Syncer started" in res.output
    try:
        res = runner.invoke(cli, [*base, "syncer", "start", "--cluster-file", shared_cluster_file])
        assert res.exit_code == 1 and "already running" in res.output
        with Ledger(ledger_path) as lg:
            assert _wait(lambda: lg.outbox_status()["pending"] == 0)
        res = runner.invoke(cli, [*base, "syncer", "status"])
        assert "Syncer running" in res.output and "Pending 0" in res.output
        res = runner.invoke(cli, [*base, "sync", "status"])
        assert "Syncer daemon:   running" in res.output and "Pending:         0 events" in res.output
    finally:
        res = runner.invoke(cli, [*base, "syncer", "stop"])
    assert res.exit_code == 0 and "Syncer stopped" in res.output
    res = runner.invoke(cli, [*base, "syncer", "stop"])
    assert res.exit_code == 1 and "no syncer is running" in res.output
    res = runner.invoke(cli, [*base, "syncer", "start"])
    assert res.exit_code == 1 and "no hub configured" in res.output


def test_health_says_what_is_wrong(ledger_path, shared_cluster_file, tenant, tmp_path, monkeypatch, launcher):
    """`sync status` with no hub says so (never "healthy"); `syncer start` refuses a hub
    that cannot work (a missing cluster file, a dead cluster) instead of starting a daemon
    that fails forever; a failed pass makes the status unhealthy with the error."""
    from tests import fdb_double

    _fill(ledger_path, tenant, 3)
    monkeypatch.setattr(daemon, "DEFAULT_LAUNCHER", launcher)
    base = ["--db", str(ledger_path), "--tenant", tenant]
    runner = CliRunner()
    none = json.loads(runner.invoke(cli, [*base, "sync", "status", "--json"]).output)
    assert none["healthy"] is False and none["problem"] == "no hub configured" and none["hub"] is None
    assert "no hub configured" in runner.invoke(cli, [*base, "sync", "status"]).output
    missing = runner.invoke(cli, [*base, "syncer", "start", "--cluster-file", str(tmp_path / "nope.cluster")])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    with fdb_double.faults(shared_cluster_file, fdb_double.Fault.unreachable_cluster()):
        dead = runner.invoke(cli, [*base, "syncer", "start", "--cluster-file", shared_cluster_file])
        assert dead.exit_code == 1 and "Syncer started" not in dead.output, dead.output
        failed = runner.invoke(cli, [*base, "sync", "--cluster-file", shared_cluster_file])
        assert failed.exit_code == 1
    assert daemon.running_pid(ledger_path) is None
    monkeypatch.setenv("FDB_CLUSTER_FILE", shared_cluster_file)
    status = json.loads(runner.invoke(cli, [*base, "sync", "status", "--json"]).output)
    assert status["healthy"] is False and status["problem"].startswith("the last pass failed")
    assert runner.invoke(cli, [*base, "sync"]).exit_code == 0
    status = json.loads(runner.invoke(cli, [*base, "sync", "status", "--json"]).output)
    assert status["healthy"] is True and status["hub"] == shared_cluster_file
