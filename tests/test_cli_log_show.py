"""`ledger log`, `ledger show`, `ledger projects` through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ledger import Ledger
from cli import cli
from nervous_system.gitimport import import_git
from nervous_system import Recorder
from tests.git_fixtures import GitRepo


def run(args, db):
    return CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)


@pytest.fixture
def ledger_db(tmp_path, ledger_path):
    repo = GitRepo(tmp_path / "repo")
    repo.write("src/a.py", "a = 1\n")
    repo.write("README.md", "hi\n")
    c1 = repo.commit("add a and readme\n\nbecause")
    repo.write("src/a.py", "a = 2\n")
    c2 = repo.commit("bump a")
    repo.remove("README.md")
    c3 = repo.commit("drop readme")
    with Ledger(ledger_path) as lg:
        import_git(lg, repo.path, project_id="p")
        rec = Recorder(lg, project_id="p", agent_id="bot-7", agent_role="reviewer", clock=lambda: 1_900_000_000 * 10**9)
        rec.decision("looks fine", confidence=0.9)
        rec.message("ship it", recipients=["ada"])
    return ledger_path, (c1, c2, c3)


def lines(result):
    assert result.exit_code == 0, result.output
    return [line for line in result.stdout.splitlines() if line.strip()]


def test_log_newest_first_one_line_per_event(ledger_db):
    db, (c1, c2, c3) = ledger_db
    out = lines(run(["log"], db))
    assert len(out) == 3 + 2 + 2 + 2  # 3 decisions, 4 changes, + decision + message
    assert "message" in out[0] and "bot-7" in out[0] and "ship it" in out[0]
    assert "decision" in out[1] and "looks fine" in out[1]
    assert "delete README.md" in out[2]
    assert out[-1].split()[2] == "decision" and "add a and readme" in out[-1]
    assert "because" not in "\n".join(out)  # first line of the rationale only
    oldest = lines(run(["log", "--oldest-first", "--limit", "2"], db))
    assert len(oldest) == 2 and "add a and readme" in oldest[0]


def test_log_filters(ledger_db):
    db, (c1, c2, c3) = ledger_db
    path = lines(run(["log", "src/a.py"], db))  # each change, then why: its decision's first line
    assert len(path) == 4 and "modify src/a.py" in path[0] and path[1].strip() == "why: bump a"
    assert "create src/a.py" in path[2] and path[3].strip() == "why: add a and readme"
    assert len([x for x in lines(run(["log", "src/"], db)) if "why:" not in x]) == 2
    assert len(lines(run(["log", "--kind", "decision"], db))) == 4
    assert len(lines(run(["log", "--agent", "bot-7"], db))) == 2
    assert len(lines(run(["log", "--commit", c2[:8]], db))) == 2
    since = lines(run(["log", "--since", c2, "--until", c2], db))
    assert len(since) == 2 and "modify src/a.py" in since[0]
    assert len(lines(run(["log", "--until", c1], db))) == 3
    assert len(lines(run(["log", "--since", "2030-01-01T00:00:00Z"], db))) == 2
    assert run(["log", "--limit", "1"], db).stderr.startswith("(showing the 1 newest")


def test_log_json(ledger_db):
    db, _ = ledger_db
    data = json.loads(run(["log", "--json", "--kind", "state_change"], db).stdout)
    assert len(data) == 4
    first = data[0]
    assert first["state_change"]["operation"] == "delete" and first["seq"] > 0
    assert first["recorded_at"].endswith("Z") and first["hub_versionstamp"] is None


def test_short_ids_from_log_work_in_show(ledger_db):
    db, _ = ledger_db
    for line in lines(run(["log"], db)):
        short = line.split()[1]
        assert len(short) >= 18
        shown = run(["show", short], db)
        assert shown.exit_code == 0, shown.output
        assert short in shown.output


def test_show_text_json_and_patch(ledger_db):
    db, (c1, c2, c3) = ledger_db
    with Ledger(db) as lg:
        stored = next(lg.events(commit=c2, kind="state_change"))
    text = run(["show", stored.event_id], db)
    assert text.exit_code == 0
    for word in ("state_change", "src/a.py", "modify", c2, "ada@example.com", "not synced yet"):
        assert word in text.output
    assert "+a = 2" not in text.output
    patch = run(["show", stored.event_id, "--patch"], db)
    assert "-a = 1\n+a = 2" in patch.output
    data = json.loads(run(["show", stored.event_id, "--json"], db).output)
    expected = stored.event.to_dict()
    assert {k: data[k] for k in expected} == expected
    assert data["seq"] == stored.seq and "recorded_at" in data


def test_show_unknown_event(ledger_db):
    db, _ = ledger_db
    result = run(["show", "01234567-89ab-7def-8123-456789abcdef"], db)
    assert result.exit_code == 1 and "no event" in result.output


def test_projects(ledger_db, tmp_path):
    db, _ = ledger_db
    assert "default/p  9 events" in run(["projects"], db).output
    data = json.loads(run(["projects", "--json"], db).output)
    assert data == [{"tenant_id": "default", "project_id": "p", "events": 9, "root": None, "identity": None,
                     "first": data[0]["first"], "last": "2030-03-17T17:46:40Z"}]
    empty = run(["projects"], tmp_path / "empty.db")
    assert empty.exit_code == 0 and "No projects yet" in empty.output


def test_show_does_not_read_another_tenants_event(tmp_path):
    """Tenant isolation: `ledger --tenant B show ID` of tenant A's event is 'no event'."""
    from ledger import Ledger
    from nervous_system import Recorder

    db = tmp_path / "l.db"
    with Ledger(db) as lg:
        event_id = Recorder(lg, project_id="web", agent_id="a", tenant_id="acme").decision("secret plan")
    ok = CliRunner().invoke(cli, ["--db", str(db), "--tenant", "acme", "show", event_id])
    assert ok.exit_code == 0 and "secret plan" in ok.output
    other = CliRunner().invoke(cli, ["--db", str(db), "--tenant", "globex", "show", event_id])
    assert other.exit_code == 1 and "no event" in other.output and "secret plan" not in other.output


