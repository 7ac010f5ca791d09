"""Fast model -> protobuf conversion, one hand-written builder per message type.

``schemas.models._fill`` walks the protobuf descriptors generically (about 25 us per
event); the builders here make the same message with direct attribute writes (a few
microseconds), so ``SwarmEvent.to_bytes()`` stays cheap on the record path.

They must produce exactly the bytes of the generic conversion:
``event_message(e).SerializeToString(deterministic=True)`` equals the generic
``_fill`` result for every payload kind (``tests/test_schemas.py`` checks it). The rules
that make this hold (proto3, implicit presence):

* an empty string, an empty repeated field and an unset scalar serialize to nothing, so
  empty strings may be skipped; numbers are always written (``-0.0`` is serialized);
* every message-typed field the generic conversion touches is present even when empty:
  the payload (``SetInParent``), every ``google.protobuf.Timestamp`` (written even for
  0) and every map entry.

No I/O happens here. When ``events.proto`` changes, update the builders and run the
equality test.
"""

from __future__ import annotations

from typing import Any

from schemas import events_pb2
from schemas.enums import proto_numbers
from schemas.errors import InvalidEvent

_NS = 1_000_000_000


_ROLE = proto_numbers("AgentRole")
_TARGET = proto_numbers("TargetType")
_OPERATION = proto_numbers("Operation")
_MODE = proto_numbers("FileMode")
_SPAN_KIND = proto_numbers("SpanKind")
_STATUS = proto_numbers("SpanStatusCode")
_VERDICT = proto_numbers("Verdict")

_SwarmEvent = events_pb2.SwarmEvent


def attribute_to_proto(value: Any, out: events_pb2.AttributeValue) -> None:
    """Write one attribute value (str, bool, int, float or a list of them) into ``out``.
    Raises ``InvalidEvent`` for any other type."""
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, (list, tuple)):
        out.array_value.SetInParent()
        for item in value:
            attribute_to_proto(item, out.array_value.values.add())
    else:
        raise InvalidEvent(f"unsupported attribute value type {type(value).__name__}")


def _attributes(target, attributes: dict[str, Any]) -> None:
    # Exact scalar types first (what ``_attr_to_proto`` does for them, without its
    # isinstance chain); subclasses and arrays take the generic route.
    for key, value in attributes.items():
        kind = type(value)
        if kind is str:
            target[key].string_value = value
        elif kind is int:
            target[key].int_value = value
        elif kind is float:
            target[key].double_value = value
        elif kind is bool:
            target[key].bool_value = value
        else:
            attribute_to_proto(value, target[key])


def _decision(msg, d) -> None:
    p = msg.decision
    p.SetInParent()
    if d.context_hash:
        p.context_hash = d.context_hash
    if d.input_trigger:
        p.input_trigger = d.input_trigger
    if d.rationale:
        p.rationale = d.rationale
    if d.rejected_alternatives:
        p.rejected_alternatives.extend(d.rejected_alternatives)
    if d.memory_ids:
        p.memory_ids.extend(d.memory_ids)
    p.confidence_score = d.confidence_score


def _state_change(msg, s) -> None:
    p = msg.state_change
    p.SetInParent()
    p.target_type = _TARGET[s.target_type]
    if s.target_resource:
        p.target_resource = s.target_resource
    p.operation = _OPERATION[s.operation]
    if s.previous_resource:
        p.previous_resource = s.previous_resource
    if s.previous_state_hash:
        p.previous_state_hash = s.previous_state_hash
    if s.new_state_hash:
        p.new_state_hash = s.new_state_hash
    p.file_mode = _MODE[s.file_mode]
    if s.diff_patch:
        p.diff_patch = s.diff_patch
    p.size_bytes = s.size_bytes
    p.is_reversible = s.is_reversible
    p.previous_file_mode = _MODE[s.previous_file_mode]
    p.lines_added = s.lines_added
    p.lines_removed = s.lines_removed
    if s.content_withheld:
        p.content_withheld = s.content_withheld


def _message(msg, m) -> None:
    p = msg.message
    p.SetInParent()
    if m.sender:
        p.sender = m.sender
    if m.recipients:
        p.recipients.extend(m.recipients)
    if m.content:
        p.content = m.content


def _signal(msg, s) -> None:
    p = msg.signal
    p.SetInParent()
    if s.status:
        p.status = s.status
    p.cpu_load_percent = s.cpu_load_percent
    p.memory_usage_mb = s.memory_usage_mb
    if s.detail:
        p.detail = s.detail


