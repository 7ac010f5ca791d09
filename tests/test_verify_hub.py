"""Tamper evidence on the hub (issue 15 §2): the hub checks each laptop's chain on arrival
and keeps it; `ledger verify --source hub` names an event modified, deleted, inserted or
reordered directly in the FoundationDB double's storage, a forged checkpoint, and a local
ledger rewritten after it synced."""

from __future__ import annotations

import json
import sqlite3

import fdb
import pytest
from click.testing import CliRunner

from cli import cli
from hub.errors import HubChainRefused
from hub.protocol import HubLink
from ledger import Ledger, checkpoints
from ledger.chain import digest
from schemas import AgentDecision, event_from_bytes
from syncer.syncer import Syncer
from tests.hub_fixtures import fill
from hub.verify import verify_hub


@pytest.fixture
def lg(ledger_path):
    with Ledger(ledger_path) as ledger:
        yield ledger


def synced(lg, hub, tenant, n=12):
    fill(lg, tenant, n)
    report = Syncer(lg, hub).sync_once()
    assert report.chain["links"] == n and report.chain["checkpoints"] >= 1
    return report


def log_entries(hub, project="web"):
    tr = hub.db.create_transaction()
    space = hub.layout.space(tr, project)
    return space, [(k, v) for k, v in tr.get_range(space.log.range().start, space.log.range().stop)]


def raw_write(hub, fn):
    tr = hub.db.create_transaction()
    fn(tr)
    tr.commit().wait()


def test_hub_holds_the_chain_and_it_verifies(lg, hub, tenant):
    synced(lg, hub, tenant)
    st = hub.chain_state(lg.ledger_id)
    assert st["head"][0] == 12 and len(st["links"]) == 12 and all(h.on_hub for h in st["links"])
    assert st["checkpoints"][-1]["seq"] == 12  # the syncer signed the head it sent
    report = verify_hub(hub, lg)
    assert report.ok, [str(p) for p in report.problems]
    assert report.events == 12


def test_the_hub_refuses_a_rewritten_laptop_chain(lg, hub, tenant):
    synced(lg, hub, tenant, 6)
    st = hub.chain_state(lg.ledger_id)
    bad = HubLink(7, "x", "web", b"\1" * 32, b"\2" * 32)
    with pytest.raises(HubChainRefused, match="seq 7"):
        hub.append_chain(lg.ledger_id, [bad])
    held = st["links"][2]
    with pytest.raises(HubChainRefused, match="differs from the copy the hub holds"):
        hub.append_chain(lg.ledger_id, [HubLink(held.seq, held.event_id, "web", held.digest, b"\3" * 32)])
    cp = dict(st["checkpoints"][-1], head="00" * 32)
    with pytest.raises(HubChainRefused, match="does not verify"):
        hub.append_chain(lg.ledger_id, [], [cp])
    assert hub.chain_state(lg.ledger_id)["head"][0] == 6  # nothing of it was stored


def test_event_modified_in_the_hub_storage_is_named(lg, hub, tenant):
    synced(lg, hub, tenant)
    space, entries = log_entries(hub)
    key, value = entries[4]
    event = event_from_bytes(bytes(value))
    forged = event.model_copy(update={"decision": AgentDecision(rationale="rewritten on the hub")}) \
        if event.decision else event.model_copy(update={"timestamp": event.timestamp + 1})
    raw_write(hub, lambda tr: tr.__setitem__(key, forged.to_bytes()))
    report = verify_hub(hub, lg)
    assert (report.first.kind, report.first.event_id) == ("modified", event.event_id)
    assert report.first.seq == lg.get(event.event_id).seq


def test_event_deleted_from_the_hub_storage_is_named(lg, hub, tenant):
    synced(lg, hub, tenant)
    space, entries = log_entries(hub)
    key, value = entries[7]
    event = event_from_bytes(bytes(value))
    raw_write(hub, lambda tr: tr.__delitem__(key))
    report = verify_hub(hub, lg)
    assert (report.first.kind, report.first.event_id, report.first.seq) == (
        "removed", event.event_id, lg.get(event.event_id).seq)


def test_event_inserted_in_the_hub_storage_is_named(lg, hub, tenant):
    synced(lg, hub, tenant)
    space, entries = log_entries(hub)
    key, value = entries[3]
    event = event_from_bytes(bytes(value))
    from schemas import new_event_id

    forged = event.model_copy(update={"event_id": new_event_id()})
    position = space.log.unpack(key)[0]
    new_key = space.log.pack((fdb.tuple.Versionstamp(position.tr_version, 999), 0))
    raw_write(hub, lambda tr: tr.__setitem__(new_key, forged.to_bytes()))
    report = verify_hub(hub, lg)
    assert (report.first.kind, report.first.event_id) == ("inserted", forged.event_id)


