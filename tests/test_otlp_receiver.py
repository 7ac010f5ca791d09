"""`ledger serve` as an OTLP/HTTP receiver: the OpenTelemetry JS SDK (npm, pinned in
tests/otel_js/) exports spans and logs over protobuf and JSON; every span and log
record is recorded exactly once, also when the exporter retries (the collector
answers 503 after committing the first request of each signal); malformed bodies get
400 and write nothing; partial success reports rejected items; the agents' recorded
exports (tests/agents/recorded/*/otlp.json) decode."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from ledger import Ledger
from tests.collector_fixtures import gz, start_collector

OTEL_JS = Path(__file__).resolve().parent / "otel_js"
RECORDED = Path(__file__).resolve().parent / "agents" / "recorded"
PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}


@pytest.fixture
def collector(tmp_path):
    col = start_collector(tmp_path / "ledger.db")
    yield col
    col.stop()


def _count(db: Path) -> int:
    with Ledger(db) as led:
        return led.count()


def _events(db: Path):
    with Ledger(db) as led:
        return [s.event for s in led.events(order="seq")]


def _span_request(trace_hex: str = "0af7651916cd43dd8448eb211c80319c", span_hex: str = "b7ad6b7169203331",
                  name: str = "execute_tool Bash") -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "json-agent"}}]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": [{
            "traceId": trace_hex, "spanId": span_hex, "name": name, "kind": 1,
            "startTimeUnixNano": "1796000000000000000", "endTimeUnixNano": "1796000000500000000",
            "attributes": [{"key": "gen_ai.tool.name", "value": {"stringValue": "Bash"}},
                           {"key": "n", "value": {"intValue": "42"}}],
            "status": {"code": 1}}]}]}]}


@pytest.mark.slow
def test_opentelemetry_js_sdk_protobuf_and_json_recorded_exactly_once_with_retries(tmp_path):
    try:
        from tests.otel_js.install import ensure_installed

        ensure_installed()
    except RuntimeError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))
    db = tmp_path / "ledger.db"
    col = start_collector(db, "--fail-first", "1")
    try:
        sent = {}
        for protocol in ("proto", "json"):
            p = subprocess.run(["node", str(OTEL_JS / "send.js"), f"http://127.0.0.1:{col.port}", protocol,
                                f"js-{protocol}"], capture_output=True, text=True, timeout=120)
            assert p.returncode == 0, p.stderr
            sent[protocol] = json.loads(p.stdout)
        health = json.loads(__import__("urllib.request").request.urlopen(
            f"http://127.0.0.1:{col.port}/health", timeout=10).read())
    finally:
        col.stop()
    events = _events(db)
    for protocol, what in sent.items():
        spans = [e for e in events if e.span and e.agent_id == f"js-{protocol}"]
        got = sorted((e.trace_id, e.span_id) for e in spans)
        assert got == sorted((s["trace_id"], s["span_id"]) for s in what["spans"])  # each exactly once
        assert all(e.project_id == "otel-js" for e in spans)
        failed = [e for e in spans if e.span.status_code.value == "error"]
        assert len(failed) == 1 and failed[0].span.status_message == "tool failed"
        child = next(e for e in spans if e.span.name == "execute_tool tool-0")
        assert child.span.attributes["tags"] == ["a", "b"] and child.span.events[0].name == "progress"
        assert child.span.parent_span_id == what["spans"][-1]["span_id"]
        root = next(e for e in spans if e.span.name == "invoke_agent js-agent")
        assert root.session_id == f"js-{protocol}-session" and root.span.kind.value == "server"
        logs = [e for e in events if (e.message or e.signal) and e.agent_id == f"js-{protocol}"]
        assert len(logs) == what["logs"]
        prompt = next(e for e in logs if e.message)
        assert prompt.message.sender == "user" and prompt.message.content == "make it faster"
        result = next(e for e in logs if e.signal)
        assert result.signal.status == "js_agent.tool_result"
    # the first export of each signal was answered 503 after it was committed: the
    # exporters sent it again, and it is still stored once
    assert health["spans"] > sum(len(s["spans"]) for s in sent.values())


def test_otlp_json_with_hex_ids_and_gzip_protobuf(collector):
    req = _span_request()
    status, body, headers = collector.post("/v1/traces", json.dumps(req).encode(), JS)
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert json.loads(body) == {}
    msg = trace_service_pb2.ExportTraceServiceRequest()
    json_format.ParseDict(json.loads(json.dumps(req).replace("0af7651916cd43dd8448eb211c80319c",
                                                            base64.b64encode(bytes.fromhex("0af7651916cd43dd8448eb211c80319d")).decode())
                                     .replace("b7ad6b7169203331", base64.b64encode(bytes.fromhex("b7ad6b7169203331")).decode())), msg)
    status, body, headers = collector.post("/v1/traces", gz(msg.SerializeToString()),
                                           {**PB, "Content-Encoding": "gzip"})
    assert status == 200 and headers["content-type"] == "application/x-protobuf"
    assert trace_service_pb2.ExportTraceServiceResponse.FromString(body) == trace_service_pb2.ExportTraceServiceResponse()
    spans = [e for e in _events(collector.db) if e.span]
    assert sorted(e.trace_id for e in spans) == ["0af7651916cd43dd8448eb211c80319c", "0af7651916cd43dd8448eb211c80319d"]
    assert spans[0].span.attributes["n"] == 42 and spans[0].agent_id == "json-agent"
    # the same export again: nothing new
    collector.post("/v1/traces", json.dumps(req).encode(), JS)
    assert len([e for e in _events(collector.db) if e.span]) == 2


@pytest.mark.parametrize("path,body,headers", [
    ("/v1/traces", b"\xff\xff\xff not protobuf", PB),
    ("/v1/traces", b"{not json", JS),
    ("/v1/traces", b"[1, 2]", JS),
    ("/v1/traces", json.dumps(_span_request(trace_hex="zz" * 16)).encode(), JS),
    ("/v1/traces", json.dumps(_span_request(span_hex="ab")).encode(), JS),
    ("/v1/logs", json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "abc"}]}]}]}).encode(), JS),
    ("/v1/traces", b"\x1f\x8b not gzip", {**PB, "Content-Encoding": "gzip"}),
    ("/v1/traces", json.dumps(_span_request()).encode(), {"Content-Type": "text/plain"}),
    ("/v1/metrics", b"\x0a\x05\x0a\x03", PB),
])
def test_malformed_bodies_get_400_and_write_nothing(collector, path, body, headers):
    before = _count(collector.db)
    status, resp, _ = collector.post(path, body, headers)
    assert status == 400, resp
    assert _count(collector.db) == before


def test_partial_success_reports_rejected_spans(collector):
    req = _span_request()
    bad = json.loads(json.dumps(req["resourceSpans"][0]["scopeSpans"][0]["spans"][0]))
    bad["traceId"], bad["spanId"] = "0" * 32, "1" * 16
    req["resourceSpans"][0]["scopeSpans"][0]["spans"].append(bad)
    status, body, _ = collector.post("/v1/traces", json.dumps(req).encode(), JS)
    assert status == 200
    assert json.loads(body)["partialSuccess"]["rejectedSpans"] == "1"
    assert len([e for e in _events(collector.db) if e.span]) == 1


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_recorded_agent_exports_decode_and_join_the_hook_session(collector, agent, tmp_path):
    """What the agents really sent (re-encoded as they sent it) is accepted whole; log
    records carrying the hook session's id land in the hook session's project."""
    exports = json.loads((RECORDED / agent / "otlp.json").read_text())
    hooks = [json.loads(line) for line in (RECORDED / agent / "hooks.jsonl").read_text().splitlines()]
    session = hooks[0]["payload"]["session_id"]
    ws = tmp_path / "ws"
    ws.mkdir()
    assert collector.hook({"claude": "claude-code"}.get(agent, agent),
                          {"hook_event_name": "SessionStart", "session_id": session, "cwd": str(ws)},
                          {"project": "hooked", "root": str(ws)}) == 200
    classes = {"traces": trace_service_pb2.ExportTraceServiceRequest, "logs": logs_service_pb2.ExportLogsServiceRequest}
    for exp in exports:
        if exp["signal"] not in classes:
            continue
        if "json" in exp["content_type"]:  # recorded as sent: OTLP/JSON, hex ids
            body, headers = json.dumps(exp["body"]).encode(), JS
        else:  # recorded decoded (protobuf JSON mapping): encode it back
            body, headers = json_format.ParseDict(exp["body"], classes[exp["signal"]]()).SerializeToString(), PB
        status, resp, _ = collector.post(exp["path"], body, headers)
        assert status == 200, resp
    events = _events(collector.db)
    assert any(e.span for e in events)
    joined = [e for e in events if (e.signal or e.message) and e.session_id == session and e.agent_id != "ledger-baseline"]
    assert joined and all(e.project_id == "hooked" for e in joined)

