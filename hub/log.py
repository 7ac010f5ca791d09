"""The events log of a project on the hub: exactly-once writes (idempotency keys), reads
in hub order, and the indexes (ids, time, path, laptop progress).

Functions take a ``hub.layout.TenantLayout`` (the tenant's directories on one database);
``hub.hub.Hub`` exposes them as methods. FoundationDB errors are converted by the caller
(``hub.connection.converted``).
"""

from __future__ import annotations

import struct
import time
from typing import Iterable, Iterator, Sequence

import fdb

from hub.connection import transactional
from hub.errors import TenantMismatch
from hub.layout import TenantLayout, key_range
from hub.protocol import CHUNK_BYTES, HubRecord, WriteOutcome, commit_version, event_paths, position_of


# --------------------------------------------------------------------------- writing
def write_events(layout: TenantLayout, events: Sequence, origin: str = "", last_seq: int = 0) -> list[WriteOutcome]:
    """Write events (objects with ``event_id``, ``time_ns``, ``tenant_id``,
    ``project_id``, ``body`` and ``event``, like ``ledger.StoredEvent``) in ONE
    transaction, skipping those whose idempotency key ``ids/<event_id>`` is already
    present (checked inside the transaction, so a retry after commit_unknown_result
    (1021) never duplicates). Returns one ``WriteOutcome`` per event, in order.

    ``origin`` (the local ledger id) and ``last_seq`` update the per-laptop progress key.
    Raises ``TenantMismatch`` for an event of another tenant (nothing written).
    """
    for e in events:
        if e.tenant_id != layout.tenant_id:
            raise TenantMismatch(
                f"event {e.event_id} belongs to tenant {e.tenant_id!r}; this hub connection "
                f"is for tenant {layout.tenant_id!r} only"
            )
    if not events:
        return []
    created: dict = {}
    existing, written, vs_future = _write_events_tr(layout.db, layout, events, origin, last_seq, created)
    layout.committed(created)
    versionstamp = bytes(vs_future.wait()) if vs_future is not None else None
    out = []
    for e in events:
        if e.event_id in existing:
            out.append(WriteOutcome(e.event_id, existing[e.event_id], False))
        else:
            out.append(WriteOutcome(e.event_id, position_of(versionstamp, written[e.event_id]), True))
    return out


