"""WHEN: the one parser and resolver of moments, for every command and every history.

``replay``, ``restore``, ``diff``, ``log --since/--until``, ``audit --since/--before``
and the UI accept the same WHEN forms, resolved against a history (``replay.history``:
the local ledger or the hub), tried in this order — the first that matches wins:

1. a full event id (UUID text): the moment just after that event;
2. 4-40 hex digits: a git commit recorded in the project's events (a unique prefix),
   and/or a unique event id prefix of at least 4 hex digits (``0193f0c2-8a4``, the
   short ids ``ledger log`` prints). A value matching both a commit and an event is
   ambiguous; a hex value matching neither is an error, never a date (write
   ``2024-01-01`` to mean a date);
3. an ISO-8601 / RFC 3339 time (``2026-11-21``, ``2026-11-21T14:05``,
   ``2026-11-21 14:05:00.123456789+01:00``, ``...Z``). A time WITHOUT an offset is the
   machine's LOCAL time; a date alone is local midnight at its start;
4. a git revision when the current directory is inside a git repository — ``HEAD``,
   ``HEAD~3``, ``main``, ``v2.0``, ``@{yesterday}`` — resolved by ``git rev-parse`` to a
   commit, which must be recorded in the project (``ledger import git`` or the
   post-commit hook record commits);
5. a relative or natural-language time understood by ``dateparser`` (``"2 hours ago"``,
   ``"yesterday 14:00"``, ``"now"``), in local time, preferring the past.

A bare number that is not a recorded commit or event prefix (``12``, ``20240101``) is
refused as ambiguous instead of being read as a day of the month or as nanoseconds;
an integer never silently becomes 1970.

What a moment selects (SPEC, "Global order"): a **time** selects every change with
``timestamp <= time`` in event-time order (ties by local sequence / hub position); an
**event** or **commit** selects every change recorded up to and including it, in
recording order (local ``seq`` / hub position), which matches ``git archive <commit>``
even when commit times are not monotonic. ``EVENT^`` or ``COMMIT^`` (an id or commit
prefix followed by ``^``) is the moment just before it: what a restore undoes to.
(``HEAD^`` and other revisions keep git's meaning.)
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from dataclasses import dataclass
from typing import Protocol

from ledger.errors import MomentNotFound
from schemas.timestamps import MAX_TIMESTAMP_NS, MIN_TIMESTAMP_NS, format_timestamp_ns, parse_timestamp_ns

__all__ = [
    "Moment",
    "EventRef",
    "CommitRef",
    "Resolvable",
    "resolve",
    "parse_time_ns",
    "datetime_to_ns",
    "git_revision",
    "time_of",
    "MIN_PREFIX",
]

#: Shortest event id or commit prefix accepted (hex digits), like git's abbreviations.
MIN_PREFIX = 4
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HEX = re.compile(r"^[0-9a-f]{4,40}$")
#: A prefix (4+ characters) of canonical UUID text: hex, with '-' exactly at 8, 13, 18, 23.
_ID_PREFIX = re.compile(
    r"^(?=.{4})[0-9a-f]{1,8}(?:(?<=^.{8})-[0-9a-f]{0,4}(?:(?<=^.{13})-[0-9a-f]{0,4}"
    r"(?:(?<=^.{18})-[0-9a-f]{0,4}(?:(?<=^.{23})-[0-9a-f]{0,12})?)?)?)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_REVISION = re.compile(r"^[A-Za-z0-9_./@{}~^:+-]+$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class EventRef:
    """An event found by id or prefix: id, event time (ns), and its position in
    recording order (``order``: local ``seq`` int, or the 12-byte hub position)."""

    event_id: str
    time_ns: int
    order: int | bytes


@dataclass(frozen=True)
class CommitRef:
    """A recorded commit: full hash, latest event time of its events (ns), and the
    recording-order positions of its first and last event."""

    commit: str
    time_ns: int
    first: int | bytes
    last: int | bytes


class Resolvable(Protocol):
    """What ``resolve`` needs from a history (``replay.history``): lookups by prefix.

    ``find_events(prefix, limit)``: up to ``limit`` events of the project whose id
    starts with ``prefix`` (an event of another tenant is absent; another project's
    may be reported by ``other_project``). ``find_commits(prefix, limit)``: up to
    ``limit`` recorded commits of the project starting with ``prefix``. ``first_time_ns()``:
    the earliest event time of the project, or None when it has no events.
    """

    project: str

    def find_events(self, prefix: str, limit: int) -> list[EventRef]: ...

    def find_commits(self, prefix: str, limit: int) -> list[CommitRef]: ...

    def first_time_ns(self) -> int | None: ...

    def other_project(self, event_id: str) -> str | None: ...


@dataclass(frozen=True)
class Moment:
    """A resolved moment.

    ``kind``: "time", "event", "commit" or "before" (just before an event or commit). ``time_ns``: the moment's time in ns since
    the epoch (the cut-off for a time; the event's or the commit's latest timestamp
    otherwise). A time selects by ``until_ns``; an event or a commit selects by
    recording order up to ``until`` (inclusive), and ``since`` is the position of its
    first event (``log --since`` starts there). Positions are local ``seq`` ints or
    12-byte hub positions, depending on the history. ``order`` says which to apply.
    """

    kind: str
    text: str
    time_ns: int
    until_ns: int | None = None
    until: int | bytes | None = None
    since: int | bytes | None = None
    event_id: str = ""
    commit: str = ""

    @property
    def order(self) -> str:
        """Order to apply changes in: "time" for a time, "seq" (recording order) otherwise."""
        return "time" if self.kind == "time" else "seq"

    def describe(self) -> str:
        """One human line, e.g. ``commit 3f2a9c1d0e12 (2026-11-21T14:05:00Z)``."""
        when = format_timestamp_ns(self.time_ns)
        if self.kind == "before":
            return f"just before {self.event_id or self.commit[:12]} ({when})"
        if self.kind == "commit":
            return f"commit {self.commit[:12]} ({when})"
        if self.kind == "event":
            return f"event {self.event_id} ({when})"
        return f"time {when}"

    def to_dict(self) -> dict:
        """JSON-ready: the fields (positions as int or hex), ``time`` RFC 3339, ``order``."""
        d = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in self.__dict__.items()}
        d["time"] = format_timestamp_ns(self.time_ns)
        d["order"] = self.order
        return d


def datetime_to_ns(value: dt.datetime) -> int:
    """An aware datetime (naive = local time) as int nanoseconds since the epoch."""
    if value.tzinfo is None:
        value = value.astimezone()
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _in_range(ns: int, text: str) -> int:
    if not MIN_TIMESTAMP_NS <= ns <= MAX_TIMESTAMP_NS:
        raise MomentNotFound(
            f"{text!r} is outside the times the ledger can hold "
            "(1677-09-21 .. 2262-04-11 UTC, nanoseconds in a signed 64-bit integer)")
    return ns


def parse_time_ns(text: str, now: dt.datetime | None = None, *, natural: bool = True) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 time (with offset), an ISO-8601 time
    (naive = local time), or — with ``natural`` — a relative/natural time understood by
    ``dateparser`` relative to ``now`` (an aware datetime; default the current time).
    Returns None when ``text`` is none of these; bare integers are never times (None).
    Raises ``MomentNotFound`` for a time outside 1677-09-21 .. 2262-04-11."""
    text = text.strip()
    if not text or _INTEGER.match(text):
        return None
    try:
        return _in_range(parse_timestamp_ns(text), text)
    except (ValueError, OverflowError):
        pass
    try:
        return _in_range(datetime_to_ns(dt.datetime.fromisoformat(text)), text)
    except (ValueError, OverflowError):
        pass
    if not natural:
        return None
    import dateparser  # imported lazily: it is slow to import

    base = (now or dt.datetime.now().astimezone()).astimezone().replace(tzinfo=None)
    try:
        parsed = dateparser.parse(
            text,
            settings={"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past", "RETURN_AS_TIMEZONE_AWARE": False},
        )
    except (ValueError, OverflowError):
        return None
    return None if parsed is None else _in_range(datetime_to_ns(parsed), text)


