"""A scripted, streaming fake model endpoint for the real coding-agent CLIs.

One HTTP server (stdlib, threaded, 127.0.0.1 only) speaks three wire protocols:

* Anthropic Messages (`POST /v1/messages`, SSE when `"stream": true`, plain JSON
  otherwise; `POST /v1/messages/count_tokens`) -- Claude Code via ANTHROPIC_BASE_URL.
* OpenAI Responses (`POST .../responses`, SSE) -- Codex with a custom model provider.
* Gemini (`POST /v1beta/models/{model}:streamGenerateContent?alt=sse`,
  `:generateContent`, `:countTokens`) -- Gemini CLI via GOOGLE_GEMINI_BASE_URL.

The SCENARIO is the same for every agent and advances on the conversation the agent
sends, never on a global counter, so retries and side requests cannot derail it:

====================  ================================================================
tool results so far   what the model answers
====================  ================================================================
0                     call the agent's file-write tool: create `hello.py` (HELLO_PY)
1                     call the agent's shell tool with SHELL_COMMAND
2 or more             final text FINAL_TEXT
====================  ================================================================

A request is "the main conversation" when its tool list holds the agent's write and
shell tools; anything else (title generation, routing, next-speaker checks, token
counting...) is a side request and gets a short sensible answer that does not
advance anything. Every request is appended to a JSONL log (one object a line:
`time_ns`, `method`, `path`, `headers` with credentials redacted, `body` parsed as JSON
or raw text, `kind` = how it was answered).
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HELLO_PY = 'print("hello from the scripted model")\n'
SHELL_COMMAND = ("printf 'x\\n' >> notes.txt && mv old.txt renamed.txt && chmod +x run.sh && ln -s hello.py link.py"
                 # what the shell tool's environment holds (TRACEPARENT? tool-use id?), kept outside the workspace
                 ' && env | sort > "$HOME/shell_tool_env.txt"')
FINAL_TEXT = "Done: created hello.py and updated files."
PROMPT = "Create hello.py, then update notes.txt, rename old.txt, make run.sh executable and link link.py."

# Tool names the three agents use for "write a file" and "run a shell command".
# The first name that the request's tool list offers wins.
WRITE_TOOLS = ("Write", "write_file", "apply_patch")
SHELL_TOOLS = ("Bash", "run_shell_command", "exec_command", "shell", "shell_command", "local_shell")

_REDACT = {"authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie"}


# ---------------------------------------------------------------- scenario


def scenario_step(tool_results: int) -> str:
    """Map the number of tool results already in the conversation to 'write' | 'shell' | 'final'."""
    return ("write", "shell")[tool_results] if tool_results < 2 else "final"


def _pick(names: list[str], wanted: tuple[str, ...]) -> str | None:
    for w in wanted:
        if w in names:
            return w
    return None


def _apply_patch_text() -> str:
    body = "".join("+" + line + "\n" for line in HELLO_PY.splitlines())
    return f"*** Begin Patch\n*** Add File: hello.py\n{body}*** End Patch\n"


def _sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    return (head + "data: " + json.dumps(data, separators=(",", ":")) + "\n\n").encode()


class ScenarioServer:
    """Threaded HTTP server on 127.0.0.1:<port 0>.

    Args:
        log_path: JSONL file that receives one line per request (appended).
    Attributes:
        port: the bound TCP port, valid after `start()`.
    """

    def __init__(self, log_path: Path):
        self.log_path = Path(log_path)
        self._lock = threading.Lock()
        self._ids = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # silence stderr access log
                pass

            def do_GET(self):
                server._handle(self, None)

            def do_HEAD(self):
                server._handle(self, None)

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    raw = _read_chunked(self.rfile)
                server._handle(self, raw)

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

    # ------------------------------------------------------------ plumbing

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}{self._ids:04d}"

    def _log(self, req: BaseHTTPRequestHandler, body: Any, kind: str) -> None:
        headers = {k: ("<redacted>" if k.lower() in _REDACT else v) for k, v in req.headers.items()}
        line = {"time_ns": time.time_ns(), "method": req.command, "path": req.path,
                "headers": headers, "body": body, "kind": kind}
        with self._lock, open(self.log_path, "a") as f:
            f.write(json.dumps(line) + "\n")

    def _handle(self, req: BaseHTTPRequestHandler, raw: bytes | None) -> None:
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        path = req.path.split("?")[0]
        try:
            if path.startswith("/hooks/"):  # Claude Code HTTP hooks (see runner.default_hooks_writer)
                kind = "http_hook"
                _send_json(req, {})
            elif req.command == "POST" and path.endswith("/messages/count_tokens"):
                kind = "anthropic.count_tokens"
                _send_json(req, {"input_tokens": 42})
            elif req.command == "POST" and path.endswith("/messages"):
                kind = self._anthropic(req, body)
            elif req.command == "POST" and path.endswith("/responses"):
                kind = self._openai_responses(req, body)
            elif req.command == "POST" and ":countTokens" in path:
                kind = "gemini.countTokens"
                _send_json(req, {"totalTokens": 42})
            elif req.command == "POST" and (":streamGenerateContent" in path or ":generateContent" in path):
                kind = self._gemini(req, body, stream=":streamGenerateContent" in path)
            else:
                kind = "not_found"
                _send_json(req, {"error": {"message": f"no such endpoint in the scripted server: {path}"}}, 404)
        except (BrokenPipeError, ConnectionResetError):
            kind = "client_gone"
        self._log(req, body, kind)

    # ------------------------------------------------------------ Anthropic

    def _anthropic(self, req, body: dict) -> str:
        tools = [t.get("name") for t in body.get("tools") or []]
        write, shell = _pick(tools, WRITE_TOOLS), _pick(tools, SHELL_TOOLS)
        results = sum(
            1
            for m in body.get("messages", [])
            if m.get("role") == "user" and isinstance(m.get("content"), list)
            for blk in m["content"]
            if isinstance(blk, dict) and blk.get("type") == "tool_result"
        )
        step = scenario_step(results) if (write and shell) else "side"
        if step == "write":
            blocks = [("tool_use", write, {"file_path": str(Path(_cwd_hint(body)) / "hello.py") if _cwd_hint(body) else "hello.py", "content": HELLO_PY})]
        elif step == "shell":
            blocks = [("tool_use", shell, {"command": SHELL_COMMAND, "description": "Update the workspace files"})]
        elif step == "final":
            blocks = [("text", FINAL_TEXT, None)]
        else:
            blocks = [("text", _side_text(body), None)]
        model = body.get("model", "claude-scripted")
        msg_id = self._next_id("msg_scripted_")
        content, stop_reason = [], "end_turn"
        for kind, a, b in blocks:
            if kind == "text":
                content.append({"type": "text", "text": a})
            else:
                content.append({"type": "tool_use", "id": self._next_id("toolu_scripted_"), "name": a, "input": b})
                stop_reason = "tool_use"
        usage = {"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if not body.get("stream"):
            _send_json(req, {"id": msg_id, "type": "message", "role": "assistant", "model": model,
                             "content": content, "stop_reason": stop_reason, "stop_sequence": None, "usage": usage})
            return f"anthropic.{step}.json"
        out = [_sse("message_start", {"type": "message_start", "message": {
            "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}})]
        for i, blk in enumerate(content):
            if blk["type"] == "text":
                out.append(_sse("content_block_start", {"type": "content_block_start", "index": i,
                                                        "content_block": {"type": "text", "text": ""}}))
                for piece in _chunks(blk["text"]):
                    out.append(_sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                            "delta": {"type": "text_delta", "text": piece}}))
            else:
                out.append(_sse("content_block_start", {"type": "content_block_start", "index": i, "content_block": {
                    "type": "tool_use", "id": blk["id"], "name": blk["name"], "input": {}}}))
                for piece in _chunks(json.dumps(blk["input"])):
                    out.append(_sse("content_block_delta", {"type": "content_block_delta", "index": i,
                                                            "delta": {"type": "input_json_delta", "partial_json": piece}}))
            out.append(_sse("content_block_stop", {"type": "content_block_stop", "index": i}))
        out.append(_sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                          "usage": {"output_tokens": 20}}))
        out.append(_sse("message_stop", {"type": "message_stop"}))
        _send_sse(req, out)
        return f"anthropic.{step}.sse"

    # ------------------------------------------------------------ OpenAI Responses

    def _openai_responses(self, req, body: dict) -> str:
        tools = body.get("tools") or []
        names = [t.get("name") or t.get("type") for t in tools]
        write, shell = _pick(names, WRITE_TOOLS), _pick(names, SHELL_TOOLS)
        items = body.get("input") or []
        results = sum(1 for it in items if isinstance(it, dict) and it.get("type", "").endswith("call_output"))
        step = scenario_step(results) if (write and shell) else "side"
        resp_id = self._next_id("resp_scripted_")
        model = body.get("model", "gpt-scripted")
        output: list[dict] = []
        events: list[bytes] = []
        base = {"id": resp_id, "object": "response", "created_at": int(time.time()), "model": model}
        events.append(_sse("response.created", {"type": "response.created", "response": {**base, "status": "in_progress", "output": []}}))
        events.append(_sse("response.in_progress", {"type": "response.in_progress", "response": {**base, "status": "in_progress", "output": []}}))
        if step in ("final", "side"):
            text = FINAL_TEXT if step == "final" else _side_text(body)
            item_id = self._next_id("msg_")
            item = {"type": "message", "id": item_id, "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]}
            events.append(_sse("response.output_item.added", {"type": "response.output_item.added", "output_index": 0,
                                                              "item": {**item, "status": "in_progress", "content": []}}))
            events.append(_sse("response.content_part.added", {"type": "response.content_part.added", "item_id": item_id,
                                                               "output_index": 0, "content_index": 0,
                                                               "part": {"type": "output_text", "text": "", "annotations": []}}))
            for piece in _chunks(text):
                events.append(_sse("response.output_text.delta", {"type": "response.output_text.delta", "item_id": item_id,
                                                                  "output_index": 0, "content_index": 0, "delta": piece}))
            events.append(_sse("response.output_text.done", {"type": "response.output_text.done", "item_id": item_id,
                                                             "output_index": 0, "content_index": 0, "text": text}))
            events.append(_sse("response.content_part.done", {"type": "response.content_part.done", "item_id": item_id,
                                                              "output_index": 0, "content_index": 0, "part": item["content"][0]}))
        else:
            name = write if step == "write" else shell
            spec = next(t for t in tools if (t.get("name") or t.get("type")) == name)
            call_id = self._next_id("call_scripted_")
            item_id = self._next_id("fc_")
            if step == "write" and spec.get("type") == "custom":  # freeform apply_patch
                item = {"type": "custom_tool_call", "id": item_id, "call_id": call_id, "name": name,
                        "input": _apply_patch_text(), "status": "completed"}
            else:
                if step == "write":
                    args = {"input": _apply_patch_text()}
                else:
                    props = (spec.get("parameters") or {}).get("properties") or {}
                    cmd = SHELL_COMMAND
                    args = {"cmd": cmd} if "cmd" in props else {"command": ["bash", "-lc", cmd] if props.get("command", {}).get("type") == "array" else cmd}
                item = {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
                        "arguments": json.dumps(args), "status": "completed"}
            events.append(_sse("response.output_item.added", {"type": "response.output_item.added", "output_index": 0,
                                                              "item": {**item, "status": "in_progress"}}))
        events.append(_sse("response.output_item.done", {"type": "response.output_item.done", "output_index": 0, "item": item}))
        output.append(item)
        usage = {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 20,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 120}
        events.append(_sse("response.completed", {"type": "response.completed", "response": {
            **base, "status": "completed", "output": output, "usage": usage}}))
        _send_sse(req, events)
        return f"openai.responses.{step}.sse"

    # ------------------------------------------------------------ Gemini

    def _gemini(self, req, body: dict, *, stream: bool) -> str:
        decls = [d for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
        names = [d.get("name") for d in decls]
        write, shell = _pick(names, WRITE_TOOLS), _pick(names, SHELL_TOOLS)
        results = sum(1 for c in body.get("contents", []) for p in c.get("parts") or [] if "functionResponse" in p)
        step = scenario_step(results) if (write and shell) else "side"
        if step == "write":
            parts = [{"functionCall": {"name": write, "args": {"file_path": "hello.py", "content": HELLO_PY}}}]
        elif step == "shell":
            parts = [{"functionCall": {"name": shell, "args": {"command": SHELL_COMMAND, "description": "Update the workspace files"}}}]
        elif step == "final":
            parts = [{"text": FINAL_TEXT}]
        else:
            parts = [{"text": _gemini_side_text(body)}]
        resp = {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 20, "totalTokenCount": 120},
                "modelVersion": req.path.split("/models/")[-1].split(":")[0],
                "responseId": self._next_id("gemini_scripted_")}
        if stream:
            _send_sse(req, [("data: " + json.dumps(resp) + "\r\n\r\n").encode()])
        else:
            _send_json(req, resp)
        return f"gemini.{step}.{'sse' if stream else 'json'}"


# ---------------------------------------------------------------- side requests


def _cwd_hint(body: dict) -> str | None:
    """Claude Code's Write tool wants an absolute path: read the cwd from its system prompt."""
    text = json.dumps(body.get("system", "")) + json.dumps(body.get("messages", [])[:1])
    m = re.search(r"Primary working directory: ([^\s\\\"]+)", text) or re.search(r"Working directory: ([^\s\\\"]+)", text)
    return m.group(1) if m else None


