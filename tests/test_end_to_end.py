"""End to end: laptops -> syncer -> FoundationDB hub -> `ledger ingest --source hub` -> ClickHouse.

SPEC guarantee "No loss, no duplicates, end to end": every event recorded on any laptop
reaches the hub once and ClickHouse once, across offline periods, FoundationDB faults
(1020, 1021 applied and not, a commit lost with the connection) and an ingestor killed
with SIGKILL at random points; and tenant isolation holds through the whole chain.

Everything runs the production code: the Recorder SDK into real SQLite ledgers,
``syncer.syncer.Syncer`` into ``hub.hub.Hub`` on the FoundationDB double (or a real
cluster when FDB_CLUSTER_FILE names one), and the `ledger ingest` CLI into the embedded
ClickHouse (chdb) of the test's data directory.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
from collections import Counter

import fdb
import pytest
from click.testing import CliRunner

from ledger import Ledger, sha256_hex
from cli import cli
from nervous_system.recorder import Recorder
from schemas import AgentDecision, StateChange, SwarmEvent, new_event_id
from hub.errors import HubUnavailable
from hub.layout import ROOT
from syncer.syncer import Syncer
from tests import fdb_double
from tests.analytics_helpers import (DIE_BEFORE_THIRD_CHECKPOINT, SEC, T0, analytics_url, ch_rows, crash_env,
                                     kill_rounds)
from tests.fdb_double import Fault
from tests.hub_fixtures import USE_REAL, make_hub, requires_double

pytestmark = pytest.mark.slow  # crash and fault rounds: CI runs them; `-m 'not slow'` skips

MONTH = 31 * 86400 * SEC


# --------------------------------------------------------------------------- laptops
class Clock:
    """Per-laptop event clock (ns): laptops interleave in event time."""

    def __init__(self, start: int, step: int = 7 * SEC // 1000):
        self.now, self.step = start, step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


class Laptop:
    """One laptop: a local ledger, one or two agents recording through the Recorder SDK
    into projects "web" and "api", and a hub connection with a short timeout (so an
    unreachable cluster fails fast instead of hanging)."""

    def __init__(self, tmp_path, name, tenant_id, cluster, offset_ns, agents=1):
        self.name = name
        self.ledger = Ledger(tmp_path / f"{name}.db", durability="normal")
        clock = Clock(T0 + offset_ns)
        self.recs = [Recorder(self.ledger, project_id=project, agent_id=f"{name}-agent{a}",
                              agent_role="coder" if a == 0 else "reviewer", tenant_id=tenant_id, clock=clock)
                     for a in range(agents) for project in ("web", "api")]
        self.hub = make_hub(cluster, tenant_id, timeout_ms=300)
        self.n = 0
        self.live: dict[int, set[str]] = {i: set() for i in range(len(self.recs))}

    def work(self, rounds: int) -> None:
        """Decisions, creates/modifies, executables, renames, deletes and messages."""
        for _ in range(rounds):
            self.n += 1
            k = self.n % len(self.recs)
            rec, live = self.recs[k], self.live[k]
            rec.decision(f"{self.name} step {self.n}", confidence=(self.n % 10) / 10,
                         rejected_alternatives=[f"alt {self.n}"])
            path = f"{self.name}/src/m{self.n % 5}.py"
            rec.file_change(path, f"# {self.name} rev {self.n}\n".encode() * (1 + self.n % 3))
            live.add(path)
            if self.n % 4 == 0:
                rec.file_change(f"{self.name}/bin/run.sh", f"#!/bin/sh\necho {self.n}\n".encode(),
                                mode="executable")
                live.add(f"{self.name}/bin/run.sh")
            if self.n % 5 == 0 and path in live:          # rename (content moves unchanged)
                dst = f"{self.name}/moved/m{self.n}.py"
                rec.file_change(dst, None, previous_path=path)
                live.discard(path)
                live.add(dst)
            if self.n % 7 == 0 and live:                  # delete
                victim = sorted(live)[0]
                rec.file_change(victim, None)
                live.discard(victim)
            if self.n % 3 == 0:
                rec.message(f"{self.name} done with {self.n}", recipients=["lead"])
            if self.n == 9:
                # events over FoundationDB's 100,000-byte value limit (chunked in the hub
                # log) and a non-ASCII path
                rec.decision("long analysis: " + "why " * 40_000, confidence=0.9)
                rec.file_change(f"{self.name}/docs/données 文件.md", ("text ✓\n" * 30_000).encode())

    def sync(self, **kw):
        return Syncer(self.ledger, self.hub, batch_events=7, **kw).sync_once()

    def sync_offline(self, cluster) -> None:
        """Try to sync while the cluster is unreachable: fails fast, nothing is lost."""
        pending = self.ledger.outbox_status()["pending"]
        with fdb_double.faults(cluster, Fault.unreachable_cluster()):
            with pytest.raises(HubUnavailable):
                self.sync()
        assert self.ledger.outbox_status()["pending"] == pending

    def events(self):
        return list(self.ledger.events(order="seq"))


def union(laptops):
    """Every event of every laptop's ledger (``StoredEvent``), keyed by event id."""
    out = {}
    for top in laptops:
        for e in top.events():
            assert e.event_id not in out
            out[e.event_id] = e
    return out


