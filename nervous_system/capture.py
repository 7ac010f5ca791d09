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

Who a span belongs to (tenant, project, agent, session) and its deterministic event id
are decided by ``nervous_system.spans`` (pure functions an OTLP receiver shares).
"""

from __future__ import annotations

import logging
import threading

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanKind as OtelSpanKind
from opentelemetry.trace import StatusCode

from ledger import Ledger
from ledger.errors import LedgerError
from nervous_system.spans import (
    Identity,
    SpanEventData,
    SpanFilter,
    SpanLinkData,
    span_id_hex,
    span_to_event,
)
from schemas import SpanKind, SpanStatusCode, SwarmEvent
from schemas.errors import SchemaError

__all__ = ["LedgerSpanProcessor", "SpanFilter"]

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


class LedgerSpanProcessor(SpanProcessor):
    """Records every ended span that passes ``span_filter`` as a ``SpanRecord`` event.

    Arguments: ``ledger`` (a ``Ledger``), identity defaults ``tenant_id``,
    ``project_id``, ``agent_id``, ``agent_role``, ``session_id`` (see ``nervous_system.spans``
    for how they combine with resource and span attributes), ``span_filter``
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
    @property
    def identity(self) -> Identity:
        """The identity defaults of this processor (``spans.span_identity`` rules)."""
        return Identity(tenant_id=self.tenant_id, project_id=self.project_id, agent_id=self.agent_id,
                        agent_role=self.agent_role, session_id=self.session_id)

    def to_event(self, span: ReadableSpan) -> SwarmEvent:
        """Convert an ended span to its ``SwarmEvent`` (no I/O; ``spans.span_to_event``).
        Raises ``InvalidEvent``."""
        ctx = span.context
        parent = span.parent
        scope = span.instrumentation_scope
        return span_to_event(
            name=span.name or "",
            kind=_KINDS.get(span.kind, SpanKind.UNSPECIFIED),
            trace_id=ctx.trace_id,
            span_id=ctx.span_id,
            parent_span_id=parent.span_id if parent is not None and parent.is_valid else None,
            start_ns=span.start_time or 0,
            end_ns=span.end_time or 0,
            status_code=_STATUS.get(span.status.status_code, SpanStatusCode.UNSET),
            status_message=span.status.description or "",
            attributes=span.attributes or {},
            events=[SpanEventData(e.name, e.timestamp or 0, e.attributes) for e in span.events],
            links=[SpanLinkData(link.context.trace_id, link.context.span_id, link.attributes)
                   for link in span.links if link.context is not None and link.context.is_valid],
            scope_name=scope.name if scope is not None else "",
            scope_version=(scope.version or "") if scope is not None else "",
            resource=span.resource.attributes if span.resource is not None else {},
            identity=self.identity,
            span_filter=self.span_filter,
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
                      span_id_hex(span.context.span_id), exc)
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
