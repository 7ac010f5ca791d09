"""Lookups by commit and by path use their indexes, not a walk of the whole project.

Without ANALYZE statistics SQLite prefers the (tenant, project) equality of a
multi-column index over a commit-prefix range, which made every commit lookup read the
whole project: a re-import of git/git (24,254 commits, 119,307 events) spent minutes
there, and every ``replay --at <commit>`` paid one scan. The plans are read from SQLite
itself (``EXPLAIN QUERY PLAN`` of the statements the ledger really runs)."""

from __future__ import annotations

from ledger import Ledger
from nervous_system import Recorder


def plans_of(lg: Ledger, action) -> list[str]:
    """The query plans of every SELECT on ``events`` that ``action()`` runs."""
    conn = lg._conn()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        action()
    finally:
        conn.set_trace_callback(None)
    plans = []
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT") and " FROM events" in sql:
            rows = conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
            plans.append(" | ".join(r[-1] for r in rows))
    return plans


def path_lookup(db, path: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``events(path=...)`` of project p: ``([(previous path, path)], query plans)``;
    asserts that the lookup without a project (the plain clause) finds the same events."""
    with Ledger(db) as lg:
        found = []
        plans = plans_of(lg, lambda: found.extend(lg.events(tenant_id="default", project_id="p", path=path)))
        unscoped = list(lg.events(path=path))
    assert [e.seq for e in unscoped] == [e.seq for e in found]
    return [(e.event.state_change.previous_resource, e.event.state_change.target_resource) for e in found], plans


def test_commit_lookups_search_the_commit_index(tmp_path):
    rec = Recorder(tmp_path / "l.db", project_id="p", agent_id="a")
    for n in range(30):
        rec.file_change(f"f{n}.txt", b"x" * n, commit=f"{n:02x}" + "ab" * 19)
    rec.close()
    with Ledger(tmp_path / "l.db") as lg:
        events, commits = [], []
        plans = plans_of(lg, lambda: events.extend(lg.events(tenant_id="default", project_id="p", commit="0a")))
        plans += plans_of(lg, lambda: commits.extend(lg.commits("default", "p", "0a")))
    assert [(e.kind, e.event.state_change.target_resource) for e in events] == [("state_change", "f10.txt")]
    assert [c[0] for c in commits] == ["0a" + "ab" * 19]
    assert len(plans) == 2, plans
    for plan in plans:
        assert "USING INDEX events_commit" in plan, plan


def test_path_lookups_search_the_path_indexes_and_find_renames(tmp_path):
    rec = Recorder(tmp_path / "l.db", project_id="p", agent_id="a")
    for n in range(30):
        rec.file_change(f"src/f{n}.py", b"v1 %d" % n)
    rec.file_change("src/moved.py", None, previous_path="src/f3.py")  # a rename away from f3
    rec.file_change("src/f3.py", b"back again")
    rec.close()
    paths, plans = path_lookup(tmp_path / "l.db", "src/f3.py")
    assert paths == [("", "src/f3.py"), ("src/f3.py", "src/moved.py"), ("", "src/f3.py")]
    assert len(plans) == 1, plans
    assert "events_path" in plans[0] and "events_previous_path" in plans[0], plans
    assert "USING INTEGER PRIMARY KEY" in plans[0], plans


def test_directory_lookups_search_a_range_of_the_path_indexes(tmp_path):
    """``path="src/"`` (``ledger log --path src/``) reads a range of each path index, and
    finds what is under the directory only: not ``src.txt`` or ``srcx/``, which sort
    next to it, and renames into or out of it by either side."""
    rec = Recorder(tmp_path / "l.db", project_id="p", agent_id="a")
    rec.file_change("src.txt", b"beside")
    rec.file_change("srcx/a.py", b"next door")
    for n in range(20):
        rec.file_change(f"src/f{n}.py", b"v1 %d" % n)
    rec.file_change("src/deep/g.py", b"deep")
    rec.file_change("lib/out.py", None, previous_path="src/f3.py")  # renamed out of src/
    rec.file_change("src/in.py", None, previous_path="srcx/a.py")  # renamed into src/
    rec.file_change("sr/c.py", b"shorter")
    rec.close()
    paths, plans = path_lookup(tmp_path / "l.db", "src/")
    assert paths == [("", f"src/f{n}.py") for n in range(20)] + [
        ("", "src/deep/g.py"), ("src/f3.py", "lib/out.py"), ("srcx/a.py", "src/in.py")]
    assert len(plans) == 1, plans
    assert "events_path (tenant_id=? AND project_id=? AND target_path>? AND target_path<?)" in plans[0], plans
    assert "events_previous_path (tenant_id=? AND project_id=? AND previous_path>? AND previous_path<?)" \
        in plans[0], plans


def test_event_id_prefix_lookups_search_the_id_index(tmp_path):
    """``find_events`` by id prefix within a project (``ledger show <prefix>``, and every
    ``--at <commit>``, first tried as an event id) reads a range of the event-id index."""
    rec = Recorder(tmp_path / "l.db", project_id="p", agent_id="a")
    ids = [rec.decision(f"step {n}") for n in range(30)]
    rec.close()
    target = sorted(ids)[17]
    with Ledger(tmp_path / "l.db") as lg:
        found, missing = [], []
        plans = plans_of(lg, lambda: found.extend(lg.find_events(target[:13], tenant_id="default", project_id="p")))
        plans += plans_of(lg, lambda: missing.extend(lg.find_events("f" * 40, tenant_id="default", project_id="p")))
    assert [e.event_id for e in found] == [target] and missing == []
    ranges = [p for p in plans if "event_id>?" in p]
    assert len(ranges) == 2, plans
    for plan in ranges:
        assert "USING INDEX sqlite_autoindex_events_1 (event_id>? AND event_id<?)" in plan, plan
