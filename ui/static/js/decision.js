// Decision: a card with the rationale, rejected alternatives, confidence and trigger,
// the changes the decision caused (each with its diff), and the session's trace as a
// waterfall of LLM and tool spans (durations, token counts from gen_ai.* attributes).
// Any other event opens here too: its fields, and the decision behind it.

import { api, h, replace, fmtTime, fmtDuration, shortId, KIND_LABEL, diffView, colourOf, rendered } from "./lib.js";

export async function mount(container, params, app) {
  const started = performance.now();
  let id = params.id;
  if (!id) {
    // no id: the newest decision
    const page = await api("events", { kind: "decision", limit: 1 });
    if (!page.events.length) { container.append(h("p", { class: "muted" }, "No decisions recorded yet.")); return {}; }
    id = page.events[0].event_id;
  }
  let data;
  try {
    data = await api(`event/${encodeURIComponent(id)}`);
  } catch (err) {
    container.append(h("p", { class: "muted" }, err.message));
    return {};
  }
  const ev = data.event;
  const d = ev.decision;
  const card = h("section", { class: "card", "data-testid": "decision-card", "data-id": ev.event_id });
  card.append(
    h("div", { class: "card-head" },
      h("span", { class: `badge k-${ev.kind}` }, KIND_LABEL[ev.kind]),
      h("span", { class: "agent", style: `color:${colourOf(ev.agent_id || "")}` }, ev.agent_id || "-"),
      h("span", { class: "muted" }, ` ${ev.agent_role || ""} · ${fmtTime(Date.parse(ev.time), true)} · session `),
      h("a", { href: `#/timeline?session=${encodeURIComponent(ev.session_id || "")}` }, shortId(ev.session_id)),
      h("span", { class: "muted" }, ` · ${ev.event_id}`)),
  );
  if (d) {
    card.append(...[
      h("h2", { "data-testid": "rationale" }, d.rationale || "(no rationale)"),
      field("Trigger", d.input_trigger, "trigger"),
      confidence(d.confidence_score),
      d.rejected_alternatives && d.rejected_alternatives.length
        ? h("div", { class: "field" }, h("label", {}, "Rejected alternatives"),
          h("ul", { "data-testid": "rejected" }, d.rejected_alternatives.map((a) => h("li", {}, a))))
        : null,
      ev.related_commit_hash ? field("Commit", ev.related_commit_hash, "commit") : null,
    ].filter(Boolean));
  } else {
    card.append(h("h2", {}, ev.summary), details(ev));
    if (data.decision) {
      card.append(h("div", { class: "field" }, h("label", {}, "Decision"),
        h("a", { href: `#/decision/${data.decision.event_id}`, "data-testid": "why" }, data.decision.summary)));
    }
  }
  container.append(card);

  if (data.caused && data.caused.length) {
    const changes = h("section", { class: "card" }, h("h3", {}, `Changes caused (${data.caused.length})`));
    for (const c of data.caused) {
      const sc = c.state_change;
      const row = h("details", { class: "change", "data-testid": "caused-change", "data-id": c.event_id, open: data.caused.length <= 5 },
        h("summary", {}, h("span", { class: `badge k-${c.kind}` }, KIND_LABEL[c.kind]), " ", c.summary,
          sc ? h("span", { class: "muted" }, ` +${sc.lines_added || 0} −${sc.lines_removed || 0} `) : null,
          sc ? h("a", { href: `#/file?path=${encodeURIComponent(sc.target_resource)}` }, "file") : null),
        sc && sc.diff_patch ? diffView(sc.diff_patch) : h("p", { class: "muted" }, sc ? "No text diff (binary, symlink, large or mode only)." : ""));
      changes.append(row);
    }
    container.append(changes);
  }
  container.append(waterfall(data.trace));
  rendered("decision", started);
  return {};
}

function field(label, value, testid) {
  if (!value) return null;
  return h("div", { class: "field" }, h("label", {}, label), h("span", { "data-testid": testid }, value));
}

function confidence(score) {
  if (!score) return field("Confidence", "not given", "confidence");
  const pct = Math.round(score * 100);
  return h("div", { class: "field" }, h("label", {}, "Confidence"),
    h("span", { class: "meter" }, h("span", { class: pct < 50 ? "low" : "", style: `width:${pct}%` })),
    h("span", { "data-testid": "confidence" }, ` ${score.toFixed(2)}`));
}

function details(ev) {
  const payload = ev[ev.kind] || {};
  const rows = Object.entries(payload).filter(([k, v]) => k !== "diff_patch" && v !== "" && v !== null && !(Array.isArray(v) && !v.length));
  return h("dl", { class: "details" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, typeof v === "object" ? JSON.stringify(v) : String(v))]));
}

/** The trace: one row per span, a bar placed on the trace's time scale. */
function waterfall(trace) {
  const box = h("section", { class: "card", "data-testid": "waterfall" });
  const spans = (trace && trace.spans) || [];
  box.append(h("h3", {}, `Trace ${trace && trace.trace_id ? shortId(trace.trace_id) : "of the session"} · ${spans.length} spans` +
    (trace && trace.totals ? ` · ${trace.totals.input_tokens.toLocaleString()} tokens in, ${trace.totals.output_tokens.toLocaleString()} out` : "")));
  if (!spans.length) { box.append(h("p", { class: "muted" }, "No spans recorded for this session.")); return box; }
  const t0 = Math.min(...spans.map((x) => x.start_ms));
  const t1 = Math.max(...spans.map((x) => x.end_ms), t0 + 1);
  for (const sp of spans) {
    const left = (sp.start_ms - t0) / (t1 - t0) * 100;
    const width = Math.max(0.4, (sp.end_ms - sp.start_ms) / (t1 - t0) * 100);
    const tokens = sp.input_tokens !== undefined || sp.output_tokens !== undefined
      ? `${sp.input_tokens ?? 0}→${sp.output_tokens ?? 0} tok` : "";
    const what = [sp.operation, sp.model || sp.tool].filter(Boolean).join(" ");
    box.append(h("div", { class: "span-row", "data-testid": "span-row", "data-name": sp.name },
      h("div", { class: "span-name", style: `padding-left:${sp.depth * 12}px`, title: JSON.stringify(sp.attributes) }, sp.name),
      h("div", { class: "span-track" }, h("div", { class: `span-bar st-${sp.status}` + (sp.tool ? " tool" : ""),
        style: `left:${left}%;width:${width}%` })),
      h("div", { class: "span-meta" }, h("span", { "data-testid": "span-duration" }, fmtDuration(sp.duration_ms)), " ",
        h("span", { class: "muted" }, what), " ", h("span", { "data-testid": "span-tokens" }, tokens))));
  }
  return box;
}
