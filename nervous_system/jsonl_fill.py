"""Filling in what a JSON Lines producer leaves out (``ledger record``), and telling a
retried line from a conflicting one.

``LineFiller.prepare(data)`` turns one decoded line into ``(event, blobs)``: defaults for
the envelope, integer timestamps with an explicit or unambiguous unit, a file change's
derived fields from its content and the path's previous state, ``caused_by`` from the
session's latest decision, a message's sender from its agent. A line whose
``event_id`` is already stored is a **retry** when the line agrees with the stored event
on every field it gives (defaults are then taken from the stored event, not from now);
otherwise it is refused as a conflict.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from ledger import Ledger, PathState, sha256_hex
from ledger.changes import UNKNOWN, apply_change, file_state_change, is_file_change
from ledger.errors import EventNotFound, LedgerError
from schemas import MAX_CONTENT_BYTES, Operation, SwarmEvent, new_event_id, parse_event

#: Longest ``content_base64`` accepted: the base64 form of ``MAX_CONTENT_BYTES`` (4 chars per 3 bytes).
MAX_CONTENT_BASE64_CHARS = 4 * -(-MAX_CONTENT_BYTES // 3)

__all__ = ["LineFiller", "integer_timestamp_ns", "Defaults"]

#: Integer timestamps are read in the unit their magnitude leaves no doubt about: seconds,
#: milliseconds, microseconds or nanoseconds since the epoch for times between
#: 2001-09-09 and 2286-11-20. Anything else is refused (never silently 1970).
_UNIT_RANGES = ((10**9, 10**10, 10**9, "seconds"), (10**12, 10**13, 10**6, "milliseconds"),
                (10**15, 10**16, 10**3, "microseconds"), (10**18, 10**19, 1, "nanoseconds"))


def integer_timestamp_ns(value: int) -> int:
    """Nanoseconds of an integer timestamp whose unit its magnitude makes unambiguous
    (see ``_UNIT_RANGES``). Raises ``ValueError`` otherwise, saying what to give."""
    for low, high, factor, _ in _UNIT_RANGES:
        if low <= value < high:
            return value * factor
    raise ValueError(
        f"integer timestamp {value} is ambiguous: give RFC 3339 text (2026-12-02T10:00:00Z), or "
        "\"timestamp_ns\" for nanoseconds; integers are read as seconds, ms, µs or ns only when "
        "their size makes the unit clear (times between 2001 and 2286)")


class Defaults:
    """Values for fields a line leaves out: tenant, project, agent and session."""

    __slots__ = ("tenant_id", "project_id", "agent_id", "session_id")

    def __init__(self, tenant_id: str = "default", project_id: str | None = None, agent_id: str = "",
                 session_id: str = "") -> None:
        self.tenant_id, self.project_id = tenant_id, project_id
        self.agent_id, self.session_id = agent_id, session_id


def _content(data: dict) -> bytes | None:
    if "content_base64" in data and "content" in data:
        raise ValueError("give content_base64 or content, not both")
    if "content_base64" in data:
        raw = data.pop("content_base64")
        if not isinstance(raw, str):
            raise ValueError("content_base64 must be a base64 string")
        if len(raw) > MAX_CONTENT_BASE64_CHARS:
            raise ValueError(f"content_base64 holds more than the {MAX_CONTENT_BYTES:,}-byte limit of one file "
                             "version")
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"content_base64 is not valid base64: {exc}") from exc
    if "content" in data:
        raw = data.pop("content")
        if not isinstance(raw, str):
            raise ValueError("content must be a string (use content_base64 for bytes)")
        if len(raw) > MAX_CONTENT_BYTES:  # characters: at least as many bytes
            raise ValueError(f"content is over the {MAX_CONTENT_BYTES:,}-byte limit of one file version")
        return raw.encode("utf-8", "surrogatepass")
    return None


def _merge(given: Any, stored: Any) -> Any:
    """``given`` with what it leaves out taken from ``stored`` (dicts merged deeply)."""
    if isinstance(given, dict) and isinstance(stored, dict):
        out = dict(stored)
        for key, value in given.items():
            out[key] = _merge(value, stored.get(key))
        return out
    return given


class LineFiller:
    """Prepares the lines of one batch, tracking the path states and session decisions
    its earlier lines produce (they are not committed yet)."""

    def __init__(self, ledger: Ledger, defaults: Defaults):
        self.ledger = ledger
        self.defaults = defaults
        #: ``{(tenant, project): {path: PathState | None}}``: states of earlier lines.
        self.overlay: dict[tuple[str, str], dict[str, PathState | None]] = {}
        #: ``{(tenant, project, session): decision id}``: the latest decision per session.
        self.decisions: dict[tuple[str, str, str], str] = {}

    # ------------------------------------------------------------------ state
    def state(self, tenant: str, project: str, path: str) -> PathState | None:
        overlay = self.overlay.get((tenant, project), {})
        if path in overlay:
            return overlay[path]
        return self.ledger.path_state(tenant, project, path)

    def content_of(self, digest: str) -> bytes | None:
        try:
            return self.ledger.get_blob(digest)
        except LedgerError:
            return None

    def latest_decision(self, tenant: str, project: str, session: str) -> str:
        key = (tenant, project, session)
        if key not in self.decisions:
            # the latest decision that is not a vote (a vote causes no change)
            found = next((d for d in self.ledger.events(tenant_id=tenant, project_id=project, session_id=session,
                                                        kind="decision", order="seq", descending=True)
                          if d.event.vote is None), None)
            self.decisions[key] = found.event_id if found is not None else ""
        return self.decisions[key]

    # ------------------------------------------------------------------ lines
    def prepare(self, data: dict[str, Any], where: str) -> tuple[SwarmEvent, dict[str, bytes]]:
        """The event a line stands for and the content it carries (``{sha256: bytes}``).
        A stored event with the line's id is the line's retry when they agree (the stored
        event is returned). Raises ``ValueError``/``SchemaError``/``LedgerError``."""
        content = _content(data)
        if "timestamp_ns" in data:
            if "timestamp" in data:
                raise ValueError("give timestamp or timestamp_ns, not both")
            ns = data.pop("timestamp_ns")
            if type(ns) is not int:
                raise ValueError("timestamp_ns must be an integer (nanoseconds since the epoch)")
            data["timestamp"] = ns
        elif type(data.get("timestamp")) is int:
            data["timestamp"] = integer_timestamp_ns(data["timestamp"])
        stored = self._stored(data.get("event_id"))
        if stored is not None:
            return self._retry(data, content, stored, where)
        d = self.defaults
        data.setdefault("event_id", new_event_id())
        data.setdefault("timestamp", time.time_ns())
        data.setdefault("tenant_id", d.tenant_id)
        if "project_id" not in data:
            if not d.project_id:
                raise ValueError("project_id is missing and no default project is set (--project)")
            data["project_id"] = d.project_id
        if d.agent_id:
            data.setdefault("agent_id", d.agent_id)
        if d.session_id:
            data.setdefault("session_id", d.session_id)
        message = data.get("message")
        if isinstance(message, dict) and not message.get("sender") and data.get("agent_id"):
            message["sender"] = data["agent_id"]
        blobs: dict[str, bytes] = {}
        sc = data.get("state_change")
        if isinstance(sc, dict) and sc.get("target_type", "file") == "file":
            blobs = self._fill_state_change(data, sc, content)
            if "caused_by" not in data and data.get("session_id"):
                cause = self.latest_decision(data["tenant_id"], data["project_id"], data["session_id"])
                if cause:
                    data["caused_by"] = cause
        elif content is not None:
            raise ValueError("content is only allowed beside a file state_change")
        event = parse_event(data, where=where)
        self._remember(event)
        return event, blobs

    def _stored(self, event_id: Any) -> SwarmEvent | None:
        if not isinstance(event_id, str) or not event_id:
            return None
        try:
            stored = self.ledger.get(event_id)
        except EventNotFound:
            return None
        return stored.event if stored.event_id == event_id else None

    def _retry(self, data: dict, content: bytes | None, stored: SwarmEvent,
               where: str) -> tuple[SwarmEvent, dict[str, bytes]]:
        """A line whose id is stored: the stored event when the line agrees with it on
        every field the line gives, else ``ValueError`` naming the differences."""
        merged = _merge(data, stored.to_dict())
        candidate = parse_event(merged, where=where)
        sc = stored.state_change
        if content is not None and (sc is None or sha256_hex(content) != sc.new_state_hash):
            raise ValueError(f"event id {stored.event_id} is already recorded with different content; "
                             "event ids are idempotency keys: give a new id for a new event")
        if candidate != stored:
            new, old = candidate.to_dict(), stored.to_dict()
            differs = sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))
            raise ValueError(f"event id {stored.event_id} is already recorded with different "
                             f"{', '.join(differs)}; event ids are idempotency keys: give a new id for a new event")
        return stored, {}

    def _remember(self, event: SwarmEvent) -> None:
        if is_file_change(event):
            apply_change(self.overlay.setdefault((event.tenant_id, event.project_id), {}), event.state_change)
        elif event.kind == "decision" and event.vote is None and event.session_id:
            self.decisions[(event.tenant_id, event.project_id, event.session_id)] = event.event_id

    def _fill_state_change(self, data: dict, sc: dict, content: bytes | None) -> dict[str, bytes]:
        """Fill what the line leaves out of a file state change from its content and the
        previous state (``ledger.changes.file_state_change``); fields the line gives win."""
        path = sc.get("target_resource")
        if not isinstance(path, str) or not path:
            return {}  # parse_event reports it
        tenant, project = data["tenant_id"], data["project_id"]
        op = sc.get("operation")
        source_path = sc.get("previous_resource") if op == "rename" else path
        before = self.state(tenant, project, source_path) if isinstance(source_path, str) and source_path else None
        blobs: dict[str, bytes] = {}
        if content is not None:
            if op == "delete":
                raise ValueError("a delete carries no content")
            given = sc.get("new_state_hash")
            if given and given != sha256_hex(content):
                raise ValueError(f"content hashes to {sha256_hex(content)}, not to new_state_hash {given}")
            old = self.content_of(before.hash) if before is not None else None
            mode = sc.get("file_mode") if isinstance(sc.get("file_mode"), str) else None
            built = file_state_change(
                path, content, before=before, old_bytes=old if before is None or old is not None else UNKNOWN,
                new_mode=mode if mode in ("regular", "executable", "symlink") else None,
                previous_path=sc.get("previous_resource") if op == "rename" else None,
                operation=Operation(op) if op in ("create", "modify", "rename") else None,
                diff="diff_patch" not in sc,
            ).model_dump(mode="json")
            for key in ("new_state_hash", "size_bytes", "file_mode", "operation", "diff_patch",
                        "lines_added", "lines_removed"):
                sc.setdefault(key, built[key])
            blobs[built["new_state_hash"]] = content
            op = sc["operation"]
        if op in ("modify", "rename", "delete") and before is not None:
            sc.setdefault("previous_state_hash", before.hash)
            sc.setdefault("previous_file_mode", before.mode)
        return blobs
