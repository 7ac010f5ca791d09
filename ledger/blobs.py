"""Content-addressed blobs: file contents keyed by the SHA-256 hex of their bytes.

Stored once per hash. Functions here take a ``sqlite3.Connection`` already inside the
caller's transaction, so event rows and the content they name are committed together.

Encodings (the ``encoding`` column; rows written by earlier versions stay readable):

* ``raw`` — the bytes as they are (when compression would not save space);
* ``zlib`` — zlib (written by earlier versions only; read forever);
* ``zstd`` — one zstd frame of the bytes (``ledger.codec``);
* ``zstd-delta`` — one zstd frame of the bytes compressed with the full bytes of the
  blob named in ``base`` as the prefix (zstd's dictionary-as-prefix): a new version of
  a path stored against an earlier version of that path.

Delta chains are *skip deltas* (as in Subversion): the versions of a chain are numbered
``chain_pos`` 0..``CHAIN_LENGTH``-1; position 0 is a full copy, and the blob at
position ``k`` is a delta against the chain's blob at position ``k & (k - 1)`` (``k``
with its lowest set bit cleared), always an ancestor of the previous version. Reading
any blob therefore decodes at most ``popcount(k) <= MAX_DEPTH`` (4) deltas after one
full copy, while every version but one in ``CHAIN_LENGTH`` (16) is stored as a delta.
After position 15 the next version starts a new chain with a full copy.

Checked on read: ``get`` returns bytes only when their SHA-256 equals the requested
key, whatever the chain (a damaged base or delta gives other bytes and is reported as
``StoreError``, naming the first blob of the chain that is damaged). A delta base is
only storage: reading content checks the caller's right to the *requested* hash
(``ledger.owners``), never to its bases, and a base is only chosen among contents the
writing tenant owns (``Ledger._insert``). ``delete`` keeps every other blob readable.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
import zlib
from collections import OrderedDict
from typing import Callable

from ledger import codec
from ledger.errors import BlobNotFound, StoreError
from ledger.faults import crash_point

#: Versions per delta chain (position 0 is a full copy); a new chain starts after.
CHAIN_LENGTH = 16
#: Deltas decoded at most to read one blob (popcount of a position < CHAIN_LENGTH).
MAX_DEPTH = (CHAIN_LENGTH - 1).bit_count()
#: Contents below this size are never delta-encoded, nor used as a delta base (a frame
#: header is ~10 bytes; zstd refuses a prefix under 8 bytes).
MIN_DELTA_SIZE = 128
#: Bytes of recently stored or read contents kept in memory (to find delta bases
#: without decoding them again; contents are immutable, keyed by their hash).
CACHE_BYTES = 32 * 1024 * 1024


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 lowercase hex characters (the blob key)."""
    return hashlib.sha256(data).hexdigest()


