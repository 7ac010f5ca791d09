"""Sending a ledger's hash chain to the hub (``hub.chains``), after its events.

Each sync pass: register the ledger's public key (``ledger.keys``) once, read the head
the hub holds, send every link after it — up to the first event still waiting to be
sent (so the hub knows, for every link it holds, whether the event should be there) —
and the signed checkpoints in that range. When the whole outbox is sent and the newest
link is not yet covered by a checkpoint, one is signed first (the hub then holds a
signed head). The hub checks everything on arrival and refuses a chain that does not
follow what it holds (``HubChainRefused``).
"""

from __future__ import annotations

import logging

from hub.protocol import HubLink
from ledger import Ledger, chain, checkpoints, keys

log = logging.getLogger(__name__)

#: Links read from the ledger per round.
PAGE = 2000


def push_chain(ledger: Ledger, hub) -> dict:
    """Send what the hub lacks of ``ledger``'s chain. Returns ``{"head_seq": n,
    "links": sent, "checkpoints": sent}``. Raises ``HubChainRefused`` (the hub's copy
    differs: run ``ledger verify --source hub``), ``HubUnavailable``/``HubError``."""
    public = keys.public_raw(keys.signing_key(ledger.path))
    hub.register_chain_key(ledger.ledger_id, public)
    head_seq = hub.append_chain(ledger.ledger_id, [], [])[0]  # nothing sent: the head the hub holds
    conn = ledger._conn()
    pending = conn.execute("SELECT min(seq) FROM events WHERE hub_versionstamp IS NULL AND sync_error IS NULL "
                           "AND tenant_id = ?", (hub.tenant_id,)).fetchone()[0]
    if pending is None:  # everything sent: make sure the newest link is signed
        last_cp = conn.execute("SELECT max(seq) FROM chain_checkpoints").fetchone()[0] or 0
        newest = chain.head(conn, ledger.ledger_id)[0]
        if newest > last_cp:
            ledger.checkpoint()
    limit_seq = (pending - 1) if pending is not None else 1 << 62
    sent = sent_cps = 0
    after = head_seq
    while True:
        rows = [r for r in chain.links_after(conn, after, PAGE) if r[0] <= limit_seq]
        if not rows:
            break
        links = [HubLink(seq, event_id, project if tenant == hub.tenant_id else "", bytes(d), bytes(c), bool(removed))
                 for seq, event_id, tenant, project, d, c, removed, _synced, _refused in rows]
        last = links[-1].seq
        cps = [cp.to_dict() for cp in checkpoints.stored(conn, ledger.ledger_id) if after < cp.seq <= last]
        hub.append_chain(ledger.ledger_id, links, cps)
        sent += len(links)
        sent_cps += len(cps)
        after = last
        if len(rows) < PAGE:
            break
    return {"head_seq": after, "links": sent, "checkpoints": sent_cps}
