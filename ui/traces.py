"""A session's trace as a waterfall: its spans (LLM calls, tool calls) in start order,
nested by parent, with durations and token counts from the ``gen_ai.*`` attributes of
OpenTelemetry's GenAI semantic conventions."""

from __future__ import annotations

from replay.history import History

#: Most spans shown in one waterfall.
MAX_SPANS = 1000

#: Attributes shown as columns of the waterfall (GenAI semantic conventions).
GEN_AI = {
    "operation": "gen_ai.operation.name",
    "model": "gen_ai.request.model",
    "response_model": "gen_ai.response.model",
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
    "tool": "gen_ai.tool.name",
    "provider": "gen_ai.provider.name",
}


def waterfall(history: History, index, event) -> dict:
    """The spans of ``event``'s trace (or, when it has no trace, of its session); ``index``
    is the UI's ``EventIndex`` (it finds the spans; ``history`` reads them)."""
    if event.trace_id:
        scope = {"trace_id": event.trace_id}
        ids = index.matching(trace_id=event.trace_id, kind="span", limit=MAX_SPANS)
    elif event.session_id:
        scope = {"session_id": event.session_id}
        ids = index.matching(session_id=event.session_id, kind="span", limit=MAX_SPANS)
    else:
        return {"spans": []}
    spans = []
    for entry in map(history.get, ids):
        ev, sp = entry.event, entry.event.span
        attrs = sp.attributes or {}
        start, end = sp.start_time or entry.time_ns, sp.end_time or entry.time_ns
        row = {"event_id": ev.event_id, "span_id": ev.span_id, "parent_span_id": sp.parent_span_id,
               "name": sp.name, "kind": sp.kind.value, "status": sp.status_code.value,
               "agent_id": ev.agent_id, "start_ms": start / 1e6, "end_ms": end / 1e6,
               "duration_ms": (end - start) / 1e6}
        for key, name in GEN_AI.items():
            if name in attrs:
                row[key] = attrs[name]
        row["attributes"] = {k: v for k, v in attrs.items() if k.startswith("gen_ai.")}
        spans.append(row)
    spans.sort(key=lambda s: (s["start_ms"], -s["end_ms"]))
    by_id = {s["span_id"]: s for s in spans if s["span_id"]}
    for s in spans:
        depth, parent, seen = 0, s["parent_span_id"], set()
        while parent in by_id and parent not in seen and depth < 32:
            seen.add(parent)
            depth += 1
            parent = by_id[parent]["parent_span_id"]
        s["depth"] = depth
    totals = {"input_tokens": sum(int(s.get("input_tokens") or 0) for s in spans),
              "output_tokens": sum(int(s.get("output_tokens") or 0) for s in spans)}
    return {**scope, "spans": spans, "totals": totals}
