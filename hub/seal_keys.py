"""The erasure keys of sealed texts on the hub (crypto-shredding, docs/trust.md "Erasure").

A laptop's syncer uploads each key of ``ledger.erasure`` (one per tenant, session,
agent) after its events, so team readers on other machines (hub replay, ``ledger ingest
--source hub``, the UI over the hub) open the sealed texts. ``ledger erase`` destroys
the keys on the hub too: the key's value is CLEARED (not overwritten with a marker: no
byte of it stays in the store) and an erase record is kept per key and per erased
session or agent, so a later upload of that key — from this laptop or another one that
recorded the same session — is refused and the uploader destroys its copy. Keys, in the
directory ``("context-ledger-seal-keys", tenant_id)``:

==============================================  ==========================================
``keys/(key_id,)``                              the raw 32-byte key
``key_owner/(key_id,)``                         ``(session_id, agent_id)``
``owners/(kind, value, key_id)``                ``b""`` (kind: ``"session"``/``"agent"``)
``erased/(key_id,)``                            ``(erased_ns,)``
``erased_owners/(kind, value)``                 ``(erased_ns,)``
==============================================  ==========================================
"""

from __future__ import annotations

import time
from typing import Iterable, Sequence

import fdb

from hub.connection import transactional
from hub.errors import HubError
from hub.layout import TenantLayout, check_name

ROOT = "context-ledger-seal-keys"
#: Keys per write (each ~100 bytes).
KEYS_PER_WRITE = 1000


def _dir(tr, layout: TenantLayout):
    return fdb.directory.create_or_open(tr, (ROOT, layout.tenant_id))


@transactional
def put(tr, layout: TenantLayout, keys: Sequence[tuple[str, str, str, bytes]]) -> list[str]:
    """Store ``(key_id, session_id, agent_id, key)`` tuples (a key already held is left
    as is). Returns the key ids REFUSED because they, their session or their agent were
    erased on the hub (the uploader must destroy them). Raises ``HubError`` for a key
    that is not 32 bytes."""
    d = _dir(tr, layout)
    futures = []
    for key_id, session, agent, key in keys:
        check_name(key_id, "key id")
        if len(key) != 32:
            raise HubError(f"an erasure key is 32 bytes, not {len(key)} (key {key_id})")
        futures.append((key_id, session, agent, bytes(key), tr[d["erased"].pack((key_id,))],
                        tr[d["erased_owners"].pack(("session", session))],
                        tr[d["erased_owners"].pack(("agent", agent))]))
    refused = []
    now = fdb.tuple.pack((time.time_ns(),))
    for key_id, session, agent, key, gone, s_gone, a_gone in futures:
        if gone.present() or s_gone.present() or a_gone.present():
            refused.append(key_id)
            tr[d["erased"].pack((key_id,))] = now  # readers of its texts say [erased]
            continue
        tr[d["keys"].pack((key_id,))] = key
        tr[d["key_owner"].pack((key_id,))] = fdb.tuple.pack((session, agent))
        tr[d["owners"].pack(("session", session, key_id))] = b""
        tr[d["owners"].pack(("agent", agent, key_id))] = b""
    return refused


@transactional
def get(tr, layout: TenantLayout, key_ids: Iterable[str]) -> dict[str, bytes | None]:
    """``{key_id: key}`` for held keys, ``{key_id: None}`` for erased ones; unknown ids
    are absent."""
    d = _dir(tr, layout)
    futures = [(k, tr[d["keys"].pack((k,))], tr[d["erased"].pack((k,))]) for k in key_ids]
    out: dict[str, bytes | None] = {}
    for k, value, gone in futures:
        if value.present():
            out[k] = bytes(value)
        elif gone.present():
            out[k] = None
    return out


@transactional
def erase(tr, layout: TenantLayout, *, session_id: str | None = None, agent_id: str | None = None,
          key_ids: Sequence[str] = ()) -> int:
    """Destroy the keys of ``session_id`` or ``agent_id`` (and the ``key_ids`` given,
    e.g. those the laptop just destroyed): their values are cleared, erase records kept.
    Returns the number of keys cleared on the hub. Raises ``ValueError`` without a
    selector."""
    if not session_id and not agent_id:
        raise ValueError("name what to erase: a session or an agent")
    d = _dir(tr, layout)
    kind, value = ("session", session_id) if session_id else ("agent", agent_id)
    now = fdb.tuple.pack((time.time_ns(),))
    tr[d["erased_owners"].pack((kind, value))] = now
    ids = {d["owners"].unpack(k)[2] for k, _ in tr.get_range_startswith(d["owners"].pack((kind, value)))}
    ids.update(key_ids)
    cleared = 0
    for key_id in sorted(ids):
        held = tr[d["key_owner"].pack((key_id,))]
        if held.present():
            session, agent = fdb.tuple.unpack(bytes(held))
            del tr[d["keys"].pack((key_id,))]
            del tr[d["key_owner"].pack((key_id,))]
            del tr[d["owners"].pack(("session", session, key_id))]
            del tr[d["owners"].pack(("agent", agent, key_id))]
            cleared += 1
        tr[d["erased"].pack((key_id,))] = now
    return cleared
