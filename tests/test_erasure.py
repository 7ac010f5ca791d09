"""Erasure by crypto-shredding (issue 15 §3): sealed texts, transparent reading, `ledger
erase` destroying the keys locally and on the hub; afterwards the chain still verifies
(locally and against the hub), the texts and keys are in no byte of the SQLite file (with
its WAL), the hub double or the chdb data directory, and readers say "[erased]"."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import Ledger
from ledger.erasure import ERASED, PREFIX
from ledger.verify import verify_ledger
from nervous_system import Recorder
from syncer.syncer import Syncer

SECRET = "the launch code is tangerine-47"


def recorded(path, tenant="default"):
    with Ledger(path) as lg:
        lg.set_sealing(True)
        a = Recorder(lg, project_id="web", agent_id="alice", session_id="s-1", tenant_id=tenant)
        b = Recorder(lg, project_id="web", agent_id="bob", session_id="s-2", tenant_id=tenant)
        ids = [a.decision(f"decide: {SECRET}"), a.message(f"msg: {SECRET}"),
               b.decision("bob keeps this"), b.message("bob says hi")]
        a.file_change("src/app.py", b"print('hello')\n")
    return ids


def raw_bytes(path) -> bytes:
    data = path.read_bytes()
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            data += extra.read_bytes()
    return data


def test_texts_are_stored_sealed_and_read_transparently(ledger_path):
    ids = recorded(ledger_path)
    assert SECRET.encode() not in raw_bytes(ledger_path)
    with Ledger(ledger_path) as lg:
        stored = lg.get(ids[0])
        assert PREFIX.encode() in stored.body
        assert stored.event.decision.rationale == f"decide: {SECRET}"
        assert lg.get(ids[1]).event.message.content == f"msg: {SECRET}"


def test_sealing_is_deterministic_so_appends_stay_idempotent(ledger_path):
    from schemas import AgentDecision, SwarmEvent, new_event_id

    with Ledger(ledger_path) as lg:
        lg.set_sealing(True)
        e = SwarmEvent(event_id=new_event_id(), timestamp=1, tenant_id="t", project_id="p", session_id="s",
                       agent_id="a", decision=AgentDecision(rationale=SECRET))
        assert lg.append(e).inserted
        assert not lg.append(e).inserted  # same event, same sealed bytes: a no-op


def test_erase_session_then_verify_passes_and_nothing_is_recoverable(ledger_path, hub, tenant, cluster_file,
                                                                      monkeypatch):
    """The sync uploads the session key to the hub; `ledger erase` (hub configured)
    destroys it in the ledger file and on the hub (the double's stored bytes hold it
    before, not after); verify passes locally and against the hub."""
    from tests import fdb_double

    ids = recorded(ledger_path, tenant)
    with Ledger(ledger_path) as lg:
        report = Syncer(lg, hub).sync_once()
        key_id, key = lg._conn().execute("SELECT key_id, key FROM erasure_keys WHERE session_id = 's-1'").fetchone()
    assert report.seal_keys["uploaded"] == 2  # alice/s-1 and bob/s-2
    assert hub.seal_keys([key_id]) == {key_id: bytes(key)}
    stored = b"".join(bytes(k) + bytes(v) for k, v in fdb_double.dump(cluster_file))
    assert bytes(key) in stored  # the hub holds the key (team readers decrypt)...
    monkeypatch.setenv("FDB_CLUSTER_FILE", cluster_file)
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "--tenant", tenant, "erase", "--session", "s-1",
                                   "--keep-analytics", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["keys"] == 1 and out["events"] == 3 and out["hub_keys"] == 1 and out["hub_error"] is None
    assert hub.seal_keys([key_id]) == {key_id: None}  # ...and says it was erased
    with Ledger(ledger_path) as lg:
        assert verify_ledger(lg).ok
        assert lg.get(ids[0]).event.decision.rationale == ERASED
        assert lg.get(ids[1]).event.message.content == ERASED
        assert lg.get(ids[2]).event.decision.rationale == "bob keeps this"  # another session's key lives
    data = raw_bytes(ledger_path)
    assert SECRET.encode() not in data and bytes(key) not in data
    hub_bodies = b"".join(bytes(r.body) for r in hub.iter_log("web"))
    assert SECRET.encode() not in hub_bodies and PREFIX.encode() in hub_bodies
    stored = b"".join(bytes(k) + bytes(v) for k, v in fdb_double.dump(cluster_file))
    assert PREFIX.encode() in stored  # the dump does hold the sealed bodies...
    assert SECRET.encode() not in stored and bytes(key) not in stored  # ...never the text, no more the key
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "--tenant", tenant, "verify", "--source", "hub",
                                   "--json"])
    assert res.exit_code == 0, res.output


def test_a_later_sync_never_brings_an_erased_key_back(ledger_path, hub, tenant, tmp_path):
    """Another laptop that recorded the same session uploads its key after the erasure:
    the hub refuses it and that laptop destroys its copy."""
    from ledger.erasure import erase

    recorded(ledger_path, tenant)
    with Ledger(ledger_path) as lg:
        Syncer(lg, hub).sync_once()
        erase(lg, tenant_id=tenant, session_id="s-1", hub=hub)
    other = tmp_path / "other.db"
    with Ledger(other) as lg:
        lg.set_sealing(True)
        Recorder(lg, project_id="web", agent_id="alice", session_id="s-1", tenant_id=tenant).decision(SECRET)
        key_id = lg._conn().execute("SELECT key_id FROM erasure_keys").fetchone()[0]
        report = Syncer(lg, hub).sync_once()
        assert report.seal_keys["refused"] == 1
        assert lg._conn().execute("SELECT count(*) FROM erasure_keys").fetchone()[0] == 0
    assert hub.seal_keys([key_id]) == {key_id: None}


def test_erase_while_the_hub_is_unreachable_finishes_at_the_next_sync(ledger_path, hub, tenant):
    from ledger.erasure import erase

    recorded(ledger_path, tenant)
    with Ledger(ledger_path) as lg:
        Syncer(lg, hub).sync_once()
        key_id = lg._conn().execute("SELECT key_id FROM erasure_keys WHERE session_id = 's-1'").fetchone()[0]

        class Down:
            tenant_id = tenant

            def erase_seal_keys(self, **_kw):
                raise ConnectionError("hub down")

        report = erase(lg, tenant_id=tenant, session_id="s-1", hub=Down())
        assert report.hub_error and report.hub_keys is None
        assert hub.seal_keys([key_id])[key_id] is not None  # still on the hub
        assert Syncer(lg, hub).sync_once().seal_keys["hub_erased"] == 1
    assert hub.seal_keys([key_id]) == {key_id: None}


def test_show_and_log_say_erased(ledger_path):
    ids = recorded(ledger_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", str(ledger_path), "erase", "--agent", "alice",
                               "--keep-analytics"]).exit_code == 0
    res = runner.invoke(cli, ["--db", str(ledger_path), "show", ids[0], "--json"])
    assert res.exit_code == 0, res.output
    assert ERASED in res.output and SECRET not in res.output
    res = runner.invoke(cli, ["--db", str(ledger_path), "log", "--json"])
    assert ERASED in res.output and "bob says hi" in res.output


def test_erasing_what_was_recorded_unsealed_says_so_and_claims_nothing(ledger_path):
    """Erasure can only reach sealed texts: events recorded while sealing was off are
    counted as unsealed, with a warning saying what to do, never as 'unreadable'."""
    with Ledger(ledger_path) as lg:
        rec = Recorder(lg, project_id="web", agent_id="carol", session_id="s-3")
        rec.message(f"msg: {SECRET}")
        lg.set_sealing(True)
        rec.decision("sealed from here on")
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "erase", "--session", "s-3", "--keep-analytics",
                                   "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert (report["events"], report["unsealed"]) == (1, 1)
    assert "1 event(s) of session s-3 were recorded while sealing was off" in res.stderr
    assert SECRET.encode() in raw_bytes(ledger_path)  # honest: that text was never erasable


def test_erase_needs_one_selector(ledger_path):
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "erase", "--json"])
    assert res.exit_code != 0


def chdb_files_holding(root, needle: bytes) -> list[str]:
    """Files under ``root`` (the chdb data directory) whose raw bytes contain ``needle``."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes())


