"""Named crash points: deterministic ``kill -9`` for crash tests.

Crash tests must kill a real process at a known place, whatever the machine's load (a
timer-based kill lands anywhere or nowhere on a busy CI machine). Code that has a
crash-sensitive window calls ``crash_point("name")`` there; a test starts the real
process with the environment variable ``LEDGER_CRASH_AT`` set, and the process sends
itself ``SIGKILL`` — the same signal as ``kill -9``: no ``finally``, no ``atexit``, no
flush — when it passes that point.

``LEDGER_CRASH_AT`` holds comma-separated ``name`` or ``name:N`` entries: the process
kills itself the N-th time (1-based; default 1) it passes ``name``. Unset (production),
``crash_point`` is one global lookup and a return.

Points in use (grep ``crash_point(`` for the full list): ``ingest.after_insert`` (a data
INSERT returned, more parts of the batch may follow), ``ingest.before_checkpoint`` (all
of a batch's data is in ClickHouse, its checkpoint row is not), ``ingest.after_checkpoint``;
``sync.after_blobs`` (a batch's content is on the hub, its events are not),
``sync.after_write`` (the hub committed the events, the outbox does not know yet),
``sync.after_mark``; ``blobs.after_delta`` (a delta row of a blob chain written, its
transaction not committed), ``snapshots.before_commit`` (a replay snapshot row written,
not committed).
"""

from __future__ import annotations

import os
import signal

__all__ = ["CRASH_ENV", "crash_point", "parse_crash_spec"]

#: The environment variable read once, when this module is imported.
CRASH_ENV = "LEDGER_CRASH_AT"


def parse_crash_spec(spec: str | None) -> dict[str, int]:
    """``"a:3,b"`` -> ``{"a": 3, "b": 1}``. Raises ``ValueError`` on a malformed entry
    (a count that is not a positive integer), so a typo in a test fails loudly."""
    points: dict[str, int] = {}
    for entry in (spec or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, _, count = entry.partition(":")
        n = int(count) if count else 1
        if n < 1 or not name:
            raise ValueError(f"{CRASH_ENV}: {entry!r} is not 'name' or 'name:N' with N >= 1")
        points[name] = n
    return points


_armed: dict[str, int] | None = parse_crash_spec(os.environ.get(CRASH_ENV)) or None
_passed: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Pass the named point: SIGKILL this process if ``LEDGER_CRASH_AT`` arms ``name``
    and this is the armed pass. Returns normally otherwise (always, in production)."""
    if _armed is None or name not in _armed:
        return
    count = _passed.get(name, 0) + 1
    _passed[name] = count
    if count == _armed[name]:
        os.kill(os.getpid(), signal.SIGKILL)
