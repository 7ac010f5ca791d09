"""Schema migrations of the local SQLite ledger.

Each migration is a named function appended to ``MIGRATIONS``; a shipped migration is
never edited or reordered (add a new one instead). ``migrate()`` runs the missing ones
in order, each in its own transaction, and records them in ``_migrations``. Every entry
point opens the ledger through ``Ledger``, which migrates first.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Callable, Union

if TYPE_CHECKING:  # sqlite_utils is imported only when a migration runs (it is slow to import)
    import sqlite_utils


def m001_create_events(db: "sqlite_utils.Database") -> None:
    """The event log: one row per event, ``seq`` is the local total order (never reused)."""
    db.execute(
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            time_ns INTEGER NOT NULL,
            recorded_ns INTEGER NOT NULL,
            tenant_id TEXT NOT NULL,
            project_id TEXT NOT NULL,
            session_id TEXT NOT NULL DEFAULT '',
            agent_id TEXT NOT NULL DEFAULT '',
            agent_role TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL,
            target_type TEXT,
            target_path TEXT,
            previous_path TEXT,
            operation TEXT,
            prev_hash TEXT,
            new_hash TEXT,
            file_mode TEXT,
            prev_mode TEXT,
            commit_hash TEXT,
            trace_id TEXT NOT NULL DEFAULT '',
            span_id TEXT NOT NULL DEFAULT '',
            caused_by TEXT NOT NULL DEFAULT '',
            body BLOB NOT NULL,
            body_bytes INTEGER NOT NULL
        )
        """
    )
    table = db["events"]
    table.create_index(["tenant_id", "project_id", "time_ns", "seq"], index_name="events_time")
    table.create_index(["tenant_id", "project_id", "target_path"], index_name="events_path")
    table.create_index(["tenant_id", "project_id", "agent_id"], index_name="events_agent")
    table.create_index(["tenant_id", "project_id", "kind"], index_name="events_kind")
    table.create_index(["commit_hash"], index_name="events_commit")
    table.create_index(["session_id"], index_name="events_session")


def m002_create_blobs(db: "sqlite_utils.Database") -> None:
    """Content-addressed blobs: key is SHA-256 hex of the raw bytes, stored once, compressed."""
    db["blobs"].create(
        {"hash": str, "size": int, "encoding": str, "data": bytes, "stored_ns": int},
        pk="hash",
        not_null={"size", "encoding", "data", "stored_ns"},
    )


def m003_create_path_state(db: "sqlite_utils.Database") -> None:
    """Projection: the current content hash and mode of every file path, in recording order."""
    db["path_state"].create(
        {
            "tenant_id": str,
            "project_id": str,
            "path": str,
            "hash": str,
            "mode": str,
            "seq": int,
        },
        pk=("tenant_id", "project_id", "path"),
    )


def m004_create_checkpoints_and_meta(db: "sqlite_utils.Database") -> None:
    """Consumer checkpoints (name -> value) and ledger metadata (a ledger id per file)."""
    db["checkpoints"].create({"name": str, "value": str, "updated_ns": int}, pk="name")
    db["meta"].create({"key": str, "value": str}, pk="key")


def m005_outbox_columns(db: "sqlite_utils.Database") -> None:
    """Outbox state for the syncer: the hub versionstamp once synced, or why it was refused."""
    db.execute("ALTER TABLE events ADD COLUMN hub_versionstamp BLOB")
    db.execute("ALTER TABLE events ADD COLUMN synced_ns INTEGER")
    db.execute("ALTER TABLE events ADD COLUMN sync_error TEXT")
    db.execute("CREATE INDEX events_unsynced ON events(seq) WHERE hub_versionstamp IS NULL")


def m006_link_indexes(db: "sqlite_utils.Database") -> None:
    """Indexes for following links: the changes a decision caused (``caused_by``) and
    the events of one trace (``trace_id``); partial, so unlinked events cost nothing."""
    db.execute("CREATE INDEX events_caused_by ON events(caused_by) WHERE caused_by != ''")
    db.execute("CREATE INDEX events_trace ON events(trace_id) WHERE trace_id != ''")


