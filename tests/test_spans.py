"""``nervous_system.spans``: the span -> event rules are pure functions of plain data, so
an OTLP receiver decoding ``opentelemetry-proto`` messages builds exactly the events the
SDK span processor records."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ledger import Ledger
from nervous_system import LedgerSpanProcessor, SpanFilter
from nervous_system.spans import (
    OTLP_KINDS,
    OTLP_STATUS,
    Identity,
    SpanEventData,
    SpanLinkData,
    span_identity,
    span_to_event,
)
from tests.test_span_capture import sample_agent


def _value(v):
    """A Python value of an OTLP ``AnyValue`` (what a receiver decodes)."""
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


def _attrs(kvs) -> dict:
    return {kv.key: _value(kv.value) for kv in kvs}


def test_otlp_decoded_spans_make_the_same_events(ledger_path):
    flt = SpanFilter(attribute_deny=("gen_ai.input.messages",), max_value_chars=40)
    mem = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc", "ledger.tenant.id": "acme"}))
    provider.add_span_processor(LedgerSpanProcessor(Ledger(ledger_path), project_id="web",
                                                    agent_id="fallback", span_filter=flt))
    provider.add_span_processor(SimpleSpanProcessor(mem))
    sample_agent(provider)
    recorded = {e.event.event_id: e.event for e in Ledger(ledger_path).events(kind="span")}
    assert len(recorded) == 4

    request = encode_spans(mem.get_finished_spans())  # the bytes an OTLP exporter sends
    decoded = []
    for rs in request.resource_spans:
        resource = _attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                decoded.append(span_to_event(
                    name=s.name, kind=OTLP_KINDS[s.kind], trace_id=s.trace_id, span_id=s.span_id,
                    parent_span_id=s.parent_span_id, start_ns=s.start_time_unix_nano,
                    end_ns=s.end_time_unix_nano, status_code=OTLP_STATUS[s.status.code],
                    status_message=s.status.message, attributes=_attrs(s.attributes),
                    events=[SpanEventData(e.name, e.time_unix_nano, _attrs(e.attributes)) for e in s.events],
                    links=[SpanLinkData(k.trace_id, k.span_id, _attrs(k.attributes)) for k in s.links],
                    scope_name=ss.scope.name, scope_version=ss.scope.version, resource=resource,
                    identity=Identity(project_id="web", agent_id="fallback"), span_filter=flt,
                ))
    assert {e.event_id: e for e in decoded} == recorded
    assert {e.tenant_id for e in decoded} == {"acme"}
    assert "gen_ai.input.messages" not in str(decoded)


def test_identity_rules():
    none = Identity()
    assert span_identity(none, {}, {"service.name": "unknown_service:python"}) == {
        "tenant_id": "default", "project_id": "default", "session_id": "", "agent_id": "otel",
        "agent_role": "other"}
    resource = {"service.name": "svc", "service.namespace": "ns", "service.instance.id": "i-1",
                "ledger.tenant.id": "t", "ledger.project.id": "p"}
    assert span_identity(none, {"gen_ai.agent.name": "coder"}, resource) == {
        "tenant_id": "t", "project_id": "p", "session_id": "i-1", "agent_id": "coder", "agent_role": "other"}
    mine = Identity(tenant_id="T", project_id="P", agent_id="A", agent_role="coder", session_id="S")
    got = span_identity(mine, {"gen_ai.agent.id": "id-1", "gen_ai.agent.name": "coder"}, resource)
    assert got == {"tenant_id": "T", "project_id": "P", "session_id": "S", "agent_id": "id-1",
                   "agent_role": "coder"}
    assert span_identity(none, {}, {"service.name": "svc", "service.namespace": "ns"})["project_id"] == "ns"
    assert span_identity(none, {}, {"service.name": "svc"})["agent_id"] == "svc"
