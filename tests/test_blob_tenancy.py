"""Content belongs to the tenant that stored it: another tenant can neither reference a
SHA-256 it learned, nor read it back, nor use an unknown hash as an existence oracle."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import BlobNotFound, Ledger, MissingContent, sha256_hex
from nervous_system import Recorder
from schemas import Operation, StateChange, SwarmEvent, new_event_id

SECRET = b"tenant B's private file\n"


def change(tenant: str, path: str, digest: str) -> SwarmEvent:
    return SwarmEvent(event_id=new_event_id(), timestamp=1_800_000_000_000_000_000, tenant_id=tenant,
                      project_id="p", state_change=StateChange(
                          target_resource=path, operation=Operation.CREATE, new_state_hash=digest,
                          file_mode="regular"))


@pytest.fixture
def b_has_a_secret(ledger_path):
    with Ledger(ledger_path) as lg:
        Recorder(lg, project_id="p", agent_id="b", tenant_id="B").file_change("secret.txt", SECRET)
    return ledger_path


def test_another_tenants_hash_cannot_be_referenced(b_has_a_secret):
    with Ledger(b_has_a_secret) as lg:
        with pytest.raises(MissingContent):  # the same error as for a hash nobody stored
            lg.append(change("A", "stolen.txt", sha256_hex(SECRET)))
        with pytest.raises(MissingContent):
            lg.append(change("A", "unknown.txt", "0" * 64))
        assert lg.count(tenant_id="A") == 0


def test_another_tenants_content_cannot_be_read(b_has_a_secret):
    with Ledger(b_has_a_secret) as lg:
        assert lg.get_blob(sha256_hex(SECRET), tenant_id="B") == SECRET
        with pytest.raises(BlobNotFound):
            lg.get_blob(sha256_hex(SECRET), tenant_id="A")
        assert lg.has_blob(sha256_hex(SECRET), tenant_id="A") is False


def test_the_same_bytes_recorded_by_both_tenants_are_stored_once_and_usable_by_both(b_has_a_secret):
    with Ledger(b_has_a_secret) as lg:
        Recorder(lg, project_id="p", agent_id="a", tenant_id="A").file_change("mine.txt", SECRET)
        assert lg.get_blob(sha256_hex(SECRET), tenant_id="A") == SECRET
        assert lg._conn().execute("SELECT count(*) FROM blobs").fetchone()[0] == 1


def test_jsonl_naming_another_tenants_hash_is_refused(b_has_a_secret):
    line = json.dumps({"tenant_id": "A", "project_id": "p", "state_change": {
        "target_resource": "stolen.txt", "operation": "create", "file_mode": "regular",
        "new_state_hash": sha256_hex(SECRET)}})
    res = CliRunner().invoke(cli, ["--db", str(b_has_a_secret), "--tenant", "A", "record"], input=line + "\n")
    assert res.exit_code == 1 and "not in the blob store" in res.output
    replay = CliRunner().invoke(cli, ["--db", str(b_has_a_secret), "--tenant", "A", "--project", "p",
                                      "replay", "--at", "now", "--out", "x"])
    assert replay.exit_code == 1 and SECRET.decode() not in replay.output
