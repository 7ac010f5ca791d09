"""Exactly once through a crashing gateway: several laptops sync through the gateway while
it is killed with SIGKILL at named points (before and after the events commit, in the
middle of a blob upload, after a blob completes) and at random moments. Every event ends
on the hub exactly once, at the position its laptop recorded, with every blob intact."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from hub.errors import HubFailure
from hub.http_client import HttpHub
from ledger import Ledger
from nervous_system.recorder import Recorder
from syncer.syncer import Syncer
from tests.gateway_fixtures import DIE_POINTS, GatewayProcess
from tests.hub_fixtures import FakeClock, make_hub

pytestmark = pytest.mark.slow

LAPTOPS = 3
EVENTS = 240


def _record(path, tenant, name, seed):
    rng = random.Random(seed)
    with Ledger(path, durability="normal") as lg:
        rec = Recorder(lg, project_id="web", agent_id=name, tenant_id=tenant, clock=FakeClock(step=7_000 + seed))
        for i in range(EVENTS):
            if i % 3 == 0:
                rec.decision(f"{name} step {i}")
            elif i % 40 == 1:                      # large enough for an upload session
                rec.file_change(f"{name}/big{i}.bin", os.urandom(1_200_000))
            elif i % 3 == 1:
                rec.file_change(f"{name}/m{rng.randrange(20)}.py", f"# {name} {i}\n".encode() * rng.randrange(1, 40))
            else:
                rec.message(f"{name} message {i}")


def _laptop(path, tenant, token, url, done: threading.Event, errors: list):
    hub = None
    with Ledger(path) as lg:
        while not done.is_set():
            try:
                hub = hub or HttpHub(url, token, tenant, timeout_s=20)
                Syncer(lg, hub, batch_events=10, batch_bytes=40_000).sync_once()
                if lg.outbox_status()["pending"] == 0:
                    return
            except HubFailure:
                time.sleep(0.05)
            except Exception as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)
                return


def test_gateway_killed_at_named_and_random_points(tmp_path, python, shared_cluster_file, make_token, tenant):
    paths = [tmp_path / f"laptop{k}.db" for k in range(LAPTOPS)]
    for k, p in enumerate(paths):
        _record(p, tenant, f"lap{k}", seed=k)
    token = make_token(tenant, "write")
    gw = GatewayProcess(python, shared_cluster_file, tmp_path / "gateway.log")
    done, errors = threading.Event(), []
    threads = [threading.Thread(target=_laptop, args=(p, tenant, token, gw.url, done, errors)) for p in paths]
    rng = random.Random(13)
    kills = {"named": 0, "random": 0}
    try:
        gw.start()
        for t in threads:
            t.start()
        # named points first (each once, while every laptop still has most of its work),
        # then random moments
        plan = [f"{point}:{rng.randrange(1, 3)}" for point in DIE_POINTS] + [None] * 4
        for die_at in plan:
            named = die_at is not None
            gw.kill()
            gw.start(die_at=die_at)
            deadline = time.monotonic() + (90 if named else rng.uniform(0.2, 1.5))
            while gw.alive() and time.monotonic() < deadline and any(t.is_alive() for t in threads):
                time.sleep(0.02)
            if not gw.alive():
                kills["named"] += 1
            elif not named:
                gw.kill()
                kills["random"] += 1
            if not any(t.is_alive() for t in threads):
                break
        gw.kill()
        gw.start()
        for t in threads:
            t.join(300)
        assert not any(t.is_alive() for t in threads), "a laptop did not finish"
    finally:
        done.set()
        gw.kill()
    assert not errors, errors
    assert kills["named"] >= 3 and kills["random"] >= 2, kills

    hub = make_hub(shared_cluster_file, tenant, timeout_ms=10_000)
    on_hub = list(hub.iter_log("web"))
    ids = [r.event.event_id for r in on_hub]
    assert len(ids) == len(set(ids)) == LAPTOPS * EVENTS
    positions = {r.event.event_id: r.position for r in on_hub}
    for p in paths:
        with Ledger(p) as lg:
            for e in lg.events(order="seq"):
                assert e.hub_versionstamp == positions[e.event_id]
                sc = e.event.state_change
                if sc and sc.new_state_hash:
                    assert hub.read_blob("web", sc.new_state_hash) == lg.get_blob(sc.new_state_hash)