def m007_project_registry(db: "sqlite_utils.Database") -> None:
    """The project registry (``ledger.registry``): every tenant/project, with the root of
    its work tree and an identity where known; filled from the events already stored."""
    db.execute(
        """
        CREATE TABLE projects (
            tenant_id TEXT NOT NULL,
            project_id TEXT NOT NULL,
            root TEXT,
            identity TEXT,
            created_ns INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, project_id)
        )
        """
    )
    db.execute("CREATE INDEX projects_root ON projects(tenant_id, root) WHERE root IS NOT NULL")
    db.execute(
        "INSERT INTO projects (tenant_id, project_id, created_ns) "
        "SELECT tenant_id, project_id, min(recorded_ns) FROM events GROUP BY tenant_id, project_id"
    )
    # every insert path registers its project (also group commit's multi-row INSERTs)
    db.execute(
        """
        CREATE TRIGGER events_register_project AFTER INSERT ON events BEGIN
            INSERT OR IGNORE INTO projects (tenant_id, project_id, created_ns)
            VALUES (NEW.tenant_id, NEW.project_id, NEW.recorded_ns);
        END
        """
    )


def m008_blob_owners(db: "sqlite_utils.Database") -> None:
    """Which tenant may use which content (``ledger.owners``); filled from the file
    changes already stored."""
    db.execute("CREATE TABLE blob_owners (tenant_id TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (tenant_id, hash))")
    db.execute(
        "INSERT OR IGNORE INTO blob_owners (tenant_id, hash) SELECT DISTINCT tenant_id, new_hash FROM events "
        "WHERE kind = 'state_change' AND target_type = 'file' AND new_hash IS NOT NULL AND new_hash != ''"
    )


def m009_votes_and_provenance(db: "sqlite_utils.Database") -> None:
    """``vote_target``: the event a vote names (``SwarmEvent.vote``; indexed, partial, so
    finding the votes on an event is one lookup); ``shared_from``: where an event imported
    from another ledger or a bundle came from (``syncer.shared``; NULL for events recorded
    here). No vote or import predates this migration, so there is nothing to backfill."""
    db.execute("ALTER TABLE events ADD COLUMN vote_target TEXT")
    db.execute("ALTER TABLE events ADD COLUMN shared_from TEXT")
    db.execute("CREATE INDEX events_vote_target ON events(tenant_id, vote_target) WHERE vote_target IS NOT NULL")


def m010_hash_chain(db: "sqlite_utils.Database") -> None:
    """The hash chain (``ledger.chain``): each event's body digest and chain value,
    back-filled in seq order for the events already stored; the links of events removed
    on purpose (``chain_removed``) and the signed checkpoints (``chain_checkpoints``)."""
    import hashlib
    import uuid

    from ledger.chain import genesis

    db.execute("ALTER TABLE events ADD COLUMN body_sha256 BLOB")
    db.execute("ALTER TABLE events ADD COLUMN chain BLOB")
    db.execute(
        "CREATE TABLE chain_removed (seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL, body_sha256 BLOB NOT NULL, "
        "chain BLOB NOT NULL, tenant_id TEXT NOT NULL DEFAULT '', project_id TEXT NOT NULL DEFAULT '', "
        "kind TEXT NOT NULL DEFAULT '', removed_ns INTEGER NOT NULL, reason TEXT NOT NULL)")
    db.execute(
        "CREATE TABLE chain_checkpoints (seq INTEGER PRIMARY KEY, head BLOB NOT NULL, created_ns INTEGER NOT NULL, "
        "public_key BLOB NOT NULL, signature BLOB NOT NULL)")
    row = db.execute("SELECT value FROM meta WHERE key = 'ledger_id'").fetchone()
    if row is None:
        ledger_id = str(uuid.uuid4())
        db.execute("INSERT INTO meta (key, value) VALUES ('ledger_id', ?)", (ledger_id,))
    else:
        ledger_id = row[0]
    previous = genesis(ledger_id)
    for seq, body in db.execute("SELECT seq, body FROM events ORDER BY seq").fetchall():
        d = hashlib.sha256(bytes(body)).digest()
        previous = hashlib.sha256(previous + d).digest()
        db.execute("UPDATE events SET body_sha256 = ?, chain = ? WHERE seq = ?", (d, previous, seq))


def m011_erasure_keys(db: "sqlite_utils.Database") -> None:
    """Crypto-shredding (``ledger.erasure``): one AES key per tenant/session/agent while
    it lives, and the record of every erasure."""
    db.execute(
        "CREATE TABLE erasure_keys (key_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, session_id TEXT NOT NULL, "
        "agent_id TEXT NOT NULL, key BLOB NOT NULL, created_ns INTEGER NOT NULL)")
    db.execute("CREATE INDEX erasure_keys_owner ON erasure_keys(tenant_id, session_id, agent_id)")
    db.execute(
        "CREATE TABLE erasures (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, session_id TEXT, agent_id TEXT, "
        "keys INTEGER NOT NULL, erased_ns INTEGER NOT NULL)")
    db.execute("CREATE TABLE erased_keys (key_id TEXT PRIMARY KEY, erased_ns INTEGER NOT NULL)")


