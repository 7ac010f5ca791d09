"""Event time: int nanoseconds since the Unix epoch (UTC), as RFC 3339 text in JSON.

``parse_timestamp_ns`` accepts RFC 3339 text (with an offset, up to nanoseconds), an
aware ``datetime`` or int nanoseconds; ``format_timestamp_ns`` writes RFC 3339 UTC text
with the shortest fraction that keeps every nanosecond. No I/O.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$"
)


#: Event times the ledger holds: nanoseconds in a signed 64-bit integer (SQLite INTEGER),
#: 1677-09-21T00:12:43Z .. 2262-04-11T23:47:16Z.
MIN_TIMESTAMP_NS, MAX_TIMESTAMP_NS = -(2**63), 2**63 - 1


def _in_range(ns: int) -> int:
    if not MIN_TIMESTAMP_NS <= ns <= MAX_TIMESTAMP_NS:
        raise ValueError("timestamp is outside the times the ledger can hold (1677-09-21 .. 2262-04-11 UTC: "
                         "nanoseconds in a signed 64-bit integer)")
    return ns


def parse_timestamp_ns(value: Any) -> int:
    """Convert RFC 3339 text, an aware datetime or int nanoseconds to int nanoseconds (UTC).

    Raises ``ValueError`` for naive datetimes, text without an offset, a time outside
    ``MIN_TIMESTAMP_NS``..``MAX_TIMESTAMP_NS``, or anything else.
    """
    if isinstance(value, bool):
        raise ValueError("timestamp must be RFC 3339 text or integer nanoseconds")
    if isinstance(value, int):
        return _in_range(value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise ValueError("timestamp datetime must be timezone-aware")
        try:
            delta = value - _EPOCH
        except OverflowError:
            raise ValueError("timestamp is outside the times the ledger can hold (1677-09-21 .. 2262-04-11 UTC)") from None
        return _in_range((delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000)
    if isinstance(value, str):
        m = _RFC3339.match(value.strip())
        if not m:
            raise ValueError(
                f"timestamp {value!r} is not RFC 3339 (like 2026-11-21T12:00:00.123456789Z)"
            )
        date, clock, frac, offset = m.groups()
        offset = "+00:00" if offset in ("Z", "z") else offset
        try:
            base = _dt.datetime.fromisoformat(f"{date}T{clock}{offset}")
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"timestamp {value!r} is not a valid time: {exc}") from None
        nanos = int((frac or "0").ljust(9, "0"))
        return _in_range(parse_timestamp_ns(base) + nanos)
    raise ValueError("timestamp must be RFC 3339 text or integer nanoseconds")


_NS = 1_000_000_000
_DAYS: dict[int, str] = {}
_MAX_CACHED_DAYS = 100_000
_2D = tuple(f"{i:02d}" for i in range(60))


def format_timestamp_parts(seconds: int, nanos: int) -> str:
    """RFC 3339 UTC text of a protobuf Timestamp (``seconds``, ``nanos``) with 0, 3, 6 or 9
    fraction digits (the protobuf JSON mapping of google.protobuf.Timestamp).

    On the ingest hot path: the date part is cached per day and the clock is built from a
    table of two-digit strings (several times faster than ``strftime``)."""
    if not 0 <= nanos < _NS:
        seconds, nanos = divmod(seconds * _NS + nanos, _NS)
    day, clock = divmod(seconds, 86400)
    date = _DAYS.get(day)
    if date is None:
        date = (_EPOCH + _dt.timedelta(days=day)).strftime("%Y-%m-%d")
        if len(_DAYS) < _MAX_CACHED_DAYS:
            _DAYS[day] = date
    hours, rest = divmod(clock, 3600)
    minutes, secs = divmod(rest, 60)
    base = f"{date}T{_2D[hours]}:{_2D[minutes]}:{_2D[secs]}"
    if nanos == 0:
        return base + "Z"
    if nanos % 1_000_000 == 0:
        return f"{base}.{nanos // 1_000_000:03d}Z"
    if nanos % 1000 == 0:
        return f"{base}.{nanos // 1000:06d}Z"
    return f"{base}.{nanos:09d}Z"


def format_timestamp_ns(ns: int) -> str:
    """Format int nanoseconds since the epoch as RFC 3339 UTC text (see
    ``format_timestamp_parts``)."""
    return format_timestamp_parts(*divmod(ns, _NS))
