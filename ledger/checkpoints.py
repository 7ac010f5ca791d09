"""Signed checkpoints of the hash chain (``ledger.chain``).

A checkpoint says "the chain of ledger L had value H at seq S", signed with the
ledger's Ed25519 key (``ledger.keys``). The write path writes one each time the
recording order passes a multiple of ``INTERVAL`` events (inside the same transaction
as the events it covers), ``Ledger.checkpoint()`` writes one on demand (``ledger verify
--export`` does, so a proof always ends on a fresh one). Stored in
``chain_checkpoints`` (seq, head, created_ns, public key, signature).

What a checkpoint adds to the chain: rewriting the chain consistently (change an event,
recompute every later digest and link) is easy for anyone who can write the file; it
cannot be done without the key and still match the signed heads. Copies of the
checkpoints held elsewhere (the hub) also pin what existed at that time.
"""

from __future__ import annotations

import struct
import time
import sqlite3
from dataclasses import dataclass

from ledger import keys

#: Events between two automatic checkpoints.
INTERVAL = 1000
#: Domain separation of the signed message.
LABEL = b"context-ledger checkpoint v1\0"


@dataclass(frozen=True)
class Checkpoint:
    """One signed checkpoint: ``seq`` (the last link covered), ``head`` (its chain value,
    32 bytes), ``created_ns``, ``public_key`` (raw Ed25519, 32 bytes) and ``signature``."""

    ledger_id: str
    seq: int
    head: bytes
    created_ns: int
    public_key: bytes
    signature: bytes

    def message(self) -> bytes:
        """The exact bytes signed (see ``message``)."""
        return message(self.ledger_id, self.seq, self.head, self.created_ns)

    def valid(self, public_key: bytes | None = None) -> bool:
        """True when the signature verifies with ``public_key`` (default: the one stored
        with it; pass the key you trust — the hub's registered one, a --public-key file)."""
        return keys.verify_signature(public_key or self.public_key, self.signature, self.message())

    def to_dict(self) -> dict:
        return {"ledger_id": self.ledger_id, "seq": self.seq, "head": self.head.hex(),
                "created_ns": self.created_ns, "public_key": self.public_key.hex(),
                "signature": self.signature.hex()}

    @classmethod
    def from_dict(cls, d: dict) -> "Checkpoint":
        """Inverse of ``to_dict``; raises ``KeyError``/``ValueError`` on a malformed one."""
        return cls(str(d["ledger_id"]), int(d["seq"]), bytes.fromhex(d["head"]), int(d["created_ns"]),
                   bytes.fromhex(d["public_key"]), bytes.fromhex(d["signature"]))


def message(ledger_id: str, seq: int, head: bytes, created_ns: int) -> bytes:
    """Signed bytes: label, ledger id, NUL, seq (8 bytes big-endian), head (32 bytes),
    created_ns (8 bytes big-endian)."""
    return LABEL + ledger_id.encode() + b"\0" + struct.pack(">Q", seq) + head + struct.pack(">Q", created_ns)


def sign(ledger_path, ledger_id: str, seq: int, head: bytes) -> Checkpoint:
    """A new checkpoint of (seq, head) signed with the ledger's key (created if none)."""
    key = keys.signing_key(ledger_path)
    created = time.time_ns()
    return Checkpoint(ledger_id, seq, head, created, keys.public_raw(key),
                      key.sign(message(ledger_id, seq, head, created)))


def store(conn: sqlite3.Connection, cp: Checkpoint) -> None:
    """Keep a checkpoint (inside the caller's transaction; one per seq)."""
    conn.execute(
        "INSERT OR REPLACE INTO chain_checkpoints (seq, head, created_ns, public_key, signature) "
        "VALUES (?, ?, ?, ?, ?)", (cp.seq, cp.head, cp.created_ns, cp.public_key, cp.signature))


def stored(conn: sqlite3.Connection, ledger_id: str) -> list[Checkpoint]:
    """Every checkpoint of the ledger, by seq."""
    return [Checkpoint(ledger_id, r[0], bytes(r[1]), r[2], bytes(r[3]), bytes(r[4])) for r in conn.execute(
        "SELECT seq, head, created_ns, public_key, signature FROM chain_checkpoints ORDER BY seq")]


def due(before_seq: int, after_seq: int, interval: int | None = None) -> bool:
    """True when the recording order moved past a multiple of ``interval`` (default
    ``INTERVAL``) going from ``before_seq`` to ``after_seq``."""
    interval = interval or INTERVAL
    return after_seq // interval > before_seq // interval
