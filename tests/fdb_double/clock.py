"""The double's clock: monotonic seconds, shiftable from tests.

Every time-based rule of the double (the 5-second transaction lifetime behind
``transaction_too_old`` 1007, the ``timeout`` option behind ``transaction_timed_out``
1031, commit versions advancing ~1,000,000 per second, retry backoff) reads
``clock.now()`` through this module, so a test can either call ``advance(5.1)`` or
``monkeypatch.setattr(clock, "now", fake)`` instead of sleeping.  The clock is per
process: a subprocess has its own.
"""

from __future__ import annotations

import time

_offset = 0.0

VERSIONS_PER_SECOND = 1_000_000  # FDB: CLIENT/SERVER knob VERSIONS_PER_SECOND = 1e6


def now() -> float:
    """Seconds on the double's monotonic clock (time.monotonic() + test offset)."""
    return time.monotonic() + _offset


def advance(seconds: float) -> None:
    """Move this process's clock forward by ``seconds`` (tests only)."""
    global _offset
    _offset += float(seconds)


def reset() -> None:
    """Undo every ``advance``."""
    global _offset
    _offset = 0.0


def now_version() -> int:
    """The version the cluster would hand out "now": clock seconds x 1e6."""
    return int(now() * VERSIONS_PER_SECOND)