def git_revision(text: str, cwd: str | os.PathLike | None = None) -> str | None:
    """The full commit hash ``git rev-parse`` gives for revision ``text`` in the git
    repository containing ``cwd`` (default: the current directory), or None when there
    is no repository, no git, or no such revision. Only texts shaped like revisions are
    tried (no spaces)."""
    if not _REVISION.match(text) or text.startswith("-"):
        return None
    try:
        proc = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{text}^{{commit}}"],
            cwd=cwd, capture_output=True, text=True, timeout=10,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    value = proc.stdout.strip()
    return value if proc.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", value) else None


def _previous(position: int | bytes) -> int | bytes:
    """The recording-order position just before ``position`` (a local seq, or a 12-byte
    hub position read as a big-endian number)."""
    if isinstance(position, int):
        return position - 1
    value = int.from_bytes(position, "big") - 1
    return max(value, 0).to_bytes(len(position), "big")


def _event_moment(text: str, ref: EventRef) -> Moment:
    return Moment("event", text, ref.time_ns, until=ref.order, since=ref.order, event_id=ref.event_id)


def _commit_moment(text: str, ref: CommitRef) -> Moment:
    return Moment("commit", text, ref.time_ns, until=ref.last, since=ref.first, commit=ref.commit)


def _one_commit(history: Resolvable, text: str, prefix: str) -> CommitRef | None:
    found = history.find_commits(prefix, 9)
    if len(found) > 1:
        names = ", ".join(sorted(c.commit[:12] for c in found)[:8])
        raise MomentNotFound(
            f"{text!r} matches {len(found) if len(found) < 9 else 'more than 8'} recorded commits "
            f"({names}); give more hex digits")
    return found[0] if found else None


