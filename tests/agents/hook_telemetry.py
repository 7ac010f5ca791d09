"""The hook durations the agents themselves report in their OpenTelemetry exports
(docs/agents-recorded.md, "Telemetry: hook durations"):

* Claude Code: log ``hook_execution_complete``, ``total_duration_ms`` (all handlers of
  one dispatched event together; ours is the only handler in these runs);
* Codex: span ``codex.hooks.command``, end - start;
* Gemini CLI: log ``gemini_cli.hook_call``, ``duration_ms`` (filtered to our handler
  name, ``context-ledger``).
"""

from __future__ import annotations

from typing import Any


def _attrs(kvs: list[dict]) -> dict[str, Any]:
    out = {}
    for kv in kvs or []:
        v = kv.get("value", {})
        out[kv["key"]] = next(iter(v.values()), None) if v else None
    return out


def hook_durations_ms(agent: str, records: list[dict]) -> list[tuple[str, float]]:
    """[(hook event, milliseconds)] from decoded OTLP sink records (otlp_sink.decode_file)."""
    out: list[tuple[str, float]] = []
    for rec in records:
        body = rec["body"]
        if agent == "codex" and rec["signal"] == "traces":
            for rs in body.get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        if span.get("name") == "codex.hooks.command":
                            a = _attrs(span.get("attributes"))
                            ms = (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e6
                            out.append((str(a.get("hook.event_name", "")), ms))
        elif agent in ("claude", "gemini") and rec["signal"] == "logs":
            for rl in body.get("resourceLogs", []):
                for sl in rl.get("scopeLogs", []):
                    for lr in sl.get("logRecords", []):
                        a = _attrs(lr.get("attributes"))
                        name = a.get("event.name") or lr.get("eventName") or ""
                        if agent == "claude" and name in ("hook_execution_complete", "claude_code.hook_execution_complete"):
                            out.append((str(a.get("hook_event", "")), float(a.get("total_duration_ms") or 0)))
                        if agent == "gemini" and name == "gemini_cli.hook_call" and a.get("hook_name") == "context-ledger":
                            out.append((str(a.get("hook_event_name", "")), float(a.get("duration_ms") or 0)))
    return out