def test_erase_deletes_the_analytics_rows_and_their_bytes(ledger_path, isolated_state):
    """Ingest opens the sealed texts (the analytics rows hold plain text, queryable);
    erasing deletes exactly the erased session's rows and the parts that held them
    leave the disk: the text is in no byte of the chdb data directory afterwards (it
    was before, so the grep can fail)."""
    from tests.analytics_helpers import analytics_url, ch_rows

    recorded(ledger_path)
    runner = CliRunner()
    res = runner.invoke(cli, ["--db", str(ledger_path), "ingest", "--json"])
    assert res.exit_code == 0, res.output
    url = analytics_url(isolated_state)
    holding = ("SELECT count() FROM analytics.swarm_events WHERE position(rationale, {s:String}) > 0 "
               "OR position(event_json, {s:String}) > 0")
    assert ch_rows(url, holding, {"s": SECRET}) == [(2,)]  # plain, searchable
    assert ch_rows(url, holding, {"s": PREFIX}) == [(0,)]
    root = isolated_state / "analytics"
    assert chdb_files_holding(root, SECRET.encode())  # the raw parts hold it
    res = runner.invoke(cli, ["--db", str(ledger_path), "erase", "--session", "s-1", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["analytics_rows"] == 3
    assert ch_rows(url, "SELECT count() FROM analytics.swarm_events WHERE session_id = 's-1'") == [(0,)]
    assert ch_rows(url, "SELECT count() FROM analytics.swarm_events WHERE session_id = 's-2'") == [(2,)]
    assert ch_rows(url, holding, {"s": "bob says hi"}) == [(1,)]
    assert chdb_files_holding(root, SECRET.encode()) == []


def test_team_readers_open_sealed_texts_with_the_hubs_keys_and_say_erased(ledger_path, tenant,
                                                                          shared_cluster_file):
    """A process without the laptop's ledger (another machine) reads the hub's copy: it
    opens the texts with the keys the syncer uploaded, and says [erased] after `ledger
    erase` destroyed them on the hub; the key is in no byte of the double's files then."""
    import subprocess
    import sys
    from pathlib import Path

    from ledger.erasure import erase
    from tests.hub_fixtures import make_hub

    cluster_file = shared_cluster_file
    hub = make_hub(cluster_file, tenant)
    ids = recorded(ledger_path, tenant)
    script = ("import sys; from tests import fdb_double; fdb_double.install(); "
              "from tests.hub_fixtures import make_hub; h = make_hub(sys.argv[1], sys.argv[2]); "
              "e = {r.event.event_id: r.event for r in h.iter_log('web')}; "
              "print(e[sys.argv[3]].decision.rationale); print(e[sys.argv[4]].decision.rationale)")

    def other_machine() -> list[str]:
        out = subprocess.run([sys.executable, "-c", script, cluster_file, tenant, ids[0], ids[2]],
                              capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.split("\n")[:2]

    with Ledger(ledger_path) as lg:
        Syncer(lg, hub).sync_once()
        assert other_machine() == [f"decide: {SECRET}", "bob keeps this"]
        key = bytes(lg._conn().execute("SELECT key FROM erasure_keys WHERE session_id = 's-1'").fetchone()[0])

        def double_bytes() -> bytes:
            return b"".join(p.read_bytes() for p in Path(cluster_file).parent.rglob("*") if p.is_file())

        assert key in double_bytes()
        erase(lg, tenant_id=tenant, session_id="s-1", hub=hub)
    assert other_machine() == [ERASED, "bob keeps this"]
    assert key not in double_bytes() and SECRET.encode() not in double_bytes()


def test_keys_through_the_gateway(ledger_path, gateway, make_token, tenant):
    """Over the HTTP gateway: the syncer uploads the keys with a write token, a read
    token (a team reader) opens the texts, `erase` destroys them through the gateway and
    readers then say [erased]; a read token cannot erase."""
    from hub.errors import HubFailure
    from hub.http_client import HttpHub
    from ledger.erasure import erase, forget_cached

    ids = recorded(ledger_path, tenant)
    writer = HttpHub(gateway.url, make_token(tenant, "write"), tenant)
    reader = HttpHub(gateway.url, make_token(tenant, "read"), tenant)
    with Ledger(ledger_path) as lg:
        Syncer(lg, writer).sync_once()
        key_id = lg._conn().execute("SELECT key_id FROM erasure_keys WHERE session_id = 's-1'").fetchone()[0]
    assert reader.seal_keys([key_id])[key_id] is not None
    with pytest.raises(HubFailure):
        reader.erase_seal_keys(session_id="s-1")
    with Ledger(ledger_path) as lg:
        report = erase(lg, tenant_id=tenant, session_id="s-1", hub=writer)
    assert report.hub_keys == 1 and report.hub_error is None
    assert reader.seal_keys([key_id]) == {key_id: None}
    forget_cached()
    by_id = {r.event.event_id: r.event for r in reader.iter_log("web")}
    assert by_id[ids[0]].decision.rationale == ERASED
    assert by_id[ids[2]].decision.rationale == "bob keeps this"


CONTENT = b"API_URL = 'https://internal.example/orbit-ledger-9931'\n"
ONLY_ALICE = b"PLAN = 'merge the billing and ledger services by friday-0412'\n"


def test_sealed_content_is_erased_and_replay_reports_it(ledger_path, hub, tenant, cluster_file, tmp_path,
                                                         monkeypatch):
    """With content sealing, a file's content is stored as ciphertext under an address
    per (key, hash): the same file in two sessions is two blobs. Replay (local and from
    the hub) restores it while the key lives; after `ledger erase` the plaintext is in no
    byte of the ledger file or the hub double, and replay lists the file as erased in
    its unrestored report. The same bytes recorded by another session stay readable
    through that session's copy (its key lives): those are not erased."""
    from ledger.changes import sealed_content
    from tests import fdb_double

    with Ledger(ledger_path) as lg:
        lg.set_sealing(True, content=True)
        a = Recorder(lg, project_id="web", agent_id="alice", session_id="s-1", tenant_id=tenant)
        b = Recorder(lg, project_id="web", agent_id="bob", session_id="s-2", tenant_id=tenant)
        ea = lg.get(a.file_change("src/config.py", CONTENT)).event.state_change
        eb = lg.get(b.file_change("lib/copy.py", CONTENT)).event.state_change
        only = lg.get(a.file_change("src/plan.py", ONLY_ALICE)).event.state_change
        Syncer(lg, hub).sync_once()
    sa, sb = sealed_content(ea.content_withheld), sealed_content(eb.content_withheld)
    assert sa and sb and sa[1] != sb[1]  # one ciphertext blob per key: dedup links no sessions
    assert CONTENT not in raw_bytes(ledger_path) and ONLY_ALICE not in raw_bytes(ledger_path)
    monkeypatch.setenv("FDB_CLUSTER_FILE", cluster_file)

    def replay(source: str, out) -> dict:
        res = CliRunner().invoke(cli, ["--db", str(ledger_path), "--tenant", tenant, "--project", "web", "replay",
                                       "--source", source, "--at", "now", "--out", str(out), "--json"])
        assert res.exit_code == 0, res.output
        return json.loads(res.stdout)

    assert replay("local", tmp_path / "l1")["unrestored"] == []
    assert (tmp_path / "l1" / "src/config.py").read_bytes() == CONTENT
    assert replay("hub", tmp_path / "h1")["unrestored"] == []
    assert (tmp_path / "h1" / "src/config.py").read_bytes() == CONTENT
    assert (tmp_path / "h1" / "src/plan.py").read_bytes() == ONLY_ALICE
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "--tenant", tenant, "erase", "--session", "s-1",
                                   "--keep-analytics", "--json"])
    assert res.exit_code == 0, res.output
    for source in ("local", "hub"):
        out = tmp_path / f"{source}-2"
        report = replay(source, out)
        assert report["unrestored"] == [{"path": "src/plan.py", "hash": only.new_state_hash, "reason": "erased"}]
        assert not (out / "src/plan.py").exists()
        assert (out / "lib/copy.py").read_bytes() == CONTENT  # bob's copy, bob's key
        assert (out / "src/config.py").read_bytes() == CONTENT  # the same bytes: opened from bob's copy
    with Ledger(ledger_path) as lg:
        assert verify_ledger(lg).ok
    stored = b"".join(bytes(k) + bytes(v) for k, v in fdb_double.dump(cluster_file))
    assert ONLY_ALICE not in stored and ONLY_ALICE not in raw_bytes(ledger_path)
    assert ea.new_state_hash == eb.new_state_hash
    control = tmp_path / "control.db"  # unsealed, the same file is stored raw: the grep can fail
    with Ledger(control) as lg:
        Recorder(lg, project_id="web", agent_id="alice", session_id="s-1").file_change("src/plan.py", ONLY_ALICE)
    assert ONLY_ALICE in raw_bytes(control)


def test_ingest_from_the_hub_opens_texts_with_the_hub_keys(ledger_path, tenant, shared_cluster_file,
                                                           isolated_state):
    """`ledger ingest --source hub` in a process that has only the hub (no ledger holds
    the keys) builds rows with the plain texts; erasing deletes them."""
    import subprocess
    import sys

    from tests.analytics_helpers import analytics_url, ch_rows
    from tests.hub_fixtures import make_hub

    recorded(ledger_path, tenant)
    with Ledger(ledger_path) as lg:
        Syncer(lg, make_hub(shared_cluster_file, tenant)).sync_once()
    env = {**__import__("os").environ, "FDB_CLUSTER_FILE": shared_cluster_file}
    script = ("import sys; from tests import fdb_double; fdb_double.install(); from cli import cli; "
              "cli(sys.argv[1:])")
    # another machine: a fresh ledger file, only the hub has the keys
    out = subprocess.run([sys.executable, "-c", script, "--db", str(isolated_state / "other.db"), "--tenant",
                          tenant, "--project", "web", "ingest", "--source", "hub", "--json"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr + out.stdout
    url = analytics_url(isolated_state)
    holding = "SELECT count() FROM analytics.swarm_events WHERE position(event_json, {s:String}) > 0"
    assert ch_rows(url, holding, {"s": SECRET}) == [(2,)]
    assert ch_rows(url, holding, {"s": "[sealed]"}) == [(0,)]


def test_a_key_made_after_an_erasure_is_uploaded(ledger_path, hub, tenant):
    """SQLite reuses the largest rowid once its row is deleted (an erasure does that):
    a key made afterwards must still reach the hub."""
    from ledger.erasure import erase

    recorded(ledger_path, tenant)
    with Ledger(ledger_path) as lg:
        Syncer(lg, hub).sync_once()
        erase(lg, tenant_id=tenant, session_id="s-2")  # bob's key: the largest rowid
        Recorder(lg, project_id="web", agent_id="carol", session_id="s-3", tenant_id=tenant).decision("carol")
        key_id = lg._conn().execute("SELECT key_id FROM erasure_keys WHERE session_id = 's-3'").fetchone()[0]
        report = Syncer(lg, hub).sync_once()
    assert report.seal_keys == {"uploaded": 1, "refused": 0, "hub_erased": 1}  # bob, pending, done too
    assert hub.seal_keys([key_id])[key_id] is not None
