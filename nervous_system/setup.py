"""One-call setup: ``nervous_system.configure(...)``.

::

    import nervous_system
    inst = nervous_system.configure(project_id="web", agent_id="coder-1")
    tracer = inst.tracer("my-agent")
    with tracer.start_as_current_span("plan"):
        inst.recorder.decision("split the parser", confidence=0.8)   # linked to the span

What it does:

1. opens the ledger (a ``Ledger``, a path, or the configured one; ``durability``
   ``"full"``/``"group"`` defaults to the ``LEDGER_DURABILITY`` setting);
2. builds the OpenTelemetry ``Resource`` (``Resource.create``: honours
   ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME``) with ``service.name`` = the agent
   id, ``ledger.tenant.id`` and ``ledger.project.id``;
3. installs a ``TracerProvider`` with the ``LedgerSpanProcessor`` (spans are recorded when
   they end) and, when enabled, a ``BatchSpanProcessor`` around an OTLP exporter so
   traces also reach a collector. ``otlp="auto"`` (default) enables it when
   ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set and
   ``OTEL_TRACES_EXPORTER`` is not ``none``; ``True`` always, ``False`` never. The
   protocol is ``otlp_protocol``, else ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, else
   ``OTEL_EXPORTER_OTLP_PROTOCOL``, else ``http/protobuf`` (the OTLP specification's
   default); every other ``OTEL_EXPORTER_OTLP_*`` variable (headers, timeout,
   certificates, compression) is read by the exporter itself. If the process already has
   an SDK ``TracerProvider`` as the global one, the processors are added to it instead;
4. if ``TRACEPARENT`` is in the environment (a parent agent used ``child_env()``), makes
   that trace context current so this process's spans join the parent's trace;
5. returns an ``Instrumentation`` with a ``Recorder`` bound to the same identity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from ledger import Ledger
from ledger.errors import ConfigError
from nervous_system import otel
from nervous_system.capture import LedgerSpanProcessor, SpanFilter
from nervous_system.propagation import attach_from_env
from nervous_system.recorder import Recorder
from schemas import new_event_id

_OTLP_PROTOCOLS = ("http/protobuf", "grpc")


@dataclass
class Instrumentation:
    """What ``configure`` installed. ``shutdown()`` flushes and stops it all."""

    ledger: Ledger
    tracer_provider: TracerProvider
    recorder: Recorder
    processor: LedgerSpanProcessor | None
    exporter: SpanExporter | None
    exporter_processor: SpanProcessor | None
    resource: Resource
    is_global: bool
    owns_ledger: bool
    parent_context_attached: bool = False
    _done: bool = field(default=False, repr=False)

    def tracer(self, name: str = "nervous_system", version: str | None = None) -> trace.Tracer:
        """A tracer of this provider (``name`` is the instrumentation scope)."""
        return self.tracer_provider.get_tracer(name, version)

    def flush(self) -> None:
        """Make every span and event recorded so far durable (and export pending spans)."""
        self.tracer_provider.force_flush()
        self.ledger.flush()

    def shutdown(self) -> None:
        """Flush, shut the provider down (if this call created it) and close the ledger
        if ``configure`` opened it. Idempotent."""
        if self._done:
            return
        self._done = True
        self.tracer_provider.force_flush()
        if self.processor is not None:
            self.processor.force_flush()
        created = getattr(self.tracer_provider, "_ledger_created", False)
        if created:
            self.tracer_provider.shutdown()
        if self.owns_ledger:
            self.ledger.close()
        else:
            self.ledger.flush()


def otlp_enabled(otlp: bool | str, env: Mapping[str, str] | None = None) -> bool:
    """Resolve ``otlp`` (True, False or "auto") against the ``OTEL_*`` environment."""
    env = os.environ if env is None else env
    if otlp is True or otlp is False:
        return otlp
    if otlp != "auto":
        raise ConfigError(f"otlp must be True, False or 'auto', not {otlp!r}")
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def make_otlp_exporter(protocol: str | None = None, env: Mapping[str, str] | None = None) -> SpanExporter:
    """An OTLP span exporter for ``protocol`` (see module docstring for the default).
    Endpoint, headers, timeout etc. come from the standard ``OTEL_EXPORTER_OTLP_*``
    variables. Raises ``ConfigError`` for an unknown protocol."""
    env = os.environ if env is None else env
    protocol = (
        protocol
        or env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    elif protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ConfigError(
                "OTLP over gRPC needs the grpc extra: pip install 'context-ledger[grpc]' "
                "(or use OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, in the base install)"
            ) from exc
    else:
        raise ConfigError(
            f"unsupported OTLP protocol {protocol!r}: use one of {', '.join(_OTLP_PROTOCOLS)} "
            "(OTEL_EXPORTER_OTLP_PROTOCOL)"
        )
    return OTLPSpanExporter()


def configure(
    ledger: Ledger | str | os.PathLike | None = None,
    *,
    project_id: str | None = None,
    agent_id: str | None = None,
    tenant_id: str | None = None,
    agent_role: str = "other",
    session_id: str | None = None,
    user_id: str = "",
    resource_attributes: Mapping[str, Any] | None = None,
    otlp: bool | str = "auto",
    otlp_protocol: str | None = None,
    capture_spans: bool = True,
    span_filter: SpanFilter | None = None,
    on_error: str = "log",
    durability: str | None = None,
    set_global: bool = True,
    join_parent_trace: bool = True,
    extra_processors: tuple[SpanProcessor, ...] = (),
) -> Instrumentation:
    """Set up tracing into the ledger (and a collector) in one call; see the module
    docstring. Returns an ``Instrumentation``.

    Identity: ``tenant_id`` defaults to the ``tenant`` setting; ``project_id`` to the
    ``project`` setting, else resource attribute ``ledger.project.id`` or
    ``service.namespace`` (from ``OTEL_RESOURCE_ATTRIBUTES``); ``agent_id`` to the
    resource's ``service.name`` (``OTEL_SERVICE_NAME``), else ``agent-<pid>``;
    ``session_id`` (one agent run) to a new UUIDv7, also exported as
    ``service.instance.id``. ``set_global=False`` leaves the global tracer provider
    alone (use ``Instrumentation.tracer``). ``extra_processors`` are added after the
    ledger processor (tests add an in-memory exporter here).

    Raises ``ConfigError`` (no project, bad ``otlp``/protocol) and ``StoreError``.
    """
    from ledger.config import load_settings

    settings = load_settings()
    detected = Resource.create({}).attributes  # OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME
    tenant = tenant_id or str(detected.get("ledger.tenant.id") or "") or settings.tenant
    project = (
        project_id
        or settings.project
        or str(detected.get("ledger.project.id") or "")
        or str(detected.get("service.namespace") or "")
    )
    if not project:
        raise ConfigError(
            "nervous_system.configure needs a project: pass project_id=..., set "
            "LEDGER_PROJECT, or OTEL_RESOURCE_ATTRIBUTES=ledger.project.id=..."
        )
    service = str(detected.get("service.name") or "")
    agent = agent_id or ("" if service.startswith("unknown_service") else service) or f"agent-{os.getpid()}"
    session = session_id or new_event_id()

    owns_ledger = not isinstance(ledger, Ledger)
    if isinstance(ledger, Ledger):
        lg = ledger
    else:
        path = Path(ledger) if ledger is not None else settings.ledger_path
        from ledger.policies import default_policies

        lg = Ledger(path, durability=durability or settings.durability, policies=default_policies(settings))

    attrs: dict[str, Any] = {
        "service.name": agent,
        "service.instance.id": session,
        "ledger.tenant.id": tenant,
        "ledger.project.id": project,
    }
    attrs.update(resource_attributes or {})
    resource = Resource.create(attrs)

    processor = None
    if capture_spans:
        processor = LedgerSpanProcessor(
            lg, tenant_id=tenant, project_id=project, agent_id=agent, agent_role=agent_role,
            session_id=session, span_filter=span_filter, on_error=on_error,
        )
    exporter = exporter_processor = None
    if otlp_enabled(otlp):
        exporter = make_otlp_exporter(otlp_protocol)
        exporter_processor = BatchSpanProcessor(exporter)

    current = trace.get_tracer_provider()
    is_global = False
    if set_global and isinstance(current, TracerProvider):
        provider = current  # the application configured the SDK already: join it
        is_global = True
    else:
        provider = TracerProvider(resource=resource)
        provider._ledger_created = True  # type: ignore[attr-defined]
        if set_global:
            trace.set_tracer_provider(provider)
            is_global = trace.get_tracer_provider() is provider
    for p in (processor, *extra_processors, exporter_processor):
        if p is not None:
            provider.add_span_processor(p)

    attached = False
    if join_parent_trace and not trace.get_current_span().get_span_context().is_valid:
        attached = attach_from_env() is not None

    recorder = Recorder(
        lg, project_id=project, agent_id=agent, tenant_id=tenant, agent_role=agent_role,
        session_id=session, user_id=user_id,
    )
    return Instrumentation(
        ledger=lg, tracer_provider=provider, recorder=recorder, processor=processor,
        exporter=exporter, exporter_processor=exporter_processor, resource=resource,
        is_global=is_global, owns_ledger=owns_ledger, parent_context_attached=attached,
    )
