"""Secret files (issue 15, section 1): a change of ``.env``, ``*.pem``, ``id_rsa`` ... is
recorded with its hash and size but without content, in the local ledger, on the hub
(sync and bundles) and in ClickHouse; replay and restore say which files they could not
restore and why (text and --json) and never write wrong bytes; show, log -p and diff
do not fail on them; the allow-list and ``redact = false`` store the content."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import Ledger, MissingContent, sha256_hex
from ledger.secret_files import SecretFilesPolicy
from nervous_system.recorder import Recorder
from schemas import FileMode, Operation, StateChange, SwarmEvent, new_event_id
from tests import fdb_double
from tests.hub_fixtures import USE_REAL, FakeClock


def run(db, *args, env=None):
    return CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False, env=env)


def raw_bytes(*paths: Path) -> bytes:
    """Every byte of the given files and of every file under the given directories."""
    out = bytearray()
    for p in paths:
        files = [p] if p.is_file() else [f for f in p.rglob("*") if f.is_file()] if p.is_dir() else []
        for f in files:
            out += f.read_bytes()
    return bytes(out)


def ledger_bytes(db: Path) -> bytes:
    return raw_bytes(db, Path(str(db) + "-wal"))


class Session:
    """A recorded session with secret files and ordinary ones; each content holds a
    unique marker so the raw bytes of a store can be searched for it."""

    def __init__(self, db: Path, tenant: str = "default"):
        tag = uuid.uuid4().hex[:12]
        self.secret = {
            ".env": f"DB_PASSWORD=marker-env-{tag}\n".encode(),
            "deploy/tls/server.pem": f"marker-pem-{tag}\n".encode(),
            "home/.ssh/id_rsa": f"marker-idrsa-{tag}\n".encode(),
            "conf/.npmrc": f"marker-npmrc-{tag}\n".encode(),
        }
        self.plain = {
            "src/app.py": f"print('marker-app-{tag}')\n".encode(),
            ".env.example": f"DB_PASSWORD=marker-example-{tag}\n".encode(),  # allowed by default
        }
        self.first_env = self.secret[".env"]
        self.db = db
        with Ledger(db) as lg:
            rec = Recorder(lg, project_id="web", agent_id="a", tenant_id=tenant, clock=FakeClock())
            rec.decision("set up the service")
            for path, data in {**self.plain, **self.secret}.items():
                rec.file_change(path, data)
            self.before_second = rec.decision("rotate the database password")
            self.secret[".env"] = f"DB_PASSWORD=marker-env2-{tag}\n".encode()
            rec.file_change(".env", self.secret[".env"])
            rec.file_change("src/app.py", self.plain["src/app.py"] + b"# v2\n")
            self.plain["src/app.py"] += b"# v2\n"

    def markers(self, which: dict) -> list[bytes]:
        return [data.split(b"marker-")[1].split(b"\n")[0].rstrip(b"')") for data in which.values()]


def test_the_default_patterns_and_the_allow_list():
    p = SecretFilesPolicy()
    for path in (".env", ".env.local", "app/.env.production", "prod.env", "certs/a.pem", "tls.key",
                 "home/.ssh/id_rsa", "id_ed25519", "id_rsa.bak", ".npmrc", "x/.pypirc", ".netrc",
                 ".aws/credentials", "user/.aws/credentials", "credentials.json", ".git-credentials",
                 "secrets.yaml", "prod.tfvars", "keystore.jks"):
        assert p.is_secret(path), path
    for path in ("src/app.py", ".env.example", "x/.env.sample", "id_rsa.pub", "docs/env.md", "keys.py",
                 "README.md", "environment.yml", "docs/credentials-guide.md"):
        assert not p.is_secret(path), path
    custom = SecretFilesPolicy(patterns=["*.secret", "config/prod/*"], allow=["config/prod/README*"])
    assert custom.is_secret("a/b.secret") and custom.is_secret("config/prod/db.yml")
    assert not custom.is_secret("config/prod/README.md") and not custom.is_secret(".env")


def test_secret_files_are_recorded_by_hash_without_content(ledger_path):
    s = Session(ledger_path)
    with Ledger(ledger_path) as lg:
        changes = [e.event.state_change for e in lg.events(order="seq") if e.event.state_change]
        by_path = {}
        for sc in changes:
            by_path.setdefault(sc.target_resource, []).append(sc)
        for path, data in s.secret.items():
            sc = by_path[path][-1]
            assert sc.content_withheld == "secret-file" and sc.diff_patch == ""
            assert sc.new_state_hash == sha256_hex(data) and sc.size_bytes == len(data)
            assert not lg.has_blob(sc.new_state_hash)
        for path, data in s.plain.items():
            sc = by_path[path][-1]
            assert sc.content_withheld == "" and lg.get_blob(sc.new_state_hash) == data
        # the projection still knows the file (its hash): the work tree view is complete
        assert lg.current_tree("default", "web")[".env"].hash == sha256_hex(s.secret[".env"])
    raw = ledger_bytes(ledger_path)
    assert b"marker-app-" in raw and b"marker-example-" in raw  # the search would see content
    for marker in s.markers(s.secret) + [s.first_env.split(b"marker-")[1].strip()]:
        assert marker not in raw, marker


def test_the_store_takes_a_withheld_change_without_content_and_refuses_others(ledger_path):
    data = b"TOKEN=x\n"
    common = dict(tenant_id="t", project_id="p", agent_id="a", timestamp=1)
    withheld = SwarmEvent(event_id=new_event_id(), state_change=StateChange(
        target_resource="notes.txt", operation=Operation.CREATE, new_state_hash=sha256_hex(data),
        file_mode=FileMode.REGULAR, size_bytes=len(data), content_withheld="secret-file"), **common)
    plain = SwarmEvent(event_id=new_event_id(), state_change=StateChange(
        target_resource="other.txt", operation=Operation.CREATE, new_state_hash=sha256_hex(b"zz"),
        file_mode=FileMode.REGULAR), **common)
    with Ledger(ledger_path, policies=()) as lg:
        lg.append(withheld, {sha256_hex(data): data})  # given content is not stored either
        assert not lg.has_blob(sha256_hex(data))
        with pytest.raises(MissingContent):
            lg.append(plain)
    with pytest.raises(ValueError, match="content_withheld"):
        StateChange(target_resource="l", operation=Operation.CREATE, new_state_hash=sha256_hex(b"t"),
                    file_mode=FileMode.SYMLINK, content_withheld="secret-file")


def test_replay_reports_withheld_files_and_writes_the_others(ledger_path, tmp_path):
    s = Session(ledger_path)
    out = tmp_path / "out"
    res = run(ledger_path, "replay", "--at", "now", "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert sorted(u["path"] for u in report["unrestored"]) == sorted(s.secret)
    assert {u["reason"] for u in report["unrestored"]} == {"secret-file"}
    assert {u["path"]: u["hash"] for u in report["unrestored"]}[".env"] == sha256_hex(s.secret[".env"])
    for path in s.secret:
        assert not (out / path).exists()
    for path, data in s.plain.items():
        assert (out / path).read_bytes() == data
    text = run(ledger_path, "replay", "--at", "now", "--out", str(tmp_path / "out2"))
    assert text.exit_code == 0
    assert "4 file(s) not restored" in text.stderr and ".env (secret-file)" in text.stderr


def test_show_log_patch_and_diff_do_not_fail_on_withheld_files(ledger_path):
    s = Session(ledger_path)
    with Ledger(ledger_path) as lg:
        env_ids = [e.event_id for e in lg.events(order="seq", path=".env")]
    shown = run(ledger_path, "show", env_ids[-1])
    assert shown.exit_code == 0, shown.output
    assert "content_withheld     secret-file" in shown.output
    assert json.loads(run(ledger_path, "show", env_ids[-1], "--json").stdout)["state_change"][
        "content_withheld"] == "secret-file"
    log = run(ledger_path, "log", "-p")
    assert log.exit_code == 0, log.output
    assert ".env [content withheld: secret-file]" in log.output
    diff = run(ledger_path, "diff", s.before_second, "now")
    assert diff.exit_code == 0, diff.output
    assert "Content withheld (secret-file)" in diff.output
    stat = json.loads(run(ledger_path, "diff", s.before_second, "now", "--json").stdout)
    assert {p["path"]: p["withheld"] for p in stat["paths"]} == {".env": "secret-file", "src/app.py": ""}
    blamed = CliRunner().invoke(cli, ["--db", str(ledger_path), "blame", ".env"])
    assert blamed.exit_code == 1 and "content was withheld when recorded (secret-file" in blamed.output


def test_restore_leaves_secret_files_alone_and_says_so(ledger_path, tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    s = Session(ledger_path)
    for path, data in {**s.plain, **s.secret}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    with Ledger(ledger_path) as lg:
        lg.register_project("default", "web", root=root)
    # back to before the password rotation: .env's old bytes are in no store
    res = run(ledger_path, "restore", "--at", f"{s.before_second}", "--json")
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert [u["path"] for u in plan["unrestored"]] == [".env"]
    assert (root / ".env").read_bytes() == s.secret[".env"]  # untouched, not wrong bytes
    assert (root / "src/app.py").read_bytes() == s.plain["src/app.py"][:-len(b"# v2\n")]
    # back to before any file: the secret files are not deleted (that could not be undone)
    with Ledger(ledger_path) as lg:
        first = next(lg.events(order="seq")).event_id
    res = run(ledger_path, "restore", "--at", first)
    assert res.exit_code == 0, res.output
    assert "not restored" in res.stderr
    for path, data in s.secret.items():
        assert (root / path).read_bytes() == data
    assert not (root / "src/app.py").exists()


def test_allow_list_and_switch_off_store_the_content(ledger_path, monkeypatch):
    monkeypatch.setenv("LEDGER_SECRET_FILES_ALLOW", json.dumps(["deploy/tls/*.pem"]))
    s = Session(ledger_path)
    with Ledger(ledger_path) as lg:
        assert lg.get_blob(sha256_hex(s.secret["deploy/tls/server.pem"])) == s.secret["deploy/tls/server.pem"]
        assert not lg.has_blob(sha256_hex(s.secret[".env"]))
    monkeypatch.setenv("LEDGER_REDACT", "false")
    other = ledger_path.with_name("off.db")
    s2 = Session(other)
    with Ledger(other) as lg:
        assert lg.get_blob(sha256_hex(s2.secret[".env"])) == s2.secret[".env"]


@pytest.mark.skipif(USE_REAL, reason="greps the FoundationDB double's raw store")
def test_hub_sync_bundle_and_hub_replay_carry_no_secret_file_content(ledger_path, tmp_path, cluster_file,
                                                                       tenant, hub, monkeypatch):
    s = Session(ledger_path, tenant=tenant)
    res = run(ledger_path, "--tenant", tenant, "sync", "--cluster-file", cluster_file, "--json")
    assert res.exit_code == 0, res.output
    stored = b"".join(k + v for k, v in fdb_double.dump(cluster_file))
    assert b"marker-app-" in stored  # plain content made it to the hub (a blob chunk)
    for marker in s.markers(s.secret):
        assert marker not in stored, marker
    # replay from the hub: the same report
    monkeypatch.setenv("FDB_CLUSTER_FILE", cluster_file)
    out = tmp_path / "hub-out"
    res = run(ledger_path, "--tenant", tenant, "--project", "web", "replay", "--source", "hub",
              "--at", "now", "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    assert sorted(u["path"] for u in json.loads(res.stdout)["unrestored"]) == sorted(s.secret)
    assert (out / "src/app.py").read_bytes() == s.plain["src/app.py"] and not (out / ".env").exists()
    # an offline bundle holds no secret-file content either, and imports cleanly
    bundle = tmp_path / "laptop.clb"
    res = run(ledger_path, "--tenant", tenant, "bundle", "export", str(bundle), "--json")
    assert res.exit_code == 0, res.output
    import zipfile

    with zipfile.ZipFile(bundle) as zf:
        members = b"".join(zf.read(n) for n in zf.namelist())
    assert b"marker-app-" in members or json.loads(res.stdout)["blobs"] >= 2
    for marker in s.markers(s.secret):
        assert marker not in members and marker not in bundle.read_bytes()


def test_git_import_keeps_secret_file_content_out_even_when_content_goes_ahead(ledger_path, tmp_path, monkeypatch):
    from nervous_system.gitimport import import_git, writer
    from tests.git_fixtures import GitRepo

    monkeypatch.setattr(writer, "SPILL_BLOB_BYTES", 0)  # every content is stored ahead of its events
    tag = uuid.uuid4().hex[:12]
    repo = GitRepo(tmp_path / "repo")
    repo.write("app.py", f"print('marker-app-{tag}')\n")
    repo.write(".env", f"API_KEY=marker-env-{tag}\n")
    repo.write("certs/dev.key", f"marker-key-{tag}\n")
    repo.commit("first")
    repo.write(".env", f"API_KEY=marker-env2-{tag}\n")
    repo.commit("rotate")
    with Ledger(ledger_path) as lg:
        import_git(lg, repo.path, project_id="repo")
    raw = ledger_bytes(ledger_path)
    assert f"marker-app-{tag}".encode() in raw
    for marker in (f"marker-env-{tag}", f"marker-env2-{tag}", f"marker-key-{tag}"):
        assert marker.encode() not in raw
    res = run(ledger_path, "replay", "--at", repo.head(), "--out", str(tmp_path / "out"), "--json")
    assert res.exit_code == 0, res.output
    assert sorted(u["path"] for u in json.loads(res.stdout)["unrestored"]) == [".env", "certs/dev.key"]


def test_the_ui_file_view_and_diff_say_withheld(ledger_path):
    import urllib.parse

    from replay import LocalHistory
    from tests.test_ui import _get
    from ui.server import UIServer

    s = Session(ledger_path)
    lg = Ledger(ledger_path)
    server = UIServer(LocalHistory(lg, "default", "web")).start()
    try:
        cookie = {"Cookie": f"ledger-ui-token-{server.port}={server.token}"}
        status, _, body = _get(f"{server.base}/api/file?path=.env", cookie)
        assert status == 200, body
        shown = json.loads(body)
        assert shown["withheld"] == "secret-file" and shown["text"] is None
        assert shown["hash"] == sha256_hex(s.secret[".env"])
        status, _, body = _get(f"{server.base}/api/file?path=src/app.py", cookie)
        assert status == 200 and json.loads(body)["text"] == s.plain["src/app.py"].decode()
        a = urllib.parse.quote(s.before_second)
        status, _, body = _get(f"{server.base}/api/diff?a={a}&b=now&path=.env", cookie)
        assert status == 200, body
        assert json.loads(body)["paths"][0]["withheld"] == "secret-file"
    finally:
        server.stop()
        lg.close()


def test_the_agent_hooks_record_a_secret_file_by_hash_only(tmp_path):
    from tests.collector_fixtures import start_collector

    tag = uuid.uuid4().hex[:12]
    ws, db = tmp_path / "ws", tmp_path / "hooks.db"
    ws.mkdir()
    (ws / "a.txt").write_text(f"marker-a-{tag}\n")
    col = start_collector(db)
    try:
        (ws / ".env").write_text(f"TOKEN=marker-env-{tag}\n")
        (ws / "b.txt").write_text(f"marker-b-{tag}\n")
        assert col.hook("claude-code", {"hook_event_name": "PostToolUse", "session_id": "s", "tool_name": "Bash",
                                        "tool_use_id": "t1", "tool_input": {"command": "make env"}, "cwd": str(ws)},
                        {"project": "p", "root": str(ws), "delivery": "d1"}) == 200
    finally:
        col.stop()
    with Ledger(db) as lg:
        changes = {e.event.state_change.target_resource: e.event.state_change
                   for e in lg.events(order="seq") if e.event.state_change}
    assert changes[".env"].content_withheld == "secret-file"
    assert changes[".env"].new_state_hash == sha256_hex(f"TOKEN=marker-env-{tag}\n".encode())
    raw = ledger_bytes(db)
    assert f"marker-b-{tag}".encode() in raw and f"marker-env-{tag}".encode() not in raw


def test_the_withheld_reason_is_read_from_the_wire_as_protobuf_reads_it():
    """``schemas.wire.state_change_withheld`` (why a content is missing, asked by replay
    without loading protobuf or pydantic) gives what ``event_from_bytes`` gives."""
    from schemas import AgentDecision, event_from_bytes
    from schemas.errors import InvalidEvent
    from schemas.wire import state_change_withheld

    common = dict(tenant_id="t", project_id="p", agent_id="a", timestamp=1)
    data = "TOKEN=ü\n".encode()
    events = [
        SwarmEvent(event_id=new_event_id(), state_change=StateChange(
            target_resource="keys/ünï.pem", operation=Operation.CREATE, new_state_hash=sha256_hex(data),
            file_mode=FileMode.REGULAR, size_bytes=len(data), content_withheld=reason), **common)
        for reason in ("secret-file", "sealed:v1:k1:" + "ab" * 32, "")
    ] + [
        SwarmEvent(event_id=new_event_id(), state_change=StateChange(
            target_resource="b.txt", operation=Operation.RENAME, previous_resource="a.txt",
            previous_state_hash=sha256_hex(b"x"), new_state_hash=sha256_hex(b"x"), file_mode=FileMode.REGULAR,
            lines_added=3, lines_removed=2), **common),
        SwarmEvent(event_id=new_event_id(), decision=AgentDecision(rationale="x" * 300, confidence_score=0.5), **common),
    ]
    for event in events:
        body = event.to_bytes()
        sc = event_from_bytes(body).state_change
        assert state_change_withheld(body) == (sc.content_withheld if sc is not None else "")
    assert state_change_withheld(events[0].to_bytes()) == "secret-file"
    for broken in (events[0].to_bytes()[:-3], b"\xff\xff\xff", b"\x0b\x00"):  # cut short, bad varint, a group
        with pytest.raises(InvalidEvent):
            state_change_withheld(broken)
