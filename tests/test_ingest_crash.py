"""Crash tests: `ledger ingest` killed with SIGKILL at seeded random crash points
(``ledger.faults``: the process kills itself there, so a loaded machine changes nothing),
then restarted (real subprocesses, real chdb data directory). Afterwards count() and uniqExact(event_id) both
equal the ledger's count, and the event ids are exactly the ledger's."""

from __future__ import annotations

import pytest

import os
import random
import signal
import subprocess

from ledger import Ledger, sha256_hex
from schemas import AgentDecision, StateChange, SwarmEvent, new_event_id
from tests.analytics_helpers import (DIE_BEFORE_THIRD_CHECKPOINT, SEC, T0, analytics_url, ch_rows, crash_env,
                                     kill_rounds)

pytestmark = pytest.mark.slow  # crash and fault rounds: CI runs them; `-m 'not slow'` skips

MONTH = 31 * 86400 * SEC


def build_ledger(path, n: int) -> None:
    """``n`` events whose times cycle over 5 months, so every INSERT batch spans several
    partitions (one part each): a kill can land between the parts of one INSERT."""
    events, blobs = [], {}
    with Ledger(path, durability="normal") as lg:
        for i in range(n):
            ts = T0 + (i % 5) * MONTH + i * SEC
            if i % 3 == 0:
                events.append(SwarmEvent(event_id=new_event_id(ts // 1_000_000), timestamp=ts, tenant_id="acme",
                                         project_id="web", agent_id=f"a{i % 4}", decision=AgentDecision(
                                             rationale=f"r{i}", confidence_score=0.5)))
            else:
                data = f"{i}\n".encode()
                blobs[sha256_hex(data)] = data
                events.append(SwarmEvent(event_id=new_event_id(ts // 1_000_000), timestamp=ts, tenant_id="acme",
                                         project_id="web", agent_id=f"a{i % 4}", state_change=StateChange(
                                             target_resource=f"f{i}.txt", operation="create",
                                             new_state_hash=sha256_hex(data), file_mode="regular")))
            if len(events) == 1000:
                lg.append_many(events, blobs)
                events, blobs = [], {}
        if events:
            lg.append_many(events, blobs)


def ingest_cmd(python, ledger_path, batch):
    """`ledger ingest` of the events' tenant (ingest reads one tenant's events)."""
    return [python, "-c", "from cli import cli; cli()", "--db", str(ledger_path), "--tenant", "acme",
            "ingest", "--batch-size", str(batch), "--json"]


def test_kill_9_at_random_points_then_restart_gives_exactly_once(ledger_path, isolated_state, python):
    n = 3000
    build_ledger(ledger_path, n)
    url = analytics_url(isolated_state)
    seed = int(os.environ.get("CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    partial_kills = kill_rounds(
        lambda batch, env: subprocess.Popen(ingest_cmd(python, ledger_path, batch), env=env,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE),
        url, n, rng)
    # 3,000 events and at most 3 batches of at most 120 per round: every round dies mid-ingest
    assert partial_kills >= 1, f"no kill landed mid-ingest (seed {seed}); the test proved nothing"
    final = subprocess.run(ingest_cmd(python, ledger_path, 100), capture_output=True, timeout=300)
    assert final.returncode == 0, final.stderr.decode()
    with Ledger(ledger_path) as lg:
        ids = {s.event_id for s in lg.events()}
    assert len(ids) == n
    count, uniq, final_count = ch_rows(
        url, "SELECT count(), uniqExact(event_id), (SELECT count() FROM analytics.swarm_events FINAL) "
             "FROM analytics.swarm_events")[0]
    assert (count, uniq, final_count) == (n, n, n), f"seed {seed}"
    assert {r[0] for r in ch_rows(url, "SELECT event_id FROM analytics.swarm_events")} == ids


def test_kill_9_between_insert_and_checkpoint_is_repaired(ledger_path, isolated_state, python):
    """Deterministic variant: the process dies right after a data INSERT returned and before
    its checkpoint was written (the window where a naive ingestor would duplicate)."""
    build_ledger(ledger_path, 500)
    url = analytics_url(isolated_state)
    proc = subprocess.run(ingest_cmd(python, ledger_path, 60), env=crash_env(DIE_BEFORE_THIRD_CHECKPOINT),
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    # 3 batches are in ClickHouse, only 2 checkpointed
    assert ch_rows(url, "SELECT count() FROM analytics.swarm_events") == [(180,)]
    assert ch_rows(url, "SELECT count() FROM analytics.ingest_checkpoints") == [(2,)]
    done = subprocess.run(ingest_cmd(python, ledger_path, 100), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert b'"skipped_present": 60' in done.stdout
    assert ch_rows(url, "SELECT count(), uniqExact(event_id) FROM analytics.swarm_events") == [(500, 500)]
