"""OTLP/HTTP receiving: decode export requests and turn spans and log records into events.

Bodies: protobuf (``application/x-protobuf``) or OTLP/JSON (``application/json``: ids
are hex, 64-bit integers may be strings, enums names or numbers), optionally gzip.
Decoding uses ``opentelemetry-proto`` and ``google.protobuf.json_format``. A body that
cannot be decoded raises ``MalformedRequest`` (the receiver answers 400 and writes
nothing).

* spans become ``SpanRecord`` events with the span converter the SDK span processor
  uses (``nervous_system.spans``), so a span exported twice (an exporter retry) has
  the same deterministic event id and is stored once;
* log records become messages (user prompts and assistant responses: events named
  ``*.user_prompt``, ``gen_ai.user.message``, ``*.assistant_response``,
  ``gen_ai.assistant.message``, ``gen_ai.choice``) or signals (every other event, e.g.
  ``claude_code.hook_execution_complete``, ``codex.tool_result``,
  ``gemini_cli.hook_call``: status = the event name, detail = its attributes and body
  as JSON). The event id is a UUIDv7 of the record's time and a SHA-256 of the record,
  its scope and resource (serialized), so a retried record is stored once;
* metrics are decoded and acknowledged but not recorded (the ledger keeps events, not
  time series).

Who: tenant/project from resource attributes ``ledger.tenant.id``/``ledger.project.id``
(``ledger agent install --otel`` sets them), else the project of the hook session with
the same session id (attributes ``session.id``, ``gen_ai.conversation.id``,
``conversation.id``), else the receiver's defaults. Agent: ``service.name``.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass
from typing import Any, Callable

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from nervous_system.spans import OTLP_KINDS, OTLP_STATUS, Identity, SpanEventData, SpanLinkData, span_to_event
from schemas import AgentMessage, SwarmEvent, SystemSignal, deterministic_event_id
from schemas.errors import SchemaError

__all__ = ["MalformedRequest", "SIGNALS", "decode", "encode_response", "span_events", "log_events", "Resolver"]

#: URL path -> (signal, request class, response class, partial success class, rejected field)
SIGNALS = {
    "/v1/traces": ("traces", trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse,
                   trace_service_pb2.ExportTracePartialSuccess, "rejected_spans"),
    "/v1/logs": ("logs", logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse,
                 logs_service_pb2.ExportLogsPartialSuccess, "rejected_log_records"),
    "/v1/metrics": ("metrics", metrics_service_pb2.ExportMetricsServiceRequest,
                    metrics_service_pb2.ExportMetricsServiceResponse,
                    metrics_service_pb2.ExportMetricsPartialSuccess, "rejected_data_points"),
}
MAX_BODY = 64 * 1024 * 1024
_ID_KEYS = {"traceId": 16, "spanId": 8, "parentSpanId": 8, "trace_id": 16, "span_id": 8, "parent_span_id": 8}
_SESSION_KEYS = ("session.id", "gen_ai.conversation.id", "conversation.id")
_USER_EVENTS = ("user_prompt", "gen_ai.user.message")
_ASSISTANT_EVENTS = ("assistant_response", "gen_ai.assistant.message", "gen_ai.choice")


class MalformedRequest(ValueError):
    """The request cannot be decoded; nothing of it is recorded."""


def _unzip(body: bytes, encoding: str) -> bytes:
    encoding = (encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error) as exc:
        raise MalformedRequest(f"body is not valid {encoding}: {exc}") from exc
    raise MalformedRequest(f"unsupported Content-Encoding {encoding!r} (gzip, deflate or none)")


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping wants base64."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in _ID_KEYS and isinstance(v, str):
                if v == "":
                    out[k] = v
                    continue
                try:
                    raw = bytes.fromhex(v)
                except ValueError as exc:
                    raise MalformedRequest(f"{k} {v!r} is not hex") from exc
                if len(raw) != _ID_KEYS[k]:
                    raise MalformedRequest(f"{k} {v!r} must be {_ID_KEYS[k] * 2} hex digits")
                out[k] = base64.b64encode(raw).decode()
            else:
                out[k] = _hex_ids_to_base64(v)
        return out
    if isinstance(node, list):
        return [_hex_ids_to_base64(v) for v in node]
    return node


def decode(path: str, body: bytes, content_type: str, content_encoding: str = ""):
    """Decode an export request for ``path``; returns ``(request message, "json"|"protobuf")``."""
    if path not in SIGNALS:
        raise MalformedRequest(f"unknown OTLP path {path!r}")
    _, request_cls, *_ = SIGNALS[path]
    if len(body) > MAX_BODY:
        raise MalformedRequest(f"body over {MAX_BODY} bytes")
    raw = _unzip(body, content_encoding)
    ctype = (content_type or "").split(";")[0].strip().lower()
    msg = request_cls()
    if ctype == "application/json":
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedRequest(f"body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise MalformedRequest("OTLP/JSON body must be a JSON object")
        try:
            json_format.ParseDict(_hex_ids_to_base64(data), msg, ignore_unknown_fields=True)
        except (json_format.ParseError, ValueError, TypeError) as exc:
            raise MalformedRequest(f"not an OTLP {SIGNALS[path][0]} request: {exc}") from exc
        return msg, "json"
    if ctype in ("application/x-protobuf", "application/protobuf", "application/octet-stream"):
        try:
            msg.ParseFromString(raw)
        except (DecodeError, ValueError) as exc:
            raise MalformedRequest(f"body is not an OTLP {SIGNALS[path][0]} protobuf: {exc}") from exc
        return msg, "protobuf"
    raise MalformedRequest(f"unsupported Content-Type {content_type!r} (application/x-protobuf or application/json)")


def encode_response(path: str, fmt: str, rejected: int = 0, error: str = "") -> tuple[bytes, str]:
    """The ExportServiceResponse body (with partial_success when items were rejected)."""
    _, _, response_cls, partial_cls, field = SIGNALS[path]
    resp = response_cls()
    if rejected or error:
        resp.partial_success.CopyFrom(partial_cls(**{field: rejected}, error_message=error[:2000]))
    if fmt == "json":
        return json_format.MessageToJson(resp, indent=None).encode(), "application/json"
    return resp.SerializeToString(), "application/x-protobuf"


# ---------------------------------------------------------------------- values
def any_value(v) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return json.dumps({kv.key: any_value(kv.value) for kv in v.kvlist_value.values}, default=str)
    if which == "bytes_value":
        return base64.b64encode(v.bytes_value).decode()
    return getattr(v, which)


def attributes(kvs) -> dict[str, Any]:
    out = {}
    for kv in kvs:
        value = any_value(kv.value)
        if isinstance(value, list):
            value = [x if isinstance(x, (str, bool, int, float)) else json.dumps(x, default=str) for x in value]
        out[kv.key] = value
    return out


@dataclass(frozen=True)
class Who:
    tenant_id: str
    project_id: str
    session_id: str


#: ``Resolver(resource_attrs, record_attrs) -> Who``: who an OTLP item belongs to.
Resolver = Callable[[dict, dict], Who]


def _session_of(*attr_dicts: dict) -> str:
    for attrs in attr_dicts:
        for key in _SESSION_KEYS:
            if attrs.get(key):
                return str(attrs[key])
    return ""


# ---------------------------------------------------------------------- spans
def _span_event(span, scope, resource: dict, who: Who) -> SwarmEvent:
    """One OTLP span as an event, by the converter the SDK span processor uses."""
    if len(span.trace_id) != 16 or len(span.span_id) != 8 or not any(span.trace_id) or not any(span.span_id):
        raise SchemaError(f"span {span.name!r} has an invalid trace or span id")
    return span_to_event(
        name=span.name, kind=OTLP_KINDS.get(span.kind, OTLP_KINDS[0]), trace_id=span.trace_id, span_id=span.span_id,
        parent_span_id=span.parent_span_id if len(span.parent_span_id) == 8 else None,
        start_ns=span.start_time_unix_nano, end_ns=span.end_time_unix_nano,
        status_code=OTLP_STATUS.get(span.status.code, OTLP_STATUS[0]),
        status_message=span.status.message if span.status.code == 2 else "",
        attributes=attributes(span.attributes),
        events=[SpanEventData(e.name, e.time_unix_nano, attributes(e.attributes)) for e in span.events],
        links=[SpanLinkData(link.trace_id, link.span_id, attributes(link.attributes)) for link in span.links
               if len(link.trace_id) == 16 and len(link.span_id) == 8],
        scope_name=scope.name, scope_version=scope.version, resource=resource,
        identity=Identity(tenant_id=who.tenant_id, project_id=who.project_id, session_id=who.session_id or None))


def span_events(request, resolve: Resolver) -> tuple[list[SwarmEvent], int, str]:
    """(events, rejected count, first error) of an ExportTraceServiceRequest."""
    events, rejected, error = [], 0, ""
    for rs in request.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                try:
                    attrs = attributes(span.attributes)
                    events.append(_span_event(span, ss.scope, resource, resolve(resource, attrs)))
                except (SchemaError, ValueError, TypeError) as exc:
                    rejected += 1
                    error = error or f"span {span.name!r}: {exc}"
    return events, rejected, error


# ---------------------------------------------------------------------- logs
def log_events(request, resolve: Resolver, now_ns: int) -> tuple[list[SwarmEvent], int, str]:
    """(events, rejected count, first error) of an ExportLogsServiceRequest."""
    events, rejected, error = [], 0, ""
    for rl in request.resource_logs:
        resource = attributes(rl.resource.attributes)
        res_bytes = rl.resource.SerializeToString(deterministic=True)
        agent = str(resource.get("service.name") or "otel")
        for sl in rl.scope_logs:
            scope_bytes = sl.scope.SerializeToString(deterministic=True)
            for rec in sl.log_records:
                try:
                    events.append(_log_event(rec, sl.scope, resource, res_bytes, scope_bytes, agent, resolve, now_ns))
                except (SchemaError, ValueError, TypeError) as exc:
                    rejected += 1
                    error = error or f"log record: {exc}"
    return events, rejected, error


def _log_event(rec, scope, resource, res_bytes, scope_bytes, agent, resolve, now_ns) -> SwarmEvent:
    attrs = attributes(rec.attributes)
    body = any_value(rec.body) if rec.HasField("body") else None
    name = str(rec.event_name or attrs.get("event.name") or (body if isinstance(body, str) else "") or "log")
    ts = rec.time_unix_nano or rec.observed_time_unix_nano or now_ns
    digest = hashlib.sha256(res_bytes + b"\x1f" + scope_bytes + b"\x1f"
                            + rec.SerializeToString(deterministic=True)).hexdigest()
    who = resolve(resource, attrs)
    trace_id = rec.trace_id.hex() if len(rec.trace_id) == 16 and any(rec.trace_id) else ""
    span_id = rec.span_id.hex() if len(rec.span_id) == 8 and any(rec.span_id) else ""
    base = dict(event_id=deterministic_event_id(ts // 1_000_000, "otel-log", digest), timestamp=ts,
                tenant_id=who.tenant_id, project_id=who.project_id, session_id=who.session_id,
                agent_id=agent, agent_role="other", trace_id=trace_id, span_id=span_id)
    short = name.rsplit(".", 1)[-1] if name.count(".") == 1 else name
    if name.endswith(_USER_EVENTS) or short in _USER_EVENTS:
        content = attrs.get("prompt") or attrs.get("content") or (body if isinstance(body, str) else "")
        return SwarmEvent(**base, message=AgentMessage(sender="user", recipients=[agent], content=str(content or "")))
    if name.endswith(_ASSISTANT_EVENTS):
        content = attrs.get("content") or attrs.get("response") or (body if isinstance(body, str) else "")
        return SwarmEvent(**base, message=AgentMessage(sender=agent, recipients=["user"], content=str(content or "")))
    detail = {"attributes": attrs, "severity": rec.severity_text or rec.severity_number, "scope": scope.name}
    if body is not None and body != name:
        detail["body"] = body
    return SwarmEvent(**base, signal=SystemSignal(status=name[:200], detail=json.dumps(detail, default=str)))


def metric_points(request) -> int:
    """How many data points an ExportMetricsServiceRequest carries (acknowledged only)."""
    n = 0
    for rm in request.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                which = m.WhichOneof("data")
                if which:
                    n += len(getattr(m, which).data_points)
    return n


def session_of(resource: dict, attrs: dict) -> str:
    return _session_of(attrs, resource)
