"""The largest content the ledger records (``schemas.limits.MAX_CONTENT_BYTES``, 100 MiB):
larger content is refused early with a typed error through every producer — the ledger,
the SDK, ``ledger record`` — and a work-tree snapshot (``ledger exec``, the agent hooks)
skips such a file without reading it, records the rest and says what it left out."""

from __future__ import annotations

import io
import json
import time

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import Ledger, sha256_hex
from ledger.errors import ContentTooLarge
from nervous_system import Recorder
from nervous_system.errors import InvalidRecord
from nervous_system.jsonl import MAX_LINE_BYTES, BadLine, record_jsonl
from nervous_system.jsonl_fill import MAX_CONTENT_BASE64_CHARS
from nervous_system.worktree import snapshot
from schemas import MAX_CONTENT_BYTES, StateChange, SwarmEvent, new_event_id

OVER = MAX_CONTENT_BYTES + 1


def test_the_ledger_refuses_content_over_the_limit_and_writes_nothing(ledger_path):
    big = bytes(OVER)
    digest = sha256_hex(big)
    event = SwarmEvent(event_id=new_event_id(), timestamp=time.time_ns(), tenant_id="t", project_id="p", agent_id="a",
                       state_change=StateChange(target_resource="big.bin", operation="create",
                                                new_state_hash=digest, file_mode="regular"))
    with Ledger(ledger_path) as lg:
        with pytest.raises(ContentTooLarge, match="104,857,601 bytes, over the 104,857,600-byte limit"):
            lg.append(event, {digest: big})
        assert lg.count() == 0 and not lg.has_blob(digest)
        exact = bytes(MAX_CONTENT_BYTES)  # the limit itself is accepted
        lg.append(event.model_copy(update={"state_change": event.state_change.model_copy(
            update={"new_state_hash": sha256_hex(exact)})}), {sha256_hex(exact): exact})
        assert lg.count() == 1


def test_the_sdk_refuses_before_it_touches_the_ledger(ledger_path):
    with Ledger(ledger_path) as lg:
        rec = Recorder(lg, project_id="p", agent_id="a")
        with pytest.raises(InvalidRecord, match="over the 104,857,600-byte limit"):
            rec.file_change("big.bin", bytes(OVER))
        assert lg.count() == 0


def test_ledger_record_refuses_an_oversized_content_line(ledger_path):
    line = {"tenant_id": "t", "project_id": "p", "agent_id": "a",
            "state_change": {"target_resource": "big.bin", "operation": "create", "file_mode": "regular"},
            "content_base64": "A" * (MAX_CONTENT_BASE64_CHARS + 4)}
    with Ledger(ledger_path) as lg:
        with pytest.raises(BadLine, match="content_base64 holds more than") as err:
            record_jsonl(lg, io.BytesIO(json.dumps(line).encode() + b"\n"))
        assert err.value.line == 1 and lg.count() == 0


class CountingReader(io.RawIOBase):
    """A stream of one endless line that counts what was read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = len(buf)
        buf[:n] = b"a" * n
        self.read_bytes += n
        return n


def test_ledger_record_reads_no_more_of_an_endless_line_than_the_limit(ledger_path):
    source = CountingReader()
    with Ledger(ledger_path) as lg:
        with pytest.raises(BadLine, match="longer than"):
            record_jsonl(lg, io.BufferedReader(source))
    assert source.read_bytes <= MAX_LINE_BYTES + (1 << 20)  # the limit plus one buffer


def test_a_snapshot_skips_a_file_over_the_limit_without_reading_it(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "small.txt").write_text("hello\n")
    with open(work / "huge.bin", "wb") as fh:  # sparse: no disk, and reading it would be slow
        fh.truncate(OVER)
    snap = snapshot(work, use_git=False)
    assert set(snap.entries) == {"small.txt"}
    assert [(s.path, "over the 104,857,600-byte limit" in s.reason) for s in snap.skipped] == [("huge.bin", True)]
    assert snap.hashed == 1


def test_ledger_exec_records_the_rest_and_reports_the_oversized_file(ledger_path, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    script = f"echo hi > note.txt && truncate -s {OVER} huge.bin"
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "--project", "proj", "exec", "--root", str(work),
                                   "--json", "--", "sh", "-c", script])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stderr)
    assert {(c["op"], c["path"]) for c in summary["changes"]} == {("create", "note.txt")}
    assert [u["path"] for u in summary["unrecorded"]] == ["huge.bin"]
    assert "limit of recorded content" in summary["unrecorded"][0]["reason"]
    with Ledger(ledger_path) as lg:
        assert set(lg.current_tree("default", "proj")) == {"note.txt"}