# --------------------------------------------------------------------------- ClickHouse
def ingest(tenant_id, tmp_path, *extra):
    """`ledger --tenant T ingest --source hub --json` through click's CliRunner; returns its stats."""
    res = CliRunner().invoke(cli, ["--db", str(tmp_path / "no-ledger-here.db"), "--tenant", tenant_id,
                                   "ingest", "--source", "hub", "--json", *extra])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return json.loads(res.stdout)


def ch_by_id(url, tenant_id):
    """``{event_id: row}`` of the tenant's rows in ``swarm_events`` (asserting none is doubled)."""
    rows = ch_rows(url, "SELECT event_id, project_id, event_type, agent_id, agent_role, target_path, "
                        "previous_path, operation, new_state_hash, source, source_stream, source_position, "
                        "hub_versionstamp, event_json "
                        "FROM analytics.swarm_events WHERE tenant_id = {t:String}", {"t": tenant_id})
    by_id = {r[0]: r for r in rows}
    assert len(by_id) == len(rows), "an event is in ClickHouse twice"
    return by_id


def assert_clickhouse_equals(url, tenant_id, events: dict, positions: dict | None = None) -> None:
    """ClickHouse holds exactly ``events`` (``{event_id: StoredEvent}``) for the tenant: counts,
    ids, per kind / agent / path / project, the whole event, and the hub position each ledger
    was told by the syncer (or ``positions``: ``{event_id: 12-byte position}``)."""
    count, uniq, final = ch_rows(
        url, "SELECT count(), uniqExact(event_id), (SELECT count() FROM analytics.swarm_events FINAL "
             "WHERE tenant_id = {t:String}) FROM analytics.swarm_events WHERE tenant_id = {t:String}",
        {"t": tenant_id})[0]
    assert count == uniq == final == len(events)
    by_id = ch_by_id(url, tenant_id)
    assert set(by_id) == set(events)

    def grouped(sql):
        return {tuple(r[:-1]): r[-1] for r in ch_rows(url, sql, {"t": tenant_id})}

    where = "FROM analytics.swarm_events WHERE tenant_id = {t:String}"
    kinds = Counter(e.kind for e in events.values())
    assert grouped(f"SELECT event_type, uniqExact(event_id) {where} GROUP BY 1") == {(k,): n for k, n in kinds.items()}
    agents = Counter((e.event.agent_id, e.kind) for e in events.values())
    assert grouped(f"SELECT agent_id, event_type, count() {where} GROUP BY 1, 2") == dict(agents)
    projects = Counter(e.project_id for e in events.values())
    assert grouped(f"SELECT project_id, count() {where} GROUP BY 1") == {(p,): n for p, n in projects.items()}
    paths = Counter((e.project_id, e.event.state_change.target_resource, e.event.state_change.operation.value)
                    for e in events.values() if e.event.state_change is not None)
    assert grouped(f"SELECT project_id, target_path, operation, count() {where} AND event_type = 'state_change' "
                   "GROUP BY 1, 2, 3") == dict(paths)
    assert {op for _, _, op in paths} >= {"create", "modify", "rename", "delete"}
    for event_id, e in events.items():
        row = by_id[event_id]
        sc = e.event.state_change
        assert row[1:5] == (e.project_id, e.kind, e.event.agent_id, e.event.agent_role.value)
        if sc is not None:
            assert row[5:9] == (sc.target_resource, sc.previous_resource, sc.operation.value, sc.new_state_hash)
        # the hub position each ledger was given by the syncer is the position ClickHouse
        # ingested it at; hub_versionstamp is its 10-byte commit versionstamp
        pos = positions[event_id] if positions is not None else e.hub_versionstamp
        assert pos is not None and len(pos) == 12
        assert row[9:13] == ("hub", f"hub:{tenant_id}/{e.project_id}", pos.hex(), pos[:10].hex())
        assert json.loads(row[13]) == json.loads(e.event.to_json())   # the whole event document


