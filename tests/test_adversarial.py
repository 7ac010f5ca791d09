"""Adversarial inputs, through the CLI and the SDK: every malformed input is refused with a
clear message (no traceback) and writes nothing; every escape attempt — file read, URL,
cross-tenant, `.git`, the ledger's data directory, deep paths, links — is refused,
writes nothing outside where it may, and shows no other tenant's data."""

from __future__ import annotations

import json
import os
import time

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import Ledger, sha256_hex
from ledger.rows import INSERT_SQL, event_row
from nervous_system import InvalidRecord, Recorder
from schemas import FileMode, Operation, StateChange, SwarmEvent, new_event_id

UUID = "01234567-89ab-7def-8123-456789abcdef"
GOOD = {"decision": {"rationale": "fine"}}


def sc(path: str, **extra) -> dict:
    return {"state_change": {"target_resource": path, **extra}}


#: (name, JSON line (dict or raw text), expected words in the message)
MALFORMED_LINES = [
    ("not json", "{nope", "not valid JSON"),
    ("array", "[1, 2]", "expected a JSON object"),
    ("string", '"text"', "expected a JSON object"),
    ("number", "42", "expected a JSON object"),
    ("invalid utf-8", b'{"decision": {"rationale": "\xff\xfe"}}', "not valid UTF-8"),
    ("deep nesting", '{"a": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper"),
    ("unknown field", {"decision": {"rationale": "x"}, "surprise": 1}, "surprise"),
    ("unknown payload field", {"decision": {"rationale": "x", "mood": "sad"}}, "mood"),
    ("two payloads", {"decision": {}, "message": {}}, "exactly one payload"),
    ("no payload", {"agent_id": "a"}, "exactly one payload"),
    ("bad event id", {"event_id": "1234", **GOOD}, "UUIDv7"),
    ("uppercase id", {"event_id": new_event_id().upper(), **GOOD}, "UUIDv7"),
    ("uuid4 id", {"event_id": "0b2f6c1e-8d3a-4c5b-9e7f-1a2b3c4d5e6f", **GOOD}, "UUIDv7"),
    ("schema version 2", {"schema_version": 2, **GOOD}, "schema_version"),
    ("schema version 0", {"schema_version": 0, **GOOD}, "schema_version"),
    ("ambiguous int time", {"timestamp": 1234, **GOOD}, "ambiguous"),
    ("far future", {"timestamp": "2400-01-01T00:00:00Z", **GOOD}, "outside the times"),
    ("ancient past", {"timestamp": "1500-01-01T00:00:00Z", **GOOD}, "outside the times"),
    ("bad time text", {"timestamp": "yesterday", **GOOD}, "RFC 3339"),
    ("timestamp_ns text", {"timestamp_ns": "5", **GOOD}, "timestamp_ns must be an integer"),
    ("tenant with slash", {"tenant_id": "a/b", **GOOD}, "tenant_id"),
    ("empty project", {"project_id": "", **GOOD}, "project_id"),
    ("long project", {"project_id": "p" * 129, **GOOD}, "project_id"),
    ("control char tenant", {"tenant_id": "a\nb", **GOOD}, "tenant_id"),
    ("confidence 7", {"decision": {"confidence_score": 7}}, "confidence_score"),
    ("confidence -1", {"decision": {"confidence_score": -1}}, "confidence_score"),
    ("confidence text", {"decision": {"confidence_score": "high"}}, "confidence_score"),
    ("bad trace id", {"trace_id": "xyz", **GOOD}, "trace_id"),
    ("zero span id", {"span_id": "0" * 16, **GOOD}, "span_id"),
    ("bad caused_by", {"caused_by": "decision-1", **GOOD}, "caused_by"),
    ("uppercase commit", {"related_commit_hash": "ABCDEF12", **GOOD}, "related_commit_hash"),
    ("negative cpu", {"signal": {"status": "ok", "cpu_load_percent": -5}}, "cpu_load_percent"),
    ("absolute path", {**sc("/etc/passwd"), "content": "x"}, "absolute"),
    ("dotdot path", {**sc("a/../../etc"), "content": "x"}, "'..'"),
    ("empty path", {**sc(""), "content": "x"}, "state_change"),
    ("nul in path", {**sc("a\u0000b"), "content": "x"}, "NUL"),
    ("path too long", {**sc("d/" * 2100 + "f"), "content": "x"}, "PATH_MAX"),
    ("component too long", {**sc("x" * 300), "content": "x"}, "NAME_MAX"),
    (".git component", {**sc(".git/config"), "content": "[core]\n"}, "git's own directory"),
    (".GIT component", {**sc("sub/.GIT/hooks/post-checkout"), "content": "x"}, "git's own directory"),
    (".git. (NTFS)", {**sc(".git./config"), "content": "x"}, "git's own directory"),
    ("git~1 (NTFS short)", {**sc("GIT~1/config"), "content": "x"}, "git's own directory"),
    (".g\u200cit (HFS+)", {**sc(".g\u200cit/config"), "content": "x"}, "git's own directory"),
    ("unknown operation", {**sc("a.txt", operation="explode"), "content": "x"}, "operation"),
    ("create with previous", {**sc("a.txt", operation="create", previous_state_hash="0" * 64,
                                   new_state_hash=sha256_hex(b"x"), file_mode="regular"), "content": "x"},
     "previous_state_hash"),
    ("delete with new hash", sc("a.txt", operation="delete", new_state_hash="0" * 64), "no new_state_hash"),
    ("modify without hash", sc("a.txt", operation="modify", file_mode="regular"), "needs new_state_hash"),
    ("hash not hex", sc("a.txt", operation="create", new_state_hash="zz" * 32, file_mode="regular"), "SHA-256"),
    ("content hash mismatch", {**sc("a.txt", new_state_hash="0" * 64), "content": "x"}, "content hashes to"),
    ("content with delete", {**sc("a.txt", operation="delete"), "content": "x"}, "a delete carries no content"),
    ("content beside decision", {**GOOD, "content": "x"}, "only allowed beside a file"),
    ("bad base64", {**sc("a.txt"), "content_base64": "!!!"}, "not valid base64"),
    ("both contents", {**sc("a.txt"), "content": "x", "content_base64": "eA=="}, "not both"),
    ("content not stored", sc("a.txt", operation="create", new_state_hash="1" * 64, file_mode="regular"),
     "not in the blob store"),
    ("empty symlink target", {**sc("l", file_mode="symlink"), "content": ""}, "empty target"),
    ("nul in symlink target", {**sc("l", file_mode="symlink"), "content": "a\u0000b"}, "NUL"),
    ("huge symlink target", {**sc("l", file_mode="symlink"), "content": "t" * 5000}, "target of 5,000 bytes"),
    (".gitmodules symlink", {**sc(".gitmodules", file_mode="symlink"), "content": "/etc/passwd"},
     "cannot be a symlink"),
    ("negative size", sc("a.txt", operation="create", new_state_hash=sha256_hex(b"x"), file_mode="regular",
                         size_bytes=-1), "size_bytes"),
    ("rename without source", {**sc("b.txt", operation="rename"), "content": "x"}, "previous_resource"),
    ("source on a create", {**sc("b.txt", operation="create", previous_resource="a.txt"), "content": "x"},
     "only allowed on a rename"),
    ("nested attribute", {"span": {"name": "s", "attributes": {"k": {"deep": 1}}}}, "attributes"),
]


def _line(value) -> bytes:
    if isinstance(value, bytes):
        return value
    return (value if isinstance(value, str) else json.dumps(value)).encode()


@pytest.mark.parametrize("name,line,words", MALFORMED_LINES, ids=[c[0] for c in MALFORMED_LINES])
def test_malformed_lines_are_refused_and_write_nothing(ledger_path, name, line, words):
    with Ledger(ledger_path) as lg:
        Recorder(lg, project_id="web", agent_id="seed").decision("already here")
        before = lg.count()
    data = _line(GOOD) + b"\n" + _line(line) + b"\n"
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "--project", "web", "record"], input=data)
    assert res.exit_code == 1, res.output
    assert "line 2" in res.output and words in res.output and "Traceback" not in res.output
    with Ledger(ledger_path) as lg:
        assert lg.count() == before  # the good first line was not written either


