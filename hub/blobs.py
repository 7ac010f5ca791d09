"""Content blobs on the hub: chunked under the 100,000-byte value limit, once per SHA-256,
safe when several uploaders race, verified on read.

Keys, in the project's ``blob`` subspace:

- ``(digest, upload_id, chunk#)``: the stored bytes (zlib when smaller, else raw) of one
  *upload*; ``upload_id`` is 16 random bytes chosen per upload, so two uploaders of the
  same content (perhaps compressed differently) never write the same chunk keys;
- ``(digest,)``: the header ``(size, stored_size, chunks, encoding, upload_id)``, written
  only if absent, in the transaction that writes the upload's last chunks: a header
  means "complete", and names the one upload whose chunks are the blob.

The header is read (serializable) in the transaction that writes it, so of two uploads
finishing at once one commits and the other conflicts (1020); its retry sees the header
and clears its own chunks instead (unless the header names its own upload: a retry after
``commit_unknown_result``, 1021, of the commit that wrote it). An upload that dies half-way leaves chunks no header
names (invisible; reclaimable). Every transaction stays under ``txn_bytes`` (default
800,000: "well under 1 MB", FoundationDB's guidance for transaction size).

Functions take a ``hub.layout.TenantLayout``; ``hub.hub.Hub`` exposes them as methods.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from typing import Iterable

import fdb

from hub.connection import transactional
from hub.content import ENCODINGS, EncodedBlob, decode_blob
from hub.errors import HubBlobMissing, HubError
from hub.layout import TenantLayout, key_range
from hub.protocol import CHUNK_BYTES, BlobHeader
from hub.scan import scan
from ledger import sha256_hex

#: Bytes of chunk data per upload transaction (default).
TXN_BYTES = 800_000


def new_upload_id() -> bytes:
    """16 random bytes naming one upload's chunks."""
    return os.urandom(16)


def _header(value) -> tuple[BlobHeader, bytes]:
    size, stored, chunks, encoding, upload_id = fdb.tuple.unpack(bytes(value))
    return BlobHeader(size, stored, chunks, encoding), upload_id


def _pack_header(header: BlobHeader, upload_id: bytes) -> bytes:
    return fdb.tuple.pack((header.size, header.stored_size, header.chunks, header.encoding, upload_id))


@transactional
def headers(tr, layout: TenantLayout, project_id: str, digests: list[str]) -> dict[str, tuple[BlobHeader, bytes]]:
    """``{digest: (BlobHeader, upload_id)}`` of the complete blobs among ``digests``."""
    space = layout.space(tr, project_id)
    if space is None:
        return {}
    futures = [(d, tr[space.blob.pack((d,))]) for d in digests]
    return {d: _header(f) for d, f in futures if f.present()}


def missing_blobs(layout: TenantLayout, project_id: str, digests: Iterable[str]) -> list[str]:
    """The SHA-256 hex digests (of ``digests``, deduplicated, in order) with no complete blob."""
    digests = list(dict.fromkeys(digests))
    if not digests:
        return []
    found = headers(layout.db, layout, project_id, digests)
    return [d for d in digests if d not in found]


def upload_blobs(layout: TenantLayout, project_id: str, blobs: Iterable[tuple[str, bytes]],
                 txn_bytes: int = TXN_BYTES, level: int = 6) -> tuple[int, int]:
    """Store content blobs ``(sha256_hex, data)``: see ``store_encoded``. Raises
    ``HubError`` when data does not hash to its digest (nothing of it written)."""
    return store_encoded(layout, project_id, (EncodedBlob.of(d, data, level) for d, data in blobs), txn_bytes)


def store_encoded(layout: TenantLayout, project_id: str, blobs: Iterable[EncodedBlob],
                  txn_bytes: int = TXN_BYTES) -> tuple[int, int]:
    """Store encoded blobs, each once per digest (skipped when its header exists).

    Small blobs share transactions of about ``txn_bytes``; a larger one is written over
    several transactions (see the module docstring). Returns ``(blobs_written,
    stored_bytes_written)``; a blob another uploader completed first counts as not written.
    """
    txn_bytes = max(CHUNK_BYTES + 1_000, int(txn_bytes))
    count = stored_total = 0
    group: list[EncodedBlob] = []
    group_bytes = 0

    def flush():
        nonlocal group, group_bytes, count, stored_total
        if group:
            for blob in _finish_tr(layout.db, layout, project_id, [(b, new_upload_id(), 0) for b in group]):
                count += 1
                stored_total += blob.header.stored_size
        group, group_bytes = [], 0

    for blob in blobs:
        size = blob.header.stored_size + 100 * blob.header.chunks
        if size > txn_bytes:
            flush()
            if upload_large(layout, project_id, blob, txn_bytes):
                count += 1
                stored_total += blob.header.stored_size
            continue
        if group_bytes + size > txn_bytes:
            flush()
        group.append(blob)
        group_bytes += size
    flush()
    return count, stored_total


