"""The events log of a project on the hub: exactly-once writes (idempotency keys), reads
in hub order bounded by bytes and time, and the indexes (ids, time, path, laptops).

Keys in the project directory (``hub.layout``):

- ``log/(vs, 0)``: the serialized event, when at most ``INLINE_BODY_BYTES``;
  ``log/(vs, "blob")``: ``(sha256_hex, size)`` of a larger body, stored as a blob
  (``hub.blobs``, several transactions, before the event's transaction), so that every
  transaction stays well under 1 MB whatever the event's size;
- ``ids/(event_id,)``: ``(vs, body_sha256)``: the idempotency key and the content it
  stands for: the same id with other bytes is a conflict, refused loudly (``HubConflict``);
- ``time/(time_ns, vs)``, ``path/(path, vs)``: empty, indexes;
- ``laptops/(ledger_id,)``: ``(last_seq, wall_ns, vs)``.

Functions take a ``hub.layout.TenantLayout``; ``hub.hub.Hub`` exposes them as methods.
FoundationDB errors are converted by the caller (``hub.connection.converted``).
"""

from __future__ import annotations

import hashlib
import struct
import time
from typing import Iterable, Sequence

import fdb

from hub import blobs
from hub.connection import transactional
from hub.content import EncodedBlob
from hub.errors import HubConflict, TenantMismatch
from hub.layout import TenantLayout, key_range
from hub.protocol import CHUNK_BYTES, HubRecord, WriteOutcome, event_paths, position_of
from hub.scan import PAGE_BYTES, PAGE_SECONDS, scan

#: Largest body kept inside the log entry; larger ones are stored as blobs.
INLINE_BODY_BYTES = CHUNK_BYTES
_REF = "blob"


# --------------------------------------------------------------------------- writing
def write_events(layout: TenantLayout, events: Sequence, origin: str = "", last_seq: int = 0) -> list[WriteOutcome]:
    """Write events (objects with ``event_id``, ``time_ns``, ``tenant_id``,
    ``project_id``, ``body`` and ``event``, like ``ledger.StoredEvent``) exactly once.

    Bodies over ``INLINE_BODY_BYTES`` are stored first as blobs (idempotent by digest);
    then ONE transaction checks each event's idempotency key ``ids/<event_id>`` and
    writes the absent ones (so a retry after commit_unknown_result (1021) never
    duplicates). ``origin`` (the local ledger id) and ``last_seq`` update the laptop's
    progress key. Returns one ``WriteOutcome`` per event, in order.

    Raises ``TenantMismatch`` for an event of another tenant and ``HubConflict`` (listing
    the ids) when an id is on the hub with different content; nothing is written then.
    """
    for e in events:
        if e.tenant_id != layout.tenant_id:
            raise TenantMismatch(
                f"event {e.event_id} belongs to tenant {e.tenant_id!r}; this hub connection "
                f"is for tenant {layout.tenant_id!r} only"
            )
    if not events:
        return []
    digests = [hashlib.sha256(bytes(e.body)).digest() for e in events]
    for e, d in zip(events, digests):
        if len(e.body) > INLINE_BODY_BYTES:
            blobs.store_encoded(layout, e.project_id, [EncodedBlob.of(d.hex(), bytes(e.body))])
    existing, written, vs_future = _write_events_tr(layout.db, layout, events, digests, origin, last_seq)
    versionstamp = bytes(vs_future.wait()) if vs_future is not None else None
    return [WriteOutcome(e.event_id, existing[e.event_id], False) if e.event_id in existing
            else WriteOutcome(e.event_id, position_of(versionstamp, written[e.event_id]), True)
            for e in events]


@transactional
def _write_events_tr(tr, layout, events, digests, origin, last_seq):
    spaces = {p: layout.space(tr, p, create=True) for p in {e.project_id for e in events}}
    checks = [tr[spaces[e.project_id].ids.pack((e.event_id,))] for e in events]
    existing: dict[str, bytes] = {}
    written: dict[str, int] = {}
    conflicts: list[str] = []
    touched: set[str] = set()
    for e, digest, present in zip(events, digests, checks):
        if present.present():
            stored = fdb.tuple.unpack(bytes(present))
            if len(stored) > 1 and stored[1] != digest:
                conflicts.append(e.event_id)
            existing[e.event_id] = stored[0].to_bytes()
            continue
        if e.event_id in written:  # the same id twice in one batch: the first one counts
            continue
        sp = spaces[e.project_id]
        uv = len(written)
        vs = fdb.tuple.Versionstamp(user_version=uv)
        body = bytes(e.body)
        if len(body) > INLINE_BODY_BYTES:
            tr.set_versionstamped_key(sp.log.pack_with_versionstamp((vs, _REF)),
                                      fdb.tuple.pack((digest.hex(), len(body))))
        else:
            tr.set_versionstamped_key(sp.log.pack_with_versionstamp((vs, 0)), body)
        tr.set_versionstamped_value(sp.ids.pack((e.event_id,)), fdb.tuple.pack_with_versionstamp((vs, digest)))
        tr.set_versionstamped_key(sp.time.pack_with_versionstamp((e.time_ns, vs)), b"")
        for p in event_paths(e.event):
            tr.set_versionstamped_key(sp.path.pack_with_versionstamp((p, vs)), b"")
        written[e.event_id] = uv
        touched.add(e.project_id)
    if conflicts:
        raise HubConflict(
            f"{len(conflicts)} event id(s) are already on the hub with different content: "
            f"{', '.join(conflicts[:10])}; nothing of this batch was written (the same id must "
            "always carry the same bytes: see `ledger sync status`)", conflicts)
    vs_future = None
    if written:
        if origin:
            now = time.time_ns()
            for p in touched:
                tr.set_versionstamped_value(
                    spaces[p].laptops.pack((origin,)),
                    fdb.tuple.pack_with_versionstamp((last_seq, now, fdb.tuple.Versionstamp())),
                )
        vs_future = tr.get_versionstamp()
    return existing, written, vs_future


