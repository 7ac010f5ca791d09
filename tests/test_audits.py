"""`ledger audit` reports on crafted histories whose answers are known."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ingest.audits import AUDITS, run_audit
from ingest.ingestor import Ingestor
from ingest.sources import LocalSource
from ledger import Ledger
from cli import cli
from nervous_system import Recorder
from schemas import format_timestamp_ns
from tests.analytics_helpers import SEC, T0, Clock, analytics_url


@pytest.fixture
def history(ledger_path, isolated_state):
    """A crafted history (times from T0 = 2026-01-01T00:00:00Z, one agent clock):

    * architect decides D1 (0.9) at T0; coder decides D2 (0.3) at +10s, D3 (0.2) at +20s.
    * hot.py: created +11s, then modified at +12, +13, +14 (4 changes in 4s), then flipped
      back to its first content at +5000s (a loop revisit); 5 changes in all. The +12
      change (v0 -> v1, D2 at 0.3) is REVERTED by that flip (v0 restored).
    * cfg.yml: created at +15 (D2), modified at +21 (D3, low confidence) then restored to the
      created content at +30 by the architect (D1): the +21 change is REVERTED.
    * tmp.txt: created at +22 (D3, low) and deleted at +40: REVERTED (created file deleted).
    * keep.txt: created at +23 (D3, low), modified at +24: not reverted.
    * calm.txt: created at +16 by D2 and never touched again.
    """
    clock = Clock()
    with Ledger(ledger_path) as lg:
        arch = Recorder(lg, project_id="web", agent_id="arch", agent_role="architect", tenant_id="acme", clock=clock)
        coder = Recorder(lg, project_id="web", agent_id="coder", agent_role="coder", tenant_id="acme", clock=clock)
        ids = {}
        ids["D1"] = arch.decision("keep config stable", confidence=0.9, rejected_alternatives=["yaml2"])
        clock.now = T0 + 10 * SEC
        ids["D2"] = coder.decision("build hot path", confidence=0.3)
        clock.now = T0 + 11 * SEC
        ids["hot0"] = coder.file_change("hot.py", b"v0\n")
        for i, t in enumerate((12, 13, 14), 1):
            clock.now = T0 + t * SEC
            ids[f"hot{i}"] = coder.file_change("hot.py", f"v{i}\n".encode())
        clock.now = T0 + 15 * SEC
        coder.file_change("cfg.yml", b"a: 1\n")
        clock.now = T0 + 16 * SEC
        coder.file_change("calm.txt", b"calm\n")
        clock.now = T0 + 20 * SEC
        ids["D3"] = coder.decision("tweak config", confidence=0.2, input_trigger="#7")
        clock.now = T0 + 21 * SEC
        ids["cfg_change"] = coder.file_change("cfg.yml", b"a: 2\n")
        clock.now = T0 + 22 * SEC
        ids["tmp_create"] = coder.file_change("tmp.txt", b"tmp\n")
        clock.now = T0 + 23 * SEC
        coder.file_change("keep.txt", b"k1\n")
        clock.now = T0 + 24 * SEC
        coder.file_change("keep.txt", b"k2\n")
        clock.now = T0 + 30 * SEC
        ids["cfg_restore"] = arch.file_change("cfg.yml", b"a: 1\n", caused_by=ids["D1"])
        clock.now = T0 + 40 * SEC
        ids["tmp_delete"] = arch.file_change("tmp.txt", None, caused_by=ids["D1"])
        clock.now = T0 + 5000 * SEC
        ids["hot_back"] = coder.file_change("hot.py", b"v0\n", caused_by=ids["D2"])
        url = analytics_url(isolated_state)
        Ingestor(url, LocalSource(lg, tenant="acme")).run()
    return url, ids


def test_every_report_has_a_documented_sql_file():
    for audit in AUDITS.values():
        text = audit.sql()
        assert text.startswith("--") and "{tenant:String}" in text
        for name in audit.defaults:
            assert "{" + name + ":" in text


def test_hot_files(history):
    url, _ = history
    rows = run_audit(url, "hot-files", tenant="acme", min_changes=4, window_s=10).as_dicts()
    assert [(r["path"], r["max_in_window"], r["total_changes"], r["loop_revisits"]) for r in rows] == [
        ("hot.py", 4, 5, 1)]
    # a 3-change threshold with a 1-second window: only 2 changes ever share 1 second
    assert run_audit(url, "hot-files", tenant="acme", min_changes=3, window_s=1).rows == []
    # a long window also catches cfg.yml (3 changes in 15 s) and keep.txt misses (2)
    wide = run_audit(url, "hot-files", tenant="acme", min_changes=3, window_s=3600).as_dicts()
    assert [(r["path"], r["max_in_window"]) for r in wide] == [("hot.py", 4), ("cfg.yml", 3)]
    # another tenant sees nothing
    assert run_audit(url, "hot-files", tenant="other", min_changes=1, window_s=3600).rows == []


def test_decisions_before(history):
    url, ids = history
    rows = run_audit(url, "decisions", tenant="acme", before=T0 + 15 * SEC).as_dicts()
    assert [r["decision_id"] for r in rows] == [ids["D2"], ids["D1"]]
    d2 = rows[0]
    assert (d2["agent_id"], d2["confidence"], d2["changes"]) == ("coder", 0.3, 7)
    assert rows[1]["rejected_alternatives"] == ["yaml2"] and rows[1]["changes"] == 2
    assert [r["decision_id"] for r in run_audit(url, "decisions", tenant="acme", before=T0 - 1).rows] == []


def test_reverted(history):
    url, ids = history
    rows = run_audit(url, "reverted", tenant="acme", max_confidence=0.5).as_dicts()
    got = [(r["path"], r["change_id"], r["reverted_by"], r["how"]) for r in rows]
    assert got == [
        # v0 -> v1 (D2, 0.3) is undone when hot.py flips back to v0 much later
        ("hot.py", ids["hot1"], ids["hot_back"], "restored the previous content"),
        ("cfg.yml", ids["cfg_change"], ids["cfg_restore"], "restored the previous content"),
        ("tmp.txt", ids["tmp_create"], ids["tmp_delete"], "deleted the created file"),
    ]
    assert rows[1]["confidence"] == 0.2 and rows[1]["reverted_by_agent"] == "arch"
    # hot.py's create (v0) is not reverted (never deleted); keep.txt's changes were never undone.
    # With the threshold at 0.25 only D3's changes count.
    assert [r["path"] for r in run_audit(url, "reverted", tenant="acme", max_confidence=0.25).as_dicts()] == [
        "cfg.yml", "tmp.txt"]
    assert run_audit(url, "reverted", tenant="acme", max_confidence=0.1).rows == []


def test_agents(history):
    url, _ = history
    rows = {r["agent_id"]: r for r in run_audit(url, "agents", tenant="acme").as_dicts()}
    assert set(rows) == {"arch", "coder"}
    assert (rows["arch"]["agent_role"], rows["arch"]["events"], rows["arch"]["decisions"],
            rows["arch"]["changes"]) == ("architect", 3, 1, 2)
    assert (rows["coder"]["events"], rows["coder"]["decisions"], rows["coder"]["changes"],
            rows["coder"]["files"]) == (13, 2, 11, 5)
    assert rows["coder"]["avg_confidence"] == 0.25
    early = run_audit(url, "agents", tenant="acme", until=T0 + 12 * SEC).as_dicts()
    assert {(r["agent_id"], r["events"]) for r in early} == {("arch", 1), ("coder", 3)}


def test_why(history):
    url, ids = history
    rows = run_audit(url, "why", tenant="acme", path="cfg.yml").as_dicts()
    assert [(r["operation"], r["decided_by"], r["rationale"]) for r in rows] == [
        ("create", "coder", "build hot path"),
        ("modify", "coder", "tweak config"),
        ("modify", "arch", "keep config stable"),
    ]
    assert rows[1]["input_trigger"] == "#7" and rows[1]["decision_id"] == ids["D3"]


def test_cli_reports(history, ledger_path):
    runner = CliRunner()
    base = ["--db", str(ledger_path), "--tenant", "acme", "audit"]
    hot = runner.invoke(cli, base + ["hot-files", "--min-changes", "4", "--window", "10s", "--json"])
    assert hot.exit_code == 0, hot.output
    assert [r["path"] for r in json.loads(hot.output)] == ["hot.py"]
    dec = runner.invoke(cli, base + ["decisions", "--before", format_timestamp_ns(T0 + 15 * SEC), "--json"])
    assert [r["agent_id"] for r in json.loads(dec.output)] == ["coder", "arch"]
    why = runner.invoke(cli, base + ["why", "tmp.txt", "--format", "csv"])
    assert why.exit_code == 0 and why.output.count("\n") == 3
    rev = runner.invoke(cli, base + ["reverted"])
    assert rev.exit_code == 0 and "3 rows" in rev.output
    agents = runner.invoke(cli, base + ["agents", "--since", "2025-12-31T00:00:00Z", "--json"])
    assert {r["agent_id"] for r in json.loads(agents.output)} == {"arch", "coder"}
    sql = runner.invoke(cli, ["audit", "sql", "reverted"])
    assert sql.output == AUDITS["reverted"].sql()
    bad = runner.invoke(cli, base + ["hot-files", "--window", "soon"])
    assert bad.exit_code == 2 and "duration" in bad.output


def test_reverted_does_not_judge_decisions_without_a_confidence(ledger_path, isolated_state):
    """Imported git history has no confidence (0.0 = not given): its reverts are not
    'low-confidence changes later reverted'; a stated low confidence still is."""
    clock = Clock()
    with Ledger(ledger_path) as lg:
        rec = Recorder(lg, project_id="web", agent_id="a", tenant_id="acme", clock=clock)
        unknown = rec.decision("imported commit")  # no confidence given
        rec.file_change("u.txt", b"u\n")
        clock.now = T0 + 5 * SEC
        rec.file_change("u.txt", None)
        clock.now = T0 + 10 * SEC
        low = rec.decision("risky", confidence=0.1)
        made = rec.file_change("l.txt", b"l\n")
        clock.now = T0 + 15 * SEC
        rec.file_change("l.txt", None)
        url = analytics_url(isolated_state)
        Ingestor(url, LocalSource(lg, tenant="acme")).run()
    rows = run_audit(url, "reverted", tenant="acme", max_confidence=0.5).as_dicts()
    assert [(r["path"], r["change_id"]) for r in rows] == [("l.txt", made)]
    assert unknown != low
    agents = run_audit(url, "agents", tenant="acme").as_dicts()
    assert agents[0]["avg_confidence"] == 0.1  # the unstated confidence is not averaged in
