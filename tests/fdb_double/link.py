"""Simulated link, transaction-size observer and size cap (test-only knobs of the double).

All three live in the *store*, like the fault plan, so they reach every process that
opens the same cluster file (subprocess CLI tests obey the parent's link and report
their commits to the parent's observer).

Link (latency and bandwidth model)
----------------------------------
``Link(read_seconds_per_byte, write_seconds_per_byte, read_latency_s, commit_latency_s,
real_sleep)``; ``Link.bandwidth(1_000_000)`` is a 1 MB/s link (1e-6 s per byte both ways).
Each transaction *attempt* accumulates simulated seconds:

- every read that reaches storage (get, get_key, each get_range batch):
  ``read_latency_s`` + ``read_seconds_per_byte`` x bytes returned (value for get, key for
  get_key, keys + values of the batch for get_range); reads answered from the
  transaction's own writes cost nothing;
- the commit: ``commit_latency_s`` + ``write_seconds_per_byte`` x the commit request size
  (``commit_size``: mutations + conflict ranges, as counted for 2101).

A transaction's *age* = real elapsed time since its read version (the double's clock) +
its simulated seconds.  As on a real cluster (5,000,000 versions = 5 s,
MAX_READ/WRITE_TRANSACTION_LIFE_VERSIONS): a read *issued* at an age over 5 s fails with
transaction_too_old (1007) -- the storage server checks the read version when the request
arrives, so the transfer time of a read ages the *following* operations; a commit fails
with 1007 when the age *after* sending the request (latency + upload) is over 5 s -- the
resolver rejects a read version older than commit version - 5 s.  1007 is retryable:
``on_error`` starts a new attempt (new read version, simulated time back to 0).  The
simulated time also counts toward the ``timeout`` option (1031), which is measured from
the transaction's creation across retries.  Nothing sleeps unless ``real_sleep=True``,
which sleeps for real instead of accumulating (the time then passes for everyone).

Size accounting (``commit_size``, what 2101, the observer and the cap use)
---------------------------------------------------------------------------
FoundationDB's ``Transaction::getSize()`` (NativeAPI, checked in ``commitMutations``)::

    mutations.expectedSize() + read_conflict_ranges.expectedSize() + write_conflict_ranges.expectedSize()

where ``VectorRef<T>::expectedSize()`` is ``sizeof(T) x count`` + the bytes of the keys
and values: per mutation ``MUTATION_REF_BYTES`` + len(param1) + len(param2) (set: key,
value; clear: begin, end -- a single-key clear is [key, key+\\x00); atomic op and
versionstamped key/value: key, operand incl. the 4-byte offset), per conflict range
``KEY_RANGE_REF_BYTES`` + len(begin) + len(end), conflict ranges coalesced as the RYW
layer sends them.  A versionstamped key adds **no** client-side write conflict range: the
commit proxy adds ``singleKeyRange(final key)`` after the client's 2101 check, so it is not
counted (and ``next_write_no_write_conflict_range`` cannot remove it).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Optional


@dataclass(frozen=True)
class Link:
    """Latency and bandwidth of the simulated client <-> cluster link (all zero: instant)."""

    read_seconds_per_byte: float = 0.0
    write_seconds_per_byte: float = 0.0
    read_latency_s: float = 0.0
    commit_latency_s: float = 0.0
    real_sleep: bool = False

    def __post_init__(self):
        for name in ("read_seconds_per_byte", "write_seconds_per_byte", "read_latency_s", "commit_latency_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"Link.{name} must be >= 0")

    @classmethod
    def bandwidth(cls, bytes_per_second: float, *, read_latency_s: float = 0.0,
                  commit_latency_s: float = 0.0, real_sleep: bool = False) -> "Link":
        """A symmetric link of ``bytes_per_second`` (1_000_000 = 1 MB/s = 1e-6 s/byte)."""
        if bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be > 0")
        per_byte = 1.0 / float(bytes_per_second)
        return cls(read_seconds_per_byte=per_byte, write_seconds_per_byte=per_byte,
                   read_latency_s=read_latency_s, commit_latency_s=commit_latency_s,
                   real_sleep=real_sleep)

    def read_seconds(self, nbytes: int) -> float:
        return nbytes * self.read_seconds_per_byte

    def commit_seconds(self, nbytes: int) -> float:
        return self.commit_latency_s + nbytes * self.write_seconds_per_byte

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: Optional[dict]) -> "Link":
        return cls(**d) if d else cls()


INSTANT = Link()


@dataclass(frozen=True)
class Settings:
    """The test-only knobs a store holds besides data and faults."""

    link: Link = INSTANT
    size_cap: Optional[int] = None   # bytes; a commit whose commit_size exceeds it fails loudly

    def dumps(self) -> str:
        return json.dumps({"link": self.link.to_json(), "size_cap": self.size_cap})

    @classmethod
    def loads(cls, text: Optional[str]) -> "Settings":
        if not text:
            return cls()
        d = json.loads(text)
        return cls(link=Link.from_json(d.get("link")), size_cap=d.get("size_cap"))


@dataclass
class TransactionStats:
    """What the observer saw on one cluster file since the last reset.

    attempts:            commits that were sized (every commit with mutations or write
                         conflict ranges; read-only commits never reach the cluster),
                         whatever their outcome (applied, 2101, 1020, 1007, injected fault,
                         over the cap).
    commits:             commits applied to the store (including injected
                         ``applied=True`` faults, which are durable).
    max_attempted_bytes: largest ``commit_size`` among attempts.
    max_committed_bytes: largest ``commit_size`` among applied commits.
    over_cap:            attempts whose size exceeded the cap in force (they failed with
                         ``TransactionSizeCapExceeded``, or 2101 if also over 10 MB).
    """

    attempts: int = 0
    commits: int = 0
    max_attempted_bytes: int = 0
    max_committed_bytes: int = 0
    over_cap: int = 0

    def noted(self, size: int, committed: bool, over_cap: bool = False) -> "TransactionStats":
        """A copy updated with one attempt."""
        return TransactionStats(
            attempts=self.attempts + 1,
            commits=self.commits + (1 if committed else 0),
            max_attempted_bytes=max(self.max_attempted_bytes, size),
            max_committed_bytes=max(self.max_committed_bytes, size) if committed else self.max_committed_bytes,
            over_cap=self.over_cap + (1 if over_cap else 0),
        )


@dataclass(frozen=True)
class CommitSize:
    """``commit_size`` of a transaction, split as FoundationDB's LargeTransaction trace does."""

    mutations: int
    read_conflicts: int
    write_conflicts: int

    @property
    def total(self) -> int:
        return self.mutations + self.read_conflicts + self.write_conflicts

    def describe(self) -> str:
        return (f"{self.total:,} bytes (mutations {self.mutations:,} + read conflict ranges "
                f"{self.read_conflicts:,} + write conflict ranges {self.write_conflicts:,})")


class TransactionSizeCapExceeded(AssertionError):
    """Test-only: a commit exceeded the size cap set with ``set_size_cap`` (never a real FDB error).

    Raised from ``tr.commit()`` (so ``@fdb.transactional`` does not retry it) and counted
    in ``TransactionStats.over_cap`` (so a test sees it even if the code under test
    swallowed the exception, e.g. in a subprocess).
    """

    def __init__(self, size: CommitSize, cap: int, cluster_file: str = ""):
        self.size = size.total
        self.cap = cap
        self.breakdown = size
        where = f" on {cluster_file}" if cluster_file else ""
        super().__init__(f"fdb double: a transaction of {size.describe()} exceeds the test's size cap of "
                         f"{cap:,} bytes{where}")


__all__ = ["CommitSize", "INSTANT", "Link", "Settings", "TransactionSizeCapExceeded", "TransactionStats"]
