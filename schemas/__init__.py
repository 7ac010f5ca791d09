"""The event contract: ``events.proto``, its generated module, and pydantic models.

This package does no I/O. Import models from here::

    from schemas import SwarmEvent, parse_event, event_from_bytes

Names are loaded on first use (``schemas.lazy``): importing ``schemas.errors`` or
``schemas.ids`` does not load pydantic.
"""

from schemas.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["ContentTooLarge", "ContextLedgerError", "EventTooLarge", "InvalidEvent", "SchemaError",
                     "UnknownSchemaVersion"], "schemas.errors"),
    **dict.fromkeys(["deterministic_event_id", "is_span_id", "is_trace_id", "is_uuid7", "new_event_id"],
                    "schemas.ids"),
    "PAYLOAD_KINDS": "schemas.enums",
    **dict.fromkeys(["MAX_CONTENT_BYTES", "MAX_EVENT_BYTES"], "schemas.limits"),
    **dict.fromkeys(["SCHEMA_VERSION", "SUPPORTED_SCHEMA_VERSIONS",
                     "AgentDecision", "AgentMessage", "StateChange", "SwarmEvent", "SystemSignal",
                     "SpanRecord", "SpanEventRecord", "SpanLinkRecord", "Vote"],
                    "schemas.models"),
    **dict.fromkeys(["AgentRole", "FileMode", "Operation", "SpanKind", "SpanStatusCode", "TargetType",
                     "Verdict"],
                    "schemas.enums"),
    **dict.fromkeys(["event_from_bytes", "event_from_proto", "event_to_proto", "parse_event",
                     "parse_event_json"], "schemas.convert"),
    **dict.fromkeys(["format_timestamp_ns", "parse_timestamp_ns"], "schemas.timestamps"),
    **dict.fromkeys(["check_relative_path", "check_symlink", "MAX_PATH_BYTES", "MAX_COMPONENT_BYTES",
                     "MAX_SYMLINK_TARGET_BYTES"], "schemas.paths"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
