"""How events are shown: one JSON shape and one summary line, for the CLI and the UI.

``entry_dict`` is THE JSON form of an event in a listing (``ledger log --json``, ``ledger
show --json``, the web UI's API), whatever history it came from: the event's own fields
(``SwarmEvent.to_dict``) plus

* ``time``: the event time, RFC 3339 UTC;
* ``seq``: the local sequence number (null for an event read from the hub);
* ``recorded_at``: when this laptop stored it, RFC 3339 (null from the hub);
* ``hub_position``: 24 hex digits (10-byte FoundationDB versionstamp + 2-byte index) once
  the hub has it, else null; ``hub_versionstamp``: its first 20 hex digits (the commit);
* ``sync_error``: why the hub refused it (local events only), else null;
* ``shared_from``: where a local event was imported from (another ledger or a bundle,
  ``syncer.shared``), null for an event recorded here or read from the hub.

A vote (a decision with ``vote``) carries its target and verdict in the event's own
``vote`` field; risk tags are added by the CLI (``ledger.risk``: they depend on the
configuration, not only on the event).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from replay.history import LogEntry, local_entry
from schemas.enums import FileMode, Operation
from schemas.timestamps import format_timestamp_ns

if TYPE_CHECKING:  # the models load with the first event decoded, not with `printable`
    from schemas import SwarmEvent

__all__ = ["entry_dict", "event_dict", "summary_line", "first_line", "printable", "change_patch"]

#: Longest summary line (characters).
SUMMARY_CHARS = 120


def entry_dict(entry: LogEntry) -> dict[str, Any]:
    """The JSON form of a listed event (see the module docstring); an event whose stored
    body cannot be read is ``{"event_id", "error", ...}`` with the row's fields."""
    d = entry.event.to_dict() if entry.event is not None else {"event_id": entry.event_id, "error": entry.error}
    d["time"] = format_timestamp_ns(entry.time_ns)
    d["seq"] = entry.seq
    d["recorded_at"] = format_timestamp_ns(entry.recorded_ns) if entry.recorded_ns is not None else None
    position = entry.hub_position
    d["hub_position"] = position.hex() if position else None
    d["hub_versionstamp"] = position[:10].hex() if position else None
    d["sync_error"] = entry.sync_error
    d["shared_from"] = entry.shared_from
    return d


def event_dict(stored) -> dict[str, Any]:
    """``entry_dict`` of a ``ledger.StoredEvent``."""
    return entry_dict(local_entry(stored))


def first_line(text: str, limit: int = SUMMARY_CHARS) -> str:
    """The first non-empty line of ``text``, cut to ``limit`` characters, with control
    characters shown escaped (a path or message never reaches a terminal raw)."""
    stripped = text.strip()
    line = stripped.splitlines()[0] if stripped else ""
    return printable(line)[:limit]


def printable(text: str) -> str:
    """``text`` with control characters (newlines, escapes, DEL, C1) shown as ``\\xNN``
    escapes, so printing it cannot move the cursor or recolour a terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def summary_line(event: SwarmEvent) -> str:
    """What an event is about, in one line (path and operation, or the text's first line)."""
    kind = event.kind
    if kind == "state_change":
        sc = event.state_change
        if sc.operation == Operation.RENAME:
            return printable(f"rename {sc.previous_resource} -> {sc.target_resource}")
        mode = f" ({sc.file_mode.value})" if sc.file_mode in (FileMode.EXECUTABLE, FileMode.SYMLINK) else ""
        withheld = f" [content withheld: {sc.content_withheld}]" if sc.content_withheld else ""
        return printable(f"{sc.operation.value} {sc.target_resource}{mode}{withheld}")
    if kind == "decision" and event.vote is not None:
        reason = first_line(event.decision.rationale)
        return printable(f"{event.vote.verdict.value} {event.vote.target_event_id}") + (f": {reason}" if reason else "")
    if kind == "decision":
        text = event.decision.rationale
    elif kind == "message":
        m = event.message
        text = f"{m.sender} -> {', '.join(m.recipients) or '*'}: {m.content}"
    elif kind == "signal":
        s = event.signal
        text = f"{s.status} cpu={s.cpu_load_percent:g}% mem={s.memory_usage_mb:g}MB {s.detail}"
    else:
        text = f"span {event.span.name} ({event.span.status_code.value})"
    return first_line(text)


def change_patch(event: SwarmEvent, read_blob) -> tuple[str, int, int]:
    """``(unified diff, lines added, lines removed)`` of a file change: the stored patch,
    or — when the producer left it out (git import, large batches; the SPEC allows it) —
    computed now from the blobs (``read_blob(sha256_hex) -> bytes``). Binary content,
    symlinks and content over 1 MiB give ``("", 0, 0)``; missing content (another
    machine's, erased) gives the stored counts and no patch."""
    from ledger.diffs import describe_change

    sc = event.state_change
    if sc is None:
        return "", 0, 0
    if sc.content_withheld:  # a secret file: no content, no patch (ledger.secret_files)
        return "", sc.lines_added, sc.lines_removed
    if sc.diff_patch:
        return sc.diff_patch, sc.lines_added, sc.lines_removed
    try:
        old = read_blob(sc.previous_state_hash) if sc.previous_state_hash else None
        new = read_blob(sc.new_state_hash) if sc.new_state_hash else None
    except Exception:  # noqa: BLE001 - content not here: show what the event says
        return "", sc.lines_added, sc.lines_removed
    return describe_change(sc.target_resource, old, new, previous_path=sc.previous_resource or None,
                           old_mode=sc.previous_file_mode.value, new_mode=sc.file_mode.value)