def test_json_errors_are_json_with_the_same_exit_codes(ledger_path):
    import json as _json

    from click.testing import CliRunner

    from cli import cli

    runner = CliRunner()
    plain = runner.invoke(cli, ["--db", str(ledger_path), "log", "--project", "nope"])
    as_json = runner.invoke(cli, ["--db", str(ledger_path), "log", "--project", "nope", "--json"])
    assert plain.exit_code == as_json.exit_code == 1
    err = _json.loads(as_json.stderr.strip().splitlines()[-1])
    assert err["type"] == "ProjectNotFound" and "nope" in err["error"] and err["exit_code"] == 1
    usage = runner.invoke(cli, ["--db", str(ledger_path), "log", "--bogus", "--json"])
    assert usage.exit_code == 2 and _json.loads(usage.stderr.strip().splitlines()[-1])["exit_code"] == 2
    assert "Error:" in plain.stderr and not plain.stderr.lstrip().startswith("{")


def test_scope_options_after_the_subcommand(ledger_path):
    from click.testing import CliRunner

    from cli import cli
    from ledger import Ledger
    from nervous_system import Recorder

    with Ledger(ledger_path) as lg:
        Recorder(lg, project_id="web", agent_id="a", tenant_id="acme").decision("in web")
        Recorder(lg, project_id="api", agent_id="a", tenant_id="acme").decision("in api")
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "log", "--tenant", "acme", "--project", "api"])
    assert res.exit_code == 0, res.output
    assert "in api" in res.stdout and "in web" not in res.stdout


def test_a_missing_extra_names_the_install_command(ledger_path, python):
    import subprocess

    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('chdb', 'clickhouse_connect'):\n"
            "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "from cli import cli\n"
            f"cli(['--db', {str(ledger_path)!r}, 'ingest'])\n")
    res = subprocess.run([python, "-c", code], capture_output=True, text=True)
    assert res.returncode == 1, res.stderr
    assert "pip install 'context-ledger[analytics]'" in res.stderr and "Traceback" not in res.stderr


def test_log_patch_stat_session_and_trace(ledger_db):
    db, (c1, c2, c3) = ledger_db
    patched = run(["log", "src/a.py", "-p"], db).stdout  # import stores no patch: made from the blobs
    assert "-a = 1" in patched and "+a = 2" in patched and "+++ b/src/a.py" in patched
    stat = lines(run(["log", "src/a.py", "--stat"], db))
    assert [x.strip() for x in stat if x.strip().startswith("+")] == ["+1 -1", "+1 -0"]
    assert len(lines(run(["log", "--session", c2], db))) == 2  # imported commits: session = commit
    assert run(["log", "--trace", "ab" * 16], db).stderr.startswith("No events match")
    jsonl = [json.loads(x) for x in run(["log", "--format", "jsonl"], db).stdout.splitlines()]
    assert len(jsonl) == 9 and all("event_id" in x for x in jsonl)


def test_show_a_decision_lists_the_changes_it_caused(ledger_db):
    db, (c1, c2, c3) = ledger_db
    decision = json.loads(run(["log", "--json", "--commit", c1[:10], "--kind", "decision"], db).stdout)[0]
    shown = json.loads(run(["show", decision["event_id"], "--json"], db).stdout)
    assert sorted(e["state_change"]["target_resource"] for e in shown["caused"]) == ["README.md", "src/a.py"]
    text = run(["show", decision["event_id"]], db).stdout
    assert "caused" in text and "create README.md" in text


def test_a_corrupt_stored_event_is_reported_and_skipped(ledger_db):
    import sqlite3

    db, _ = ledger_db
    with sqlite3.connect(db) as conn:
        seq, event_id = conn.execute("SELECT seq, event_id FROM events WHERE kind = 'message'").fetchone()
        conn.execute("UPDATE events SET body = ? WHERE seq = ?", (b"\xff\x00garbage", seq))
        other = conn.execute("SELECT seq, body FROM events WHERE kind = 'decision' LIMIT 1").fetchone()
        swapped = conn.execute("SELECT body FROM events WHERE kind = 'decision' LIMIT 1 OFFSET 1").fetchone()[0]
        conn.execute("UPDATE events SET body = ? WHERE seq = ?", (swapped, other[0]))  # another id's body
    res = run(["log"], db)
    assert res.exit_code == 0 and "Traceback" not in res.output
    assert sum("(corrupt)" in x for x in res.stdout.splitlines()) == 2 and f"seq {seq}" in res.stdout
    data = json.loads(run(["log", "--json"], db).stdout)
    assert sum(1 for d in data if d.get("error")) == 2 and len(data) == 9
    shown = run(["show", event_id], db)
    assert shown.exit_code == 1 and "cannot be read" in shown.output and "Traceback" not in shown.output
