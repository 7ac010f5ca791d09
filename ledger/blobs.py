"""Content-addressed blobs: file contents keyed by the SHA-256 hex of their bytes.

Stored once per hash, zlib-compressed when that saves space (``encoding`` says which).
Functions here take a ``sqlite3.Connection`` already inside the caller's transaction,
so event rows and the content they name are committed together.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
import zlib

from ledger.errors import BlobNotFound, StoreError

#: zlib level: 6 is zlib's default balance of speed and ratio.
COMPRESSION_LEVEL = 6


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 lowercase hex characters (the blob key)."""
    return hashlib.sha256(data).hexdigest()


def encode(data: bytes) -> tuple[str, bytes]:
    """Return ``(encoding, stored_bytes)``: zlib when it is smaller, else raw."""
    if len(data) >= 64:
        packed = zlib.compress(data, COMPRESSION_LEVEL)
        if len(packed) < len(data):
            return "zlib", packed
    return "raw", data


def decode(encoding: str, stored: bytes, expected_hash: str) -> bytes:
    """Inverse of ``encode``; verifies the SHA-256 (raises ``StoreError`` on corruption)."""
    if encoding == "zlib":
        data = zlib.decompress(stored)
    elif encoding == "raw":
        data = bytes(stored)
    else:
        raise StoreError(f"blob {expected_hash}: unknown encoding {encoding!r}")
    if sha256_hex(data) != expected_hash:
        raise StoreError(f"blob {expected_hash} is corrupt: its bytes hash differently")
    return data


def put(conn: sqlite3.Connection, data: bytes, digest: str | None = None) -> str:
    """Store ``data`` unless present; return its SHA-256 hex. Call inside a transaction."""
    digest = digest or sha256_hex(data)
    if conn.execute("SELECT 1 FROM blobs WHERE hash = ?", (digest,)).fetchone():
        return digest
    encoding, stored = encode(data)
    conn.execute(
        "INSERT INTO blobs (hash, size, encoding, data, stored_ns) VALUES (?, ?, ?, ?, ?)",
        (digest, len(data), encoding, stored, time.time_ns()),
    )
    return digest


def get(conn: sqlite3.Connection, digest: str) -> bytes:
    """The bytes stored under ``digest``. Raises ``BlobNotFound``."""
    row = conn.execute("SELECT encoding, data FROM blobs WHERE hash = ?", (digest,)).fetchone()
    if row is None:
        raise BlobNotFound(
            f"content {digest} is not in this ledger's blob store "
            "(was it recorded on another machine? replay with --source hub)"
        )
    return decode(row[0], row[1], digest)


def exists(conn: sqlite3.Connection, digest: str) -> bool:
    """True if content with that SHA-256 is stored."""
    return conn.execute("SELECT 1 FROM blobs WHERE hash = ?", (digest,)).fetchone() is not None