def test_there_are_at_least_fifty_malformed_inputs():
    assert len(MALFORMED_LINES) + len(SDK_MALFORMED) >= 50


#: (name, call(recorder)) through the SDK; each must raise InvalidRecord.
SDK_MALFORMED = [
    ("path with ..", lambda r: r.file_change("../x", b"x")),
    ("absolute path", lambda r: r.file_change("/tmp/x", b"x")),
    (".git path", lambda r: r.file_change(".git/config", b"x")),
    ("deep path", lambda r: r.file_change("d/" * 3000 + "f", b"x")),
    ("content not bytes", lambda r: r.file_change("a.txt", "text")),
    ("bad mode", lambda r: r.file_change("a.txt", b"x", mode="sticky")),
    ("delete unknown", lambda r: r.file_change("never.txt", None)),
    ("rename unknown", lambda r: r.file_change("b.txt", None, previous_path="never.txt")),
    ("confidence 2", lambda r: r.decision("x", confidence=2.0)),
    ("negative memory", lambda r: r.signal("ok", memory_usage_mb=-1)),
    ("bad caused_by", lambda r: r.file_change("a.txt", b"x", caused_by="nope")),
    ("empty symlink", lambda r: r.file_change("l", b"", mode="symlink")),
    ("too large", lambda r: r.message("x" * (33 * 1024 * 1024))),
    ("record() of an unvalidated event", lambda r: r.record(SwarmEvent.model_construct(
        event_id=new_event_id(), timestamp=1, tenant_id="default", project_id="web", schema_version=1,
        state_change=StateChange.model_construct(target_resource="../../etc/passwd", operation=Operation.CREATE,
                                                 new_state_hash=sha256_hex(b"x"), file_mode=FileMode.REGULAR)),
        {sha256_hex(b"x"): b"x"})),
    ("record() of a non-event", lambda r: r.record({"decision": {}})),
]