def _span(msg, s) -> None:
    p = msg.span
    p.SetInParent()
    if s.name:
        p.name = s.name
    p.kind = _SPAN_KIND[s.kind]
    if s.parent_span_id:
        p.parent_span_id = s.parent_span_id
    ts = p.start_time
    ts.seconds, ts.nanos = divmod(s.start_time, _NS)
    ts = p.end_time
    ts.seconds, ts.nanos = divmod(s.end_time, _NS)
    p.status_code = _STATUS[s.status_code]
    if s.status_message:
        p.status_message = s.status_message
    if s.attributes:
        _attributes(p.attributes, s.attributes)
    if s.events:
        events = p.events
        for e in s.events:
            out = events.add()
            if e.name:
                out.name = e.name
            ts = out.time
            ts.seconds, ts.nanos = divmod(e.time, _NS)
            if e.attributes:
                _attributes(out.attributes, e.attributes)
    if s.links:
        links = p.links
        for link in s.links:
            out = links.add()
            if link.trace_id:
                out.trace_id = link.trace_id
            if link.span_id:
                out.span_id = link.span_id
            if link.attributes:
                _attributes(out.attributes, link.attributes)
    if s.scope_name:
        p.scope_name = s.scope_name
    if s.scope_version:
        p.scope_version = s.scope_version
    if s.resource_attributes:
        _attributes(p.resource_attributes, s.resource_attributes)


#: Identity part of the envelope (fields 3-9, the same for every event of an agent)
#: -> a message holding just those fields, copied into each new message.
_identities: dict[tuple, events_pb2.SwarmEvent] = {}
_MAX_IDENTITIES = 1024


def _new_identity(key: tuple, e) -> events_pb2.SwarmEvent | None:
    role = _ROLE.get(e.agent_role)
    if role is None:
        return None  # not an AgentRole member: the field write in event_message raises
    template = _SwarmEvent()
    template.schema_version = e.schema_version
    if e.tenant_id:
        template.tenant_id = e.tenant_id
    if e.project_id:
        template.project_id = e.project_id
    if e.user_id:
        template.user_id = e.user_id
    if e.session_id:
        template.session_id = e.session_id
    if e.agent_id:
        template.agent_id = e.agent_id
    template.agent_role = role
    if len(_identities) >= _MAX_IDENTITIES:
        _identities.clear()
    _identities[key] = template
    return template


def event_message(e) -> events_pb2.SwarmEvent:
    """The ``context_ledger.v1.SwarmEvent`` message of a validated ``SwarmEvent`` model
    (same content as ``schemas.models.event_to_proto``'s generic conversion)."""
    msg = _SwarmEvent()
    key = (e.schema_version, e.tenant_id, e.project_id, e.user_id, e.session_id, e.agent_id,
           e.agent_role)
    identity = _identities.get(key)
    if identity is None:
        identity = _new_identity(key, e)
    if identity is not None:
        msg.CopyFrom(identity)
    else:
        msg.schema_version = e.schema_version
        msg.agent_role = _ROLE[e.agent_role]
    if e.event_id:
        msg.event_id = e.event_id
    ts = msg.timestamp
    ts.seconds, ts.nanos = divmod(e.timestamp, _NS)
    if e.trace_id:
        msg.trace_id = e.trace_id
    if e.span_id:
        msg.span_id = e.span_id
    if e.caused_by:
        msg.caused_by = e.caused_by
    if e.related_commit_hash:
        msg.related_commit_hash = e.related_commit_hash
    # Same order as the generic conversion (descriptor order); exactly one is set.
    if e.decision is not None:
        _decision(msg, e.decision)
    if e.state_change is not None:
        _state_change(msg, e.state_change)
    if e.message is not None:
        _message(msg, e.message)
    if e.signal is not None:
        _signal(msg, e.signal)
    if e.span is not None:
        _span(msg, e.span)
    vote = e.vote
    if vote is not None:
        v = msg.vote
        v.SetInParent()
        if vote.target_event_id:
            v.target_event_id = vote.target_event_id
        v.verdict = _VERDICT[vote.verdict]
    return msg


def event_bytes(e) -> bytes:
    """Deterministic serialized protobuf of a validated ``SwarmEvent`` model (the
    storage form)."""
    return event_message(e).SerializeToString(deterministic=True)
