"""Erasure keys and the hub (docs/trust.md "Erasure"): uploading a ledger's keys
(``push_keys``, every sync pass, before the events) and the hub part of ``ledger.erasure.erase``
(kept pending in the meta table while the hub cannot be reached, finished by the next sync).
``hub`` arguments are hub clients (``hub.Hub``, ``hub.http_client.HttpHub``: ``put_seal_keys``,
``erase_seal_keys``, ``tenant_id``); this module imports no hub code.
"""

from __future__ import annotations

import time

from ledger.erasure import forget_cached


_PENDING = "erase_on_hub_pending"


def _pending(conn) -> list[dict]:
    import json

    row = conn.execute("SELECT value FROM meta WHERE key = ?", (_PENDING,)).fetchone()
    return json.loads(row[0]) if row else []


def add_pending(conn, erasure: dict) -> None:
    """Note an erasure (``tenant_id``, ``session_id``, ``agent_id``, ``key_ids``) the hub
    has yet to do, inside the caller's transaction on ``conn``."""
    _set_pending(conn, [*_pending(conn), erasure])


def _set_pending(conn, pending: list[dict]) -> None:
    import json

    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (_PENDING, json.dumps(pending)))


def erase_pending_on_hub(ledger, hub) -> int:
    """Send the erasures of ``hub.tenant_id`` not yet done on the hub (oldest first, each
    removed from the pending list once the hub confirmed it); returns the keys cleared
    there. Raises the hub client's errors (the rest stays pending)."""
    cleared = 0
    while True:
        todo = [p for p in _pending(ledger._conn()) if p["tenant_id"] == hub.tenant_id]
        if not todo:
            return cleared
        p = todo[0]
        cleared += hub.erase_seal_keys(session_id=p["session_id"], agent_id=p["agent_id"], key_ids=p["key_ids"])
        with ledger.write_transaction() as conn:
            _set_pending(conn, [q for q in _pending(conn) if q != p])
        forget_cached(p["key_ids"])


def push_keys(ledger, hub) -> dict:
    """Upload ``ledger``'s keys of ``hub.tenant_id`` that the hub lacks (``on_hub`` flag)
    and send pending hub erasures. Keys the hub refuses (erased there, e.g. from another
    laptop) are destroyed here. Returns ``{"uploaded": n, "refused": n, "hub_erased": n}``.
    Raises the hub client's errors (``HubUnavailable``...): what was not confirmed is
    sent again next time (uploads are idempotent)."""
    erased_on_hub = erase_pending_on_hub(ledger, hub)
    rows = ledger._conn().execute("SELECT key_id, session_id, agent_id, key FROM erasure_keys "
                                  "WHERE tenant_id = ? AND on_hub = 0 ORDER BY rowid", (hub.tenant_id,)).fetchall()
    if not rows:
        return {"uploaded": 0, "refused": 0, "hub_erased": erased_on_hub}
    refused = hub.put_seal_keys([(r[0], r[1], r[2], bytes(r[3])) for r in rows])
    if refused:
        _destroy(ledger, refused)
    with ledger.write_transaction() as conn:
        conn.executemany("UPDATE erasure_keys SET on_hub = 1 WHERE key_id = ?", [(r[0],) for r in rows])
    return {"uploaded": len(rows) - len(refused), "refused": len(refused), "hub_erased": erased_on_hub}


def _destroy(ledger, key_ids) -> None:
    """Destroy ``key_ids`` locally (the hub erased them)."""
    conn = ledger._connect()
    try:
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR IGNORE INTO erased_keys (key_id, erased_ns) VALUES (?, ?)",
                         [(k, time.time_ns()) for k in key_ids])
        conn.executemany("DELETE FROM erasure_keys WHERE key_id = ?", [(k,) for k in key_ids])
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