@pytest.mark.parametrize("name,call", SDK_MALFORMED, ids=[c[0] for c in SDK_MALFORMED])
def test_malformed_sdk_calls_raise_invalid_record_and_write_nothing(ledger_path, name, call):
    with Ledger(ledger_path) as lg:
        rec = Recorder(lg, project_id="web", agent_id="a")
        with pytest.raises(InvalidRecord):
            call(rec)
        assert lg.count() == 0


# ------------------------------------------------------------------------------ escapes
def _inject(lg: Ledger, event: SwarmEvent, data: bytes | None) -> None:
    """Store an event as a ledger written by another tool may hold it (past the checks)."""
    from ledger import blobs, owners

    with lg.write_transaction() as conn:
        if data is not None:
            blobs.put(conn, data)
            owners.own(conn, event.tenant_id, sha256_hex(data))
        conn.execute(INSERT_SQL, event_row(event, event.to_bytes(), time.time_ns()))


def _raw_change(path: str, data: bytes, mode: str = "regular", tenant: str = "default") -> SwarmEvent:
    return SwarmEvent.model_construct(
        event_id=new_event_id(), timestamp=time.time_ns(), tenant_id=tenant, project_id="web",
        schema_version=1, agent_id="evil", state_change=StateChange.model_construct(
            target_resource=path, operation=Operation.CREATE, new_state_hash=sha256_hex(data),
            file_mode=FileMode(mode)))


@pytest.fixture
def victim(tmp_path, ledger_path):
    """Tenant B's secret project and tenant A's project in one ledger file."""
    with Ledger(ledger_path) as lg:
        b = Recorder(lg, project_id="web", agent_id="b", tenant_id="B")
        b.decision("B's confidential plan")
        b.file_change("secret.txt", b"B's secret bytes\n")
        Recorder(lg, project_id="web", agent_id="a", tenant_id="A").file_change("a.txt", b"A's file\n")
        b_ids = [e.event_id for e in lg.events(tenant_id="B")]
    return ledger_path, b_ids


def cli_as(db, tenant, *args, **kw):
    return CliRunner().invoke(cli, ["--db", str(db), "--tenant", tenant, "--project", "web", *args], **kw)


