"""Erasure by crypto-shredding (docs/trust.md, "Erasure").

When sealing is on for a ledger (``Ledger.set_sealing(True)``, ``ledger erase --seal on``;
kept in the ledger file, so every producer opening it — SDK, hooks, OTLP, imports —
seals), the write pipeline's ``SealText`` policy encrypts the free text of each event
with a key of its (tenant, session, agent): decision rationale, trigger and rejected
alternatives, message content, signal detail, the diff text of a file change. Each text
becomes ``sealed:v1:<key id>:<base64 nonce+ciphertext>`` (AES-256-GCM, the event id as
associated data; the nonce is an HMAC of the key, event id, field and text, so the same
event always seals to the same bytes and appends stay idempotent). Keys live in the
ledger file (``erasure_keys``) and, once the syncer uploaded them (``ledger.erasure_hub.push_keys``, before
the events), on the hub (``hub.seal_keys``): the hub's event log, bundles and proofs
hold ciphertext only; team readers on other machines fetch the keys from the hub.

Readers (``StoredEvent.event``: log, show, UI, replay, ingest; ``HubRecord.event``)
unseal transparently while the key exists, looking in the ledgers open in the process,
then in the hubs opened in it (``register_hub``; hub answers cached ``HUB_KEY_TTL_S``);
``erase(session=..., agent=..., hub=...)`` destroys the keys locally (SQLite
``secure_delete`` zeroes the freed bytes, the WAL is checkpointed and truncated) and on
the hub (value cleared, erase record kept so no later upload brings it back; an
unreachable hub is retried by the next sync), after which every copy of those texts —
local, hub, bundles — reads ``[erased]``. The chain
covers the stored (sealed) bodies, so it still verifies. File content is sealed too when
asked (``ledger.sealed_content``). Syncing keys and hub erasures: ``ledger.erasure_hub``.
What erasure does not cover is documented in docs/trust.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sqlite3
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Callable, Mapping

from schemas import SwarmEvent

PREFIX = "sealed:v1:"
#: What a sealed text reads once its key was destroyed.
ERASED = "[erased]"
#: What a sealed text reads where its key is not available (not in an open ledger, not
#: on a hub this process opened: e.g. not uploaded yet).
SEALED = "[sealed]"

# --------------------------------------------------------------------------- texts
#: (payload, field) pairs whose text is sealed; list fields are sealed item by item.
FIELDS = (("decision", "rationale"), ("decision", "input_trigger"), ("decision", "rejected_alternatives"),
          ("message", "content"), ("signal", "detail"), ("state_change", "diff_patch"))


def _map_texts(event: SwarmEvent, fn: Callable[[str, str], str]) -> SwarmEvent:
    """The event with ``fn(field_name, text)`` applied to every sealable text."""
    updates: dict[str, object] = {}
    for payload, name in FIELDS:
        sub = getattr(event, payload)
        if sub is None:
            continue
        value = getattr(sub, name)
        if isinstance(value, str):
            new = fn(f"{payload}.{name}", value) if value else value
        else:
            new = [fn(f"{payload}.{name}[{i}]", v) if v else v for i, v in enumerate(value)]
        if new != value:
            changed = updates.get(payload, sub)
            updates[payload] = changed.model_copy(update={name: new})
    return event.model_copy(update=updates) if updates else event


def _seal(key: bytes, key_id: str, event_id: str, where: str, text: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data = text.encode()
    nonce = hmac.new(key, b"\0".join([event_id.encode(), where.encode(), data]), hashlib.sha256).digest()[:12]
    sealed = AESGCM(key).encrypt(nonce, data, event_id.encode())
    return f"{PREFIX}{key_id}:{base64.b64encode(nonce + sealed).decode()}"


def is_sealed(event: SwarmEvent) -> bool:
    """True when some text of the event is sealed."""
    found = []
    _map_texts(event, lambda _w, t: found.append(1) or t if t.startswith(PREFIX) else t)
    return bool(found)


def unseal(event: SwarmEvent, lookup: Callable[[str], bytes | None],
           erased: Callable[[str], bool] = lambda _k: True) -> SwarmEvent:
    """The event with its sealed texts decrypted with ``lookup(key_id) -> key | None``;
    a text whose key is gone reads ``[erased]`` when ``erased(key_id)`` (the key was
    destroyed), else ``[sealed]`` (the key is elsewhere)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    def open_text(_where: str, text: str) -> str:
        if not text.startswith(PREFIX):
            return text
        try:
            key_id, payload = text[len(PREFIX):].split(":", 1)
            raw = base64.b64decode(payload)
        except ValueError:
            return text
        key = lookup(key_id)
        if key is None:
            return ERASED if erased(key_id) else SEALED
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], event.event_id.encode()).decode()
        except (InvalidTag, ValueError):
            return ERASED
    return _map_texts(event, open_text)


# --------------------------------------------------------------------------- keys
_KEY_SQL = "SELECT key FROM erasure_keys WHERE key_id = ?"
_registry: "weakref.WeakSet" = weakref.WeakSet()
_registry_lock = threading.Lock()


