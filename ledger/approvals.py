"""Votes on risky changes, and which risky changes no approval covers.

A *vote* is a decision carrying ``SwarmEvent.vote`` (``target_event_id``, ``verdict``
approve/reject); its rationale is the reason, its ``user_id``/``agent_id`` say who voted.
It is an ordinary event: stored, synced to the hub and ingested like every other. The
*proposal* a vote answers is the event it names: a file change, or a decision (the plan
behind changes, linked to them by their ``caused_by``).

Which votes decide a file change C (``coverage``), the rules of docs/trust.md:

1. The votes on C itself, and the votes on C's decision (``C.caused_by``): approving a
   decision approves every change it caused, rejecting it rejects them.
2. An agent's approval of its own change does not count (the voter's non-empty
   ``agent_id`` equals C's), unless ``approvals_allow_self``; a rejection always counts.
3. Per voter (``(user_id, agent_id)``), only the latest of those votes counts (event time,
   ties by event id, which is time-ordered): a voter may change their mind.
4. C is *rejected* when any voter's latest vote rejects it, *approved* when at least one
   voter's latest vote approves it and none rejects, else *unreviewed*. So a later
   rejection wins over an earlier approval, by the same or another voter; a rejection is
   lifted only by a later approval of the voter who rejected.

``audit_unapproved`` lists the risky changes (``ledger.risk``) that are not approved:
unreviewed or rejected. It reads only the local ledger (no analytics extra).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

from ledger.errors import CorruptEvent, VoteRefused
from ledger.risk import RiskRules, RiskTag

if TYPE_CHECKING:
    from ledger.records import StoredEvent
    from ledger.store import Ledger
    from schemas import SwarmEvent

__all__ = ["VoteRecord", "Coverage", "UnapprovedChange", "build_vote", "coverage", "coverage_of",
           "audit_unapproved", "VOTABLE_KINDS"]

#: Kinds of events a vote may name.
VOTABLE_KINDS = ("state_change", "decision")


@dataclass(frozen=True)
class VoteRecord:
    """One vote as the rules read it: its event id and time (ns), the event it names,
    ``verdict`` ("approve"/"reject"), who (``user_id``, ``agent_id``) and the reason."""

    event_id: str
    time_ns: int
    target: str
    verdict: str
    user_id: str
    agent_id: str
    reason: str

    @classmethod
    def of(cls, event: "SwarmEvent") -> "VoteRecord":
        return cls(event.event_id, event.timestamp, event.vote.target_event_id, event.vote.verdict.value,
                   event.user_id, event.agent_id, event.decision.rationale)

    @property
    def voter(self) -> str:
        """Who voted, for people: ``user/agent``, or whichever is set."""
        return "/".join(p for p in (self.user_id, self.agent_id) if p) or "(anonymous)"

    def to_dict(self) -> dict:
        return {"vote_id": self.event_id, "verdict": self.verdict, "target": self.target,
                "user_id": self.user_id, "agent_id": self.agent_id, "reason": self.reason}


@dataclass(frozen=True)
class Coverage:
    """The approval state of one change: ``status`` ("approved", "rejected" or
    "unreviewed") and the ``deciding`` votes (the rejections when rejected, the
    approvals when approved, each a voter's latest)."""

    status: str
    deciding: tuple[VoteRecord, ...] = ()

    def to_dict(self) -> dict:
        return {"status": self.status, "votes": [v.to_dict() for v in self.deciding]}


def build_vote(target: "SwarmEvent", verdict: str, *, reason: str, event_id: str, timestamp: int,
               user_id: str = "", agent_id: str = "", agent_role: str = "reviewer",
               session_id: str = "") -> "SwarmEvent":
    """The vote event on ``target`` (same tenant and project): a decision whose rationale
    is ``reason`` and whose ``vote`` names ``target`` with ``verdict`` ("approve" or
    "reject"); its ``input_trigger`` repeats "<verdict> <target id>" so SQL over the
    analytics columns sees votes without parsing the event JSON. Raises ``VoteRefused`` when ``target`` is not a file change or a decision,
    is a vote itself, or a rejection has no reason; ``InvalidEvent`` for bad fields."""
    from schemas.convert import parse_event

    if verdict not in ("approve", "reject"):
        raise VoteRefused(f"verdict must be 'approve' or 'reject', not {verdict!r}")
    if target.kind not in VOTABLE_KINDS:
        raise VoteRefused(f"event {target.event_id} is a {target.kind}: only a file change or a decision "
                          "can be approved or rejected")
    if target.vote is not None:
        raise VoteRefused(f"event {target.event_id} is itself a vote: vote on the change or decision it names "
                          f"({target.vote.target_event_id})")
    if verdict == "reject" and not reason.strip():
        raise VoteRefused("a rejection needs a reason (--reason): say what must change")
    data = {"event_id": event_id, "timestamp": timestamp, "tenant_id": target.tenant_id,
            "project_id": target.project_id, "user_id": user_id, "agent_id": agent_id,
            "agent_role": agent_role, "session_id": session_id,
            "decision": {"rationale": reason, "input_trigger": f"{verdict} {target.event_id}"},
            "vote": {"target_event_id": target.event_id, "verdict": verdict}}
    return parse_event(data, where="vote")


def coverage(change: "SwarmEvent", votes: Iterable[VoteRecord], *, allow_self: bool = False) -> Coverage:
    """The approval state of file change ``change`` given ``votes`` (any votes: those not
    on the change or its decision are ignored), by the rules of the module docstring."""
    relevant = {change.event_id} | ({change.caused_by} if change.caused_by else set())
    latest: dict[tuple[str, str], VoteRecord] = {}
    for v in votes:
        if v.target not in relevant:
            continue
        if v.verdict == "approve" and not allow_self and v.agent_id and v.agent_id == change.agent_id:
            continue  # an agent does not approve its own change
        key = (v.user_id, v.agent_id)
        held = latest.get(key)
        if held is None or (v.time_ns, v.event_id) > (held.time_ns, held.event_id):
            latest[key] = v
    order = sorted(latest.values(), key=lambda v: (v.time_ns, v.event_id))
    rejections = tuple(v for v in order if v.verdict == "reject")
    if rejections:
        return Coverage("rejected", rejections)
    approvals = tuple(v for v in order if v.verdict == "approve")
    return Coverage("approved", approvals) if approvals else Coverage("unreviewed")


def _vote_records(rows: Iterable["StoredEvent"]) -> list[VoteRecord]:
    out = []
    for row in rows:
        try:
            event = row.event
        except CorruptEvent:  # an unreadable vote counts as no vote (it is reported by `ledger log`)
            continue
        if event.vote is not None:
            out.append(VoteRecord.of(event))
    return out


def coverage_of(ledger: "Ledger", event: "SwarmEvent", *, allow_self: bool = False) -> Coverage:
    """``coverage`` of ``event`` (a file change) with the votes the local ledger holds on
    it and on its decision."""
    targets = [event.event_id] + ([event.caused_by] if event.caused_by else [])
    return coverage(event, _vote_records(ledger.votes(event.tenant_id, targets)), allow_self=allow_self)


@dataclass
class UnapprovedChange:
    """A risky change no approval covers: where and what (``event_id``, ``time_ns``,
    ``project_id``, ``agent_id``, ``path``, ``operation``), its risk ``tags`` and its
    ``coverage`` ("unreviewed", or "rejected" with the rejections)."""

    event_id: str
    time_ns: int
    project_id: str
    agent_id: str
    path: str
    operation: str
    caused_by: str
    tags: list[RiskTag] = field(default_factory=list)
    coverage: Coverage = Coverage("unreviewed")

    def to_dict(self) -> dict:
        from schemas.timestamps import format_timestamp_ns

        return {"event_id": self.event_id, "time": format_timestamp_ns(self.time_ns),
                "project_id": self.project_id, "agent_id": self.agent_id, "path": self.path,
                "operation": self.operation, "caused_by": self.caused_by,
                "risk": [t.to_dict() for t in self.tags], "status": self.coverage.status,
                "votes": [v.to_dict() for v in self.coverage.deciding]}


def audit_unapproved(ledger: "Ledger", *, tenant_id: str, rules: RiskRules, project_id: str | None = None,
                     since_ns: int | None = None, allow_self: bool = False) -> list[UnapprovedChange]:
    """The risky file changes of ``tenant_id`` (of ``project_id`` when given; at event
    time >= ``since_ns`` when given) that no approval covers, oldest first. Every vote of
    the tenant counts, whatever its time or project. Content for the risk checks is read
    from the local blob store (as that tenant). Raises ``StoreError``."""
    votes = _vote_records(ledger.votes(tenant_id))

    def read_blob(digest: str) -> bytes:
        return ledger.get_blob(digest, tenant_id=tenant_id)

    out: list[UnapprovedChange] = []
    for row in ledger.events(tenant_id=tenant_id, project_id=project_id, kind="state_change", since_ns=since_ns):
        try:
            event = row.event
        except CorruptEvent:
            continue
        tags = rules.tags(event, read_blob)
        if not tags:
            continue
        state = coverage(event, votes, allow_self=allow_self)
        if state.status == "approved":
            continue
        sc = event.state_change
        out.append(UnapprovedChange(event.event_id, event.timestamp, event.project_id, event.agent_id,
                                    sc.target_resource, sc.operation.value, event.caused_by, tags, state))
    return out


def record_vote(ledger: "Ledger", target_ref: str, verdict: str, *, tenant_id: str, reason: str = "",
                user_id: str = "", agent_id: str = "", agent_role: str = "reviewer",
                session_id: str = "") -> tuple["SwarmEvent", "SwarmEvent"]:
    """Resolve ``target_ref`` (an event id or unique prefix of ``tenant_id``, as ``ledger
    show`` takes it), build the vote (``build_vote``) and append it through the ledger's
    write step (durable on return). Returns ``(vote, target)``. Raises ``EventNotFound``,
    ``VoteRefused``, ``CorruptEvent``, ``StoreError``."""
    import time

    from schemas import new_event_id

    target = ledger.get(target_ref.strip().lower(), tenant_id=tenant_id).event
    vote = build_vote(target, verdict, reason=reason, event_id=new_event_id(), timestamp=time.time_ns(),
                      user_id=user_id, agent_id=agent_id, agent_role=agent_role, session_id=session_id)
    ledger.append(vote)
    return vote, target


def votes_on(ledger: "Ledger", tenant_id: str, event_id: str) -> list[VoteRecord]:
    """The votes of ``tenant_id`` naming ``event_id`` in the local ledger, oldest first."""
    return _vote_records(ledger.votes(tenant_id, [event_id]))