def _one_event(history: Resolvable, text: str, prefix: str) -> EventRef | None:
    found = history.find_events(prefix, 2)
    if len(found) > 1:
        raise MomentNotFound(f"event id prefix {text!r} is ambiguous: give more characters")
    return found[0] if found else None


def _revision_moment(history: Resolvable, text: str, sha: str) -> Moment:
    ref = _one_commit(history, text, sha)
    if ref is None:
        raise MomentNotFound(
            f"{text!r} is commit {sha[:12]} in this git repository, but project "
            f"{history.project!r} has not recorded it: run `ledger import git` (or commit "
            "with the git hook installed) first")
    return _commit_moment(text, ref)


def resolve(
    history: Resolvable,
    when: str,
    *,
    now: dt.datetime | None = None,
    cwd: str | os.PathLike | None = None,
    require_events: bool = False,
) -> Moment:
    """Resolve WHEN against ``history`` (see the module docstring for the forms and
    their precedence). ``now``: the base of relative times (aware datetime, default
    the current time); ``cwd``: where git revisions are looked up (default the current
    directory). ``require_events``: refuse a time before the project's first event
    (replay and restore: an empty tree is never what was meant).

    Raises ``MomentNotFound`` saying what was tried, for ambiguous prefixes, for a bare
    number, and for an event of another project (naming it, within the tenant).
    """
    text = when.strip()
    if not text:
        raise MomentNotFound("WHEN is empty: give a time, an event id or a commit hash")
    if text.endswith("^") and len(text) > 1 and not text.startswith(("HEAD", "@")):
        inner = resolve(history, text[:-1], now=now, cwd=cwd)
        if inner.kind not in ("event", "commit"):
            raise MomentNotFound(f"{text!r}: '^' (just before) follows an event id or a commit, "
                                 f"not a {inner.kind}")
        return Moment("before", text, inner.time_ns, until=_previous(inner.since),
                      since=_previous(inner.since), event_id=inner.event_id, commit=inner.commit)
    low = text.lower()
    if _UUID.match(low):
        ref = _one_event(history, text, low)
        if ref is None:
            other = history.other_project(low)
            if other is not None:
                raise MomentNotFound(
                    f"event {low} belongs to project {other!r}, not {history.project!r}; "
                    f"pass --project {other}")
            raise MomentNotFound(f"no event {text} in project {history.project!r} (see `ledger log`)")
        return _event_moment(text, ref)
    if _HEX.match(low) or _ID_PREFIX.match(low):
        commit = _one_commit(history, text, low) if _HEX.match(low) else None
        event = _one_event(history, text, low)
        if commit is not None and event is not None:
            raise MomentNotFound(
                f"{text!r} is ambiguous: commit {commit.commit[:12]} and event {event.event_id} both "
                "start with it; give more characters")
        if commit is not None:
            return _commit_moment(text, commit)
        if event is not None:
            return _event_moment(text, event)
        sha = None if _INTEGER.match(low) else git_revision(text, cwd)  # a branch named "cafe"
        if sha is not None:
            return _revision_moment(history, text, sha)
        if not _INTEGER.match(low):
            raise MomentNotFound(
                f"no recorded commit or event of project {history.project!r} starts with {text!r} "
                "(see `ledger log`; `ledger import git` records commits). To mean a date, write "
                "it as 2024-01-01")
    if _INTEGER.match(text):
        raise MomentNotFound(
            f"{text!r} is ambiguous: a bare number is not a moment. Write a date as 2026-12-02, "
            "a time as 2026-12-02T14:05, or give an event id or commit prefix of 4+ hex digits")
    ns = parse_time_ns(text, now, natural=False)
    if ns is None:
        sha = git_revision(text, cwd)
        if sha is not None:
            return _revision_moment(history, text, sha)
        ns = parse_time_ns(text, now)
    if ns is None:
        raise MomentNotFound(
            f"cannot understand {text!r} as a moment. Give an ISO-8601 time (2026-11-21T14:05; "
            "local time unless it ends in Z or an offset), a relative time ('2 hours ago'), an "
            "event id or prefix (see `ledger log`), a recorded commit hash, or a git revision "
            "(HEAD~3, a branch or a tag) inside the repository")
    if require_events:
        first = history.first_time_ns()
        if first is None or ns < first:
            since = f"its first event is at {format_timestamp_ns(first)}" if first is not None else "it has no events"
            raise MomentNotFound(
                f"{text!r} ({format_timestamp_ns(ns)}) is before anything project {history.project!r} "
                f"recorded ({since}): nothing to restore")
    return Moment("time", text, ns, until_ns=ns)


def time_of(when: str, history: Resolvable | None = None, *, now: dt.datetime | None = None) -> int:
    """The time (ns) WHEN stands for: resolved against ``history`` when one is given (an
    event's or commit's time), else a time form only. For bounds on event time, e.g.
    ``ledger audit --since``. Raises ``MomentNotFound`` like ``resolve``."""
    if history is not None:
        return resolve(history, when, now=now).time_ns
    text = when.strip()
    if _INTEGER.match(text):
        raise MomentNotFound(
            f"{text!r} is ambiguous: a bare number is not a moment. Write a date as 2026-12-02 "
            "or a time as 2026-12-02T14:05")
    ns = parse_time_ns(text, now)
    if ns is None:
        raise MomentNotFound(
            f"cannot understand {text!r} as a time: give an ISO-8601 time (2026-11-21T14:05; local "
            "time unless it ends in Z or an offset) or a relative time ('2 hours ago')")
    return ns
