"""Bounded range scans that never stall on FoundationDB's 5-second limit.

A transaction may live 5 seconds (``transaction_too_old``, 1007, after 5,000,000 versions;
FoundationDB "Known limitations"). A scan that reads more than a slow link moves in 5 s
would fail with 1007 and, retried from its start, fail again until its timeout (1031):
a permanent stall. ``scan`` instead:

- reads with snapshot reads (no read conflict ranges: scans of append-only data need none);
- on 1007 after progress (keys read since the transaction began) starts a new
  transaction and **continues after the last key it returned**; on other retryable errors,
  or a 1007 with no progress, it retries through ``on_error`` (same retry budget and
  timeout, so a batch that can never be read in 5 s ends with an error, not a loop);
- starts a fresh transaction proactively after ``TXN_SECONDS`` of real time;
- stops at ``max_bytes`` (keys + values) or ``max_seconds`` (real time), after at least
  one key, so a caller's page is bounded by bytes and time, not only by count.

Consistency: keys come from several read versions. Callers use it on data that is only
appended (the versionstamped log, indexes, immutable blob chunks) and bound what they
accept by a version or position taken first.
"""

from __future__ import annotations

import time
from typing import Iterator

import fdb

from hub.connection import select_api_version

#: Real seconds after which a scan moves to a new transaction (under the 5 s limit).
TXN_SECONDS = 3.0
#: Default page bounds: bytes of keys and values, and real seconds.
PAGE_BYTES = 1_000_000
PAGE_SECONDS = 2.0
#: transaction_too_old: the transaction's read version is over 5 s old.
TRANSACTION_TOO_OLD = 1007


class ScanState:
    """Where a scan stopped: ``last_key`` (None: nothing read) and ``exhausted`` (the range
    end was reached, as opposed to a byte, time or count bound)."""

    def __init__(self) -> None:
        self.last_key: bytes | None = None
        self.exhausted = False
        self.bytes = 0


def scan(db, begin: bytes, end: bytes, *, limit: int | None = None, max_bytes: int | None = PAGE_BYTES,
         max_seconds: float | None = PAGE_SECONDS, reverse: bool = False,
         state: ScanState | None = None) -> Iterator[tuple[bytes, bytes]]:
    """Key-values in ``[begin, end)`` (descending when ``reverse``), at most ``limit``,
    bounded by ``max_bytes``/``max_seconds`` (None: unbounded), over as many read
    transactions as needed. ``state`` (optional) reports where it stopped.
    Raises ``fdb.FDBError`` for non-retryable errors (the timeout, 1031, included)."""
    select_api_version()
    state = state or ScanState()
    started = time.monotonic()
    tr = db.create_transaction()
    txn_started = started
    count = 0
    progressed = False
    while True:
        try:
            rng = tr.snapshot.get_range(begin, end, limit=0 if limit is None else limit - count,
                                        reverse=reverse, streaming_mode=fdb.StreamingMode.iterator)
            for kv in rng:
                key, value = bytes(kv.key), bytes(kv.value)
                state.last_key = key
                state.bytes += len(key) + len(value)
                count += 1
                progressed = True
                if reverse:
                    end = key
                else:
                    begin = key + b"\x00"
                yield key, value
                if limit is not None and count >= limit:
                    return
                now = time.monotonic()
                if (max_bytes is not None and state.bytes >= max_bytes) or \
                        (max_seconds is not None and now - started >= max_seconds):
                    return
                if now - txn_started >= TXN_SECONDS:
                    raise _Renew()
            state.exhausted = True
            return
        except _Renew:
            tr = db.create_transaction()
        except fdb.FDBError as exc:
            if exc.code == TRANSACTION_TOO_OLD and progressed:
                tr = db.create_transaction()
            else:
                tr.on_error(exc).wait()  # re-raises what is not retryable; else a new read version
        txn_started = time.monotonic()
        progressed = False


class _Renew(Exception):
    """Internal: move the scan to a new transaction."""
