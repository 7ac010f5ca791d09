"""Replay from the hub: three laptops with overlapping offline periods sync into one hub;
replay from the hub equals replay of the merged history; nothing missing or doubled;
``as_of`` replays what the hub knew at a versionstamp (bitemporal)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ledger import Ledger
from replay.moments import Moment
from nervous_system.recorder import Recorder
from replay import build_tree, replay_from, replay_local
from schemas import format_timestamp_ns
from hub.errors import HubError, HubUnavailable
from replay.hub import HubHistory, hub_source, log_rows, parse_version
from syncer.syncer import Syncer
from tests import fdb_double
from tests.hub_fixtures import FakeClock, USE_REAL, make_hub

T0 = 1_763_700_000_000_000_000
SECOND = 1_000_000_000


class Laptop:
    def __init__(self, tmp_path, name, tenant_id, cluster, offset):
        self.name = name
        self.ledger = Ledger(tmp_path / f"{name}.db", durability="normal")
        # interleaved clocks: laptop k's events fall between the others'
        self.clock = FakeClock(T0 + offset, step=3 * SECOND // 1000)
        self.rec = Recorder(self.ledger, project_id="web", agent_id=f"agent-{name}", tenant_id=tenant_id,
                            clock=self.clock)
        self.hub = make_hub(cluster, tenant_id, timeout_ms=300)
        self.n = 0

    def work(self, rounds, shared_path=None):
        for _ in range(rounds):
            self.n += 1
            self.rec.decision(f"{self.name} step {self.n}")
            self.rec.file_change(f"{self.name}/file{self.n % 4}.txt", f"{self.name} rev {self.n}\n".encode())
            if self.n % 5 == 0:
                self.rec.file_change(f"{self.name}/tool.sh", f"#!/bin/sh\necho {self.n}\n".encode(),
                                     mode="executable")
            if self.n % 7 == 0:
                self.rec.file_change(f"{self.name}/file{(self.n + 1) % 4}.txt", None)

    def sync(self):
        return Syncer(self.ledger, self.hub, batch_events=9).sync_once()

    def sync_offline(self, cluster):
        """Try to sync while the cluster is unreachable for this laptop: fails, loses nothing."""
        if USE_REAL:
            return
        with fdb_double.faults(cluster, fdb_double.Fault.unreachable_cluster()):
            with pytest.raises(HubUnavailable):
                self.sync()


@pytest.fixture
def laptops(tmp_path, cluster_file, tenant):
    tops = [Laptop(tmp_path, n, tenant, cluster_file, offset=k * SECOND // 1000)
            for k, n in enumerate(("ann", "bob", "cat"))]
    yield tops
    for t in tops:
        t.ledger.close()


def _merged(tmp_path, laptops):
    merged = Ledger(tmp_path / "merged.db", durability="normal")
    for top in laptops:
        for e in top.ledger.events(order="seq"):
            sc = e.event.state_change
            blobs = {}
            if sc and sc.new_state_hash:
                blobs[sc.new_state_hash] = top.ledger.get_blob(sc.new_state_hash)
            merged.append(e.event, blobs)
    return merged


def _tree_of(root: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_file():
            out[rel] = (p.read_bytes(), os.stat(p).st_mode & 0o777)
    return out


def test_three_laptops_with_offline_periods_converge(tmp_path, laptops, cluster_file, tenant):
    ann, bob, cat = laptops
    for t in laptops:
        t.work(6)
    ann.sync()                       # ann online; bob and cat offline
    bob.sync_offline(cluster_file)
    after_round1 = make_hub(cluster_file, tenant).read_log("web", None, 10_000)[-1].versionstamp
    ann_round1 = {e.event_id for e in ann.ledger.events()}
    for t in laptops:
        t.work(5)
    bob.sync()                       # bob online; ann and cat offline
    ann.sync_offline(cluster_file)
    for t in laptops:
        t.work(4)
    cat.sync()                       # cat and ann online, bob offline
    ann.sync()
    bob.sync_offline(cluster_file)
    for t in laptops:
        t.work(3)
    for t in laptops:                # everyone back online
        t.sync()
    for t in laptops:
        assert t.ledger.outbox_status()["pending"] == 0

    hub = make_hub(cluster_file, tenant)
    records = list(hub.iter_log("web"))
    ids = [r.event.event_id for r in records]
    local = [e for t in laptops for e in t.ledger.events()]
    assert len(ids) == len(set(ids)) == len(local)          # nothing doubled
    assert set(ids) == {e.event_id for e in local}         # nothing missing
    # each laptop's events keep their recording order on the hub
    for t in laptops:
        mine = [i for i in ids if i in {e.event_id for e in t.ledger.events()}]
        assert mine == [e.event_id for e in t.ledger.events(order="seq")]

    merged = _merged(tmp_path, laptops)
    history = HubHistory(hub, "web")
    times = sorted(e.time_ns for e in local)
    for cut in (times[len(times) // 4], times[len(times) // 2], times[-10], times[-1] + 1):
        moment = Moment("time", str(cut), cut, until_ns=cut)
        hub_tree = build_tree(history.changes(moment))
        local_tree = build_tree(merged.changes(tenant, "web", until_ns=cut, order="time"))
        assert hub_tree[0] == local_tree[0]
        assert len(hub_tree[1]) == len(local_tree[1])
    # materialized bytes and modes are identical
    src = hub_source(hub, "web")
    moment = src.resolve(format_timestamp_ns(times[-1] + 1))
    rep_hub = replay_from(src, moment, tmp_path / "from-hub")
    rep_local = replay_local(merged, tenant, "web", moment, tmp_path / "from-merged")
    assert rep_hub.files == rep_local.files and rep_hub.files > 10 and rep_hub.executables >= 3
    assert _tree_of(tmp_path / "from-hub") == _tree_of(tmp_path / "from-merged")

    # bitemporal: as of the hub version after round 1, only ann's round-1 events exist
    then = HubHistory(hub, "web", as_of=after_round1.hex())
    assert {e.event_id for e in then.entries} == ann_round1
    tree_then, _ = build_tree(then.changes(moment))
    assert all(p.startswith("ann/") for p in tree_then)
    merged.close()


def test_event_and_commit_moments_and_log(tmp_path, cluster_file, tenant):
    with Ledger(tmp_path / "l.db") as lg:
        rec = Recorder(lg, project_id="web", agent_id="a", tenant_id=tenant, clock=FakeClock())
        rec.file_change("a.txt", b"1\n", commit="aaaa1111")
        mid = rec.file_change("b.txt", b"2\n", commit="bbbb2222")
        rec.file_change("a.txt", b"3\n", commit="cccc3333")
        hub = make_hub(cluster_file, tenant)
        Syncer(lg, hub).sync_once()
    history = HubHistory(hub, "web")
    m = history.resolve(mid)
    assert m.kind == "event"
    assert build_tree(history.changes(m))[0].keys() == {"a.txt", "b.txt"}
    m = history.resolve("bbbb")
    assert m.kind == "commit" and m.commit == "bbbb2222"
    assert len(history.changes(m)) == 2
    m = history.resolve(mid[:-4])
    assert m.event_id == mid
    assert history.resolve("2020-01-01T00:00:00Z").kind == "time"
    assert history.changes(history.resolve("2020-01-01T00:00:00Z")) == []
    from ledger.errors import MomentNotFound

    with pytest.raises(MomentNotFound, match="no event"):
        history.resolve("01a1fe2b-252e-704a-91d2-ff8a6b2e68da")
    rows = list(log_rows(history, limit=2))
    assert len(rows) == 2 and len(rows[0]["hub_position"]) == 24 and rows[0]["state_change"]["target_resource"] == "a.txt"
    # versions: 20 or 24 hex digits
    assert parse_version("00" * 10) == bytes(10)
    with pytest.raises(HubError, match="20 hex digits"):
        parse_version("xyz")


def test_cli_replay_source_hub(tmp_path, cluster_file, tenant, monkeypatch):
    from click.testing import CliRunner

    from cli import cli

    db = tmp_path / "l.db"
    with Ledger(db) as lg:
        rec = Recorder(lg, project_id="web", agent_id="a", tenant_id=tenant, clock=FakeClock())
        rec.file_change("a.txt", b"one\n")
        hub = make_hub(cluster_file, tenant)
        Syncer(lg, hub).sync_once()
        first = hub.read_log("web")[-1].versionstamp
        rec.file_change("b.txt", b"two\n")
        Syncer(lg, hub).sync_once()
    monkeypatch.setenv("FDB_CLUSTER_FILE", cluster_file)
    other = tmp_path / "empty.db"  # the hub, not the local ledger, is read
    base = ["--db", str(other), "--tenant", tenant]
    res = CliRunner().invoke(cli, [*base, "replay", "--source", "hub", "--at", "now", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "a.txt").read_bytes() == b"one\n" and (tmp_path / "o" / "b.txt").exists()
    res = CliRunner().invoke(cli, [*base, "replay", "--source", "hub", "--as-of-version", first.hex(),
                                   "--at", "now", "--out", str(tmp_path / "o2")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o2" / "a.txt").exists() and not (tmp_path / "o2" / "b.txt").exists()
    monkeypatch.delenv("FDB_CLUSTER_FILE")
    res = CliRunner().invoke(cli, [*base, "replay", "--source", "hub", "--at", "now", "--out", str(tmp_path / "o3")])
    assert res.exit_code == 1 and "no hub configured" in res.output


def test_cli_log_source_hub(tmp_path, cluster_file, tenant, monkeypatch):
    """`ledger log --source hub` lists every laptop's events from the hub, with filters."""
    import json

    from click.testing import CliRunner

    from cli import cli

    ids = {}
    for laptop in ("one", "two"):
        with Ledger(tmp_path / f"{laptop}.db") as lg:
            rec = Recorder(lg, project_id="web", agent_id=f"agent-{laptop}", tenant_id=tenant,
                           clock=FakeClock())
            ids[laptop] = rec.decision(f"plan on laptop {laptop}")
            rec.file_change(f"src/{laptop}.py", b"x\n", commit=("aaaa" if laptop == "one" else "bbbb") * 2)
            Syncer(lg, make_hub(cluster_file, tenant)).sync_once()
    monkeypatch.setenv("FDB_CLUSTER_FILE", cluster_file)
    base = ["--db", str(tmp_path / "empty.db"), "--tenant", tenant, "log", "--source", "hub"]
    res = CliRunner().invoke(cli, [*base, "--json", "--limit", "0"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert {r["agent_id"] for r in rows} == {"agent-one", "agent-two"} and len(rows) == 4
    assert all(len(r["hub_position"]) == 24 for r in rows)
    res = CliRunner().invoke(cli, [*base, "--json", "--agent", "agent-two", "--kind", "decision"])
    assert [r["event_id"] for r in json.loads(res.stdout)] == [ids["two"]]
    res = CliRunner().invoke(cli, [*base, "--json", "src/"])
    assert sorted(r["state_change"]["target_resource"] for r in json.loads(res.stdout)) == ["src/one.py", "src/two.py"]
    res = CliRunner().invoke(cli, [*base, "--json", "--commit", "bbbb"])
    assert [r["state_change"]["target_resource"] for r in json.loads(res.stdout)] == ["src/two.py"]
    res = CliRunner().invoke(cli, [*base, "--until", ids["one"], "--oldest-first"])
    assert res.exit_code == 0 and ids["one"] in res.output and "src/two.py" not in res.output