# --------------------------------------------------------------------------- 1. laptops -> hub -> ClickHouse
@requires_double
def test_laptops_sync_through_faults_and_ingest_from_the_hub_exactly_once(tmp_path, isolated_state, cluster_file,
                                                                          tenant, monkeypatch):
    monkeypatch.setenv("FDB_CLUSTER_FILE", cluster_file)
    url = analytics_url(isolated_state)
    ann, bob, cat = laptops = [Laptop(tmp_path, name, tenant, cluster_file, offset_ns=k * SEC // 1000, agents=a)
                               for k, (name, a) in enumerate((("ann", 1), ("bob", 2), ("cat", 1)))]

    # overlapping offline periods: each laptop keeps recording while it cannot reach the hub
    for t in laptops:
        t.work(8)
    ann.sync()                                   # ann online; bob and cat offline
    bob.sync_offline(cluster_file)
    for t in laptops:
        t.work(6)
    # bob comes back through flaky commits: 1020, 1021 applied (the classic duplicate trap)
    # and not applied; retried inside the syncer's transactions
    with fdb_double.faults(cluster_file, Fault.not_committed(count=None, probability=0.3),
                           Fault.commit_unknown_result(applied=True, count=None, probability=0.3),
                           Fault.commit_unknown_result(applied=False, count=None, probability=0.2), seed=5):
        bob.sync()
        fired = {(f.code, f.applied): f.fired for f in fdb_double.fault_stats(cluster_file)}
    assert all(n > 0 for n in fired.values()), fired
    cat.sync_offline(cluster_file)
    for t in laptops:
        t.work(5)
    # cat loses the connection in the middle of a pass: its second event batch commits but is
    # reported as timed out (1031, not retried): the pass fails, those events stay pending
    # locally although the hub has them
    # (cat.hub.db: fdb.open caches one Database per cluster file, and open_database's
    # timeout option would apply to every Hub of this process)
    web_ids = fdb.directory.open(cat.hub.db, (ROOT, tenant, "web"))["ids"].key()
    with fdb_double.faults(cluster_file, Fault(code=1031, on="commit", count=1, after=1, applied=True,
                                               key_prefix=web_ids)):
        with pytest.raises(HubUnavailable):
            cat.sync()
    assert 0 < cat.ledger.outbox_status()["pending"] < len(cat.events())
    ann.sync_offline(cluster_file)

    # the first ingest happens while laptops still hold unsynced events: exactly what the hub
    # has arrives, including cat's batch that the hub holds but cat has not marked synced
    hub = make_hub(cluster_file, tenant)
    hub_pos = {r.event.event_id: r.position for p in hub.projects() for r in hub.iter_log(p)}
    now = union(laptops)
    marked = {i for i, e in now.items() if e.hub_versionstamp is not None}
    assert marked < set(hub_pos) < set(now)
    assert all(now[i].hub_versionstamp == hub_pos[i] for i in marked)
    stats = ingest(tenant, tmp_path, "--batch-size", "13")
    assert stats["inserted"] == stats["read"] == len(hub_pos) and stats["skipped_present"] == 0
    assert set(stats["streams"]) == {f"hub:{tenant}/web", f"hub:{tenant}/api"}
    on_hub = {i: now[i] for i in hub_pos}
    assert_clickhouse_equals(url, tenant, on_hub, positions=hub_pos)

    # everyone back online; the ingest reads through transient read faults (1007, retried
    # by the bindings' transaction loop)
    for t in laptops:
        report = t.sync()
        assert t.ledger.outbox_status()["pending"] == 0
        # cat's lost-reply batch is found by its idempotency keys, not written twice
        assert (report.already_on_hub > 0) == (t is cat)
    everything = union(laptops)
    assert sum(len(e.body) > 100_000 for e in everything.values()) >= 3   # chunked in the hub log
    with fdb_double.faults(cluster_file, Fault.too_old(on="read", count=4, probability=0.3), seed=9):
        stats = ingest(tenant, tmp_path, "--batch-size", "17")
        assert fdb_double.fault_stats(cluster_file)[0].fired == 4
    assert stats["inserted"] == len(everything) - len(on_hub)
    assert_clickhouse_equals(url, tenant, everything)

    # ingest again: nothing added
    before = ch_rows(url, "SELECT count(), max(ingested_at) FROM analytics.swarm_events")
    stats = ingest(tenant, tmp_path)
    assert stats["inserted"] == stats["read"] == 0
    assert ch_rows(url, "SELECT count(), max(ingested_at) FROM analytics.swarm_events") == before

    # record more (only two laptops), sync, ingest: exactly the new events arrive
    ann.work(4)
    cat.work(3)
    for t in (ann, cat):
        t.sync()
    new = {i: e for i, e in union(laptops).items() if i not in everything}
    assert len(new) > 10
    stats = ingest(tenant, tmp_path, "--batch-size", "5")
    assert stats["inserted"] == stats["read"] == len(new)
    arrived = ch_rows(url, "SELECT event_id FROM analytics.swarm_events WHERE ingested_at > {t:DateTime64(3, 'UTC')}",
                      {"t": before[0][1]})
    assert sorted(r[0] for r in arrived) == sorted(new)
    assert_clickhouse_equals(url, tenant, union(laptops))
    # the hub agrees: every event exactly once in hub order, at the ledgers' positions
    hub = make_hub(cluster_file, tenant)
    for project in ("web", "api"):
        positions = [r.position.hex() for r in hub.iter_log(project)]
        mine = [e for e in union(laptops).values() if e.project_id == project]
        assert sorted(positions) == positions and len(positions) == len(set(positions)) == len(mine)
        assert set(positions) == {e.hub_versionstamp.hex() for e in mine}
    for t in laptops:
        t.ledger.close()


# --------------------------------------------------------------------------- 2. crash
def build_hub(tmp_path, tenant_id, cluster, laptops=3, per_laptop=1000):
    """Laptops whose events cycle over 5 months of event time (so one INSERT batch spans
    several partitions, one part each, and a kill can land between them), in two
    projects, synced into the hub in commits of 40 events (the hub log is read a whole
    commit at a time, so small commits let the ingest batch sizes apply). Returns the
    event ids per project."""
    ids: dict[str, set[str]] = {"web": set(), "api": set()}
    for k in range(laptops):
        with Ledger(tmp_path / f"laptop{k}.db", durability="normal") as lg:
            events, blobs = [], {}
            for i in range(per_laptop):
                ts = T0 + (i % 5) * MONTH + (i * laptops + k) * SEC
                project = ("web", "api")[i % 2]
                common = dict(event_id=new_event_id(ts // 1_000_000), timestamp=ts, tenant_id=tenant_id,
                              project_id=project, agent_id=f"laptop{k}-a{i % 3}")
                if i % 3 == 0:
                    ev = SwarmEvent(**common, decision=AgentDecision(rationale=f"r{k}/{i}", confidence_score=0.5))
                else:
                    data = f"{k}/{i}\n".encode()
                    blobs[sha256_hex(data)] = data
                    ev = SwarmEvent(**common, state_change=StateChange(
                        target_resource=f"l{k}/f{i}.txt", operation="create", new_state_hash=sha256_hex(data),
                        file_mode="regular"))
                events.append(ev)
                ids[project].add(ev.event_id)
            lg.append_many(events, blobs)
            Syncer(lg, make_hub(cluster, tenant_id, timeout_ms=10_000), batch_events=40).sync_once()
            assert lg.outbox_status()["pending"] == 0
    return ids


def ingest_process(python, tmp_path, tenant_id, cluster, batch, env=None):
    """`ledger ingest --source hub` as a real process, with the double installed in it
    (``env``: its environment, e.g. ``crash_env(...)``; default this process's)."""
    runner = ["-c", "from cli import cli; cli()"] if USE_REAL else \
        ["-m", "tests.fdb_double.run", "cli:cli"]
    return subprocess.Popen([python, *runner, "--db", str(tmp_path / "no-ledger-here.db"), "--tenant", tenant_id,
                             "ingest", "--source", "hub", "--cluster-file", cluster, "--batch-size", str(batch),
                             "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_hub_ingestor_killed_at_random_points_then_restarted_gives_exactly_once(
        tmp_path, isolated_state, shared_cluster_file, tenant, python):
    ids = build_hub(tmp_path, tenant, shared_cluster_file)
    hub = make_hub(shared_cluster_file, tenant, timeout_ms=10_000)
    hub_ids = {p: [r.event.event_id for r in hub.iter_log(p)] for p in ("web", "api")}
    assert {p: set(v) for p, v in hub_ids.items()} == ids and all(len(v) == len(set(v)) for v in hub_ids.values())
    n = sum(len(v) for v in hub_ids.values())
    url = analytics_url(isolated_state)
    seed = int(os.environ.get("CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    partial_kills = kill_rounds(
        lambda batch, env: ingest_process(python, tmp_path, tenant, shared_cluster_file, batch, env),
        url, n, rng)
    assert partial_kills >= 1, f"no kill landed mid-ingest (seed {seed}); the test proved nothing"
    final = ingest_process(python, tmp_path, tenant, shared_cluster_file, 100)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()
    assert json.loads(out)["read"] <= n
    count, uniq, final_count = ch_rows(
        url, "SELECT count(), uniqExact(event_id), (SELECT count() FROM analytics.swarm_events FINAL) "
             "FROM analytics.swarm_events")[0]
    assert (count, uniq, final_count) == (n, n, n), f"seed {seed}"
    for project, expected in hub_ids.items():
        got = ch_rows(url, "SELECT event_id FROM analytics.swarm_events WHERE project_id = {p:String} "
                           "ORDER BY source_position", {"p": project})
        assert [r[0] for r in got] == expected, f"seed {seed}: project {project} differs from the hub log"


def test_hub_ingestor_killed_between_insert_and_checkpoint_is_repaired(
        tmp_path, isolated_state, shared_cluster_file, tenant, python):
    """Deterministic variant: the hub ingestor dies right after a data INSERT returned and
    before its checkpoint (the window where a naive ingestor would duplicate on restart)."""
    ids = build_hub(tmp_path, tenant, shared_cluster_file, per_laptop=200)
    n = sum(len(v) for v in ids.values())
    url = analytics_url(isolated_state)
    proc = ingest_process(python, tmp_path, tenant, shared_cluster_file, 60, crash_env(DIE_BEFORE_THIRD_CHECKPOINT))
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    # the hub log is read whole commits at a time (20 events of a project per commit):
    # 3 batches of 60 are in ClickHouse, only 2 checkpointed
    assert ch_rows(url, "SELECT count(), uniqExact(event_id) FROM analytics.swarm_events") == [(180, 180)]
    assert ch_rows(url, "SELECT count(), max(events) FROM analytics.ingest_checkpoints") == [(2, 60)]
    done = ingest_process(python, tmp_path, tenant, shared_cluster_file, 100)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err.decode()
    stats = json.loads(out)
    assert stats["skipped_present"] == 60 and stats["inserted"] == n - 180
    assert ch_rows(url, "SELECT count(), uniqExact(event_id) FROM analytics.swarm_events") == [(n, n)]
    assert {r[0] for r in ch_rows(url, "SELECT event_id FROM analytics.swarm_events")} == ids["web"] | ids["api"]


# --------------------------------------------------------------------------- 3. tenants
def test_tenant_isolation_from_laptop_to_clickhouse(tmp_path, isolated_state, cluster_file, tenant, other_tenant,
                                                    monkeypatch):
    """Tenant B's events on the same hub (same project name, one laptop even records both
    tenants in one ledger) never reach tenant A's ingest, and the reverse."""
    monkeypatch.setenv("FDB_CLUSTER_FILE", cluster_file)
    url = analytics_url(isolated_state)
    a, b = tenant, other_tenant
    mixed = Ledger(tmp_path / "mixed.db", durability="normal")
    only_b = Ledger(tmp_path / "only-b.db", durability="normal")
    clock = Clock(T0)
    rec_a = Recorder(mixed, project_id="web", agent_id="agent-a", tenant_id=a, clock=clock)
    rec_b = Recorder(mixed, project_id="web", agent_id="agent-b", tenant_id=b, clock=clock)
    rec_b2 = Recorder(only_b, project_id="web", agent_id="agent-b2", tenant_id=b, clock=clock)
    for i in range(12):
        for rec in (rec_a, rec_b, rec_b2):
            rec.decision(f"{rec.tenant_id} plan {i}")
            rec.file_change("src/shared_name.py", f"{rec.agent_id} {i}\n".encode())
            if i % 4 == 3:
                rec.file_change(f"src/renamed{i}.py", None, previous_path="src/shared_name.py")
                rec.file_change(f"src/renamed{i}.py", None)
    hub_a, hub_b = make_hub(cluster_file, a), make_hub(cluster_file, b)
    report = Syncer(mixed, hub_a).sync_once()          # A's syncer refuses B's events
    assert report.refused == len(list(mixed.events(tenant_id=b)))
    Syncer(mixed, hub_b).sync_once()
    Syncer(only_b, hub_b).sync_once()
    assert mixed.outbox_status()["pending"] == only_b.outbox_status()["pending"] == 0

    def of(lg, t):
        return {e.event_id: e for e in lg.events(tenant_id=t, order="seq")}

    a_events = of(mixed, a)
    b_events = {**of(mixed, b), **of(only_b, b)}
    stats = ingest(a, tmp_path)
    assert stats["inserted"] == len(a_events) and set(stats["streams"]) == {f"hub:{a}/web"}
    assert ch_rows(url, "SELECT DISTINCT tenant_id FROM analytics.swarm_events") == [(a,)]
    assert_clickhouse_equals(url, a, a_events)
    b_ids = list(b_events)
    assert ch_rows(url, "SELECT count() FROM analytics.swarm_events WHERE has({ids:Array(String)}, event_id) "
                        "OR agent_id LIKE 'agent-b%' OR position(event_json, {t:String}) > 0",
                   {"ids": b_ids, "t": b}) == [(0,)]

    # B ingests into the same analytics database: own stream, own checkpoint, A untouched
    stats = ingest(b, tmp_path)
    assert stats["inserted"] == len(b_events) and set(stats["streams"]) == {f"hub:{b}/web"}
    assert_clickhouse_equals(url, a, a_events)
    assert_clickhouse_equals(url, b, b_events)
    # more B events on the hub: A's ingest sees nothing new, B's exactly them
    for i in range(5):
        rec_b2.decision(f"late plan {i}")
    Syncer(only_b, hub_b).sync_once()
    assert ingest(a, tmp_path)["read"] == 0
    assert ingest(b, tmp_path)["inserted"] == 5
    assert_clickhouse_equals(url, a, a_events)
    assert_clickhouse_equals(url, b, {**of(mixed, b), **of(only_b, b)})
    mixed.close()
    only_b.close()
