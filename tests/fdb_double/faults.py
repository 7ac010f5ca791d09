"""Fault injection: what a test can make the double do wrong, and the decision rule.

A ``FaultPlan`` is stored *in the store* (memory or SQLite), so it reaches every process
using the same cluster file and its counters (``seen``/``fired``) are shared and updated
atomically.  Decisions are deterministic for a given seed: the draw for fault ``i`` at
its ``n``-th matching operation is ``Random(f"{seed}/{i}/{n}").random()``, independent of
which process performs the operation.

Operations the double consults the plan for:

- ``"grv"``    obtaining a read version (first read of a transaction, or commit of a
               blind-write transaction);
- ``"read"``   get / get_key / get_range reaching the store (RYW-cached reads do not);
- ``"commit"`` a commit that has mutations or write conflict ranges (read-only commits
               never contact the cluster, as upstream).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from typing import Iterable, Optional, Sequence

from . import errors

OPS = ("grv", "read", "commit", "any")


@dataclass
class Fault:
    """One injected fault.

    code:        FDB error code returned by the matching operation (e.g. 1020, 1021,
                 1007, 1031, 1037).  Ignored when ``unreachable`` is true.
    on:          "commit" | "read" | "grv" | "any".
    count:       how many times it fires (None = every time).
    probability: chance of firing at each matching operation (after ``after``).
    after:       let this many matching operations through first.
    applied:     commit faults only: the commit IS applied (durable, versionstamp
                 assigned) and then the error is reported -- the ambiguous outcome of
                 commit_unknown_result (1021) or a timeout during commit (1031).
    key_prefix:  only operations touching a key/range that intersects this prefix.
    unreachable: the cluster is unreachable: matching operations hang (their futures
                 stay pending) until the transaction's timeout fires (1031) or the
                 fault is cleared, then proceed normally. ``count``/``probability``
                 do not apply; without a timeout the caller hangs, as with a dead cluster.
    """

    code: Optional[int] = None
    on: str = "commit"
    count: Optional[int] = 1
    probability: float = 1.0
    after: int = 0
    applied: bool = False
    key_prefix: Optional[bytes] = None
    unreachable: bool = False
    seen: int = 0
    fired: int = 0

    def __post_init__(self):
        if self.on not in OPS:
            raise ValueError(f"Fault.on must be one of {OPS}, not {self.on!r}")
        if not self.unreachable and self.code is None:
            raise ValueError("a Fault needs an error code unless unreachable=True")
        if self.applied and self.on != "commit":
            raise ValueError("applied=True only makes sense for commit faults")

    # -- convenience constructors ------------------------------------------------------
    @classmethod
    def not_committed(cls, count: Optional[int] = 1, **kw) -> "Fault":
        """Commit fails with not_committed (1020), nothing applied."""
        return cls(code=errors.NOT_COMMITTED, on="commit", count=count, **kw)

    @classmethod
    def commit_unknown_result(cls, applied: bool, count: Optional[int] = 1, **kw) -> "Fault":
        """Commit reports commit_unknown_result (1021); ``applied`` says whether it took effect."""
        return cls(code=errors.COMMIT_UNKNOWN_RESULT, on="commit", count=count, applied=applied, **kw)

    @classmethod
    def too_old(cls, on: str = "read", count: Optional[int] = 1, **kw) -> "Fault":
        """transaction_too_old (1007) on reads or commit."""
        return cls(code=errors.TRANSACTION_TOO_OLD, on=on, count=count, **kw)

    @classmethod
    def timed_out(cls, on: str = "commit", count: Optional[int] = 1, **kw) -> "Fault":
        """transaction_timed_out (1031): the transaction is cancelled as by its timeout."""
        return cls(code=errors.TRANSACTION_TIMED_OUT, on=on, count=count, **kw)

    @classmethod
    def unreachable_cluster(cls, on: str = "any", **kw) -> "Fault":
        """Dead cluster: operations hang until timeout (1031) or until the fault is cleared."""
        return cls(on=on, unreachable=True, count=None, **kw)

    def to_json(self) -> dict:
        d = asdict(self)
        d["key_prefix"] = self.key_prefix.hex() if self.key_prefix is not None else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Fault":
        d = dict(d)
        if d.get("key_prefix") is not None:
            d["key_prefix"] = bytes.fromhex(d["key_prefix"])
        return cls(**d)


@dataclass
class FaultPlan:
    """An ordered list of faults plus the seed for probabilistic ones."""

    faults: list = field(default_factory=list)
    seed: int = 0

    def dumps(self) -> str:
        return json.dumps({"seed": self.seed, "faults": [f.to_json() for f in self.faults]})

    @classmethod
    def loads(cls, text: Optional[str]) -> "FaultPlan":
        if not text:
            return cls()
        d = json.loads(text)
        return cls(faults=[Fault.from_json(f) for f in d["faults"]], seed=d["seed"])


# -- decisions ---------------------------------------------------------------------------
Range = tuple  # (begin: bytes, end: bytes)


def _matches(fault: Fault, op: str, ranges: Sequence[Range]) -> bool:
    if fault.on != "any" and fault.on != op:
        return False
    if fault.key_prefix is None:
        return True
    p = fault.key_prefix
    end = _strinc(p)
    return any(b < end and p < e for b, e in ranges)


def _strinc(p: bytes) -> bytes:
    p = p.rstrip(b"\xff")
    return p[:-1] + bytes([p[-1] + 1]) if p else b"\xff\xff\xff"


@dataclass
class Decision:
    """What to do with one operation: nothing, hang, or fail with ``code``."""

    code: Optional[int] = None
    applied: bool = False
    unreachable: bool = False


def is_unreachable(plan: FaultPlan, op: str, ranges: Iterable[Range]) -> bool:
    """True if an ``unreachable`` fault currently covers ``op`` (no counters change)."""
    ranges = list(ranges)
    return any(f.unreachable and _matches(f, op, ranges) for f in plan.faults)


def decide(plan: FaultPlan, op: str, ranges: Iterable[Range]) -> tuple[Decision, bool]:
    """Decide the fate of operation ``op`` touching ``ranges``; mutates counters in ``plan``.

    Returns ``(decision, changed)``; ``changed`` tells the store to persist the plan.
    """
    ranges = list(ranges)
    if is_unreachable(plan, op, ranges):
        return Decision(unreachable=True), False
    changed = False
    for i, f in enumerate(plan.faults):
        if f.unreachable or not _matches(f, op, ranges):
            continue
        f.seen += 1
        changed = True
        if f.seen <= f.after or (f.count is not None and f.fired >= f.count):
            continue
        if f.probability < 1.0 and random.Random(f"{plan.seed}/{i}/{f.seen}").random() >= f.probability:
            continue
        f.fired += 1
        return Decision(code=f.code, applied=f.applied), True
    return Decision(), changed