_hubs: "weakref.WeakSet" = weakref.WeakSet()
#: Seconds a hub's answer about a key (the key, erased, or unknown) is reused: an erasure
#: made elsewhere reaches a long-running reader (the UI) within this time.
HUB_KEY_TTL_S = 60.0
_hub_cache: dict[str, tuple[float, bytes | None, bool]] = {}  # key_id -> (when, key, erased)


def register(ledger) -> None:
    """Let readers of events from ``ledger`` (a ``Ledger``) find its keys."""
    with _registry_lock:
        _registry.add(ledger)


def register_hub(hub) -> None:
    """Let readers find keys on ``hub`` (anything with ``seal_keys(ids) -> {id: key |
    None}``: ``hub.Hub``, ``hub.http_client.HttpHub``); done by their constructors."""
    with _registry_lock:
        _hubs.add(hub)


def forget_cached(key_ids=None) -> None:
    """Drop the cached hub answers (for ``key_ids``, or all)."""
    with _registry_lock:
        if key_ids is None:
            _hub_cache.clear()
        for k in key_ids or ():
            _hub_cache.pop(k, None)


def _from_hubs(key_id: str) -> tuple[bytes | None, bool]:
    """``(key, erased)`` as the registered hubs say (cached); unreachable hubs are skipped."""
    now = time.monotonic()
    with _registry_lock:
        cached = _hub_cache.get(key_id)
        hubs = list(_hubs)
    if cached is not None and now - cached[0] < HUB_KEY_TTL_S:
        return cached[1], cached[2]
    key, erased = None, False
    for h in hubs:
        try:
            found = h.seal_keys([key_id])
        except Exception:  # noqa: BLE001 - a reader without the hub says [sealed], never fails
            continue
        if key_id in found:
            key, erased = found[key_id], found[key_id] is None
            break
    with _registry_lock:
        _hub_cache[key_id] = (now, key, erased)
    return key, erased


def lookup_key(key_id: str) -> bytes | None:
    """The key ``key_id`` from any open ledger of this process, else from a hub opened
    in it, or None (erased, or unknown here)."""
    with _registry_lock:
        ledgers = list(_registry)
    for lg in ledgers:
        try:
            row = lg._conn().execute(_KEY_SQL, (key_id,)).fetchone()
        except (sqlite3.Error, AttributeError):
            continue
        if row is not None and row[0] is not None:
            return bytes(row[0])
    return _from_hubs(key_id)[0]


def key_erased(key_id: str) -> bool:
    """True when an open ledger of this process, or a hub opened in it, destroyed the
    key ``key_id``."""
    with _registry_lock:
        ledgers = list(_registry)
    for lg in ledgers:
        try:
            if lg._conn().execute("SELECT 1 FROM erased_keys WHERE key_id = ?", (key_id,)).fetchone():
                return True
        except (sqlite3.Error, AttributeError):
            continue
    return _from_hubs(key_id)[1]


def unseal_stored(event: SwarmEvent) -> SwarmEvent:
    """``unseal`` with the keys of the open ledgers (what ``StoredEvent.event`` and
    ``hub.protocol.HubRecord.event`` do): ``[erased]`` for a destroyed key, ``[sealed]``
    for one this process does not have."""
    return unseal(event, lookup_key, key_erased) if is_sealed(event) else event


class SealText:
    """The write policy that seals texts (see the module docstring); ``ledger`` is the
    ``Ledger`` whose ``erasure_keys`` table holds the keys (created on first use, one
    per tenant/session/agent; after an erasure a new key is made)."""

    name = "seal-text"

    def __init__(self, ledger, *, content: bool = False) -> None:
        #: Seal file content too (``ledger.sealed_content``).
        self.content = content
        self._ledger = weakref.proxy(ledger)
        self._cache: dict[tuple[str, str, str], tuple[str, bytes]] = {}
        self._lock = threading.Lock()

    def _key(self, tenant: str, session: str, agent: str) -> tuple[str, bytes]:
        ident = (tenant, session, agent)
        with self._lock:
            found = self._cache.get(ident)
        if found is not None:
            conn = self._ledger._conn()
            if conn.execute("SELECT 1 FROM erasure_keys WHERE key_id = ?", (found[0],)).fetchone():
                return found
        sql = "SELECT key_id, key FROM erasure_keys WHERE tenant_id = ? AND session_id = ? AND agent_id = ?"
        row = self._ledger._conn().execute(sql, ident).fetchone()
        if row is None:
            with self._ledger.write_transaction() as conn:
                row = conn.execute(sql, ident).fetchone()
                if row is None:
                    row = (str(uuid.uuid4()), os.urandom(32))
                    conn.execute("INSERT INTO erasure_keys (key_id, tenant_id, session_id, agent_id, key, created_ns) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", (row[0], *ident, row[1], time.time_ns()))
        found = (row[0], bytes(row[1]))
        with self._lock:
            self._cache[ident] = found
        return found

    def apply(self, event: SwarmEvent, blobs: Mapping[str, bytes]):
        """Seal the event's texts (unchanged when it has none) and, with ``content``,
        its file content (``ledger.sealed_content``)."""
        if not any(getattr(event, p) is not None for p in ("decision", "message", "signal", "state_change")):
            return event, blobs
        if self.content:
            event, blobs = self._seal_content(event, blobs)
        if is_sealed(event):
            return event, blobs
        key_id, key = self._key(event.tenant_id, event.session_id, event.agent_id)
        return _map_texts(event, lambda where, text: _seal(key, key_id, event.event_id, where, text)), blobs

    def _seal_content(self, event: SwarmEvent, blobs: Mapping[str, bytes]):
        from ledger.changes import content_hash
        from ledger.sealed_content import seal
        from schemas import FileMode

        sc = event.state_change
        digest = content_hash(event)
        if (sc is None or digest is None or sc.content_withheld or sc.file_mode == FileMode.SYMLINK
                or digest not in blobs):
            return event, blobs  # nothing new to store (content given earlier stays as it is)
        key_id, key = self._key(event.tenant_id, event.session_id, event.agent_id)
        withheld, blob = seal(key, key_id, digest, blobs[digest])
        out = {k: v for k, v in blobs.items() if k != digest}
        out[withheld.rpartition(":")[2]] = blob
        return event.model_copy(update={"state_change": sc.model_copy(update={"content_withheld": withheld})}), out