def test_events_reordered_in_the_hub_storage_are_named(lg, hub, tenant):
    synced(lg, hub, tenant)
    space, entries = log_entries(hub)
    (k1, v1), (k2, v2) = entries[2], entries[9]

    def swap(tr):
        tr[k1], tr[k2] = v2, v1
    raw_write(hub, swap)
    report = verify_hub(hub, lg)
    moved = event_from_bytes(bytes(v2)).event_id
    assert report.first.kind == "reordered"
    assert report.first.event_id in {moved, event_from_bytes(bytes(v1)).event_id}


def test_forged_checkpoint_and_link_in_the_hub_storage_are_named(lg, hub, tenant):
    synced(lg, hub, tenant)
    from hub.chains import ROOT

    def forge(tr):
        d = fdb.directory.open(tr, (ROOT, tenant))
        for k, v in tr.get_range_startswith(d["checkpoints"].pack((lg.ledger_id,))):
            head, created, sig = fdb.tuple.unpack(v)
            tr[k] = fdb.tuple.pack((b"\7" * 32, created, sig))
    raw_write(hub, forge)
    report = verify_hub(hub, lg)
    assert report.first.kind == "forged-checkpoint"

    def relink(tr):
        d = fdb.directory.open(tr, (ROOT, tenant))
        k = d["links"].pack((lg.ledger_id, 5))
        e, p, dg, c, r, o = fdb.tuple.unpack(tr[k])
        tr[k] = fdb.tuple.pack((e, p, b"\0" * 32, c, r, o))
    raw_write(hub, relink)
    report = verify_hub(hub, lg)
    assert (report.first.kind, report.first.seq) == ("modified", 5)


def test_local_ledger_rewritten_after_sync_is_named_against_the_hub(lg, hub, tenant, ledger_path):
    synced(lg, hub, tenant)
    ledger_id = lg.ledger_id
    from ledger.chain import genesis, link

    with sqlite3.connect(ledger_path, isolation_level=None) as conn:  # rewrite and re-chain seq 3 onwards
        value = genesis(ledger_id)
        for seq, b in conn.execute("SELECT seq, body FROM events ORDER BY seq").fetchall():
            b = bytes(b) if seq != 3 else bytes(b).replace(b"message 2", b"massage 2")
            assert seq != 3 or b"massage 2" in b
            value = link(value, digest(b))
            conn.execute("UPDATE events SET body = ?, body_sha256 = ?, chain = ? WHERE seq = ?",
                         (b, digest(b), value, seq))
        conn.execute("DELETE FROM chain_checkpoints")
    report = verify_hub(hub, lg)
    assert (report.first.kind, report.first.seq) == ("modified", 3)
    assert "differs from the hub's copy" in report.first.detail


def test_cli_verify_source_hub(lg, hub, tenant, cluster_file, ledger_path):
    synced(lg, hub, tenant)
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "--tenant", tenant, "verify", "--source", "hub",
                                   "--json"], env={"FDB_CLUSTER_FILE": cluster_file})
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["ok"] and out["source"] == "hub" and out["events"] == 12


def test_chain_through_the_gateway(ledger_path, gateway, make_token, tenant):
    """A laptop behind the gateway sends its chain; the gateway's hub checks it on arrival
    (a rewritten link is refused with HTTP 409 chain_refused) and verify reads it back."""
    from hub.http_client import HttpHub

    with Ledger(ledger_path) as laptop:
        fill(laptop, tenant, 9)
        writer = HttpHub(gateway.url, make_token(tenant, "write"), tenant)
        report = Syncer(laptop, writer).sync_once()
        assert report.chain["head_seq"] == 9
        reader = HttpHub(gateway.url, make_token(tenant, "read"), tenant)
        held = reader.chain_state(laptop.ledger_id)["links"][4]
        with pytest.raises(HubChainRefused, match="differs from the copy"):
            writer.append_chain(laptop.ledger_id, [HubLink(held.seq, held.event_id, "web", held.digest, b"\1" * 32)])
        result = verify_hub(reader, laptop)
        assert result.ok and result.events == 9, [str(p) for p in result.problems]