def no_b_data(output: str) -> bool:
    return "confidential" not in output and "secret" not in output and "'B'" not in output


#: (name, CLI arguments as a function of B's event ids and a tmp dir, stdin) run as tenant A.
CROSS_TENANT = [
    ("show B's event", lambda ids, tmp: ["show", ids[0]], None),
    ("show B's prefix", lambda ids, tmp: ["show", ids[0][:13]], None),
    ("log since B's event", lambda ids, tmp: ["log", "--since", ids[0]], None),
    ("log until B's prefix", lambda ids, tmp: ["log", "--until", ids[1][:18]], None),
    ("replay at B's event", lambda ids, tmp: ["replay", "--at", ids[1], "--out", str(tmp / "o1")], None),
    ("diff from B's event", lambda ids, tmp: ["diff", ids[0], "now"], None),
    ("restore to B's event", lambda ids, tmp: ["restore", "--at", ids[1], "--dry-run"], None),
    ("reference B's content", lambda ids, tmp: ["record"], json.dumps({"state_change": {
        "target_resource": "stolen.txt", "operation": "create", "file_mode": "regular",
        "new_state_hash": sha256_hex(b"B's secret bytes\n")}}) + "\n"),
    ("reuse B's event id", lambda ids, tmp: ["record"],
     lambda ids: json.dumps({"event_id": ids[0], "message": {"content": "x"}}) + "\n"),
    ("patch of B's change", lambda ids, tmp: ["show", ids[1], "--patch"], None),
]


@pytest.mark.parametrize("name,args,stdin", CROSS_TENANT, ids=[c[0] for c in CROSS_TENANT])
def test_escape_cross_tenant_reads_and_references(victim, tmp_path, name, args, stdin):
    db, b_ids = victim
    text = stdin(b_ids) if callable(stdin) else stdin
    res = cli_as(db, "A", *args(b_ids, tmp_path), input=text)
    assert res.exit_code != 0, res.output
    assert no_b_data(res.output), res.output
    assert not (tmp_path / "o1").exists()
    with Ledger(db) as lg:
        assert lg.count(tenant_id="A") == 1


OWN_DATA = ["data_dir", "ledger_dir", "parent", "ledger_file"]
GIT_DIRS = [".git", ".GIT", ".Git"]
POISONED = [
    (".git/config", b"[core]\n\tfsmonitor = touch /tmp/pwned\n", "regular", "git's own directory"),
    ("x/.GIT/config", b"[core]\n", "regular", "git's own directory"),
    ("../escape.txt", b"x", "regular", "'..'"),
    ("/tmp/absolute.txt", b"x", "regular", "absolute"),
    ("d/" * 2100 + "deep.txt", b"x", "regular", "PATH_MAX"),
    ("link", b"", "symlink", "empty target"),
]
SQL_ESCAPES = [
    "SELECT * FROM file('/etc/passwd', 'TSVWithNames')",
    "DESCRIBE url('http://127.0.0.1:9/x.csv', 'CSVWithNames')",
    "SELECT * FROM sqlite('/etc/hosts', 't')",
    "SELECT count() FROM swarm_events WHERE tenant_id = 'B'",
]


@pytest.mark.parametrize("where", OWN_DATA)
def test_escape_replay_over_the_ledgers_own_data(victim, where):
    db, _ = victim
    target = {"data_dir": db.parent, "ledger_dir": db.parent, "parent": db.parent.parent, "ledger_file": db}[where]
    res = cli_as(db, "A", "replay", "--at", "now", "--out", str(target), "--force")
    assert res.exit_code == 1 and "ledger's own data" in res.output
    assert db.exists() and Ledger(db).count() == 3


@pytest.mark.parametrize("git_dir", GIT_DIRS)
def test_escape_replay_over_a_git_work_tree(victim, tmp_path, git_dir):
    db, _ = victim
    work = tmp_path / "work"
    (work / git_dir).mkdir(parents=True)
    (work / git_dir / "config").write_text("[core]\n")
    res = cli_as(db, "A", "replay", "--at", "now", "--out", str(work), "--force")
    assert res.exit_code == 1 and (work / git_dir / "config").read_text() == "[core]\n"