class _Cache:
    """A small LRU of ``{sha256_hex: bytes}`` (thread-safe, bounded in bytes)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.base_limit = limit
        self.widened: list[int] = []  # the limits asked for by bulk writers now running
        self.size = 0
        self.items: OrderedDict[str, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def widen(self, limit: int) -> Callable[[], None]:
        """Hold up to ``limit`` bytes (at least) until the returned function is called."""
        with self.lock:
            self.widened.append(limit)
            self.limit = max([self.base_limit, *self.widened])

        given_back = False

        def restore() -> None:
            nonlocal given_back
            with self.lock:
                if not given_back:  # once: a second call must not drop another writer's limit
                    given_back = True
                    self.widened.remove(limit)
                self.limit = max([self.base_limit, *self.widened])
                self._trim()
        return restore

    def _trim(self) -> None:
        while self.size > self.limit:
            _, old = self.items.popitem(last=False)
            self.size -= len(old)

    def get(self, digest: str) -> bytes | None:
        with self.lock:
            data = self.items.get(digest)
            if data is not None:
                self.items.move_to_end(digest)
            return data

    def put(self, digest: str, data: bytes) -> None:
        if len(data) > self.limit // 8:
            return
        with self.lock:
            if digest in self.items:
                return
            self.items[digest] = data
            self.size += len(data)
            self._trim()


_cache = _Cache(CACHE_BYTES)


def widen_cache(limit: int) -> Callable[[], None]:
    """Let the process's cache of decoded contents hold up to ``limit`` bytes (instead of
    ``CACHE_BYTES``) for a bulk writer such as ``ledger import git``: a new version's
    delta base is then usually still decoded instead of read and decoded again (git/git:
    30,700 base reads at 32 MiB, 6,366 at 128 MiB). Returns the function that gives the
    memory back (safe with several bulk writers at once: the largest limit asked for by
    those still running applies)."""
    return _cache.widen(limit)


def encode(data: bytes) -> tuple[str, bytes]:
    """Return ``(encoding, stored_bytes)`` of a full copy: zstd when it is smaller,
    else raw."""
    if len(data) >= 64:
        packed = codec.compress(data)
        if len(packed) < len(data):
            return "zstd", packed
    return "raw", data


def _decode_one(encoding: str, stored: bytes, digest: str, base: bytes | None) -> bytes:
    try:
        if encoding == "zstd":
            return codec.decompress(stored)
        if encoding == "zstd-delta":
            return codec.decompress(stored, base)
        if encoding == "zlib":
            return zlib.decompress(stored)
        if encoding == "raw":
            return bytes(stored)
    except Exception as exc:  # zlib.error / ZstdError: a damaged frame
        raise StoreError(f"blob {digest} is corrupt: its stored frame cannot be decoded ({exc})") from exc
    raise StoreError(f"blob {digest}: unknown encoding {encoding!r} (upgrade context-ledger to read it)")


def decode(encoding: str, stored: bytes, expected_hash: str) -> bytes:
    """Decode a full copy (``raw``, ``zlib``, ``zstd``) and verify its SHA-256.
    Raises ``StoreError`` on corruption (and for a delta: use ``get``)."""
    if encoding == "zstd-delta":
        raise StoreError(f"blob {expected_hash} is a delta: read it with ledger.blobs.get")
    data = _decode_one(encoding, stored, expected_hash, None)
    if sha256_hex(data) != expected_hash:
        raise StoreError(f"blob {expected_hash} is corrupt: its bytes hash differently")
    return data


#: A blob and its delta chain down to the full copy, in ONE statement (a replay reads a
#: few thousand blobs: one query each instead of one per chain link plus the owner
#: check). The anchor row is there only if ``owner`` is NULL or owns the content
#: (``ledger.owners``); the recursion stops after 64 links (a loop in damaged rows).
_CHAIN_SQL = """
WITH RECURSIVE chain(n, hash, encoding, data, base) AS (
    SELECT 0, hash, encoding, data, base FROM blobs
    WHERE hash = :digest AND (:owner IS NULL OR EXISTS (
        SELECT 1 FROM blob_owners WHERE tenant_id = :owner AND blob_owners.hash = blobs.hash))
    UNION ALL
    SELECT chain.n + 1, blobs.hash, blobs.encoding, blobs.data, blobs.base
    FROM chain JOIN blobs ON blobs.hash = chain.base
    WHERE chain.encoding = 'zstd-delta' AND chain.n < 64
)
SELECT hash, encoding, data, base FROM chain ORDER BY n"""


def _chain(conn: sqlite3.Connection, digest: str, owner: str | None = None) -> list[tuple[str, str, bytes]]:
    """``[(hash, encoding, stored)]`` from ``digest`` down to its full copy (or to the
    first *base* already in the cache: the requested row itself is always read, so the
    cache never answers whether content is stored). Raises ``BlobNotFound`` (also when
    ``owner`` is given and does not own it) or ``StoreError``."""
    rows = conn.execute(_CHAIN_SQL, {"digest": digest, "owner": owner}).fetchall()
    if not rows:
        raise BlobNotFound(
            f"content {digest} is not in this ledger's blob store "
            "(was it recorded on another machine? replay with --source hub)")
    chain: list[tuple[str, str, bytes]] = []
    seen = set()
    for current, encoding, stored, base in rows:
        chain.append((current, encoding, stored))
        if encoding != "zstd-delta":
            return chain
        if not base or base in seen or len(chain) > 64:
            raise StoreError(f"blob {digest} is corrupt: its delta chain is broken at {current}")
        seen.add(current)
        cached = _cache.get(base)
        if cached is not None:
            chain.append((base, "cached", cached))
            return chain
    raise StoreError(f"blob {digest} is corrupt: its delta base {rows[-1][3]} is missing")


def get(conn: sqlite3.Connection, digest: str, *, owner: str | None = None) -> bytes:
    """The bytes stored under ``digest`` (a delta decoded through its chain), checked:
    their SHA-256 equals ``digest``; with ``owner`` (a tenant id) only content that tenant
    stored. Raises ``BlobNotFound``; ``StoreError`` when the stored bytes (or a base of
    their chain) are damaged."""
    chain = _chain(conn, digest, owner)
    data: bytes | None = None
    for h, encoding, stored in reversed(chain):
        data = stored if encoding == "cached" else _decode_one(encoding, stored, h, data)
    assert data is not None
    if sha256_hex(data) != digest:
        _name_damage(chain, digest)
    if len(chain) > 1:
        _cache.put(digest, data)
    return data


def _name_damage(chain: list[tuple[str, str, bytes]], digest: str) -> None:
    """Raise ``StoreError`` naming the first blob of ``chain`` (base first) whose bytes
    do not hash to its key."""
    data: bytes | None = None
    for h, encoding, stored in reversed(chain):
        data = stored if encoding == "cached" else _decode_one(encoding, stored, h, data)
        if data is None or sha256_hex(data) != h:
            where = "" if h == digest else f" (its delta base {h} is damaged)"
            raise StoreError(f"blob {digest} is corrupt: its bytes hash differently{where}")
    raise StoreError(f"blob {digest} is corrupt: its bytes hash differently")


def exists(conn: sqlite3.Connection, digest: str) -> bool:
    """True if content with that SHA-256 is stored."""
    return conn.execute("SELECT 1 FROM blobs WHERE hash = ?", (digest,)).fetchone() is not None


def _delta_target(conn: sqlite3.Connection, previous: str) -> tuple[str, int] | None:
    """Where a new version following the stored blob ``previous`` goes: ``(base hash,
    chain position)``, or None to start a new chain (a full copy)."""
    row = conn.execute("SELECT chain_pos, base FROM blobs WHERE hash = ?", (previous,)).fetchone()
    if row is None:
        return None
    pos = row[0] + 1
    if pos >= CHAIN_LENGTH:
        return None
    want = pos & (pos - 1)
    current, current_pos, base = previous, row[0], row[1]
    for _ in range(MAX_DEPTH + 1):  # walk the previous version's chain down to position `want`
        if current_pos == want:
            return current, pos
        if current_pos < want or not base:
            return None
        current = base
        row = conn.execute("SELECT chain_pos, base FROM blobs WHERE hash = ?", (current,)).fetchone()
        if row is None:
            return None
        current_pos, base = row
    return None


def put(conn: sqlite3.Connection, data: bytes, digest: str | None = None, *,
        previous: str | None = None, previous_data: bytes | None = None) -> str:
    """Store ``data`` unless present; return its SHA-256 hex. Call inside a transaction.

    ``previous``: the hash of an earlier version of the same path (already stored, and
    one the writer may use, see ``ledger.owners``), ``previous_data`` its bytes when at
    hand: ``data`` is then stored as a delta in that version's chain when the delta
    is smaller than a full copy (see the module docstring), else as a full copy.
    """
    digest = digest or sha256_hex(data)
    if conn.execute("SELECT 1 FROM blobs WHERE hash = ?", (digest,)).fetchone():
        return digest
    encoding, stored, base, pos = None, None, None, 0
    if previous and previous != digest and len(data) >= MIN_DELTA_SIZE:
        target = _delta_target(conn, previous)
        if target is not None:
            base, pos = target
            base_data = previous_data if base == previous and previous_data is not None else None
            if base_data is None:
                base_data = _cache.get(base)
            if base_data is None:
                try:
                    base_data = get(conn, base)
                except StoreError:  # a damaged base: store a full copy instead
                    base_data = None
                else:
                    _cache.put(base, base_data)
            delta = None
            if base_data is not None and len(base_data) >= MIN_DELTA_SIZE:  # zstd: a prefix of >= 8 bytes
                try:
                    delta = codec.compress(data, base_data)
                except Exception:  # zstd refused this base (ZstdError, ValueError): a full copy is always right
                    delta = None
            if delta is not None:
                if len(delta) * 16 <= len(data):  # clearly a small change: no need to compare
                    encoding, stored = "zstd-delta", delta
                else:
                    encoding, stored = encode(data)
                    if len(delta) + 16 < len(stored):
                        encoding, stored = "zstd-delta", delta
    if encoding != "zstd-delta":
        encoding, stored = encode(data) if encoding is None else (encoding, stored)
        base, pos = None, 0
    conn.execute(
        "INSERT INTO blobs (hash, size, encoding, data, stored_ns, base, chain_pos) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (digest, len(data), encoding, stored, time.time_ns(), base, pos),
    )
    if base is not None:
        crash_point("blobs.after_delta")  # a delta row written, its transaction not committed
    if pos % 2 == 0:  # only a blob at an even position is ever a later version's base
        _cache.put(digest, data)
    return digest


def delete(conn: sqlite3.Connection, digest: str) -> bool:
    """Remove the content ``digest`` and keep every other blob readable: blobs stored
    as deltas against it are first re-stored as full copies. Returns False when it was
    not stored. Call inside a transaction (the one that removes what names it). Reads
    the whole blob table to find dependents (no index on ``base``: deletion is rare,
    and the index would cost every write and ~3% of the file)."""
    for (dependent,) in conn.execute("SELECT hash FROM blobs WHERE base = ?", (digest,)).fetchall():
        data = get(conn, dependent)
        encoding, stored = encode(data)
        conn.execute("UPDATE blobs SET encoding = ?, data = ?, base = NULL, chain_pos = 0 WHERE hash = ?",
                     (encoding, stored, dependent))
    with _cache.lock:
        old = _cache.items.pop(digest, None)
        if old is not None:
            _cache.size -= len(old)
    return conn.execute("DELETE FROM blobs WHERE hash = ?", (digest,)).rowcount > 0
