"""The redaction write policy: secrets in every text field are replaced by typed
placeholders (``[REDACTED:github-token]``) before the event is stored (issue 15, section 1).

On by default in every ledger a user opens (``ledger.policies.default_policies``; the
``redact`` setting turns it off, see ``ledger.config``). What is scanned, per payload:

* decision: ``input_trigger``, ``rationale``, ``rejected_alternatives``, ``memory_ids``;
* message: ``sender``, ``recipients``, ``content``;
* signal: ``status``, ``detail``;
* state change: ``diff_patch`` (file *content* is never rewritten: exact replay needs
  it; secret files are withheld instead, ``ledger.secret_files``);
* span: ``name``, ``status_message``, ``scope_name``/``scope_version``, every string
  (and string in a list) of ``attributes``, ``resource_attributes``, span events' names
  and attributes and span links' attributes.

Not scanned: ids, hashes, paths, the envelope's identity fields and attribute *keys*
(names, not values). How secrets are found: ``ledger.detectors``. Deterministic: the same
event and configuration always give the same stored event, so event ids stay idempotency
keys.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ledger.detectors import Detector
from schemas import SwarmEvent

__all__ = ["RedactionPolicy"]


class RedactionPolicy:
    """``WritePolicy`` replacing secrets in an event's text fields (module docstring).

    ``patterns``: extra ``{type: regex}``; ``allow``: regexes of values to keep. Raises
    ``ValueError`` for a pattern that does not compile. ``apply`` returns the event
    itself (same object) when nothing was found.
    """

    name = "redaction"

    #: Short texts whose result is remembered (senders, tool names, statuses repeat).
    CACHE_TEXT_CHARS = 256
    CACHE_ENTRIES = 4096

    def __init__(self, patterns: Mapping[str, str] | None = None, allow: Sequence[str] = ()) -> None:
        self.detector = Detector(patterns=dict(patterns or {}), allow=tuple(allow))
        self._cache: dict[str, str] = {}

    def text(self, value: str) -> str:
        """``value`` with its secrets replaced (the same object when there is none)."""
        if not value:
            return value
        if len(value) > self.CACHE_TEXT_CHARS:
            return self.detector.redact(value)[0]
        cached = self._cache.get(value)
        if cached is None:
            if len(self._cache) >= self.CACHE_ENTRIES:
                self._cache.clear()
            cached = self._cache[value] = self.detector.redact(value)[0]
        return value if cached == value else cached

    def _texts(self, values: list[str]) -> list[str] | None:
        out = [self.text(v) for v in values]
        return None if all(a is b for a, b in zip(out, values)) else out

    def _attrs(self, attrs: dict[str, Any]) -> dict[str, Any] | None:
        changed = None
        for key, value in attrs.items():
            if isinstance(value, str):
                new: Any = self.text(value)
                if new is value:
                    continue
            elif isinstance(value, list) and any(isinstance(v, str) for v in value):
                new = [self.text(v) if isinstance(v, str) else v for v in value]
                if all(a is b for a, b in zip(new, value)):
                    continue
            else:
                continue
            if changed is None:
                changed = dict(attrs)
            changed[key] = new
        return changed

    def _fields(self, payload, names: Sequence[str]) -> dict[str, Any]:
        update: dict[str, Any] = {}
        for name in names:
            value = getattr(payload, name)
            if isinstance(value, list):
                new = self._texts(value)
                if new is not None:
                    update[name] = new
            else:
                new = self.text(value)
                if new is not value:
                    update[name] = new
        return update

    def _span(self, span) -> dict[str, Any]:
        update = self._fields(span, ("name", "status_message", "scope_name", "scope_version"))
        for name in ("attributes", "resource_attributes"):
            new = self._attrs(getattr(span, name))
            if new is not None:
                update[name] = new
        events, links = [], []
        for ev in span.events:
            ev_update = self._fields(ev, ("name",))
            attrs = self._attrs(ev.attributes)
            if attrs is not None:
                ev_update["attributes"] = attrs
            events.append(ev.model_copy(update=ev_update) if ev_update else ev)
        for link in span.links:
            attrs = self._attrs(link.attributes)
            links.append(link.model_copy(update={"attributes": attrs}) if attrs is not None else link)
        if any(a is not b for a, b in zip(events, span.events)):
            update["events"] = events
        if any(a is not b for a, b in zip(links, span.links)):
            update["links"] = links
        return update

    _FIELDS = {
        "decision": ("input_trigger", "rationale", "rejected_alternatives", "memory_ids"),
        "message": ("sender", "recipients", "content"),
        "signal": ("status", "detail"),
        "state_change": ("diff_patch",),
    }

    def redact_event(self, event: SwarmEvent) -> SwarmEvent:
        """``event`` with every text field redacted (the same object when nothing was)."""
        kind = event.kind
        payload = event.payload
        if kind == "span":
            update = self._span(payload)
        else:
            update = self._fields(payload, self._FIELDS[kind])
        if not update:
            return event
        return event.model_copy(update={kind: payload.model_copy(update=update)})

    def apply(self, event: SwarmEvent, blobs: Mapping[str, bytes]) -> tuple[SwarmEvent, Mapping[str, bytes]]:
        """``WritePolicy.apply``: the redacted event, blobs unchanged."""
        return self.redact_event(event), blobs
