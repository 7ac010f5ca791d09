"""Reading one field of a serialized event without decoding it (protobuf wire format,
https://protobuf.dev/programming-guides/encoding/): a varint key (field number << 3 |
wire type) before each value; wire types 0 (varint), 1 (8 bytes), 2 (length-delimited:
strings, bytes, nested messages) and 5 (4 bytes). Pure Python, no I/O, no protobuf or
pydantic import: for the rare lookups of read-only commands (why was a content
withheld?) that would otherwise load both to read one string.
"""

from __future__ import annotations

from typing import Iterator

from schemas.errors import InvalidEvent

__all__ = ["length_delimited", "state_change_withheld"]

#: ``SwarmEvent.state_change`` and ``StateChange.content_withheld`` (schemas/events.proto).
_STATE_CHANGE = 21
_CONTENT_WITHHELD = 14


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise InvalidEvent("not a valid serialized SwarmEvent: a varint runs past the end")
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return value, i
        shift += 7


def length_delimited(buf: bytes | memoryview) -> Iterator[tuple[int, memoryview]]:
    """``(field number, value)`` of every length-delimited field of one message, in wire
    order (other fields are skipped). Raises ``InvalidEvent`` for bytes that are not a
    protobuf message (a truncated value, a group or an unknown wire type)."""
    view = memoryview(buf)
    i, end = 0, len(view)
    while i < end:
        key, i = _varint(view, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(view, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            length, i = _varint(view, i)
            if i + length > end:
                raise InvalidEvent("not a valid serialized SwarmEvent: a field runs past the end")
            yield field, view[i:i + length]
            i += length
        else:
            raise InvalidEvent(f"not a valid serialized SwarmEvent: wire type {wire}")
        if i > end:
            raise InvalidEvent("not a valid serialized SwarmEvent: a field runs past the end")


def state_change_withheld(body: bytes) -> str:
    """``event.state_change.content_withheld`` of a serialized ``SwarmEvent`` ("" when the
    event is no state change or nothing was withheld): the value ``event_from_bytes``
    would give, as protobuf reads it (the last occurrence of a field wins). Raises
    ``InvalidEvent`` for bytes that are not a protobuf message or a value that is not
    UTF-8."""
    found = ""
    for field, value in length_delimited(body):
        if field == _STATE_CHANGE:
            for inner, text in length_delimited(value):
                if inner == _CONTENT_WITHHELD:
                    try:
                        found = bytes(text).decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise InvalidEvent(f"not a valid serialized SwarmEvent: {exc}") from None
    return found
