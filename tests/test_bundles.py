"""Offline bundles: a laptop with no network exports a signed bundle; the hub imports it
twice (each event once, blobs intact, positions merge into the hub's order); an altered
bundle (any member, the manifest, an extra member) is refused before anything is written."""

from __future__ import annotations

import json
import os
import zipfile

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import Ledger, sha256_hex
from nervous_system.recorder import Recorder
from syncer.bundles import BundleError, import_bundle, key_path, verify_bundle
from syncer.syncer import Syncer
from tests.hub_fixtures import FakeClock


def _offline_laptop(path, tenant, n=60):
    with Ledger(path) as lg:
        rec = Recorder(lg, project_id="web", agent_id="offline", tenant_id=tenant, clock=FakeClock())
        for i in range(n):
            rec.decision(f"step {i}")
            rec.file_change(f"src/m{i % 5}.py", f"# rev {i}\n".encode() * (i + 1))
        rec.file_change("assets/big.bin", os.urandom(1_500_000))
        Recorder(lg, project_id="web", agent_id="x", tenant_id="someone-else").message("not this tenant")
        return [e for e in lg.events(order="seq") if e.tenant_id == tenant]


def test_bundle_imported_twice_writes_each_event_once(tmp_path, hub, tenant):
    laptop = tmp_path / "offline.db"
    events = _offline_laptop(laptop, tenant)
    bundle = tmp_path / "laptop.clb"
    res = CliRunner().invoke(cli, ["--db", str(laptop), "--tenant", tenant, "bundle", "export", str(bundle), "--json"])
    assert res.exit_code == 0, res.output
    exported = json.loads(res.output)
    assert exported["events"] == len(events) and exported["blobs"] == 61
    assert (os.stat(key_path(Ledger(laptop))).st_mode & 0o777) == 0o600

    first = import_bundle(hub, bundle, expect_key=exported["key_fingerprint"])
    assert (first.written, first.already_on_hub) == (len(events), 0)
    second = import_bundle(hub, bundle)
    assert (second.written, second.already_on_hub) == (0, len(events))
    on_hub = list(hub.iter_log("web"))
    assert [r.event.event_id for r in on_hub] == [e.event_id for e in events]   # recording order, once
    assert [r.body for r in on_hub] == [e.body for e in events]
    for e in events:
        sc = e.event.state_change
        if sc and sc.new_state_hash:
            assert sha256_hex(hub.read_blob("web", sc.new_state_hash)) == sc.new_state_hash
    # the laptop syncing later finds every event already there: still once
    with Ledger(laptop) as lg:
        report = Syncer(lg, hub).sync_once()
    assert report.sent == 0 and report.already_on_hub == len(events)
    assert len(list(hub.iter_log("web"))) == len(events)


def _rewrite(src, dst, change):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            for name, data2 in change(item.filename, data):
                zout.writestr(name, data2)


@pytest.mark.parametrize("how", ["event byte", "blob byte", "manifest", "signature", "extra member",
                                 "missing blob", "wrong key"])
def test_an_altered_bundle_is_refused_and_nothing_written(tmp_path, hub, tenant, how):
    laptop = tmp_path / "offline.db"
    _offline_laptop(laptop, tenant, n=5)
    bundle, bad = tmp_path / "b.clb", tmp_path / "bad.clb"
    res = CliRunner().invoke(cli, ["--db", str(laptop), "--tenant", tenant, "bundle", "export", str(bundle)])
    assert res.exit_code == 0, res.output
    flip = lambda data: data[:-1] + bytes([data[-1] ^ 1])  # noqa: E731

    def change(name, data):
        if how == "event byte" and name == "events.bin":
            return [(name, flip(data))]
        if how == "blob byte" and name.startswith("blobs/"):
            return [(name, flip(data))]
        if how == "manifest" and name == "manifest.json":
            return [(name, data.replace(b'"version": 1', b'"version": 1 '))]
        if how == "signature" and name == "manifest.sig":
            return [(name, flip(data))]
        if how == "extra member" and name == "manifest.sig":
            return [(name, data), ("blobs/" + "0" * 64, b"smuggled")]
        if how == "missing blob" and name.startswith("blobs/"):
            return []
        return [(name, data)]

    if how == "wrong key":
        bad = bundle
    else:
        _rewrite(bundle, bad, change)
    with pytest.raises(BundleError, match="refused|signed by key"):
        import_bundle(hub, bad, expect_key="0" * 16 if how == "wrong key" else None)
    assert hub.projects() == []
    verify_bundle(bundle)  # the original is fine
