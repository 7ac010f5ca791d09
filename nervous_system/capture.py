"""Capture spans of any OpenTelemetry-instrumented agent into the ledger.

``LedgerSpanProcessor`` is an OpenTelemetry SDK span processor: when a span ends
(``on_end``) it is converted to a ``SpanRecord`` event and appended to the ledger before
``on_end`` returns. In ``full`` durability that means committed and fsynced when
``span.end()`` returns, so a ``kill -9`` right after loses nothing; in ``group``
durability the span is durable within the group window or after ``force_flush()``.

What is kept: name, kind, trace id and span id (the envelope's ``trace_id``/``span_id``),
parent span id, start/end (int nanoseconds), status code and message, attributes
(including ``gen_ai.*`` of the GenAI semantic conventions), span events (an exception
recorded with ``span.record_exception`` is the span event ``exception`` with
``exception.type``/``exception.message``/``exception.stacktrace``), links,
instrumentation scope name/version and resource attributes.

Who a span belongs to (decided here, documented in docs/opentelemetry.md):

* tenant: the processor's ``tenant_id``, else resource attribute ``ledger.tenant.id``,
  else ``"default"``;
* project: the processor's ``project_id``, else resource attribute ``ledger.project.id``,
  else ``service.namespace``, else ``"default"``;
* agent: the span's ``gen_ai.agent.id``, else its ``gen_ai.agent.name`` (a multi-agent
  process names each agent's spans), else the processor's ``agent_id``, else the
  resource's ``service.name`` (unless it is the SDK's ``unknown_service...``), else
  ``"otel"``;
* session: the processor's ``session_id``, else resource ``service.instance.id``.

The event id is deterministic (UUIDv7 of the span's start millisecond and a hash of
trace id + span id), so the same span captured twice is stored once.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanKind as OtelSpanKind
from opentelemetry.trace import StatusCode

from ledger import Ledger
from ledger.errors import LedgerError
from schemas import (
    SpanEventRecord,
    SpanKind,
    SpanLinkRecord,
    SpanRecord,
    SpanStatusCode,
    SwarmEvent,
    deterministic_event_id,
)
from schemas.errors import SchemaError

log = logging.getLogger(__name__)

_KINDS = {
    OtelSpanKind.INTERNAL: SpanKind.INTERNAL,
    OtelSpanKind.SERVER: SpanKind.SERVER,
    OtelSpanKind.CLIENT: SpanKind.CLIENT,
    OtelSpanKind.PRODUCER: SpanKind.PRODUCER,
    OtelSpanKind.CONSUMER: SpanKind.CONSUMER,
}
_STATUS = {
    StatusCode.UNSET: SpanStatusCode.UNSET,
    StatusCode.OK: SpanStatusCode.OK,
    StatusCode.ERROR: SpanStatusCode.ERROR,
}


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
    * ``predicate``: optional ``ReadableSpan -> bool`` applied last.
    """

    include_names: tuple[str, ...] = ()
    exclude_names: tuple[str, ...] = ()
    include_scopes: tuple[str, ...] = ()
    exclude_scopes: tuple[str, ...] = ()
    attribute_allow: tuple[str, ...] | None = None
    attribute_deny: tuple[str, ...] = ()
    max_value_chars: int | None = None
    predicate: Callable[[ReadableSpan], bool] | None = field(default=None, compare=False)

    def keeps_span(self, span: ReadableSpan) -> bool:
        """True if ``span`` passes the name, scope and predicate filters."""
        name = span.name or ""
        if self.include_names and not _matches(name, self.include_names):
            return False
        if self.exclude_names and _matches(name, self.exclude_names):
            return False
        scope = span.instrumentation_scope.name if span.instrumentation_scope else ""
        if self.include_scopes and not _matches(scope, self.include_scopes):
            return False
        if self.exclude_scopes and _matches(scope, self.exclude_scopes):
            return False
        return self.predicate is None or bool(self.predicate(span))

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


def _hex_trace(value: int) -> str:
    return trace_api.format_trace_id(value)


def _hex_span(value: int) -> str:
    return trace_api.format_span_id(value)


