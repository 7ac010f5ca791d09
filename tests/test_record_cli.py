"""``ledger record``: JSON Lines on stdin, validated, one transaction per batch."""

from __future__ import annotations

import base64
import json
import subprocess

from click.testing import CliRunner

from ledger import Ledger, sha256_hex
from cli import cli
from schemas import new_event_id


def run(ledger_path, lines, *args, project="web"):
    text = "".join((json.dumps(l) if not isinstance(l, str) else l) + "\n" for l in lines)
    base = ["--db", str(ledger_path)] + (["--project", project] if project else [])
    return CliRunner().invoke(cli, [*base, "record", *args], input=text)


def test_records_lines_with_defaults_and_inline_content(ledger_path):
    fixed = new_event_id()
    res = run(ledger_path, [
        {"event_id": fixed, "agent_id": "bot", "decision": {"rationale": "retry", "confidence_score": 0.6}},
        {"state_change": {"target_resource": "src/a.py"}, "content": "x = 1\n"},
        {"state_change": {"target_resource": "src/a.py"}, "content": "x = 2\n"},
        {"state_change": {"target_resource": "bin/tool", "file_mode": "executable"},
         "content_base64": base64.b64encode(b"\x00\x01binary").decode()},
        {"state_change": {"target_resource": "src/a.py", "operation": "delete"}},
        {"message": {"content": "hello"}, "timestamp": "2026-01-02T03:04:05.123456789Z"},
    ], "--agent-id", "cli-agent", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["recorded"] == 6 and out["event_ids"][0] == fixed
    lg = Ledger(ledger_path)
    events = [lg.get(i).event for i in out["event_ids"]]
    assert events[0].agent_id == "bot" and events[1].agent_id == "cli-agent"
    assert all(e.project_id == "web" and e.tenant_id == "default" for e in events)
    create, modify, binary, delete = (e.state_change for e in events[1:5])
    assert create.operation.value == "create" and create.new_state_hash == sha256_hex(b"x = 1\n")
    assert create.file_mode.value == "regular" and create.size_bytes == 6
    assert modify.operation.value == "modify" and modify.previous_state_hash == create.new_state_hash
    assert "-x = 1" in modify.diff_patch and modify.lines_added == 1
    assert lg.get_blob(binary.new_state_hash) == b"\x00\x01binary" and binary.file_mode.value == "executable"
    assert delete.previous_state_hash == modify.new_state_hash
    assert events[5].timestamp == 1767323045123456789
    assert set(lg.current_tree("default", "web")) == {"bin/tool"}


def test_bad_line_is_reported_and_nothing_is_written(ledger_path):
    good = {"decision": {"rationale": "fine"}}
    cases = [
        ("{not json", "line 2: not valid JSON"),
        ({"decision": {"confidence_score": 7}}, "line 2: event: decision.confidence_score"),
        ({"state_change": {"target_resource": "../escape"}, "content": "x"}, "line 2"),
        ({"state_change": {"target_resource": "a", "new_state_hash": "0" * 64}, "content": "x"},
         "line 2: content hashes to"),
        ({"state_change": {"target_resource": "a", "operation": "create", "file_mode": "regular",
                           "new_state_hash": "1" * 64}}, "line 2: .*not in the blob store"),
        ({"state_change": {"target_resource": "a"}, "content_base64": "!!!"}, "line 2: content_base64"),
        ("[1, 2]", "line 2: expected a JSON object"),
    ]
    import re
    for bad, message in cases:
        res = run(ledger_path, [good, bad, good])
        assert res.exit_code == 1, (bad, res.output)
        assert re.search(message, res.output), (message, res.output)
        assert "nothing was written" in res.output
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "--project", "web", "record"],
                             input=b'{"decision": {}}\n{"decision": {"rationale": "\xff"}}\n')
    assert res.exit_code == 1 and "line 2: not valid UTF-8" in res.output
    assert Ledger(ledger_path).count() == 0


def test_missing_project_without_default(ledger_path):
    res = run(ledger_path, [{"decision": {}}], project=None)
    assert res.exit_code == 1 and "project_id is missing" in res.output


def test_replayed_input_is_idempotent(ledger_path):
    lines = [{"event_id": new_event_id(), "timestamp": 1_000, "decision": {"rationale": str(i)}} for i in range(3)]
    assert run(ledger_path, lines).exit_code == 0
    res = run(ledger_path, lines, "--json")
    assert json.loads(res.stdout)["duplicates"] == 3
    assert Ledger(ledger_path).count() == 3


def test_batches_and_dry_run(ledger_path):
    lines = [{"decision": {"rationale": str(i)}} for i in range(5)] + ["oops"]
    res = run(ledger_path, lines, "--batch-size", "2")
    assert res.exit_code == 1 and "line 6" in res.output and "4 event(s) of earlier batches" in res.output
    assert Ledger(ledger_path).count() == 4
    res = run(ledger_path, lines[:5], "--dry-run", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["dry_run"] is True
    assert Ledger(ledger_path).count() == 4


def test_any_language_through_a_real_pipe(ledger_path, python):
    """A non-Python producer: a shell pipeline writes JSON Lines into `ledger record`."""
    script = (
        "printf '%s\\n' '{\"agent_id\":\"sh-agent\",\"decision\":{\"rationale\":\"from sh\"}}' "
        f"| {python} -c 'from cli import cli; cli()' --db {ledger_path} --project web record"
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "recorded 1 event" in out.stderr
    (stored,) = Ledger(ledger_path).events()
    assert stored.event.agent_id == "sh-agent"


def test_unknown_schema_version_and_oversize_lines_are_refused(ledger_path, monkeypatch):
    """SPEC: unknown schema versions and oversize payloads get a clear error naming the
    line, and nothing from the batch is written."""
    import ledger.store as store

    good = {"decision": {"rationale": "fine"}}
    res = run(ledger_path, [good, {"schema_version": 9, "decision": {}}, good])
    assert res.exit_code == 1
    assert "line 2" in res.output and "unknown schema_version 9" in res.output
    assert "upgrade context-ledger" in res.output and "nothing was written" in res.output
    monkeypatch.setattr(store, "MAX_EVENT_BYTES", 2000)
    res = run(ledger_path, [good, {"message": {"content": "x" * 5000}}, good])
    assert res.exit_code == 1
    assert "line 2: event" in res.output and "exceeds the 2,000-byte limit" in res.output
    assert "nothing was written" in res.output
    assert Ledger(ledger_path).count() == 0
