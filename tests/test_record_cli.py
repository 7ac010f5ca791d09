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
    lines = [{"event_id": new_event_id(), "timestamp_ns": 1_000, "decision": {"rationale": str(i)}} for i in range(3)]
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


def test_retries_of_the_same_lines_add_nothing(ledger_path):
    fixed = new_event_id()
    lines = [
        {"event_id": fixed, "message": {"content": "no timestamp given"}},
        {"event_id": new_event_id(), "state_change": {"target_resource": "a.txt"}, "content": "one\n"},
    ]
    first = run(ledger_path, lines, "--json")
    assert first.exit_code == 0 and json.loads(first.stdout)["recorded"] == 2, first.output
    again = run(ledger_path, lines + lines, "--json")  # a retry, with the same lines twice
    assert again.exit_code == 0, again.output
    out = json.loads(again.stdout)
    assert out["recorded"] == 0 and out["duplicates"] == 4
    conflict = run(ledger_path, [{"event_id": fixed, "message": {"content": "something else"}}])
    assert conflict.exit_code == 1 and "already recorded with different message" in conflict.output
    assert Ledger(ledger_path).count() == 2


def test_integer_timestamps_need_an_unambiguous_unit(ledger_path):
    when = 1_767_323_045  # 2026-01-02T03:04:05Z
    cases = [when, when * 1000, when * 1_000_000, when * 1_000_000_000]
    res = run(ledger_path, [{"message": {"content": str(v)}, "timestamp": v} for v in cases]
              + [{"message": {"content": "ns"}, "timestamp_ns": 5}], "--json")
    assert res.exit_code == 0, res.output
    stored = [Ledger(ledger_path).get(i).event.timestamp for i in json.loads(res.stdout)["event_ids"]]
    assert stored == [when * 1_000_000_000] * 4 + [5]
    for bad in (1_000, 12, 99_999_999_999, 2**70):
        refused = run(ledger_path, [{"message": {"content": "x"}, "timestamp": bad}])
        assert refused.exit_code == 1 and ("ambiguous" in refused.output or "outside" in refused.output)
    far = run(ledger_path, [{"message": {"content": "x"}, "timestamp": "2300-01-01T00:00:00Z"}])
    assert far.exit_code == 1 and "outside the times the ledger can hold" in far.output
    assert "Traceback" not in far.output


def test_changes_link_to_the_sessions_latest_decision_and_messages_to_their_agent(ledger_path):
    res = run(ledger_path, [
        {"session_id": "s1", "agent_id": "bot", "decision": {"rationale": "plan"}},
        {"session_id": "s1", "state_change": {"target_resource": "a.txt"}, "content": "x\n"},
        {"session_id": "s2", "state_change": {"target_resource": "b.txt"}, "content": "y\n"},
        {"agent_id": "bot", "message": {"content": "done", "recipients": ["reviewer"]}},
    ], "--json")
    assert res.exit_code == 0, res.output
    lg = Ledger(ledger_path)
    decision, change, other, message = (lg.get(i).event for i in json.loads(res.stdout)["event_ids"])
    assert change.caused_by == decision.event_id and other.caused_by == ""
    assert message.message.sender == "bot"
    later = run(ledger_path, [{"session_id": "s1", "state_change": {"target_resource": "c.txt"}, "content": "z"}],
                "--json")  # a later input: the decision comes from the ledger
    assert lg.get(json.loads(later.stdout)["event_ids"][0]).event.caused_by == decision.event_id


def test_deeply_nested_json_is_a_clear_error(ledger_path):
    deep = '{"message": {"content": "x"}, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    res = run(ledger_path, [deep])
    assert res.exit_code == 1 and "nested deeper than" in res.output and "Traceback" not in res.output


def test_memory_stays_bounded_for_a_large_input(ledger_path, python):
    code = (
        "import io, json, resource, sys\n"
        "from ledger import Ledger\n"
        "from nervous_system.jsonl import Defaults, record_jsonl\n"
        "lines = (json.dumps({'message': {'content': 'x' * 400}, 'agent_id': 'a'}).encode() + b'\\n'\n"
        "         for _ in range(60_000))\n"
        f"lg = Ledger({str(ledger_path)!r})\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "r = record_jsonl(lg, lines, Defaults(project_id='p'))\n"
        "print(r.inserted, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) == 60_000
    assert int(out[1]) < 40, f"record_jsonl grew by {out[1]} MB for a 28 MB input"  # was 89 MB holding lines
