"""Lookups by commit use the commit index, not a walk of the whole project.

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
