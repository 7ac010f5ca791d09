"""Events recorded through the SDK carry the active span's ids and appear as span
events (``ledger.<kind>``) on that span."""

from __future__ import annotations

import re

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import nervous_system  # noqa: F401 - registers the span-link hooks
from ledger import Ledger
from nervous_system import Recorder
from schemas import new_event_id, parse_event


@pytest.fixture
def traced(ledger_path):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    lg = Ledger(ledger_path)
    rec = Recorder(lg, project_id="web", agent_id="coder-1", agent_role="coder")
    yield provider.get_tracer("agent"), rec, lg, exporter
    lg.close()


def test_events_carry_span_ids_and_are_mirrored(traced):
    tracer, rec, lg, exporter = traced
    with tracer.start_as_current_span("plan") as span:
        ctx = span.get_span_context()
        why = rec.decision("split the parser", confidence=0.8, rejected_alternatives=["regex"])
        change = rec.file_change("src/parser.py", b"def parse():\n    pass\n")
        msg = rec.message("done", recipients=["reviewer"])
        sig = rec.signal("healthy", cpu_load_percent=12.5)
    trace_hex, span_hex = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
    for eid in (why, change, msg, sig):
        ev = lg.get(eid).event
        assert re.fullmatch(r"[0-9a-f]{32}", ev.trace_id) and re.fullmatch(r"[0-9a-f]{16}", ev.span_id)
        assert (ev.trace_id, ev.span_id) == (trace_hex, span_hex)
    (finished,) = exporter.get_finished_spans()
    by_id = {e.attributes["ledger.event_id"]: e for e in finished.events}
    assert set(by_id) == {why, change, msg, sig}
    d = by_id[why]
    assert d.name == "ledger.decision"
    assert d.attributes["ledger.decision.rationale"] == "split the parser"
    assert d.attributes["ledger.decision.confidence"] == 0.8
    assert d.attributes["gen_ai.agent.id"] == "coder-1"
    assert d.attributes["ledger.agent.role"] == "coder"
    assert d.attributes["gen_ai.conversation.id"] == rec.session_id
    assert d.timestamp == lg.get(why).event.timestamp
    c = by_id[change]
    assert c.name == "ledger.state_change"
    assert c.attributes["code.file.path"] == "src/parser.py"
    assert c.attributes["ledger.state_change.operation"] == "create"
    assert c.attributes["ledger.caused_by"] == why
    assert c.attributes["ledger.state_change.lines_added"] == 2
    assert by_id[msg].name == "ledger.message" and by_id[sig].name == "ledger.signal"


def test_nested_spans_link_to_innermost(traced):
    tracer, rec, lg, exporter = traced
    with tracer.start_as_current_span("outer") as outer:
        a = rec.decision("outer step")
        with tracer.start_as_current_span("inner") as inner:
            b = rec.decision("inner step")
    assert lg.get(a).event.span_id == f"{outer.get_span_context().span_id:016x}"
    assert lg.get(b).event.span_id == f"{inner.get_span_context().span_id:016x}"
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert [e.attributes["ledger.event_id"] for e in spans["inner"].events] == [b]
    assert [e.attributes["ledger.event_id"] for e in spans["outer"].events] == [a]


def test_no_span_no_link(traced):
    _, rec, lg, _ = traced
    ev = lg.get(rec.decision("no tracing here")).event
    assert ev.trace_id == "" and ev.span_id == ""


def test_explicit_trace_ids_are_kept(traced):
    tracer, rec, lg, exporter = traced
    other_trace, other_span = "ab" * 16, "cd" * 8
    event = parse_event({
        "event_id": new_event_id(), "timestamp": 1, "tenant_id": "default", "project_id": "web",
        "trace_id": other_trace, "span_id": other_span, "decision": {"rationale": "imported"},
    })
    with tracer.start_as_current_span("s"):
        rec.record(event)
    stored = lg.get(event.event_id).event
    assert (stored.trace_id, stored.span_id) == (other_trace, other_span)
    (span,) = exporter.get_finished_spans()
    assert span.events == ()  # names another span: not mirrored here


def test_long_text_is_cut_on_the_span_but_whole_in_ledger(traced):
    tracer, rec, lg, exporter = traced
    text = "x" * 5000
    with tracer.start_as_current_span("s"):
        eid = rec.decision(text)
    (span,) = exporter.get_finished_spans()
    assert len(span.events[0].attributes["ledger.decision.rationale"]) == 1024
    assert lg.get(eid).event.decision.rationale == text


def test_per_recorder_hooks(traced):
    _, rec, lg, _ = traced
    seen = []
    rec.add_hooks(after=lambda e: seen.append(e.event_id))
    other = Recorder(lg, project_id="web", agent_id="other")
    a = rec.decision("mine")
    other.decision("not mine")
    assert seen == [a]


def test_importing_the_sdk_changes_nothing_process_wide(python):
    import subprocess

    code = ("import nervous_system; from nervous_system import Recorder; "
            "print(len(Recorder.before_append), len(Recorder.after_append))")
    assert subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["0", "0"]


def test_link_spans_false_records_without_trace_links(ledger_path):
    from opentelemetry.sdk.trace import TracerProvider

    from ledger import Ledger
    from nervous_system import Recorder

    lg = Ledger(ledger_path)
    linked = Recorder(lg, project_id="p", agent_id="a")
    plain = Recorder(lg, project_id="p", agent_id="b", link_spans=False)
    with TracerProvider().get_tracer("t").start_as_current_span("s"):
        a, b = linked.decision("linked"), plain.decision("plain")
    assert lg.get(a).event.trace_id and lg.get(b).event.trace_id == ""
    lg.close()