def _side_text(body: dict) -> str:
    """Answer for a request outside the scenario (titles, summaries, ...)."""
    text = json.dumps(body)
    if "title" in text.lower() and ("json" in text.lower()):
        return json.dumps({"title": "Scripted session", "isNewTopic": True})
    return "Scripted session"


def _gemini_side_text(body: dict) -> str:
    cfg = body.get("generationConfig") or body.get("config") or {}
    schema = cfg.get("responseJsonSchema") or cfg.get("responseSchema")
    if cfg.get("responseMimeType") == "application/json" and schema:
        return json.dumps(_fill_schema(schema, json.dumps(body)))
    return "Scripted session"


def _fill_schema(schema: dict, context: str) -> Any:
    """A small value that satisfies a (JSON or Gemini-style) schema; prefers 'user'/'flash'-like enums.

    Numbers get their `minimum` (else 1: Gemini CLI's router wants a complexity_score >= 1)."""
    t = str(schema.get("type", "object")).lower()
    if "enum" in schema:
        for pref in ("user", "flash"):
            for e in schema["enum"]:
                if pref in str(e).lower():
                    return e
        return schema["enum"][0]
    if t == "object":
        props = schema.get("properties") or {}
        return {k: _fill_schema(v, context) for k, v in props.items()}
    if t == "array":
        return []
    if t in ("number", "integer"):
        return schema.get("minimum", 1)
    if t == "boolean":
        return False
    return "scripted"


