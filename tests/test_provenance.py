"""Provenance of shared knowledge (syncer.shared): events imported from another ledger or
a bundle keep their exact bytes and carry shared_from (which ledger/bundle), shown by
`ledger show` and in `ledger log --json`/`show --json`; events recorded here have none."""

from __future__ import annotations

import json
import zipfile

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import Ledger
from nervous_system.recorder import Recorder
from syncer.bundles import BundleError, export_bundle
from syncer.shared import import_bundle_local, import_ledger_local
from tests.hub_fixtures import FakeClock


def _team_ledger(path, tenant="acme"):
    with Ledger(path) as lg:
        rec = Recorder(lg, project_id="web", agent_id="team-b", tenant_id=tenant, clock=FakeClock(),
                       link_spans=False)
        why = rec.decision("cache the parser tables")
        rec.file_change("src/parser.py", b"TABLES = {}\n")
        rec.file_change("Dockerfile", b"FROM python:3.11\n")
        Recorder(lg, project_id="web", agent_id="x", tenant_id="other", link_spans=False).message("not ours")
        return lg.ledger_id, why, [e for e in lg.events(order="seq") if e.tenant_id == tenant]


def run(db, *args, code=0):
    result = CliRunner().invoke(cli, ["--db", str(db), "--tenant", "acme", *args])
    assert result.exit_code == code, result.output
    return result


def test_bundle_imported_locally_carries_shared_from(tmp_path):
    other_id, why, events = _team_ledger(tmp_path / "team-b.db")
    bundle = tmp_path / "team-b.clb"
    with Ledger(tmp_path / "team-b.db") as other:
        report = export_bundle(other, bundle)
    mine = tmp_path / "mine.db"
    with Ledger(mine) as lg:
        own = Recorder(lg, project_id="web", agent_id="me", tenant_id="acme", link_spans=False).decision("mine")
    out = json.loads(run(mine, "bundle", "import", "--local", str(bundle), "--json").output)
    source = f"bundle team-b.clb (ledger {other_id}, key {report.key_fingerprint})"
    assert out == {"source": source, "events": 4, "written": 3, "already_here": 0, "other_tenant": 1,
                   "missing_content": 0, "refused": []}
    rows = {r["event_id"]: r for r in json.loads(run(mine, "log", "--json").output)}
    assert {i: rows[i]["shared_from"] for i in rows} == {**{e.event_id: source for e in events}, own: None}
    assert json.loads(run(mine, "show", why, "--json").output)["shared_from"] == source
    assert f"shared from  {source}" in run(mine, "show", why).output.replace("shared from      ", "shared from  ")
    with Ledger(mine) as lg:  # the same fact: bytes and ids unchanged, content restored
        assert [lg.get(e.event_id).body for e in events] == [e.body for e in events]
        assert lg.get_blob(events[1].event.state_change.new_state_hash, tenant_id="acme") == b"TABLES = {}\n"
        assert "other" not in {p.tenant_id for p in lg.projects()}
    again = json.loads(run(mine, "bundle", "import", "--local", str(bundle), "--json").output)
    assert (again["written"], again["already_here"]) == (0, 3)


def test_an_event_already_here_keeps_its_provenance(tmp_path):
    _, _, events = _team_ledger(tmp_path / "b.db")
    mine = tmp_path / "mine.db"
    with Ledger(mine) as lg:
        lg.append(events[0].event)  # recorded here first (e.g. synced copy)
        first = import_ledger_local(lg, tmp_path / "b.db", tenant_id="acme")
        assert (first.written, first.already_here) == (2, 1)
        assert lg.get(events[0].event_id).shared_from is None
        assert lg.get(events[1].event_id).shared_from == first.source
        assert first.source.startswith("ledger ") and str((tmp_path / "b.db").resolve()) in first.source


def test_import_ledger_cli_and_refusals(tmp_path):
    _team_ledger(tmp_path / "b.db")
    mine = tmp_path / "mine.db"
    text = run(mine, "import", "ledger", str(tmp_path / "b.db")).output
    assert "3 events written, 0 already here, 0 of other tenants skipped" in text  # only --tenant is read
    same = run(mine, "import", "ledger", str(mine), "--json", code=1)
    assert "is this ledger itself" in same.output


def test_an_altered_bundle_is_refused_before_anything_is_written(tmp_path):
    _team_ledger(tmp_path / "b.db")
    bundle = tmp_path / "b.clb"
    with Ledger(tmp_path / "b.db") as other:
        export_bundle(other, bundle)
    altered = tmp_path / "altered.clb"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(altered, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data[:-1] + bytes([data[-1] ^ 1]) if item.filename == "events.bin" else data)
    with Ledger(tmp_path / "mine.db") as lg:
        with pytest.raises(BundleError, match="refused"):
            import_bundle_local(lg, altered, tenant_id="acme")
        with pytest.raises(BundleError, match="signed by key"):
            import_bundle_local(lg, bundle, tenant_id="acme", expect_key="0000000000000000")
        assert lg.count() == 0


def test_events_recorded_here_have_no_provenance(ledger_path):
    with Ledger(ledger_path) as lg:
        event_id = Recorder(lg, project_id="web", agent_id="me", tenant_id="acme", link_spans=False).decision("x")
    assert json.loads(run(ledger_path, "show", event_id, "--json").output)["shared_from"] is None
    assert "shared from" not in run(ledger_path, "show", event_id).output