class LedgerSpanProcessor(SpanProcessor):
    """Records every ended span that passes ``span_filter`` as a ``SpanRecord`` event.

    Arguments: ``ledger`` (a ``Ledger``), identity defaults ``tenant_id``,
    ``project_id``, ``agent_id``, ``agent_role``, ``session_id`` (see the module
    docstring for how they combine with resource and span attributes), ``span_filter``
    and ``on_error``: ``"log"`` (default: a span that cannot be stored is logged at
    ERROR on logger ``nervous_system.capture`` and counted in ``failed``, and
    ``span.end()`` does not raise into the instrumented library) or ``"raise"``.

    Counters (thread-safe): ``recorded``, ``filtered``, ``failed``; ``last_error``.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        tenant_id: str | None = None,
        project_id: str | None = None,
        agent_id: str | None = None,
        agent_role: str = "other",
        session_id: str | None = None,
        span_filter: SpanFilter | None = None,
        on_error: str = "log",
        close_ledger_on_shutdown: bool = False,
    ) -> None:
        if on_error not in ("log", "raise"):
            raise ValueError(f"on_error must be 'log' or 'raise', not {on_error!r}")
        self.ledger = ledger
        self.tenant_id = tenant_id
        self.project_id = project_id
        self.agent_id = agent_id
        self.agent_role = agent_role
        self.session_id = session_id
        self.span_filter = span_filter or SpanFilter()
        self.on_error = on_error
        self._close_ledger = close_ledger_on_shutdown
        self._lock = threading.Lock()
        self.recorded = 0
        self.filtered = 0
        self.failed = 0
        self.last_error: BaseException | None = None

    # ------------------------------------------------------------ conversion
    def to_event(self, span: ReadableSpan) -> SwarmEvent:
        """Convert an ended span to its ``SwarmEvent`` (no I/O). Raises ``InvalidEvent``."""
        ctx = span.context
        trace_id, span_id = _hex_trace(ctx.trace_id), _hex_span(ctx.span_id)
        flt = self.span_filter
        resource = dict(span.resource.attributes) if span.resource is not None else {}
        raw_attrs = span.attributes or {}
        scope = span.instrumentation_scope
        record = SpanRecord(
            name=span.name or "",
            kind=_KINDS.get(span.kind, SpanKind.UNSPECIFIED),
            parent_span_id=_hex_span(span.parent.span_id) if span.parent is not None and span.parent.is_valid else "",
            start_time=span.start_time or 0,
            end_time=span.end_time or 0,
            status_code=_STATUS.get(span.status.status_code, SpanStatusCode.UNSET),
            status_message=span.status.description or "",
            attributes=flt.attributes(raw_attrs),
            events=[
                SpanEventRecord(name=e.name, time=e.timestamp or 0, attributes=flt.attributes(e.attributes))
                for e in span.events
            ],
            links=[
                SpanLinkRecord(
                    trace_id=_hex_trace(link.context.trace_id),
                    span_id=_hex_span(link.context.span_id),
                    attributes=flt.attributes(link.attributes),
                )
                for link in span.links
                if link.context is not None and link.context.is_valid
            ],
            scope_name=scope.name if scope is not None else "",
            scope_version=(scope.version or "") if scope is not None else "",
            resource_attributes=flt.attributes(resource),
        )
        service = str(resource.get("service.name", "") or "")
        if service.startswith("unknown_service"):
            service = ""
        agent = (
            str(raw_attrs.get("gen_ai.agent.id") or "")
            or str(raw_attrs.get("gen_ai.agent.name") or "")
            or self.agent_id
            or service
            or "otel"
        )
        start = span.start_time or 0
        return SwarmEvent(
            event_id=deterministic_event_id(start // 1_000_000, "otel-span", trace_id, span_id),
            timestamp=span.end_time or start,
            tenant_id=self.tenant_id or str(resource.get("ledger.tenant.id") or "") or "default",
            project_id=self.project_id
            or str(resource.get("ledger.project.id") or "")
            or str(resource.get("service.namespace") or "")
            or "default",
            session_id=self.session_id or str(resource.get("service.instance.id") or ""),
            agent_id=agent,
            agent_role=self.agent_role,
            trace_id=trace_id,
            span_id=span_id,
            span=record,
        )

    # ------------------------------------------------------------ SpanProcessor
    def on_start(self, span, parent_context=None) -> None:  # noqa: D401 - SDK hook
        """Nothing to do when a span starts (it is recorded when it ends)."""

    def on_end(self, span: ReadableSpan) -> None:
        """Record the ended span (durable on return in ``full`` durability)."""
        if not span.context or not span.context.is_valid:
            return
        if not self.span_filter.keeps_span(span):
            with self._lock:
                self.filtered += 1
            return
        try:
            self.ledger.submit(self.to_event(span))  # in group mode: buffered, checked now
        except (LedgerError, SchemaError, ValueError) as exc:
            with self._lock:
                self.failed += 1
                self.last_error = exc
            if self.on_error == "raise":
                raise
            log.error("span %r (%s) was not recorded in the ledger: %s", span.name,
                      _hex_span(span.context.span_id), exc)
            return
        with self._lock:
            self.recorded += 1

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Make every recorded span durable (commits the open group in ``group`` mode)."""
        try:
            self.ledger.flush()
        except LedgerError as exc:
            log.error("ledger flush failed: %s", exc)
            return False
        return True

    def shutdown(self) -> None:
        """Flush; close the ledger if this processor was asked to own it."""
        self.force_flush()
        if self._close_ledger:
            self.ledger.close()