# ---------------------------------------------------------------- HTTP helpers


def _chunks(text: str, n: int = 16) -> list[str]:
    return [text[i:i + n] for i in range(0, len(text), n)] or [""]


def _send_json(req: BaseHTTPRequestHandler, obj: Any, status: int = 200) -> None:
    data = json.dumps(obj).encode()
    req.send_response(status)
    req.send_header("Content-Type", "application/json")
    req.send_header("Content-Length", str(len(data)))
    req.end_headers()
    req.wfile.write(data)


def _send_sse(req: BaseHTTPRequestHandler, events: list[bytes]) -> None:
    data = b"".join(events)
    req.send_response(200)
    req.send_header("Content-Type", "text/event-stream")
    req.send_header("Cache-Control", "no-cache")
    req.send_header("Content-Length", str(len(data)))
    req.end_headers()
    for ev in events:
        req.wfile.write(ev)
        req.wfile.flush()


def _read_chunked(rfile) -> bytes:
    out = b""
    while True:
        size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline().strip():
                pass
            return out
        out += rfile.read(size)
        rfile.readline()


if __name__ == "__main__":  # manual debugging: python model_server.py LOG
    import sys

    s = ScenarioServer(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/model_requests.jsonl"))
    print(s.start(), flush=True)
    threading.Event().wait()
