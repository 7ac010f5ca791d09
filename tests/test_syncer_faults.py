"""Fault runs: thousands of events through injected 1020/1021/1007/1031 faults, an
unreachable cluster, and a syncer process killed with SIGKILL at random moments. The hub
must hold each event exactly once, every blob complete, every local row marked synced."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest

from ledger import Ledger
from nervous_system.recorder import Recorder
from hub.errors import HubUnavailable
from syncer.status import sync_status
from syncer.syncer import Backoff, Syncer
from tests import fdb_double
from tests.fdb_double import Fault
from tests.hub_fixtures import FakeClock, make_hub, requires_double

pytestmark = [requires_double, pytest.mark.slow]  # fault rounds: CI runs them; `-m "not slow"` skips


def _fill(path, tenant_id, n, *, seed=1, projects=("web",)):
    """``n`` events (a third file changes with content) in a ledger at ``path``."""
    rng = random.Random(seed)
    with Ledger(path, durability="normal") as lg:
        recs = [Recorder(lg, project_id=p, agent_id="coder", tenant_id=tenant_id, clock=FakeClock())
                for p in projects]
        for i in range(n):
            rec = recs[i % len(recs)]
            kind = i % 3
            if kind == 0:
                rec.decision(f"step {i}", confidence=rng.random())
            elif kind == 1:
                rec.file_change(f"src/m{rng.randrange(40)}.py", f"# rev {i}\n".encode() * rng.randrange(1, 50))
            else:
                rec.message(f"message {i}")


def _check_exactly_once(ledger_path, hub, projects=("web",)):
    with Ledger(ledger_path) as lg:
        local = list(lg.events(order="seq"))
        assert lg.outbox_status()["pending"] == 0
        for project in projects:
            mine = [e for e in local if e.project_id == project]
            on_hub = list(hub.iter_log(project))
            ids = [r.event.event_id for r in on_hub]
            assert len(ids) == len(set(ids)), "an event is on the hub twice"
            assert sorted(ids) == sorted(e.event_id for e in mine), "missing or extra events"
            assert [r.body for r in sorted(on_hub, key=lambda r: r.event.event_id)] == \
                [e.body for e in sorted(mine, key=lambda e: e.event_id)]
            positions = {r.event.event_id: r.position for r in on_hub}
            assert all(e.hub_versionstamp == positions[e.event_id] for e in mine)
            for digest in {e.event.state_change.new_state_hash for e in mine if e.event.state_change}:
                assert hub.read_blob(project, digest) == lg.get_blob(digest)
    return len(local)


FAULT_MIX = [
    Fault.not_committed(count=None, probability=0.08),
    Fault.commit_unknown_result(applied=True, count=None, probability=0.08),
    Fault.commit_unknown_result(applied=False, count=None, probability=0.05),
    Fault.too_old(on="read", count=None, probability=0.02),
    Fault.too_old(on="commit", count=None, probability=0.02),
    Fault.timed_out(on="commit", count=None, probability=0.03),
    Fault(code=1031, on="commit", count=None, probability=0.03, applied=True),  # dropped mid-commit
]


def test_thousands_of_events_through_random_faults(ledger_path, cluster_file, tenant):
    _fill(ledger_path, tenant, 2400, projects=("web", "api"))
    hub = make_hub(cluster_file, tenant)
    failures = 0
    with fdb_double.faults(cluster_file, *FAULT_MIX, seed=7), Ledger(ledger_path) as lg:
        syncer = Syncer(lg, hub, batch_events=40, batch_bytes=60_000, blob_txn_bytes=150_000)
        for _ in range(500):
            try:
                syncer.sync_once()
            except HubUnavailable:
                failures += 1
                continue
            if lg.outbox_status()["pending"] == 0:
                break
        stats = fdb_double.fault_stats(cluster_file)
    assert failures > 0  # non-retryable 1031s surfaced and were retried by the loop
    fired = {(f.code, f.on, f.applied): f.fired for f in stats}
    assert all(n > 0 for n in fired.values()), fired
    assert _check_exactly_once(ledger_path, hub, ("web", "api")) == 2400


def test_unreachable_cluster_fails_fast_records_error_then_recovers(ledger_path, cluster_file, tenant):
    _fill(ledger_path, tenant, 30)
    hub = make_hub(cluster_file, tenant, timeout_ms=300)
    with Ledger(ledger_path) as lg:
        fdb_double.set_faults(cluster_file, Fault.unreachable_cluster())
        t0 = time.monotonic()
        with pytest.raises(HubUnavailable, match="1031"):
            Syncer(lg, hub).sync_once()
        assert time.monotonic() - t0 < 5
        st = sync_status(lg)
        assert st.pending == 30 and "1031" in st.last_error and not st.healthy
        fdb_double.clear_faults(cluster_file)
        assert Syncer(lg, hub).sync_once().sent == 30
        assert sync_status(lg).healthy
    _check_exactly_once(ledger_path, hub)


def test_backoff_has_jitter_and_a_cap():
    b = Backoff(base=0.5, cap=8.0, rng=random.Random(3))
    delays = [b.next_delay() for _ in range(10)]
    for n, d in enumerate(delays):
        top = min(8.0, 0.5 * 2 ** n)
        assert top / 2 <= d <= top
    assert len({round(d, 6) for d in delays[5:]}) > 1  # jittered, not constant at the cap
    b.reset()
    assert b.next_delay() <= 0.5


def _spawn(python, ledger_path, tenant, cluster, crash_at: str | None = None):
    env = {**os.environ, "LEDGER_CRASH_AT": crash_at} if crash_at else None
    return subprocess.Popen(
        [python, "-m", "tests.fdb_double.run", "syncer.daemon", "--db", str(ledger_path), "--tenant", tenant,
         "--cluster-file", cluster, "--interval", "0.05", "--batch-events", "20", "--batch-bytes", "40000",
         "--backoff-base", "0.02", "--backoff-cap", "0.2", "--timeout-ms", "2000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )


def _synced(ledger_path) -> int:
    with Ledger(ledger_path) as lg:
        return lg.outbox_status()["synced"]


#: The syncer's crash points (``ledger.faults``), in the order one batch passes them.
SYNC_CRASH_POINTS = ("sync.after_blobs", "sync.after_write", "sync.after_mark")


def test_syncer_killed_at_random_moments_with_faults(ledger_path, shared_cluster_file, tenant, python):
    """The daemon SIGKILLs itself at a seeded crash point of a seeded batch (between the
    content and the events, between the hub's commit and the outbox's mark, after the
    mark), under injected hub faults; restarted each time, then run to the end."""
    total = 2000
    _fill(ledger_path, tenant, total, seed=5)
    rng = random.Random(11)
    fdb_double.set_faults(shared_cluster_file, *FAULT_MIX[:3], seed=3)
    kills, deadline = 0, time.monotonic() + 300
    for _round in range(6):
        point = f"{rng.choice(SYNC_CRASH_POINTS)}:{rng.randint(1, 12)}"
        proc = _spawn(python, ledger_path, tenant, shared_cluster_file, point)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f"the syncer never reached {point}") from None
        assert proc.returncode == -signal.SIGKILL, f"{point}: {proc.stderr.read().decode()}"
        kills += 1
    assert 0 < _synced(ledger_path) < total  # every kill landed mid-sync
    fdb_double.clear_faults(shared_cluster_file)
    proc = _spawn(python, ledger_path, tenant, shared_cluster_file)
    while _synced(ledger_path) < total and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert kills == 6
    assert _check_exactly_once(ledger_path, make_hub(shared_cluster_file, tenant)) == total