def upload_large(layout: TenantLayout, project_id: str, blob: EncodedBlob, txn_bytes: int = TXN_BYTES) -> bool:
    """One blob over several transactions under a new upload id; True if this call
    completed it (False: it was, or became, complete by another upload)."""
    if headers(layout.db, layout, project_id, [blob.digest]):
        return False
    upload_id = new_upload_id()
    per_txn = max(1, txn_bytes // (CHUNK_BYTES + 200))
    chunks = blob.chunks()
    body_end = max(0, len(chunks) - per_txn)
    for start in range(0, body_end, per_txn):
        put_chunks(layout, project_id, blob.digest, upload_id, start, chunks[start : min(start + per_txn, body_end)])
    return bool(_finish_tr(layout.db, layout, project_id, [(blob, upload_id, body_end)]))


def put_chunks(layout: TenantLayout, project_id: str, digest: str, upload_id: bytes, first: int,
               chunks: list[bytes]) -> None:
    """Write ``chunks`` as chunks ``first``, ``first+1``, ... of upload ``upload_id``, in
    ONE transaction (the caller keeps it under ``txn_bytes``)."""
    _put_chunks_tr(layout.db, layout, project_id, digest, upload_id, first, chunks)


@transactional
def _put_chunks_tr(tr, layout, project_id, digest, upload_id, first, chunks):
    space = layout.space(tr, project_id, create=True)
    for i, chunk in enumerate(chunks, first):
        tr[space.blob.pack((digest, upload_id, i))] = chunk


@transactional
def _finish_tr(tr, layout, project_id, items) -> list[EncodedBlob]:
    """``items``: ``(blob, upload_id, first_chunk)``; writes chunks from ``first_chunk`` on
    and the header of each blob whose header is absent; clears the upload's chunks of the
    others. Returns the blobs completed by this transaction."""
    space = layout.space(tr, project_id, create=True)
    present = [tr[space.blob.pack((b.digest,))] for b, _, _ in items]
    done = []
    for (blob, upload_id, first), f in zip(items, present):
        if f.present():
            if _header(f)[1] == upload_id:  # a retry of this very commit (1021): it is ours
                done.append(blob)
            else:  # another upload completed it first: drop this upload's chunks
                tr.clear_range(*key_range(space.blob, (blob.digest, upload_id)))
            continue
        for i, chunk in enumerate(blob.chunks(first), first):
            tr[space.blob.pack((blob.digest, upload_id, i))] = chunk
        tr[space.blob.pack((blob.digest,))] = _pack_header(blob.header, upload_id)
        done.append(blob)
    return done


def finish_verified(layout: TenantLayout, project_id: str, digest: str, upload_id: bytes,
                    header: BlobHeader) -> bool:
    """Complete an upload whose chunks were written by ``put_chunks`` (the gateway's
    upload sessions): reads them back, checks count, size and SHA-256, then sets the
    header if absent. True if this call completed the blob. Raises ``HubError`` (and
    clears the upload's chunks) when the bytes are not the content of ``digest``."""
    if header.encoding not in ENCODINGS:
        raise HubError(f"unknown blob encoding {header.encoding!r}; use one of {', '.join(ENCODINGS)}")
    stored = _read_chunks(layout, project_id, digest, upload_id, header.chunks)
    problem = None
    if len(stored) != header.stored_size:
        problem = f"{len(stored):,} bytes were uploaded, the header says {header.stored_size:,}"
    else:
        try:
            data = decode_blob(header.encoding, stored)
        except zlib.error as exc:
            problem = f"the uploaded bytes are not valid {header.encoding}: {exc}"
        else:
            if len(data) != header.size or hashlib.sha256(data).hexdigest() != digest:
                problem = "the uploaded bytes do not hash to the digest"
    if problem:
        _clear_upload_tr(layout.db, layout, project_id, digest, upload_id)
        raise HubError(f"upload of blob {digest} refused: {problem}; upload it again")
    blob = EncodedBlob(digest, header, b"")
    return bool(_finish_tr(layout.db, layout, project_id, [(blob, upload_id, header.chunks)]))


@transactional
def _clear_upload_tr(tr, layout, project_id, digest, upload_id):
    space = layout.space(tr, project_id)
    if space is not None:
        tr.clear_range(*key_range(space.blob, (digest, upload_id)))


def _read_chunks(layout: TenantLayout, project_id: str, digest: str, upload_id: bytes, chunks: int) -> bytes:
    space = _space_tr(layout.db, layout, project_id)
    if space is None:
        return b""
    begin = space.blob.pack((digest, upload_id, 0))
    end = space.blob.pack((digest, upload_id, chunks))
    return b"".join(v for _, v in scan(layout.db, begin, end, max_bytes=None, max_seconds=None))


@transactional
def _space_tr(tr, layout, project_id):
    return layout.space(tr, project_id)


def read_blob(layout: TenantLayout, project_id: str, digest: str) -> bytes:
    """The content with SHA-256 ``digest`` from the project's hub blobs, verified.

    Raises ``HubBlobMissing`` when there is no complete blob, ``HubError`` when the
    stored bytes do not hash to ``digest``. Chunks are read over as many transactions
    as the link needs (``hub.scan``); a complete blob's chunks never change.
    """
    found = headers(layout.db, layout, project_id, [digest]).get(digest)
    if found is None:
        raise HubBlobMissing(
            f"content {digest} is not on the hub for project {project_id!r} "
            "(has the laptop that recorded it synced? run `ledger sync` there)"
        )
    header, upload_id = found
    stored = _read_chunks(layout, project_id, digest, upload_id, header.chunks)
    if len(stored) != header.stored_size:
        raise HubError(f"blob {digest} on the hub is incomplete: {len(stored):,}/{header.stored_size:,} bytes")
    data = decode_blob(header.encoding, stored)
    if sha256_hex(data) != digest:
        raise HubError(f"blob {digest} on the hub is corrupt: its bytes hash differently")
    return data