@dataclass
class ErasureReport:
    """What ``erase`` destroyed: ``keys`` (count), ``events`` whose texts are now
    unreadable (they hold sealed texts), ``unsealed`` events of the selector recorded
    while sealing was off (their texts, if any, stay readable: erasure cannot reach
    them), ``analytics_rows`` deleted (when asked), and the selector."""

    tenant_id: str
    session_id: str | None
    agent_id: str | None
    keys: int = 0
    events: int = 0
    unsealed: int = 0
    analytics_rows: int | None = None
    #: Keys cleared on the hub (None: no hub given); ``hub_error``: why the hub part
    #: failed (it is retried by the next sync).
    hub_keys: int | None = None
    hub_error: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def erase(ledger, *, tenant_id: str, session_id: str | None = None, agent_id: str | None = None,
          hub=None) -> ErasureReport:
    """Destroy the keys of ``session_id`` or ``agent_id`` (of ``tenant_id``) in
    ``ledger`` and, when ``hub`` (a hub client of ``tenant_id``) is given, on the hub:
    their texts become unrecoverable everywhere. The row deletion runs with
    ``secure_delete`` (freed bytes zeroed) and the WAL is checkpointed and truncated
    afterwards, so the key bytes are in neither file. The erasure is recorded in
    ``erasures``; the hub part, when the hub fails (``report.hub_error``), stays pending
    and ``ledger.erasure_hub.push_keys`` (every sync) retries it. Raises ``ValueError`` when neither
    selector is given."""
    if not session_id and not agent_id:
        raise ValueError("name what to erase: a session or an agent")
    where, params = ("session_id = ?", session_id) if session_id else ("agent_id = ?", agent_id)
    report = ErasureReport(tenant_id, session_id, agent_id)
    conn = ledger._connect()
    try:
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("BEGIN IMMEDIATE")
        try:
            ids = [r[0] for r in conn.execute(
                f"SELECT key_id FROM erasure_keys WHERE tenant_id = ? AND {where}", (tenant_id, params))]
            report.keys = len(ids)
            total, report.events = conn.execute(
                f"SELECT count(*), count(*) FILTER (WHERE instr(body, ?) > 0) FROM events "
                f"WHERE tenant_id = ? AND {where}", (PREFIX.encode(), tenant_id, params)).fetchone()
            report.unsealed = total - report.events
            conn.executemany("INSERT OR IGNORE INTO erased_keys (key_id, erased_ns) VALUES (?, ?)",
                             [(k, time.time_ns()) for k in ids])
            conn.execute(f"DELETE FROM erasure_keys WHERE tenant_id = ? AND {where}", (tenant_id, params))
            conn.execute("INSERT INTO erasures (tenant_id, session_id, agent_id, keys, erased_ns) VALUES (?, ?, ?, ?, ?)",
                         (tenant_id, session_id, agent_id, report.keys, time.time_ns()))
            from ledger.erasure_hub import add_pending

            add_pending(conn, {"tenant_id": tenant_id, "session_id": session_id, "agent_id": agent_id,
                               "key_ids": ids})
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        for _ in range(50):  # other connections may hold a read snapshot for a moment
            busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                break
            time.sleep(0.05)
    finally:
        conn.close()
    forget_cached(ids)
    if hub is not None:
        try:
            from ledger.erasure_hub import erase_pending_on_hub

            report.hub_keys = erase_pending_on_hub(ledger, hub)
        except Exception as exc:  # noqa: BLE001 - the local erasure stands; the hub part is retried
            report.hub_error = f"{type(exc).__name__}: {exc}"
    return report
