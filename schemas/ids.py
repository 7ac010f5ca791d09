"""Identifiers: UUIDv7 event ids (RFC 9562 section 5.7) and OpenTelemetry id checks.

Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
import uuid

#: Canonical lowercase UUID text with version 7 and the RFC 9562 variant (what
#: ``is_uuid7`` accepts), checked without building a ``uuid.UUID`` (validators run on
#: every recorded event). Use ``UUID7_RE.fullmatch(text)``.
UUID7_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
#: A git commit id or unique prefix: 4 to 64 lowercase hex digits (SHA-1 or SHA-256 repositories).
COMMIT_HEX_RE = re.compile(r"^[0-9a-f]{4,64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")

_lock = threading.Lock()
_last_ms = 0
_seq = 0


def new_event_id(unix_ms: int | None = None) -> str:
    """Return a new UUIDv7 as lowercase text, monotonic within this process.

    ``unix_ms`` (milliseconds since the Unix epoch) defaults to now. Within one
    millisecond the 12-bit ``rand_a`` field is a counter (RFC 9562 method 1), so
    ids made by one process sort in creation order. This is on the hot path of every
    record call, so it formats the text directly instead of building a ``uuid.UUID``.
    """
    global _last_ms, _seq
    rand = int.from_bytes(os.urandom(10), "big")
    with _lock:
        ms = time.time_ns() // 1_000_000 if unix_ms is None else int(unix_ms)
        if unix_ms is None and ms <= _last_ms:
            ms = _last_ms
            _seq += 1
            if _seq > 0xFFF:  # counter exhausted: borrow the next millisecond
                ms = _last_ms + 1
                _seq = (rand >> 64) & 0x3FF
        else:
            _seq = (rand >> 64) & 0x3FF
        if unix_ms is None:
            _last_ms = ms
        seq = _seq
    return _format(_value(ms, seq, rand & ((1 << 62) - 1)))


def _value(ms: int, rand_a: int, rand_b: int) -> int:
    return ((ms & ((1 << 48) - 1)) << 80) | (0x7 << 76) | ((rand_a & 0xFFF) << 64) | (0b10 << 62) | rand_b


def _format(value: int) -> str:
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def deterministic_event_id(unix_ms: int, *parts: str) -> str:
    """Return a UUIDv7 whose time is ``unix_ms`` and whose random bits are a
    SHA-256 of ``parts``: the same inputs always give the same id.

    Used as the idempotency key of imported history (re-importing adds nothing).
    """
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).digest()
    rand_a = int.from_bytes(digest[:2], "big") & 0xFFF
    rand_b = int.from_bytes(digest[2:10], "big") & ((1 << 62) - 1)
    return _format(_value(max(0, unix_ms), rand_a, rand_b))


def is_uuid7(text: str) -> bool:
    """True if ``text`` is canonical lowercase UUID text with version 7 (RFC 9562 variant)."""
    return isinstance(text, str) and UUID7_RE.fullmatch(text) is not None


def uuid7_unix_ms(text: str) -> int:
    """The millisecond timestamp embedded in a UUIDv7 (raises ValueError if not one)."""
    if not is_uuid7(text):
        raise ValueError(f"not a UUIDv7: {text!r}")
    return uuid.UUID(text).int >> 80


def is_trace_id(text: str) -> bool:
    """W3C Trace Context trace-id: 32 lowercase hex, not all zeros."""
    return bool(_HEX32.match(text)) and text != "0" * 32


def is_span_id(text: str) -> bool:
    """W3C Trace Context parent-id/span-id: 16 lowercase hex, not all zeros."""
    return bool(_HEX16.match(text)) and text != "0" * 16
