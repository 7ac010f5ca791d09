"""A minimal OTLP/HTTP receiver that stores every export request raw.

Each POST (any path; agents use /v1/traces, /v1/logs, /v1/metrics) becomes one JSONL
line: `time_ns`, `path`, `content_type`, `content_encoding`, `body_b64` (the body
exactly as received, still compressed if it was). The answer is 200 with an empty
ExportServiceResponse: zero bytes for protobuf, `{}` for JSON. `decode_file()` turns a
log into readable JSON with the `opentelemetry-proto` package.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class OtlpSink:
    """Threaded HTTP server on 127.0.0.1:<port 0>; `port` is valid after construction."""

    def __init__(self, log_path: Path):
        self.log_path = Path(log_path)
        lock = threading.Lock()
        log_path = self.log_path

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = read_chunked(self.rfile)  # Gemini CLI's OTLP/HTTP exporter sends chunked bodies
                else:
                    n = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(n) if n else b""
                ctype = self.headers.get("Content-Type", "")
                line = {"time_ns": time.time_ns(), "path": self.path, "content_type": ctype,
                        "content_encoding": self.headers.get("Content-Encoding", ""),
                        "body_b64": base64.b64encode(body).decode()}
                with lock, open(log_path, "a") as f:
                    f.write(json.dumps(line) + "\n")
                out = b"{}" if "json" in ctype else b""
                self.send_response(200)
                self.send_header("Content-Type", "application/json" if "json" in ctype else "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> int:
        self._thread.start()
        return self.port

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def read_chunked(rfile) -> bytes:
    """Body of an HTTP/1.1 request sent with Transfer-Encoding: chunked."""
    out = b""
    while True:
        size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline().strip():  # trailers, then the blank line
                pass
            return out
        out += rfile.read(size)
        rfile.readline()


def _raw_body(rec: dict) -> bytes:
    body = base64.b64decode(rec["body_b64"])
    enc = rec.get("content_encoding", "").lower()
    if enc == "gzip":
        body = gzip.decompress(body)
    elif enc == "deflate":
        body = zlib.decompress(body)
    return body


def decode_record(rec: dict) -> dict[str, Any]:
    """One sink line -> {"path", "content_type", "signal", "body": OTLP JSON (camelCase as in the OTLP/JSON spec)}."""
    body = _raw_body(rec)
    path = rec["path"]
    signal = "traces" if "trace" in path else "logs" if "log" in path else "metrics" if "metric" in path else "unknown"
    if "json" in rec.get("content_type", ""):
        decoded = json.loads(body or b"{}")
    else:
        from google.protobuf.json_format import MessageToDict
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        cls = {"traces": ExportTraceServiceRequest, "logs": ExportLogsServiceRequest,
               "metrics": ExportMetricsServiceRequest}[signal]
        msg = cls()
        msg.ParseFromString(body)
        decoded = MessageToDict(msg)
    return {"path": path, "content_type": rec.get("content_type"), "content_encoding": rec.get("content_encoding"),
            "signal": signal, "body": decoded}


def decode_file(log_path: Path) -> list[dict[str, Any]]:
    """All lines of a sink log, decoded in arrival order."""
    out = []
    for line in Path(log_path).read_text().splitlines():
        if line.strip():
            out.append(decode_record(json.loads(line)))
    return out


if __name__ == "__main__":  # python otlp_sink.py LOG -> decoded JSON on stdout
    import sys

    print(json.dumps(decode_file(Path(sys.argv[1])), indent=1))


def attributes(obj: dict) -> dict[str, Any]:
    """OTLP/JSON attribute list -> {key: plain value}."""
    out = {}
    for a in obj.get("attributes", []) or []:
        v = a.get("value", {})
        out[a["key"]] = next(iter(v.values()), None) if v else None
    return out


def iter_items(decoded: list[dict]):
    """Yield (signal, scope name, item name, item) for every log record, span and metric.

    The name of a log record is its `event.name` attribute, else its eventName, else
    the start of its string body."""
    for rec in decoded:
        b = rec["body"]
        for rl in b.get("resourceLogs", []):
            for sl in rl.get("scopeLogs", []):
                for lr in sl.get("logRecords", []):
                    a = attributes(lr)
                    name = a.get("event.name") or lr.get("eventName") or str((lr.get("body") or {}).get("stringValue", ""))[:80]
                    yield "logs", sl.get("scope", {}).get("name"), name, lr
        for rs in b.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for sp in ss.get("spans", []):
                    yield "traces", ss.get("scope", {}).get("name"), sp.get("name"), sp
        for rm in b.get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    yield "metrics", sm.get("scope", {}).get("name"), m.get("name"), m


def summarize(decoded: list[dict]) -> dict[str, dict[str, dict]]:
    """{signal: {name: {"count", "scope", "attribute_keys" (union, sorted), "unit" (metrics)}}}."""
    out: dict[str, dict[str, dict]] = {}
    for signal, scope, name, item in iter_items(decoded):
        e = out.setdefault(signal, {}).setdefault(name, {"count": 0, "scope": scope, "attribute_keys": set()})
        e["count"] += 1
        if signal == "metrics":
            e["unit"] = item.get("unit", "")
            for kind in ("sum", "gauge", "histogram", "exponentialHistogram"):
                for dp in (item.get(kind) or {}).get("dataPoints", []):
                    e["attribute_keys"].update(attributes(dp))
        else:
            e["attribute_keys"].update(attributes(item))
    for sig in out.values():
        for e in sig.values():
            e["attribute_keys"] = sorted(e["attribute_keys"])
    return out