# --------------------------------------------------------------------------- reading
@transactional
def _space_tr(tr, layout, project_id):
    return layout.space(tr, project_id)


def read_log(layout: TenantLayout, project_id: str, after: bytes | None, limit: int, until: bytes | None, *,
             max_bytes: int = PAGE_BYTES, max_seconds: float = PAGE_SECONDS) -> list[HubRecord]:
    """See ``hub.protocol.HubClient.read_log``. A page ends after ``limit`` events (then
    finishing their commit), or once ``max_bytes`` of bodies or ``max_seconds`` of real
    time are reached (then possibly inside a commit: resume after ``records[-1].position``).
    Reads are snapshot reads over as many transactions as the link needs (``hub.scan``)."""
    space = _space_tr(layout.db, layout, project_id)
    if space is None:
        return []
    begin = space.log_after(after)
    end = space.log_after(until) if until is not None else space.log.range().stop
    records: list[HubRecord] = []
    refs: dict[int, tuple[str, int]] = {}
    size = 0
    prefix_len = len(space.log.key())
    for key, value in scan(layout.db, begin, end, max_bytes=None, max_seconds=max_seconds):
        pos = space.split_log_key(key)
        if len(records) >= limit and pos[:10] != records[-1].versionstamp:
            break
        if key[prefix_len + 13] == 0x02:  # a string after the position: a body stored as a blob
            digest, body_size = fdb.tuple.unpack(value)
            refs[len(records)] = (digest, body_size)
            size += body_size
            value = b""
        else:
            size += len(value)
        records.append(HubRecord(pos[:10], struct.unpack(">H", pos[10:])[0], value))
        if size >= max_bytes:
            break
    for i, (digest, _) in refs.items():
        r = records[i]
        records[i] = HubRecord(r.versionstamp, r.user_version, blobs.read_blob(layout, project_id, digest))
    return records


def read_version(layout: TenantLayout) -> int:
    """The cluster's current read version (commit versions <= it are visible)."""
    tr = layout.db.create_transaction()
    return tr.get_read_version().wait()


@transactional
def positions(tr, layout, project_id: str, event_ids: Iterable[str]) -> dict[str, bytes]:
    """``{event_id: 12-byte position}`` for the ids present on the hub."""
    space = layout.space(tr, project_id)
    if space is None:
        return {}
    futures = [(i, tr.snapshot[space.ids.pack((i,))]) for i in event_ids]
    return {i: fdb.tuple.unpack(bytes(f))[0].to_bytes() for i, f in futures if f.present()}


def get(layout: TenantLayout, project_id: str, position: bytes) -> HubRecord | None:
    """The event at a 12-byte position, or None."""
    position = bytes(position)
    space = _space_tr(layout.db, layout, project_id)
    if space is None:
        return None
    vs = fdb.tuple.Versionstamp.from_bytes(position)
    for key, value in scan(layout.db, *key_range(space.log, (vs,)), max_bytes=None, max_seconds=None):
        if key[len(space.log.key()) + 13] == 0x02:
            value = blobs.read_blob(layout, project_id, fdb.tuple.unpack(value)[0])
        return HubRecord(position[:10], vs.user_version, value)
    return None


def path_history(layout: TenantLayout, project_id: str, path: str, after: bytes | None = None,
                 limit: int | None = None) -> list[bytes]:
    """12-byte positions of the events that changed ``path`` (or renamed from it), in hub
    order, after position ``after`` (exclusive), at most ``limit``: page with the last one.
    Read over as many transactions as needed (``hub.scan``)."""
    space = _space_tr(layout.db, layout, project_id)
    if space is None:
        return []
    begin, end = key_range(space.path, (path,))
    if after is not None:
        begin = space.path.pack((path, fdb.tuple.Versionstamp.from_bytes(bytes(after)))) + b"\x00"
    return [space.path.unpack(key)[1].to_bytes()
            for key, _ in scan(layout.db, begin, end, limit=limit, max_bytes=None, max_seconds=None)]


def time_range(layout: TenantLayout, project_id: str, since_ns: int | None, until_ns: int | None,
               limit: int | None, reverse: bool = False) -> list[tuple[int, bytes]]:
    """``[(time_ns, position)]`` of events with ``since_ns <= time_ns <= until_ns``
    (inclusive, either side optional), in event-time order (newest first if ``reverse``),
    at most ``limit``."""
    space = _space_tr(layout.db, layout, project_id)
    if space is None:
        return []
    begin = space.time.pack((since_ns,)) if since_ns is not None else space.time.range().start
    end = space.time.pack((until_ns + 1,)) if until_ns is not None else space.time.range().stop
    out = []
    for key, _ in scan(layout.db, begin, end, limit=limit, max_bytes=None, max_seconds=None, reverse=reverse):
        t, vs = space.time.unpack(key)
        out.append((t, vs.to_bytes()))
    return out


def laptops(layout: TenantLayout, project_id: str) -> dict[str, tuple[int, int, bytes]]:
    """``{ledger_id: (last_seq, wall_ns, 10-byte versionstamp)}``: each laptop's last sync."""
    space = _space_tr(layout.db, layout, project_id)
    if space is None:
        return {}
    out = {}
    for key, value in scan(layout.db, *key_range(space.laptops, ()), max_bytes=None, max_seconds=None):
        (origin,) = space.laptops.unpack(key)
        seq, wall, vs = fdb.tuple.unpack(value)
        out[origin] = (seq, wall, vs.to_bytes()[:10])
    return out
