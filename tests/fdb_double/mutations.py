"""Atomic operations and versionstamp substitution, as the storage server applies them.

Semantics follow the MutationType descriptions in ``fdb/fdboptions.py`` (generated from
upstream ``fdb.options``) for API version >= 510 (``min``/``and`` are the V2 forms:
a missing value stores ``param``) and >= 520 (versionstamp position is the trailing
4-byte little-endian offset).  A result of ``None`` means "the key is cleared".
"""

from __future__ import annotations

import struct
from typing import Callable, Optional

from .errors import CLIENT_INVALID_OPERATION, INVALID_MUTATION_TYPE, FDBErr
from .limits import VALUE_SIZE_LIMIT

# MutationType codes (fdboptions.MutationType)
ADD = 2
BIT_AND = 6
BIT_OR = 7
BIT_XOR = 8
APPEND_IF_FITS = 9
MAX = 12
MIN = 13
SET_VERSIONSTAMPED_KEY = 14
SET_VERSIONSTAMPED_VALUE = 15
BYTE_MIN = 16
BYTE_MAX = 17
COMPARE_AND_CLEAR = 20

Value = Optional[bytes]


def _fit(existing: Value, n: int) -> bytes:
    """Existing value zero-extended or truncated to ``n`` bytes (None counts as empty)."""
    existing = existing or b""
    return existing[:n].ljust(n, b"\x00")


def _le(b: bytes) -> int:
    return int.from_bytes(b, "little")


def _add(existing: Value, param: bytes) -> Value:
    n = len(param)
    total = (_le(_fit(existing, n)) + _le(param)) % (1 << (8 * n)) if n else 0
    return total.to_bytes(n, "little")


def _bitwise(op: Callable[[int, int], int], missing_is_param: bool):
    def apply(existing: Value, param: bytes) -> Value:
        if existing is None and missing_is_param:
            return param
        base = _fit(existing, len(param))
        return bytes(op(a, b) for a, b in zip(base, param))
    return apply


def _max(existing: Value, param: bytes) -> Value:
    base = _fit(existing, len(param))
    return param if _le(param) > _le(base) else base


def _min(existing: Value, param: bytes) -> Value:
    if existing is None:
        return param
    base = _fit(existing, len(param))
    return param if _le(param) < _le(base) else base


def _append_if_fits(existing: Value, param: bytes) -> Value:
    if existing is None:
        return param
    joined = existing + param
    return joined if len(joined) <= VALUE_SIZE_LIMIT else existing


def _byte_min(existing: Value, param: bytes) -> Value:
    return param if existing is None else min(existing, param)


def _byte_max(existing: Value, param: bytes) -> Value:
    return param if existing is None else max(existing, param)


def _compare_and_clear(existing: Value, param: bytes) -> Value:
    return None if existing == param else existing


ATOMIC_OPS: dict[int, Callable[[Value, bytes], Value]] = {
    ADD: _add,
    BIT_AND: _bitwise(lambda a, b: a & b, missing_is_param=True),
    BIT_OR: _bitwise(lambda a, b: a | b, missing_is_param=False),
    BIT_XOR: _bitwise(lambda a, b: a ^ b, missing_is_param=False),
    APPEND_IF_FITS: _append_if_fits,
    MAX: _max,
    MIN: _min,
    BYTE_MIN: _byte_min,
    BYTE_MAX: _byte_max,
    COMPARE_AND_CLEAR: _compare_and_clear,
}

VERSIONSTAMP_OPS = frozenset({SET_VERSIONSTAMPED_KEY, SET_VERSIONSTAMPED_VALUE})


def check_opcode(opcode: int) -> None:
    """Raise invalid_mutation_type (2018) for codes that are not atomic ops."""
    if opcode not in ATOMIC_OPS and opcode not in VERSIONSTAMP_OPS:
        raise FDBErr(INVALID_MUTATION_TYPE)


def apply_atomic(opcode: int, existing: Value, param: bytes) -> Value:
    """New value of a key after atomic op ``opcode`` with ``param`` (None = cleared)."""
    return ATOMIC_OPS[opcode](existing, param)


def versionstamp_position(data: bytes) -> int:
    """Offset encoded in the trailing 4 little-endian bytes of ``data`` (API >= 520).

    Raises client_invalid_operation (2000) when there is no room for a 10-byte stamp
    at that offset, as ``ReadYourWritesTransaction::atomicOp`` does.
    """
    if len(data) < 4:
        raise FDBErr(CLIENT_INVALID_OPERATION)
    (pos,) = struct.unpack("<i", data[-4:])
    if pos < 0 or pos + 10 > len(data) - 4:
        raise FDBErr(CLIENT_INVALID_OPERATION)
    return pos


def substitute_versionstamp(data: bytes, stamp: bytes) -> bytes:
    """Drop the 4-byte offset suffix and write the 10-byte ``stamp`` at that offset."""
    pos = versionstamp_position(data)
    body = data[:-4]
    return body[:pos] + stamp + body[pos + 10:]


def make_versionstamp(commit_version: int, batch_order: int = 0) -> bytes:
    """10-byte versionstamp: 8-byte big-endian commit version + 2-byte big-endian batch order."""
    return struct.pack(">QH", commit_version, batch_order)
