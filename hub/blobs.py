"""Content blobs on the hub: chunked under the 100,000-byte value limit, written once per
SHA-256, a header written last so that a header means "complete", verified on read.

Functions take a ``hub.layout.TenantLayout``; ``hub.hub.Hub`` exposes them as methods.
"""

from __future__ import annotations

import zlib
from typing import Iterable

import fdb

from hub.connection import transactional
from hub.errors import HubBlobMissing, HubError
from hub.layout import TenantLayout
from hub.protocol import CHUNK_BYTES, BlobHeader
from ledger import sha256_hex


def encode_blob(data: bytes) -> tuple[str, bytes]:
    """``(encoding, stored)``: zlib (level 6) when smaller, else raw."""
    if len(data) >= 64:
        packed = zlib.compress(data, 6)
        if len(packed) < len(data):
            return "zlib", packed
    return "raw", data


def _header(value) -> BlobHeader:
    size, stored, chunks, encoding = fdb.tuple.unpack(bytes(value))
    return BlobHeader(size, stored, chunks, encoding)


@transactional
def headers(tr, layout: TenantLayout, project_id: str, digests: list[str]) -> dict[str, BlobHeader]:
    """``{digest: BlobHeader}`` of the complete blobs among ``digests``."""
    space = layout.space(tr, project_id)
    if space is None:
        return {}
    futures = [(d, tr[space.blob.pack((d,))]) for d in digests]
    return {d: _header(f) for d, f in futures if f.present()}


def missing_blobs(layout: TenantLayout, project_id: str, digests: Iterable[str]) -> list[str]:
    """The SHA-256 hex digests (of ``digests``, in order) with no complete blob on the hub."""
    digests = list(dict.fromkeys(digests))
    if not digests:
        return []
    found = headers(layout.db, layout, project_id, digests)
    return [d for d in digests if d not in found]


def upload_blobs(layout: TenantLayout, project_id: str, blobs: Iterable[tuple[str, bytes]],
                 txn_bytes: int = 500_000) -> tuple[int, int]:
    """Upload content blobs ``(sha256_hex, data)`` to the project, each written once per
    hash (skipped when its header exists), chunked under the 100,000-byte value limit.

    Small blobs are grouped into transactions of about ``txn_bytes``; a larger blob is
    spread over several transactions and its header is written last, in the
    transaction of its final chunks, so a header always means "complete".
    Returns ``(blobs_written, stored_bytes_written)``.
    """
    txn_bytes = max(CHUNK_BYTES, int(txn_bytes))
    count = stored_total = 0
    group: list[tuple[str, list[bytes], BlobHeader]] = []
    group_bytes = 0

    def flush():
        nonlocal group, group_bytes, count, stored_total
        if group:
            created: dict = {}
            n, b = _put_blobs_tr(layout.db, layout, project_id, group, created)
            layout.committed(created)
            count += n
            stored_total += b
        group, group_bytes = [], 0

    for digest, data in blobs:
        if sha256_hex(data) != digest:
            raise HubError(f"content given for blob {digest} hashes to {sha256_hex(data)}")
        encoding, stored = encode_blob(data)
        chunks = [stored[i : i + CHUNK_BYTES] for i in range(0, max(1, len(stored)), CHUNK_BYTES)]
        header = BlobHeader(len(data), len(stored), len(chunks), encoding)
        size = len(stored) + 100 * len(chunks)
        if size > txn_bytes:
            flush()
            count_b, bytes_b = _put_large_blob(layout, project_id, digest, chunks, header, txn_bytes)
            count += count_b
            stored_total += bytes_b
            continue
        if group_bytes + size > txn_bytes:
            flush()
        group.append((digest, chunks, header))
        group_bytes += size
    flush()
    return count, stored_total


def _put_large_blob(layout, project_id, digest, chunks, header, txn_bytes) -> tuple[int, int]:
    if headers(layout.db, layout, project_id, [digest]):
        return 0, 0
    per_txn = max(1, txn_bytes // CHUNK_BYTES)
    body_end = max(0, len(chunks) - per_txn)
    for start in range(0, body_end, per_txn):
        created: dict = {}
        _put_chunks_tr(layout.db, layout, project_id, digest, start, chunks[start : min(start + per_txn, body_end)],
                       created)
        layout.committed(created)
    created = {}
    n, _ = _put_blobs_tr(layout.db, layout, project_id, [(digest, chunks, header)], created, first_chunk=body_end)
    layout.committed(created)
    return n, (header.stored_size if n else 0)


@transactional
def _put_chunks_tr(tr, layout, project_id, digest, start, chunks, created):
    created.clear()
    space = layout.space(tr, project_id, created)
    for i, chunk in enumerate(chunks, start):
        tr[space.blob.pack((digest, i))] = chunk


@transactional
def _put_blobs_tr(tr, layout, project_id, group, created, first_chunk: int = 0):
    created.clear()
    space = layout.space(tr, project_id, created)
    present = [tr[space.blob.pack((d,))] for d, _, _ in group]
    n = stored = 0
    for (digest, chunks, header), f in zip(group, present):
        if f.present():
            continue
        for i in range(first_chunk, len(chunks)):
            tr[space.blob.pack((digest, i))] = chunks[i]
        tr[space.blob.pack((digest,))] = fdb.tuple.pack(
            (header.size, header.stored_size, header.chunks, header.encoding))
        n += 1
        stored += header.stored_size
    return n, stored


def read_blob(layout: TenantLayout, project_id: str, digest: str) -> bytes:
    """The content with SHA-256 ``digest`` from the project's hub blobs, verified.

    Raises ``HubBlobMissing`` when there is no complete blob, ``HubError`` when the
    stored bytes do not hash to ``digest``. Large blobs are read over several
    transactions (blobs are immutable once their header exists).
    """
    header = headers(layout.db, layout, project_id, [digest]).get(digest)
    if header is None:
        raise HubBlobMissing(
            f"content {digest} is not on the hub for project {project_id!r} of tenant "
            f"{layout.tenant_id!r} (has the laptop that recorded it synced? run `ledger sync` there)"
        )
    parts: list[bytes] = []
    step = 50
    for start in range(0, header.chunks, step):
        parts.extend(_chunks_tr(layout.db, layout, project_id, digest, start, min(start + step, header.chunks)))
    stored = b"".join(parts)
    if len(parts) != header.chunks or len(stored) != header.stored_size:
        raise HubError(f"blob {digest} on the hub is incomplete: {len(parts)}/{header.chunks} chunks")
    data = zlib.decompress(stored) if header.encoding == "zlib" else stored
    if sha256_hex(data) != digest:
        raise HubError(f"blob {digest} on the hub is corrupt: its bytes hash differently")
    return data


@transactional
def _chunks_tr(tr, layout, project_id, digest, start, stop):
    space = layout.space(tr, project_id)
    return [bytes(kv.value) for kv in
            tr.get_range(space.blob.pack((digest, start)), space.blob.pack((digest, stop)))]
