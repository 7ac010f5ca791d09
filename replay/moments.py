"""Resolve a ``--at WHEN`` value to a moment of a project's history.

WHEN can be, tried in this order (the first that matches wins):

1. a full event id (UUID text): the moment just after that event was recorded;
2. 4-40 hex characters that prefix exactly one git commit recorded in the project's
   events (``ledger import git``): the moment just after that commit. A hex value
   that matches a recorded commit is a commit even if it could also be read as a date
   (``20240101``); write ``2024-01-01`` to mean the date;
3. an event id prefix of 8 or more characters that matches exactly one event;
4. an ISO-8601 / RFC 3339 time (``2026-11-21``, ``2026-11-21T14:05``,
   ``2026-11-21 14:05:00.123456789+01:00``, ``...Z``). A time WITHOUT an offset is the
   machine's LOCAL time; a date alone is local midnight at its start;
5. a relative or natural-language time understood by ``dateparser`` (``"2 hours ago"``,
   ``"yesterday 14:00"``, ``"now"``), also in local time, preferring the past.

Several commits or events sharing a prefix is an error listing them, never a guess.

A time moment selects, per SPEC, every change with ``timestamp <= time`` in event-time
order (ties by local sequence / hub versionstamp). An event or commit moment selects
every change recorded up to and including it, in recording order (``seq``): this
matches ``git archive <commit>`` even when commit times are not monotonic.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ledger.errors import EventNotFound, MomentNotFound
from ledger.store import Ledger
from schemas import format_timestamp_ns, parse_timestamp_ns

__all__ = ["Moment", "resolve_moment", "datetime_to_ns"]

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HEX = re.compile(r"^[0-9a-f]{4,40}$")
_ID_PREFIX = re.compile(r"^[0-9a-f]{8}[0-9a-f-]{0,28}$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Moment:
    """A resolved moment.

    ``kind``: "time", "event" or "commit". ``time_ns``: the moment's time in ns since
    the epoch (the cut-off for a time; the event's or the commit's latest timestamp
    otherwise). ``until_ns`` (time moments) or ``until_seq``/``from_seq`` (event and
    commit moments: the local sequence range of that event/commit) say what to select;
    ``order`` is "time" or "seq" accordingly.
    """

    kind: str
    text: str
    time_ns: int
    until_ns: int | None = None
    until_seq: int | None = None
    from_seq: int | None = None
    event_id: str = ""
    commit: str = ""

    @property
    def order(self) -> str:
        """Order to apply changes in: "time" for a time, "seq" (recording order) otherwise."""
        return "time" if self.kind == "time" else "seq"

    def describe(self) -> str:
        """One human line, e.g. ``commit 3f2a9c1d0e12 (2026-11-21T14:05:00Z)``."""
        when = format_timestamp_ns(self.time_ns)
        if self.kind == "commit":
            return f"commit {self.commit[:12]} ({when})"
        if self.kind == "event":
            return f"event {self.event_id} ({when})"
        return f"time {when}"

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["time"] = format_timestamp_ns(self.time_ns)
        d["order"] = self.order
        return d


def datetime_to_ns(value: dt.datetime) -> int:
    """An aware datetime (naive = local time) as int nanoseconds since the epoch."""
    if value.tzinfo is None:
        value = value.astimezone()
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _event_moment(ledger: Ledger, tenant: str, project: str, text: str, key: str) -> Moment:
    stored = ledger.get(key)  # raises EventNotFound
    if stored.tenant_id != tenant or stored.project_id != project:
        raise MomentNotFound(
            f"event {stored.event_id} belongs to project {stored.project_id!r} of tenant "
            f"{stored.tenant_id!r}, not {project!r}; pass --project {stored.project_id}"
        )
    return Moment("event", text, stored.time_ns, until_seq=stored.seq, from_seq=stored.seq,
                  event_id=stored.event_id)


def _commit_moment(ledger: Ledger, tenant: str, project: str, text: str, prefix: str) -> Moment | None:
    found = ledger.commits(tenant, project, prefix)
    if not found:
        return None
    if len(found) > 1:
        names = ", ".join(sorted(c[0][:12] for c in found)[:8])
        raise MomentNotFound(
            f"{text!r} matches {len(found)} recorded commits ({names}{', ...' if len(found) > 8 else ''}); "
            "give more hex digits"
        )
    commit, last_seq, last_ns = found[0]
    first = next(ledger.events(tenant_id=tenant, project_id=project, commit=commit, order="seq", limit=1))
    return Moment("commit", text, last_ns, until_seq=last_seq, from_seq=first.seq, commit=commit)


def _parse_time_ns(text: str, now: dt.datetime | None) -> int | None:
    """Nanoseconds of an RFC 3339 / ISO-8601 / relative time, or None."""
    try:
        return parse_timestamp_ns(text)  # RFC 3339 with an offset, up to nanoseconds
    except ValueError:
        pass
    try:
        return datetime_to_ns(dt.datetime.fromisoformat(text))  # naive = local time
    except ValueError:
        pass
    import dateparser  # imported lazily: it is slow to import

    base = (now or dt.datetime.now().astimezone()).astimezone().replace(tzinfo=None)
    parsed = dateparser.parse(
        text,
        settings={"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past", "RETURN_AS_TIMEZONE_AWARE": False},
    )
    return None if parsed is None else datetime_to_ns(parsed)


def resolve_moment(
    ledger: Ledger, tenant: str, project: str, when: str, now: dt.datetime | None = None
) -> Moment:
    """Resolve WHEN (see the module doc for the forms and their precedence).

    ``now`` (an aware datetime, default the current time) is the base of relative
    times. Raises ``MomentNotFound`` saying what was tried (also for ambiguous
    prefixes and events of another project).
    """
    text = when.strip()
    if not text:
        raise MomentNotFound("--at is empty: give a time, an event id or a commit hash")
    low = text.lower()
    tried: list[str] = []
    if _UUID.match(low):
        try:
            return _event_moment(ledger, tenant, project, text, low)
        except EventNotFound as exc:
            raise MomentNotFound(f"no event {text} in this ledger (see `ledger log`)") from exc
    if _HEX.match(low):
        tried.append("a recorded commit hash")
        moment = _commit_moment(ledger, tenant, project, text, low)
        if moment is not None:
            return moment
    if _ID_PREFIX.match(low):
        tried.append("an event id prefix")
        try:
            return _event_moment(ledger, tenant, project, text, low)
        except EventNotFound as exc:
            if "ambiguous" in str(exc):
                raise MomentNotFound(str(exc)) from exc
    if re.fullmatch(r"-?\d+", text) and len(text) > 8:
        # bare integers are neither dates nor commits we know; refuse rather than guess
        tried.append("a time")
    else:
        tried.append("an ISO-8601 or relative time")
        ns = _parse_time_ns(text, now)
        if ns is not None:
            return Moment("time", text, ns, until_ns=ns)
    raise MomentNotFound(
        f"cannot understand {text!r} as a moment (tried {', '.join(tried)}). Give an ISO-8601 "
        "time (2026-11-21T14:05; local time unless it ends in Z or an offset), a relative "
        "time ('2 hours ago'), an event id (see `ledger log`) or a commit hash recorded by "
        "`ledger import git`"
    )