@pytest.mark.parametrize("path,data,mode,words", POISONED)
def test_escape_replay_of_poisoned_events_writes_nothing(ledger_path, tmp_path, path, data, mode, words):
    with Ledger(ledger_path) as lg:
        Recorder(lg, project_id="web", agent_id="ok").file_change("ok.txt", b"ok\n")
        _inject(lg, _raw_change(path, data, mode), data)  # e.g. a ledger written by another tool
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "replay", "--at", "now", "--out", str(out)])
    assert res.exit_code == 1 and words in res.output and "Traceback" not in res.output
    assert not out.exists() and not (tmp_path / "escape.txt").exists()
    assert not [p for p in tmp_path.iterdir() if ".replay-" in p.name]


def test_escape_writes_through_a_symlink_in_history(ledger_path, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    with Ledger(ledger_path) as lg:
        rec = Recorder(lg, project_id="web", agent_id="a")
        rec.file_change("dir", str(outside).encode(), mode="symlink")
        with pytest.raises(InvalidRecord, match="symlink at this moment"):
            rec.file_change("dir/pwned.txt", b"evil")
        _inject(lg, _raw_change("dir/pwned.txt", b"evil"), b"evil")
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "replay", "--at", "now", "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "symlink" in res.output and list(outside.iterdir()) == []


def test_escape_restore_through_a_symlinked_directory_and_over_the_ledger(tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "src").mkdir(parents=True)
    db = work / ".ledger" / "ledger.db"  # the ledger lives inside the work tree
    with Ledger(db) as lg:
        lg.register_project("default", "web", root=work)
        rec = Recorder(lg, project_id="web", agent_id="a")
        first = rec.file_change("src/a.txt", b"one\n")
        (work / "src" / "a.txt").write_bytes(b"one\n")
        rec.file_change("src/a.txt", b"two\n")
        (work / "src" / "a.txt").write_bytes(b"two\n")
        _inject(lg, _raw_change(".ledger/ledger.db", b"overwrite the ledger"), b"overwrite the ledger")
    monkeypatch.chdir(work)
    res = CliRunner().invoke(cli, ["--db", str(db), "restore", "--at", "now", "--force"])
    assert Ledger(db).count() >= 3  # the ledger itself was never a restore target
    outside = tmp_path / "outside"
    outside.mkdir()
    (work / "src" / "a.txt").unlink()
    (work / "src").rmdir()
    os.symlink(outside, work / "src")
    res = CliRunner().invoke(cli, ["--db", str(db), "restore", "--at", first, "--force"])
    assert res.exit_code == 1 and "not a real directory" in res.output and list(outside.iterdir()) == []


@pytest.mark.parametrize("query", SQL_ESCAPES)
def test_escape_sql_reaches_nothing_outside_the_tenants_rows(victim, query):
    db, _ = victim
    res = cli_as(db, "A", "sql", query, "--format", "json")
    assert "root:" not in res.output and no_b_data(res.output)
    if res.exit_code == 0:  # the cross-tenant count runs, and sees no row of B
        assert json.loads(res.stdout)[0]["count()"] == 0


def test_there_are_at_least_thirty_escape_attempts():
    # the parametrized attempts above, plus the write through a link in history and the
    # two restore attempts (through a symlinked directory, over the ledger's own file)
    assert len(CROSS_TENANT) + len(OWN_DATA) + len(GIT_DIRS) + len(POISONED) + len(SQL_ESCAPES) + 3 >= 30


def test_a_control_character_in_a_path_never_reaches_the_terminal_raw(ledger_path):
    with Ledger(ledger_path) as lg:
        Recorder(lg, project_id="web", agent_id="a").file_change("evil\x1b[2Jname\n.txt", b"x")
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "log"])
    assert res.exit_code == 0 and "\x1b" not in res.output and "\\x1b" in res.output
    shown = CliRunner().invoke(cli, ["--db", str(ledger_path), "log", "--json"])
    assert json.loads(shown.stdout)[0]["state_change"]["target_resource"] == "evil\x1b[2Jname\n.txt"
