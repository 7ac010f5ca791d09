"""The span processor records a real OpenTelemetry SDK span tree, checked against
what the SDK's in-memory exporter saw in the same run; filters; one-call setup."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

import nervous_system
from ledger import Ledger
from nervous_system import LedgerSpanProcessor, SpanFilter


def sample_agent(provider: TracerProvider) -> None:
    """A small instrumented agent: a run span, an LLM call, two tool calls, one failing."""
    agent = provider.get_tracer("sample.agent", "1.2.3")
    llm = provider.get_tracer("opentelemetry.instrumentation.openai", "0.40.0")
    with agent.start_as_current_span("invoke_agent coder", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "coder"}) as run:
        run.add_event("plan", {"steps": 3})
        with llm.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.output_tokens": 42, "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.input.messages": "secret prompt"}):
            pass
        first = None
        with agent.start_as_current_span("execute_tool read_file", attributes={
                "gen_ai.tool.name": "read_file", "gen_ai.tool.call.id": "call_1"}) as tool:
            first = tool.get_span_context()
            tool.set_status(Status(StatusCode.OK))
        try:
            with agent.start_as_current_span("execute_tool run_tests", links=[Link(first, {"why": "after"})],
                                             attributes={"gen_ai.tool.name": "run_tests"}):
                raise RuntimeError("3 tests failed")
        except RuntimeError:
            pass


def _provider(lg: Ledger, **kw):
    mem = InMemorySpanExporter()
    provider = TracerProvider()
    processor = LedgerSpanProcessor(lg, project_id="web", **kw)
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(mem))
    return provider, processor, mem


def test_span_tree_matches_the_sdk(ledger_path):
    lg = Ledger(ledger_path)
    provider, processor, mem = _provider(lg, agent_id="fallback")
    sample_agent(provider)
    sdk_spans = mem.get_finished_spans()
    assert len(sdk_spans) == 4
    stored = {(e.event.trace_id, e.event.span_id): e.event for e in lg.events(kind="span")}
    assert len(stored) == 4 and processor.recorded == 4
    for s in sdk_spans:
        key = (f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}")
        ev = stored[key]
        rec = ev.span
        assert rec.name == s.name
        assert rec.parent_span_id == (f"{s.parent.span_id:016x}" if s.parent else "")
        assert (rec.start_time, rec.end_time) == (s.start_time, s.end_time)
        assert rec.kind.value == s.kind.name.lower()
        assert rec.status_code.value == s.status.status_code.name.lower()
        assert rec.status_message == (s.status.description or "")
        assert rec.attributes == {k: list(v) if isinstance(v, tuple) else v for k, v in s.attributes.items()}
        assert [(e.name, e.time) for e in rec.events] == [(e.name, e.timestamp) for e in s.events]
        assert rec.scope_name == s.instrumentation_scope.name
        assert rec.scope_version == s.instrumentation_scope.version
        assert rec.resource_attributes["service.name"] == s.resource.attributes["service.name"]
        assert ev.timestamp == s.end_time
    # the tree: one root, three children of it, all in one trace
    roots = [e for e in stored.values() if not e.span.parent_span_id]
    assert len(roots) == 1 and len({e.trace_id for e in stored.values()}) == 1
    children = [e for e in stored.values() if e.span.parent_span_id == roots[0].span_id]
    assert len(children) == 3
    failing = next(e for e in stored.values() if e.span.name == "execute_tool run_tests")
    assert failing.span.status_code.value == "error"
    (exc,) = [e for e in failing.span.events if e.name == "exception"]
    assert exc.attributes["exception.type"] == "RuntimeError"
    assert exc.attributes["exception.message"] == "3 tests failed"
    assert "Traceback" in exc.attributes["exception.stacktrace"]
    tool = next(e for e in stored.values() if e.span.name == "execute_tool read_file")
    assert failing.span.links[0].span_id == tool.span_id and failing.span.links[0].attributes == {"why": "after"}
    # agent: gen_ai.agent.name on the span wins, else the processor's agent_id
    assert roots[0].agent_id == "coder"
    assert tool.agent_id == "fallback"
    lg.close()


def test_span_is_recorded_once_even_if_captured_twice(ledger_path):
    lg = Ledger(ledger_path)
    provider, processor, mem = _provider(lg)
    with provider.get_tracer("t").start_as_current_span("once"):
        pass
    processor.on_end(mem.get_finished_spans()[0])
    assert lg.count(kind="span") == 1


@pytest.mark.parametrize("flt, expected", [
    (SpanFilter(include_names=("execute_tool *",)), {"execute_tool read_file", "execute_tool run_tests"}),
    (SpanFilter(exclude_names=("chat *",)), {"invoke_agent coder", "execute_tool read_file", "execute_tool run_tests"}),
    (SpanFilter(include_scopes=("opentelemetry.instrumentation.*",)), {"chat gpt-4o"}),
    (SpanFilter(exclude_scopes=("sample.agent",)), {"chat gpt-4o"}),
    (SpanFilter(predicate=lambda s: s.status.status_code == StatusCode.ERROR), {"execute_tool run_tests"}),
])
def test_span_filters(ledger_path, flt, expected):
    lg = Ledger(ledger_path)
    provider, processor, _ = _provider(lg, span_filter=flt)
    sample_agent(provider)
    assert {e.event.span.name for e in lg.events(kind="span")} == expected
    assert processor.filtered == 4 - len(expected)


def test_attribute_filters(ledger_path):
    lg = Ledger(ledger_path)
    flt = SpanFilter(attribute_deny=("gen_ai.input.messages", "exception.stacktrace"),
                     max_value_chars=8)
    provider, _, _ = _provider(lg, span_filter=flt)
    sample_agent(provider)
    spans = {e.event.span.name: e.event.span for e in lg.events(kind="span")}
    chat = spans["chat gpt-4o"].attributes
    assert "gen_ai.input.messages" not in chat
    assert chat["gen_ai.request.model"] == "gpt-4o" and chat["gen_ai.usage.input_tokens"] == 120
    exc = spans["execute_tool run_tests"].events[0].attributes
    assert "exception.stacktrace" not in exc and exc["exception.message"] == "3 tests…"

    lg2 = Ledger(ledger_path.with_name("allow.db"))
    provider, _, _ = _provider(lg2, span_filter=SpanFilter(attribute_allow=("gen_ai.usage.*",)))
    sample_agent(provider)
    chat = next(e.event.span for e in lg2.events(kind="span") if e.event.span.name == "chat gpt-4o")
    assert chat.attributes == {"gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 42}


def test_failure_to_store_is_counted_not_raised(ledger_path):
    lg = Ledger(ledger_path)
    provider, processor, _ = _provider(lg, tenant_id="bad/tenant")  # invalid tenant id
    with provider.get_tracer("t").start_as_current_span("x"):
        pass
    assert processor.failed == 1 and "tenant_id" in str(processor.last_error)
    provider2, processor2, _ = _provider(lg, tenant_id="bad/tenant", on_error="raise")
    with pytest.raises(Exception, match="tenant_id"):
        with provider2.get_tracer("t").start_as_current_span("x"):
            pass


def test_configure_identity_from_resource(ledger_path, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "planner-bot")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "ledger.project.id=shop,deployment.environment=dev")
    inst = nervous_system.configure(ledger_path, set_global=False, otlp=False)
    with inst.tracer("t").start_as_current_span("work"):
        eid = inst.recorder.decision("go")
    inst.shutdown()
    lg = Ledger(ledger_path)
    span = next(lg.events(kind="span")).event
    assert (span.project_id, span.agent_id) == ("shop", "planner-bot")
    assert span.span.resource_attributes["deployment.environment"] == "dev"
    assert span.session_id == inst.recorder.session_id
    dec = lg.get(eid).event
    assert (dec.project_id, dec.agent_id, dec.span_id) == ("shop", "planner-bot", span.span_id)
    assert inst.exporter is None


def test_configure_without_project_is_a_clear_error(ledger_path):
    from ledger.errors import ConfigError

    with pytest.raises(ConfigError, match="needs a project"):
        nervous_system.configure(ledger_path, set_global=False, otlp=False)


def test_otlp_exporter_follows_otel_env(ledger_path, monkeypatch):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    inst = nervous_system.configure(ledger_path, project_id="p", set_global=False)  # auto, no env
    assert inst.exporter is None
    inst.shutdown()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.invalid:4318")
    inst = nervous_system.configure(ledger_path, project_id="p", set_global=False)
    assert isinstance(inst.exporter, Http)
    assert inst.exporter._endpoint == "http://collector.invalid:4318/v1/traces"
    assert isinstance(inst.exporter_processor, BatchSpanProcessor)
    inst.shutdown()  # nothing was queued: nothing is sent
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces.invalid:4318/custom")
    inst = nervous_system.configure(ledger_path, project_id="p", set_global=False, capture_spans=False)
    assert inst.exporter._endpoint == "http://traces.invalid:4318/custom" and inst.processor is None
    inst.shutdown()
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert nervous_system.configure(ledger_path, project_id="p", set_global=False).exporter is None
    assert nervous_system.configure(ledger_path, project_id="p", set_global=False, otlp=False).exporter is None
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

    inst = nervous_system.configure(ledger_path, project_id="p", set_global=False, otlp=True)
    assert isinstance(inst.exporter, Grpc)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon")
    with pytest.raises(Exception, match="unsupported OTLP protocol"):
        nervous_system.configure(ledger_path, project_id="p", set_global=False, otlp=True)


def test_configure_joins_an_existing_global_provider(ledger_path, monkeypatch):
    import opentelemetry.trace as api

    provider = TracerProvider()
    monkeypatch.setattr(api, "_TRACER_PROVIDER", provider)
    inst = nervous_system.configure(ledger_path, project_id="p", agent_id="a", otlp=False)
    assert inst.tracer_provider is provider and inst.is_global
    with trace.get_tracer("app").start_as_current_span("app span"):
        pass
    inst.flush()
    assert [e.event.span.name for e in inst.ledger.events(kind="span")] == ["app span"]
    inst.shutdown()
