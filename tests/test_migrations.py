"""Migrations: a blank database gets every one; an older database is upgraded in place."""

from __future__ import annotations

import sqlite3
import time

import sqlite_utils

from ledger import Ledger
from ledger.migrations import MIGRATIONS, applied, migrate
from schemas import AgentDecision, SwarmEvent, new_event_id


def test_blank_database_gets_every_migration(ledger_path):
    Ledger(ledger_path).close()
    db = sqlite_utils.Database(ledger_path)
    assert applied(db) == [m.__name__ for m in MIGRATIONS]
    assert {"events", "blobs", "path_state", "checkpoints", "meta"} <= set(db.table_names())
    assert migrate(db) == []  # idempotent


def test_upgrade_from_the_first_migration_keeps_data(ledger_path):
    ledger_path.parent.mkdir(parents=True)
    db = sqlite_utils.Database(ledger_path)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_ns INTEGER NOT NULL)")
    first = MIGRATIONS[0]
    first(db)
    db.execute("INSERT INTO _migrations VALUES (?, ?)", (first.__name__, time.time_ns()))
    event = SwarmEvent(event_id=new_event_id(), timestamp=time.time_ns(), tenant_id="t", project_id="p",
                       decision=AgentDecision(rationale="written by an old version"))
    body = event.to_bytes()
    db.execute(
        "INSERT INTO events (event_id, time_ns, recorded_ns, tenant_id, project_id, kind, body, body_bytes)"
        " VALUES (?, ?, ?, 't', 'p', 'decision', ?, ?)",
        (event.event_id, event.timestamp, time.time_ns(), body, len(body)),
    )
    db.conn.commit()
    db.close()

    lg = Ledger(ledger_path)  # every entry point migrates first
    assert applied(sqlite_utils.Database(ledger_path)) == [m.__name__ for m in MIGRATIONS]
    stored = lg.get(event.event_id)
    assert stored.event == event
    assert stored.hub_versionstamp is None  # column added by a later migration
    assert lg.outbox_status()["pending"] == 1


def test_concurrent_openers_migrate_once(ledger_path):
    import threading

    errors = []

    def open_it():
        try:
            Ledger(ledger_path).close()
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sqlite3.connect(ledger_path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM _migrations")]
    assert sorted(names) == sorted(m.__name__ for m in MIGRATIONS)


#: The migrations of the previous release (stop 6): what an existing user's ledger has.
PREVIOUS_RELEASE = ["m001_create_events", "m002_create_blobs", "m003_create_path_state",
                    "m004_create_checkpoints_and_meta", "m005_outbox_columns"]


def test_upgrade_from_the_previous_release_registers_projects_and_keeps_events(ledger_path):
    from ledger.rows import event_columns
    from nervous_system import Recorder

    ledger_path.parent.mkdir(parents=True)
    db = sqlite_utils.Database(ledger_path)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_ns INTEGER NOT NULL)")
    for fn in MIGRATIONS:
        if fn.__name__ in PREVIOUS_RELEASE:
            fn(db)
            db.execute("INSERT INTO _migrations VALUES (?, ?)", (fn.__name__, time.time_ns()))
    events = [SwarmEvent(event_id=new_event_id(), timestamp=time.time_ns(), tenant_id=t, project_id=p,
                         decision=AgentDecision(rationale=f"{t}/{p}"))
              for t, p in (("acme", "web"), ("acme", "api"), ("globex", "web"))]
    old_columns = {c.name for c in db["events"].columns}
    for ev in events:  # the columns that release had (later migrations add more)
        row = {k: v for k, v in event_columns(ev, ev.to_bytes(), time.time_ns()).items() if k in old_columns}
        db.execute(f"INSERT INTO events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    db.conn.commit()
    db.close()

    lg = Ledger(ledger_path)
    assert applied(lg._conn()) == [m.__name__ for m in MIGRATIONS]
    assert [(p.tenant_id, p.project_id) for p in lg.project_infos()] == [
        ("acme", "api"), ("acme", "web"), ("globex", "web")]
    assert [lg.get(e.event_id).event for e in events] == events
    Recorder(lg, project_id="new", agent_id="a", tenant_id="acme").decision("after the upgrade")
    assert "new" in [p.project_id for p in lg.project_infos("acme")]  # the trigger registers it
    lg.close()


def test_upgrade_back_fills_the_hash_chain_of_stored_events(ledger_path):
    """A ledger from before the hash chain (before m010_hash_chain) gets digests and links for its
    events in seq order; new events extend that chain and the whole ledger verifies."""
    from ledger.chain import digest, genesis, link
    from ledger.rows import event_columns
    from ledger.verify import verify_ledger
    from nervous_system import Recorder

    ledger_path.parent.mkdir(parents=True)
    db = sqlite_utils.Database(ledger_path)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_ns INTEGER NOT NULL)")
    before = [m.__name__ for m in MIGRATIONS].index("m010_hash_chain")
    for fn in MIGRATIONS[:before]:
        fn(db)
        db.execute("INSERT INTO _migrations VALUES (?, ?)", (fn.__name__, time.time_ns()))
    db.execute("INSERT INTO meta (key, value) VALUES ('ledger_id', 'old-ledger')")
    old_columns = {c.name for c in db["events"].columns}
    bodies = []
    for i in range(5):
        ev = SwarmEvent(event_id=new_event_id(), timestamp=time.time_ns(), tenant_id="t", project_id="p",
                        decision=AgentDecision(rationale=f"old {i}"))
        bodies.append(ev.to_bytes())
        row = {k: v for k, v in event_columns(ev, bodies[-1], time.time_ns()).items() if k in old_columns}
        db.execute(f"INSERT INTO events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    db.conn.commit()
    db.close()

    lg = Ledger(ledger_path)
    rows = lg._conn().execute("SELECT body_sha256, chain FROM events ORDER BY seq").fetchall()
    expected = genesis("old-ledger")
    for (d, c), body in zip(rows, bodies):
        expected = link(expected, digest(body))
        assert (bytes(d), bytes(c)) == (digest(body), expected)
    Recorder(lg, project_id="p", agent_id="a", tenant_id="t").decision("after the upgrade")
    report = verify_ledger(lg)
    assert report.ok and report.events == 6, report.to_dict()
    lg.close()
