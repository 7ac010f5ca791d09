"""The event contract: ``events.proto``, its generated module, and pydantic models.

This package does no I/O. Import models from here::

    from schemas import SwarmEvent, parse_event, event_from_bytes
"""

from schemas.errors import ContextLedgerError, EventTooLarge, InvalidEvent, SchemaError, UnknownSchemaVersion
from schemas.ids import deterministic_event_id, is_span_id, is_trace_id, is_uuid7, new_event_id
from schemas.models import (
    MAX_EVENT_BYTES,
    PAYLOAD_KINDS,
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    AgentDecision,
    AgentMessage,
    AgentRole,
    FileMode,
    Operation,
    SpanKind,
    SpanRecord,
    SpanEventRecord,
    SpanLinkRecord,
    SpanStatusCode,
    StateChange,
    SwarmEvent,
    SystemSignal,
    TargetType,
    check_relative_path,
)
from schemas.convert import event_from_bytes, event_from_proto, event_to_proto, parse_event, parse_event_json
from schemas.timestamps import format_timestamp_ns, parse_timestamp_ns

__all__ = [name for name in dir() if not name.startswith("_")]
