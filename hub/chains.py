"""Each laptop's hash chain on the hub (tamper evidence, docs/trust.md).

A laptop (local ledger) registers its Ed25519 public key once, then after its events
the syncer sends its chain's links (seq, event id, project, body digest, chain value,
removed on purpose) and signed checkpoints. The hub CHECKS them on arrival, in one
transaction: the first new link must follow the head the hub keeps for that ledger
(genesis for a new one), every link must follow its predecessor, every checkpoint must
verify with the registered key and match the chain at its seq. A laptop that rewrote
history the hub already holds is refused (``HubChainRefused``) and the hub's copy is
kept. Keys, in the directory ``("context-ledger-chains", tenant_id)``:

==============================================  ==========================================
``keys/(ledger_id,)``                           raw Ed25519 public key (32 bytes)
``head/(ledger_id,)``                           ``(seq, chain)`` of the newest link
``links/(ledger_id, seq)``                      ``(event_id, project_id, digest, chain,
                                                removed, on_hub)``
``checkpoints/(ledger_id, seq)``                ``(head, created_ns, signature)``
==============================================  ==========================================

``on_hub``: the event's id was on the hub with that body digest when the link arrived.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import fdb

from hub.connection import transactional
from hub.errors import HubChainRefused
from hub.layout import TenantLayout, check_name
from hub.protocol import HubLink

ROOT = "context-ledger-chains"
#: Links per write transaction. Each link is ~200 bytes written, but also one read (the
#: event's idempotency key, for ``on_hub``): a transaction's read set is what a
#: ``transaction_too_old`` (1007) or conflict retry redoes, so it is kept small — at 2,000
#: reads per transaction the syncer's fault test (2% of reads failing) never committed.
LINKS_PER_WRITE = 50
_GENESIS_LABEL = b"context-ledger chain v1\0"  # = ledger.chain.GENESIS_LABEL (hub does not import ledger)


def _genesis(ledger_id: str) -> bytes:
    return hashlib.sha256(_GENESIS_LABEL + ledger_id.encode()).digest()


def _link(prev: bytes, digest: bytes) -> bytes:
    return hashlib.sha256(prev + digest).digest()


def _dir(tr, layout: TenantLayout):
    return fdb.directory.create_or_open(tr, (ROOT, layout.tenant_id))


def _verify(public: bytes, signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def checkpoint_message(ledger_id: str, seq: int, head: bytes, created_ns: int) -> bytes:
    """= ``ledger.checkpoints.message`` (the bytes a checkpoint signs)."""
    import struct

    return (b"context-ledger checkpoint v1\0" + ledger_id.encode() + b"\0" + struct.pack(">Q", seq) + head
            + struct.pack(">Q", created_ns))


@transactional
def register_key(tr, layout: TenantLayout, ledger_id: str, public_key: bytes) -> bool:
    """Register a ledger's public key (first registration wins). Returns True when it
    was new. Raises ``HubChainRefused`` when another key is registered for it."""
    check_name(ledger_id, "ledger id")
    if len(public_key) != 32:
        raise HubChainRefused(f"an Ed25519 public key is 32 bytes, not {len(public_key)}")
    d = _dir(tr, layout)
    present = tr[d["keys"].pack((ledger_id,))]
    if present.present():
        if bytes(present) != bytes(public_key):
            raise HubChainRefused(
                f"ledger {ledger_id} is registered on the hub with another public key; a ledger keeps its key "
                "(restore its .bundle-key file, or record into a new ledger)")
        return False
    tr[d["keys"].pack((ledger_id,))] = bytes(public_key)
    return True


@transactional
def append(tr, layout: TenantLayout, ledger_id: str, links: Sequence[HubLink],
           checkpoints: Sequence[dict]) -> tuple[int, bytes]:
    """Check and store links (in seq order, all after the hub's head) and checkpoints
    (dicts as ``ledger.checkpoints.Checkpoint.to_dict``). Links the hub already holds
    (seq <= head) must equal its copy. Returns the new ``(head seq, head chain)``.
    Raises ``HubChainRefused`` (nothing stored)."""
    d = _dir(tr, layout)
    key = tr[d["keys"].pack((ledger_id,))]
    if not key.present():
        raise HubChainRefused(f"ledger {ledger_id} has no public key on the hub: register it first")
    public = bytes(key)
    head_value = tr[d["head"].pack((ledger_id,))]
    head_seq, head = (fdb.tuple.unpack(bytes(head_value)) if head_value.present() else (0, _genesis(ledger_id)))
    known: dict[int, bytes] = {}
    value = head
    last = head_seq
    spaces: dict[str, object] = {}
    checks = {}  # seq -> future of the event's idempotency key (read in parallel)
    for lk in links:
        if lk.seq > head_seq and not lk.removed and lk.project_id:  # "": another tenant's event
            if lk.project_id not in spaces:
                spaces[lk.project_id] = layout.space(tr, lk.project_id)
            space = spaces[lk.project_id]
            if space is not None:
                checks[lk.seq] = tr.snapshot[space.ids.pack((lk.event_id,))]
    for lk in links:
        if lk.seq <= head_seq:  # already held: must be the same link
            held = tr[d["links"].pack((ledger_id, lk.seq))]
            if held.present() and fdb.tuple.unpack(bytes(held))[3] != lk.chain:
                raise HubChainRefused(
                    f"ledger {ledger_id}: link seq {lk.seq} differs from the copy the hub holds: the laptop's "
                    "history was rewritten after it was synced (run `ledger verify --source hub`)")
            continue
        if lk.seq <= last:
            raise HubChainRefused(f"ledger {ledger_id}: links are not in seq order at seq {lk.seq}")
        if _link(value, lk.digest) != lk.chain:
            raise HubChainRefused(
                f"ledger {ledger_id}: link seq {lk.seq} (event {lk.event_id}) does not follow the hub's head "
                f"at seq {last}: the laptop's chain was modified, or events before it removed or reordered "
                "(run `ledger verify` on the laptop)")
        held_id = checks.get(lk.seq)
        on_hub = held_id is not None and held_id.present() and fdb.tuple.unpack(bytes(held_id))[1] == lk.digest
        tr[d["links"].pack((ledger_id, lk.seq))] = fdb.tuple.pack(
            (lk.event_id, lk.project_id, lk.digest, lk.chain, lk.removed, on_hub))
        value, last = lk.chain, lk.seq
        known[lk.seq] = lk.chain
    for cp in checkpoints:
        seq, cp_head = int(cp["seq"]), bytes.fromhex(cp["head"])
        signature, created = bytes.fromhex(cp["signature"]), int(cp["created_ns"])
        if cp.get("ledger_id") != ledger_id or not _verify(public, signature,
                                                           checkpoint_message(ledger_id, seq, cp_head, created)):
            raise HubChainRefused(f"ledger {ledger_id}: checkpoint at seq {seq} does not verify with the "
                                  "registered key (forged or altered)")
        at = known.get(seq)
        if at is None:
            held = tr[d["links"].pack((ledger_id, seq))]
            at = fdb.tuple.unpack(bytes(held))[3] if held.present() else None
        if at != cp_head:
            raise HubChainRefused(f"ledger {ledger_id}: checkpoint at seq {seq} does not match the chain the "
                                  "hub holds at that seq")
        tr[d["checkpoints"].pack((ledger_id, seq))] = fdb.tuple.pack((cp_head, created, signature))
    if last != head_seq:
        tr[d["head"].pack((ledger_id,))] = fdb.tuple.pack((last, value))
    return last, value


@transactional
def state(tr, layout: TenantLayout, ledger_id: str, after_seq: int = 0, limit: int = 10_000) -> dict:
    """What the hub holds of a ledger's chain: ``{"public_key": bytes | None, "head":
    (seq, chain) | None, "links": [HubLink] (after ``after_seq``, at most ``limit``),
    "checkpoints": [dict]}`` (checkpoints only with the first page)."""
    d = _dir(tr, layout)
    key = tr[d["keys"].pack((ledger_id,))]
    head = tr[d["head"].pack((ledger_id,))]
    links = []
    begin = d["links"].pack((ledger_id, after_seq + 1))
    end = d["links"].range((ledger_id,)).stop
    for k, v in tr.get_range(begin, end, limit=limit):
        seq = d["links"].unpack(k)[1]
        e, p, dg, c, r, o = fdb.tuple.unpack(v)
        links.append(HubLink(seq, e, p, dg, c, r, o))
    cps = []
    if after_seq == 0:
        for k, v in tr.get_range_startswith(d["checkpoints"].pack((ledger_id,))):
            seq = d["checkpoints"].unpack(k)[1]
            h, created, sig = fdb.tuple.unpack(v)
            cps.append({"ledger_id": ledger_id, "seq": seq, "head": h.hex(), "created_ns": created,
                        "public_key": bytes(key).hex() if key.present() else "", "signature": sig.hex()})
    return {"public_key": bytes(key) if key.present() else None,
            "head": tuple(fdb.tuple.unpack(bytes(head))) if head.present() else None,
            "links": links, "checkpoints": cps}


@transactional
def ledgers(tr, layout: TenantLayout) -> list[str]:
    """Ledger ids with a registered key on the hub (this tenant)."""
    d = _dir(tr, layout)
    return [d["keys"].unpack(k)[0] for k, _ in tr.get_range_startswith(d["keys"].key())]


@transactional
def bodies(tr, layout: TenantLayout, project_id: str, event_ids: Sequence[str]) -> dict[str, tuple[bytes, bytes]]:
    """``{event_id: (12-byte position, digest recorded with its id)}`` for ids on the hub."""
    space = layout.space(tr, project_id)
    if space is None:
        return {}
    futures = [(i, tr.snapshot[space.ids.pack((i,))]) for i in event_ids]
    out = {}
    for i, f in futures:
        if f.present():
            t = fdb.tuple.unpack(bytes(f))
            out[i] = (t[0].to_bytes(), t[1] if len(t) > 1 else b"")
    return out