@transactional
def _write_events_tr(tr, layout, events, origin, last_seq, created):
    created.clear()
    spaces = {p: layout.space(tr, p, created) for p in {e.project_id for e in events}}
    checks = [tr[spaces[e.project_id].ids.pack((e.event_id,))] for e in events]
    existing: dict[str, bytes] = {}
    written: dict[str, int] = {}
    touched: set[str] = set()
    for e, present in zip(events, checks):
        if present.present():
            existing[e.event_id] = fdb.tuple.unpack(bytes(present))[0].to_bytes()
            continue
        sp = spaces[e.project_id]
        uv = len(written)
        vs = fdb.tuple.Versionstamp(user_version=uv)
        body = bytes(e.body)
        for i in range(0, max(1, len(body)), CHUNK_BYTES):
            tr.set_versionstamped_key(sp.log.pack_with_versionstamp((vs, i // CHUNK_BYTES)),
                                      body[i : i + CHUNK_BYTES])
        tr.set_versionstamped_value(sp.ids.pack((e.event_id,)), fdb.tuple.pack_with_versionstamp((vs,)))
        tr.set_versionstamped_key(sp.time.pack_with_versionstamp((e.time_ns, vs)), b"")
        for p in event_paths(e.event):
            tr.set_versionstamped_key(sp.path.pack_with_versionstamp((p, vs)), b"")
        written[e.event_id] = uv
        touched.add(e.project_id)
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
def read_log(layout: TenantLayout, project_id: str, after: bytes | None, limit: int,
             until: bytes | None) -> list[HubRecord]:
    """See ``hub.protocol.HubClient.read_log``. One read transaction (5-second limit)."""
    return _read_log_tr(layout.db, layout, project_id, after, limit, until)


@transactional
def _read_log_tr(tr, layout, project_id, after, limit, until) -> list[HubRecord]:
    space = layout.space(tr, project_id)
    if space is None:
        return []
    begin = space.log_after(after)
    end = space.log.range().stop
    stop_at = None
    if until is not None:
        until = bytes(until)
        stop_at = until + b"\xff\xff" if len(until) == 10 else until
    records: list[HubRecord] = []
    cur_pos: bytes | None = None
    chunks: list[bytes] = []
    for kv in tr.get_range(begin, end):
        pos = space.split_log_key(kv.key)
        if pos != cur_pos:
            if cur_pos is not None:
                records.append(HubRecord(cur_pos[:10], struct.unpack(">H", cur_pos[10:])[0], b"".join(chunks)))
                if len(records) >= limit and pos[:10] != cur_pos[:10]:
                    cur_pos = None
                    break
            if stop_at is not None and pos > stop_at:
                cur_pos = None
                break
            cur_pos, chunks = pos, []
        chunks.append(bytes(kv.value))
    if cur_pos is not None:
        records.append(HubRecord(cur_pos[:10], struct.unpack(">H", cur_pos[10:])[0], b"".join(chunks)))
    return records


def iter_log(hub, project_id: str, after: bytes | None, until: bytes | None, batch: int) -> Iterator[HubRecord]:
    """Every event of the project in hub order, over as many ``hub.read_log`` pages as
    needed, bounded by the read version taken at the start (events committed while it
    runs are not half-seen) and by ``until`` (10/12-byte position, inclusive)."""
    bound = hub.read_version()
    while True:
        records = hub.read_log(project_id, after, batch, until=until)
        if not records:
            return
        for r in records:
            if commit_version(r.versionstamp) > bound:
                return
            yield r
        after = records[-1].versionstamp


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
    futures = [(i, tr[space.ids.pack((i,))]) for i in event_ids]
    return {i: fdb.tuple.unpack(bytes(f))[0].to_bytes() for i, f in futures if f.present()}


@transactional
def get(tr, layout, project_id: str, position: bytes) -> HubRecord | None:
    """The event at a 12-byte position, or None."""
    space = layout.space(tr, project_id)
    if space is None:
        return None
    vs = fdb.tuple.Versionstamp.from_bytes(position)
    chunks = [bytes(kv.value) for kv in tr.get_range(*key_range(space.log, (vs,)))]
    if not chunks:
        return None
    return HubRecord(position[:10], vs.user_version, b"".join(chunks))


@transactional
def path_history(tr, layout, project_id: str, path: str) -> list[bytes]:
    """12-byte positions of the events that changed ``path`` (or renamed from it), in hub order."""
    space = layout.space(tr, project_id)
    if space is None:
        return []
    return [space.path.unpack(kv.key)[1].to_bytes() for kv in tr.get_range(*key_range(space.path, (path,)))]


@transactional
def time_range(tr, layout, project_id: str, since_ns: int | None, until_ns: int | None,
               limit: int) -> list[tuple[int, bytes]]:
    """``[(time_ns, position)]`` of events with ``since_ns <= time_ns <= until_ns``
    (inclusive, either side optional), in event-time order."""
    space = layout.space(tr, project_id)
    if space is None:
        return []
    begin = space.time.pack((since_ns,)) if since_ns is not None else space.time.range().start
    end = space.time.pack((until_ns + 1,)) if until_ns is not None else space.time.range().stop
    out = []
    for kv in tr.get_range(begin, end, limit=limit):
        t, vs = space.time.unpack(kv.key)
        out.append((t, vs.to_bytes()))
    return out


@transactional
def laptops(tr, layout, project_id: str) -> dict[str, tuple[int, int, bytes]]:
    """``{ledger_id: (last_seq, wall_ns, 10-byte versionstamp)}``: each laptop's last sync."""
    space = layout.space(tr, project_id)
    if space is None:
        return {}
    out = {}
    for kv in tr.get_range(*key_range(space.laptops, ())):
        (origin,) = space.laptops.unpack(kv.key)
        seq, wall, vs = fdb.tuple.unpack(bytes(kv.value))
        out[origin] = (seq, wall, vs.to_bytes()[:10])
    return out
