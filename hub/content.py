"""Blob content as stored on the hub: encoding (zlib or raw) and chunking. No ``fdb``
import: the gateway's HTTP client encodes on the laptop with the same rules."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from hub.errors import HubError
from hub.protocol import CHUNK_BYTES, BlobHeader
from ledger import sha256_hex

#: Encodings a stored blob may have.
ENCODINGS = ("raw", "zlib")


def encode_blob(data: bytes, level: int = 6) -> tuple[str, bytes]:
    """``(encoding, stored)``: zlib at ``level`` (1-9) when smaller, else raw (``level`` 0: raw)."""
    if level and len(data) >= 64:
        packed = zlib.compress(data, level)
        if len(packed) < len(data):
            return "zlib", packed
    return "raw", data


def decode_blob(encoding: str, stored: bytes) -> bytes:
    """The content of ``stored`` bytes in ``encoding``."""
    return zlib.decompress(stored) if encoding == "zlib" else stored


@dataclass(frozen=True)
class EncodedBlob:
    """A blob ready to store: its digest, header (without upload id) and stored bytes."""

    digest: str
    header: BlobHeader
    stored: bytes

    @classmethod
    def of(cls, digest: str, data: bytes, level: int = 6) -> "EncodedBlob":
        """Encode ``data``; raises ``HubError`` when it does not hash to ``digest``."""
        actual = sha256_hex(data)
        if actual != digest:
            raise HubError(f"content given for blob {digest} hashes to {actual}")
        encoding, stored = encode_blob(data, level)
        return cls(digest, BlobHeader(len(data), len(stored), chunk_count(len(stored)), encoding), stored)

    def chunks(self, first: int = 0) -> list[bytes]:
        return [self.stored[i : i + CHUNK_BYTES] for i in range(first * CHUNK_BYTES, max(1, len(self.stored)),
                                                                  CHUNK_BYTES)]


def chunk_count(stored_size: int) -> int:
    """Chunks of at most ``CHUNK_BYTES`` holding ``stored_size`` bytes (at least one)."""
    return max(1, -(-stored_size // CHUNK_BYTES))