def m012_legal_holds(db: "sqlite_utils.Database") -> None:
    """Legal holds (``ledger.retention``): while one covers a project (or, with project
    "", the whole tenant) retention removes nothing there."""
    db.execute(
        "CREATE TABLE legal_holds (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, project_id TEXT NOT NULL, "
        "reason TEXT NOT NULL, created_ns INTEGER NOT NULL)")


def m013_blob_deltas(db: "sqlite_utils.Database") -> None:
    """Delta storage (``ledger.blobs``): a blob may be stored as a zstd delta against
    ``base`` (another blob) at position ``chain_pos`` of its chain (0: a full copy).
    Existing rows are full copies; their encodings (``raw``, ``zlib``) stay readable."""
    db.execute("ALTER TABLE blobs ADD COLUMN base TEXT")
    db.execute("ALTER TABLE blobs ADD COLUMN chain_pos INTEGER NOT NULL DEFAULT 0")


def m014_replay_snapshots(db: "sqlite_utils.Database") -> None:
    """Replay snapshots (``ledger.snapshots``): the replayed tree of a project after
    every file change up to ``seq`` (recording order), a cache rebuilt from events."""
    db.execute(
        """
        CREATE TABLE replay_snapshots (
            tenant_id TEXT NOT NULL,
            project_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            changes INTEGER NOT NULL,
            entries INTEGER NOT NULL,
            max_time_ns INTEGER NOT NULL,
            time_ordered INTEGER NOT NULL,
            state_changes INTEGER NOT NULL,
            checksum TEXT NOT NULL,
            data BLOB NOT NULL,
            created_ns INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, project_id, seq)
        )
        """
    )


def m015_erasure_keys_on_hub(db: "sqlite_utils.Database") -> None:
    """Which erasure keys the syncer uploaded to the hub (``ledger.erasure_hub.push_keys``):
    a flag per key, not a rowid cursor (SQLite reuses the largest rowid once its row is
    deleted, which an erasure does)."""
    db.execute("ALTER TABLE erasure_keys ADD COLUMN on_hub INTEGER NOT NULL DEFAULT 0")


def m016_previous_path_index(db: "sqlite_utils.Database") -> None:
    """Renames by their source path (``events(path=P)`` matches a change of P or a rename
    away from P, ``ledger.reads``): without it every path lookup read the whole project.
    Partial: only renames have a previous path."""
    db.execute("CREATE INDEX events_previous_path ON events(tenant_id, project_id, previous_path) "
               "WHERE previous_path != ''")


MIGRATIONS: list[Callable[["sqlite_utils.Database"], None]] = [
    m001_create_events,
    m002_create_blobs,
    m003_create_path_state,
    m004_create_checkpoints_and_meta,
    m005_outbox_columns,
    m006_link_indexes,
    m007_project_registry,
    m008_blob_owners,
    m009_votes_and_provenance,
    m010_hash_chain,
    m011_erasure_keys,
    m012_legal_holds,
    m013_blob_deltas,
    m014_replay_snapshots,
    m015_erasure_keys_on_hub,
    m016_previous_path_index,
]


#: A raw connection or a ``sqlite_utils.Database``.
Target = Union[sqlite3.Connection, "sqlite_utils.Database"]


def _connection(db: Target) -> sqlite3.Connection:
    return db if isinstance(db, sqlite3.Connection) else db.conn


def applied(db: Target) -> list[str]:
    """Names of the migrations already applied, in order (read-only: no lock taken)."""
    conn = _connection(db)
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'").fetchone() is None:
        return []
    return [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]


def migrate(db: Target) -> list[str]:
    """Apply every missing migration, each atomically. Returns the names applied now.

    Opening an up-to-date ledger reads one table and writes nothing (``sqlite_utils``,
    which the migrations use, is imported only when one is pending). Safe to run from
    several processes at once: each migration runs inside ``BEGIN IMMEDIATE`` and
    re-checks whether another process applied it first.
    """
    conn = _connection(db)
    done = set(applied(conn))
    if all(fn.__name__ in done for fn in MIGRATIONS):
        return []
    import sqlite_utils

    database = db if not isinstance(db, sqlite3.Connection) else sqlite_utils.Database(conn)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_ns INTEGER NOT NULL)"
    )
    done_now: list[str] = []
    for fn in MIGRATIONS:
        name = fn.__name__
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                conn.execute("COMMIT")
                continue
            fn(database)
            conn.execute(
                "INSERT INTO _migrations (name, applied_ns) VALUES (?, ?)", (name, time.time_ns())
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        done_now.append(name)
    return done_now
