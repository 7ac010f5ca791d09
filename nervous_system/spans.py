"""Spans as events: pure functions from plain span data to a ``SwarmEvent``.

The OpenTelemetry SDK span processor (``nervous_system.capture``) and an OTLP receiver
decoding ``opentelemetry-proto`` messages build the same events with these functions:
they take plain data (names, ids as ints, bytes or hex, times in int nanoseconds,
attribute dicts, resource attributes, the instrumentation scope), never SDK objects,
and do no I/O.

Who a span belongs to (``span_identity``, documented in docs/opentelemetry.md):

* tenant: the producer's ``tenant_id``, else resource attribute ``ledger.tenant.id``,
  else ``"default"``;
* project: the producer's ``project_id``, else resource attribute ``ledger.project.id``,
  else ``service.namespace``, else ``"default"``;
* agent: the span's ``gen_ai.agent.id``, else its ``gen_ai.agent.name`` (a multi-agent
  process names each agent's spans), else the producer's ``agent_id``, else the
  resource's ``service.name`` (unless it is the SDK's ``unknown_service...``), else
  ``"otel"``;
* session: the producer's ``session_id``, else resource ``service.instance.id``.

The event id is deterministic (UUIDv7 of the span's start millisecond and a hash of
trace id + span id), so the same span captured twice is stored once.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from schemas import (
    SpanEventRecord,
    SpanKind,
    SpanLinkRecord,
    SpanRecord,
    SpanStatusCode,
    SwarmEvent,
    deterministic_event_id,
)

__all__ = [
    "SpanFilter",
    "Identity",
    "SpanEventData",
    "SpanLinkData",
    "OTLP_KINDS",
    "OTLP_STATUS",
    "trace_id_hex",
    "span_id_hex",
    "span_identity",
    "span_event_id",
    "span_to_event",
]

#: ``opentelemetry.proto.trace.v1.Span.SpanKind`` numbers -> ``SpanKind``.
OTLP_KINDS = {0: SpanKind.UNSPECIFIED, 1: SpanKind.INTERNAL, 2: SpanKind.SERVER, 3: SpanKind.CLIENT,
              4: SpanKind.PRODUCER, 5: SpanKind.CONSUMER}
#: ``opentelemetry.proto.trace.v1.Status.StatusCode`` numbers -> ``SpanStatusCode``.
OTLP_STATUS = {0: SpanStatusCode.UNSET, 1: SpanStatusCode.OK, 2: SpanStatusCode.ERROR}


def _matches(value: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


@dataclass(frozen=True)
class SpanFilter:
    """Which spans and attributes are recorded. Patterns are shell globs
    (``fnmatch``, case-sensitive): ``"gen_ai.*"``, ``"openai*"``, ``"chat *"``.

    * ``include_names``/``exclude_names``: span names to keep/drop (empty include = all);
    * ``include_scopes``/``exclude_scopes``: instrumentation scope names (the tracer's
      name, e.g. ``opentelemetry.instrumentation.openai``);
    * ``attribute_allow``: if not None, only attributes matching one of these globs are
      kept; ``attribute_deny``: attributes matching any are dropped (deny wins). Both
      apply to span, span event, link and resource attributes (size and privacy, e.g.
      ``attribute_deny=["gen_ai.input.messages", "gen_ai.output.messages"]``);
    * ``max_value_chars``: longer string values (and strings inside arrays) are cut to
      this many characters, ending in ``…`` (None = no limit);
    * ``predicate``: optional ``span -> bool`` applied last (the SDK processor passes its
      ``ReadableSpan``).
    """

    include_names: tuple[str, ...] = ()
    exclude_names: tuple[str, ...] = ()
    include_scopes: tuple[str, ...] = ()
    exclude_scopes: tuple[str, ...] = ()
    attribute_allow: tuple[str, ...] | None = None
    attribute_deny: tuple[str, ...] = ()
    max_value_chars: int | None = None
    predicate: Callable[[Any], bool] | None = field(default=None, compare=False)

    def keeps(self, name: str, scope: str, span: Any = None) -> bool:
        """True if a span named ``name`` of instrumentation scope ``scope`` passes the
        name and scope filters, and ``predicate(span)`` when both are given."""
        if self.include_names and not _matches(name, self.include_names):
            return False
        if self.exclude_names and _matches(name, self.exclude_names):
            return False
        if self.include_scopes and not _matches(scope, self.include_scopes):
            return False
        if self.exclude_scopes and _matches(scope, self.exclude_scopes):
            return False
        return self.predicate is None or span is None or bool(self.predicate(span))

    def keeps_span(self, span: Any) -> bool:
        """``keeps`` for an SDK ``ReadableSpan``."""
        scope = span.instrumentation_scope.name if span.instrumentation_scope else ""
        return self.keeps(span.name or "", scope, span)

    def attributes(self, attrs: Mapping[str, Any] | None) -> dict[str, Any]:
        """The attributes to store: filtered by allow/deny, values converted and cut."""
        out: dict[str, Any] = {}
        for key, value in (attrs or {}).items():
            if self.attribute_allow is not None and not _matches(key, self.attribute_allow):
                continue
            if self.attribute_deny and _matches(key, self.attribute_deny):
                continue
            converted = self._value(value)
            if converted is not None:
                out[key] = converted
        return out

    def _value(self, value: Any) -> Any:
        if isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, str):
            limit = self.max_value_chars
            return value if limit is None or len(value) <= limit else value[: max(limit - 1, 0)] + "…"
        if isinstance(value, bytes):
            return self._value(value.decode("utf-8", "replace"))
        if isinstance(value, (list, tuple)):
            return [v for v in (self._value(item) for item in value) if v is not None and not isinstance(v, list)]
        return None if value is None else self._value(str(value))


@dataclass(frozen=True)
class Identity:
    """The producer's identity defaults (None/empty: decided by the span, see the
    module docstring)."""

    tenant_id: str | None = None
    project_id: str | None = None
    agent_id: str | None = None
    agent_role: str = "other"
    session_id: str | None = None


@dataclass(frozen=True)
class SpanEventData:
    """A span event: name, time (int ns), attributes."""

    name: str
    time_ns: int
    attributes: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SpanLinkData:
    """A link to another span: its ids (int, bytes or hex) and attributes."""

    trace_id: int | bytes | str
    span_id: int | bytes | str
    attributes: Mapping[str, Any] | None = None


def _hex(value: int | bytes | str, width: int) -> str:
    if isinstance(value, int):
        return format(value, f"0{width}x")
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex().rjust(width, "0")
    return value.lower()


def trace_id_hex(value: int | bytes | str) -> str:
    """A trace id (int as in the SDK, 16 bytes as in OTLP, or hex) as 32 lowercase hex."""
    return _hex(value, 32)


def span_id_hex(value: int | bytes | str) -> str:
    """A span id (int, 8 bytes or hex) as 16 lowercase hex."""
    return _hex(value, 16)


def span_identity(identity: Identity, attributes: Mapping[str, Any], resource: Mapping[str, Any]) -> dict[str, str]:
    """``tenant_id``, ``project_id``, ``session_id``, ``agent_id``, ``agent_role`` of a
    span with ``attributes`` from a process with ``resource`` attributes (the rules of
    the module docstring)."""
    service = str(resource.get("service.name", "") or "")
    if service.startswith("unknown_service"):
        service = ""
    return {
        "tenant_id": identity.tenant_id or str(resource.get("ledger.tenant.id") or "") or "default",
        "project_id": identity.project_id
        or str(resource.get("ledger.project.id") or "")
        or str(resource.get("service.namespace") or "")
        or "default",
        "session_id": identity.session_id or str(resource.get("service.instance.id") or ""),
        "agent_id": str(attributes.get("gen_ai.agent.id") or "")
        or str(attributes.get("gen_ai.agent.name") or "")
        or identity.agent_id
        or service
        or "otel",
        "agent_role": identity.agent_role,
    }


def span_event_id(start_ns: int, trace_id: str, span_id: str) -> str:
    """The deterministic event id of a span (hex ids): the same span is stored once."""
    return deterministic_event_id(start_ns // 1_000_000, "otel-span", trace_id, span_id)


def span_to_event(
    *,
    name: str,
    kind: SpanKind | str,
    trace_id: int | bytes | str,
    span_id: int | bytes | str,
    parent_span_id: int | bytes | str | None = None,
    start_ns: int = 0,
    end_ns: int = 0,
    status_code: SpanStatusCode | str = SpanStatusCode.UNSET,
    status_message: str = "",
    attributes: Mapping[str, Any] | None = None,
    events: Iterable[SpanEventData] = (),
    links: Iterable[SpanLinkData] = (),
    scope_name: str = "",
    scope_version: str = "",
    resource: Mapping[str, Any] | None = None,
    identity: Identity = Identity(),
    span_filter: SpanFilter | None = None,
) -> SwarmEvent:
    """The ``SwarmEvent`` (a ``SpanRecord`` payload) of one ended span. ``kind`` and
    ``status_code`` are ``SpanKind``/``SpanStatusCode`` or their names (``OTLP_KINDS``
    and ``OTLP_STATUS`` map OTLP numbers); a ``parent_span_id`` of None, 0 or empty
    means a root span; ``span_filter`` (default: keep all) filters and converts every
    attribute dict. Raises ``InvalidEvent`` (e.g. a malformed id)."""
    flt = span_filter or SpanFilter()
    raw_attrs = attributes or {}
    resource = dict(resource or {})
    trace_hex, span_hex = trace_id_hex(trace_id), span_id_hex(span_id)
    record = SpanRecord(
        name=name or "",
        kind=SpanKind(kind),
        parent_span_id=span_id_hex(parent_span_id) if parent_span_id else "",
        start_time=start_ns or 0,
        end_time=end_ns or 0,
        status_code=SpanStatusCode(status_code),
        status_message=status_message or "",
        attributes=flt.attributes(raw_attrs),
        events=[SpanEventRecord(name=e.name, time=e.time_ns or 0, attributes=flt.attributes(e.attributes))
                for e in events],
        links=[SpanLinkRecord(trace_id=trace_id_hex(link.trace_id), span_id=span_id_hex(link.span_id),
                              attributes=flt.attributes(link.attributes))
               for link in links],
        scope_name=scope_name or "",
        scope_version=scope_version or "",
        resource_attributes=flt.attributes(resource),
    )
    return SwarmEvent(
        event_id=span_event_id(start_ns or 0, trace_hex, span_hex),
        timestamp=end_ns or start_ns or 0,
        trace_id=trace_hex,
        span_id=span_hex,
        span=record,
        **span_identity(identity, raw_attrs, resource),
    )
