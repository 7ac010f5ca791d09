"""Span-linked events: the ledger and the trace point at each other.

Two ``Recorder`` hooks, added to every ``Recorder`` made with ``link_spans=True`` (the
default; ``install()`` registers them process-wide instead, for recorders made with
``link_spans=False``):

* ``link_to_current_span`` (before append): an event without a ``trace_id`` gets the
  trace id and span id of the active OpenTelemetry span (32 and 16 lowercase hex, W3C
  Trace Context), so the ledger links back to the trace;
* ``mirror_as_span_event`` (after append): the event is added as a span event on that
  span, named ``ledger.<kind>`` (``ledger.decision``, ``ledger.state_change``,
  ``ledger.message``, ``ledger.signal``), so a trace viewer shows decisions and file
  changes inside the trace.

With no active, valid span (no SDK configured, or outside any span) both hooks do
nothing. Events that already carry a ``trace_id`` (e.g. from ``ledger record``) are left
as they are and are mirrored only if they name the current span.

Span event attribute names follow OpenTelemetry naming (lowercase, dot-separated
namespaces). Standard semantic conventions are used where one fits:

=================================  ===================================================
``gen_ai.agent.id``                the event's ``agent_id`` (GenAI semantic conventions)
``gen_ai.conversation.id``         the event's ``session_id`` (one agent run)
``code.file.path``                 a file state change's path (code semantic conventions)
``enduser.id``                     the event's ``user_id``, when set
=================================  ===================================================

and the ``ledger.*`` namespace for the rest: ``ledger.event_id``, ``ledger.event.kind``,
``ledger.tenant.id``, ``ledger.project.id``, ``ledger.agent.role``, ``ledger.caused_by``,
``ledger.decision.rationale``/``.confidence``/``.input_trigger``/
``.rejected_alternatives``, ``ledger.state_change.operation``/``.path``/
``.previous_path``/``.new_hash``/``.previous_hash``/``.file_mode``/``.size_bytes``/
``.lines_added``/``.lines_removed``, ``ledger.message.sender``/``.recipients``,
``ledger.signal.status``/``.cpu_load_percent``/``.memory_usage_mb``. Long text
(rationale, message content) is cut to ``MAX_TEXT_ATTRIBUTE_CHARS``; the ledger keeps
the whole event.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from schemas import FileMode, SwarmEvent, TargetType

#: Longest text attribute put on a span event (characters); the ledger keeps it all.
MAX_TEXT_ATTRIBUTE_CHARS = 1024
#: Prefix of the span events mirroring ledger events.
SPAN_EVENT_PREFIX = "ledger."


def current_ids() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of the active span as 32/16 lowercase hex, or None when
    there is no valid active span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return trace.format_trace_id(ctx.trace_id), trace.format_span_id(ctx.span_id)


def link_to_current_span(event: SwarmEvent) -> SwarmEvent:
    """Before-append hook: copy the active span's ids into an event that has none."""
    if event.trace_id:
        return event
    ids = current_ids()
    if ids is None:
        return event
    return event.model_copy(update={"trace_id": ids[0], "span_id": ids[1]})


def _text(value: str) -> str:
    if len(value) <= MAX_TEXT_ATTRIBUTE_CHARS:
        return value
    return value[: MAX_TEXT_ATTRIBUTE_CHARS - 1] + "…"


def span_event_attributes(event: SwarmEvent) -> dict[str, Any]:
    """The OpenTelemetry attributes describing ``event`` (see the module docstring)."""
    attrs: dict[str, Any] = {
        "ledger.event_id": event.event_id,
        "ledger.event.kind": event.kind,
        "ledger.tenant.id": event.tenant_id,
        "ledger.project.id": event.project_id,
    }
    if event.agent_id:
        attrs["gen_ai.agent.id"] = event.agent_id
    if event.session_id:
        attrs["gen_ai.conversation.id"] = event.session_id
    if event.user_id:
        attrs["enduser.id"] = event.user_id
    if event.agent_role.value not in ("unspecified", ""):
        attrs["ledger.agent.role"] = event.agent_role.value
    if event.caused_by:
        attrs["ledger.caused_by"] = event.caused_by
    if event.related_commit_hash:
        attrs["ledger.commit"] = event.related_commit_hash
    if event.decision is not None:
        d = event.decision
        attrs["ledger.decision.rationale"] = _text(d.rationale)
        attrs["ledger.decision.confidence"] = float(d.confidence_score)
        if d.input_trigger:
            attrs["ledger.decision.input_trigger"] = _text(d.input_trigger)
        if d.rejected_alternatives:
            attrs["ledger.decision.rejected_alternatives"] = [_text(a) for a in d.rejected_alternatives]
    elif event.state_change is not None:
        sc = event.state_change
        attrs["ledger.state_change.target_type"] = sc.target_type.value
        attrs["ledger.state_change.operation"] = sc.operation.value
        attrs["ledger.state_change.path"] = sc.target_resource
        if sc.target_type == TargetType.FILE:
            attrs["code.file.path"] = sc.target_resource
        if sc.previous_resource:
            attrs["ledger.state_change.previous_path"] = sc.previous_resource
        if sc.new_state_hash:
            attrs["ledger.state_change.new_hash"] = sc.new_state_hash
        if sc.previous_state_hash:
            attrs["ledger.state_change.previous_hash"] = sc.previous_state_hash
        if sc.file_mode != FileMode.UNSPECIFIED:
            attrs["ledger.state_change.file_mode"] = sc.file_mode.value
        attrs["ledger.state_change.size_bytes"] = sc.size_bytes
        attrs["ledger.state_change.lines_added"] = sc.lines_added
        attrs["ledger.state_change.lines_removed"] = sc.lines_removed
    elif event.message is not None:
        m = event.message
        attrs["ledger.message.sender"] = m.sender
        attrs["ledger.message.recipients"] = list(m.recipients)
        attrs["ledger.message.content"] = _text(m.content)
    elif event.signal is not None:
        s = event.signal
        attrs["ledger.signal.status"] = s.status
        attrs["ledger.signal.cpu_load_percent"] = float(s.cpu_load_percent)
        attrs["ledger.signal.memory_usage_mb"] = float(s.memory_usage_mb)
        if s.detail:
            attrs["ledger.signal.detail"] = _text(s.detail)
    return attrs


def mirror_as_span_event(event: SwarmEvent) -> None:
    """After-append hook: add ``ledger.<kind>`` to the current span when the event
    names it (same trace and span id) and the span is recording. Span records
    themselves are never mirrored."""
    if event.kind == "span" or not event.span_id:
        return
    span = trace.get_current_span()
    if not span.is_recording():
        return
    ctx = span.get_span_context()
    if (trace.format_span_id(ctx.span_id) != event.span_id
            or trace.format_trace_id(ctx.trace_id) != event.trace_id):
        return
    span.add_event(
        SPAN_EVENT_PREFIX + event.kind,
        attributes=span_event_attributes(event),
        timestamp=event.timestamp,
    )


_unregister = None


def install() -> None:
    """Register both hooks process-wide, for every ``Recorder`` (idempotent). Not needed
    for recorders made with ``link_spans=True`` (the default), which add them themselves."""
    global _unregister
    if _unregister is None:
        from nervous_system.recorder import register_hooks

        _unregister = register_hooks(before=link_to_current_span, after=mirror_as_span_event)


def uninstall() -> None:
    """Remove both hooks (events are then recorded without trace links)."""
    global _unregister
    if _unregister is not None:
        _unregister()
        _unregister = None
