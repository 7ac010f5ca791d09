// Timeline: agents (or sessions) as swimlanes over time; decisions, file changes,
// messages, signals and spans as marks. Wheel zooms around the pointer, dragging pans,
// the toolbar filters. The server answers for the visible range at the screen's
// resolution (GET /api/timeline): individual marks when few events are visible, else
// counts per lane, time bucket and kind (drawn as a heat strip per kind), so the
// browser never holds more than a screenful. New events appear live.

import { api, h, s, replace, fmtTime, shortId, KIND_LABEL, colourOf, rendered } from "./lib.js";

const GUTTER = 170;     // px for lane labels
const LANE_H = 30;      // px per lane
const AXIS_H = 26;      // px for the time axis
const KIND_ROW = { decision: 0, state_change: 1, message: 2, signal: 3, span: 4 };

export async function mount(container, params, app) {
  const sum = app.summary;
  const pad = Math.max(1000, ((sum.last_ns || 0) - (sum.first_ns || 0)) / 1e6 * 0.02);
  const view = {
    start: (sum.first_ns || Date.now() * 1e6) / 1e6 - pad,
    end: (sum.last_ns || Date.now() * 1e6) / 1e6 + pad,
    group: params.group || "agent",
    filters: { kind: params.kind || "", agent: params.agent || "", session: params.session || "",
               path: params.path || "", q: params.q || "" },
    seq: 0, data: null, offset: 0,
  };

  // ---- toolbar ---------------------------------------------------------------
  const field = (name, placeholder) => h("input", {
    type: "search", placeholder, value: view.filters[name], "data-testid": `filter-${name}`,
    oninput: debounce((e) => { view.filters[name] = e.target.value.trim(); refresh(performance.now()); }, 250),
  });
  const select = (name, options, testid) => h("select", {
    "data-testid": testid, onchange: (e) => {
      if (name === "group") view.group = e.target.value; else view.filters[name] = e.target.value;
      refresh(performance.now());
    },
  }, options.map(([value, label]) => h("option", { value, selected: (name === "group" ? view.group : view.filters[name]) === value }, label)));
  const toolbar = h("div", { class: "toolbar" },
    select("group", [["agent", "lanes: agents"], ["session", "lanes: sessions"]], "group"),
    select("kind", [["", "all kinds"], ...Object.entries(KIND_LABEL)], "filter-kind"),
    select("agent", [["", "all agents"], ...sum.agents.map((a) => [a.agent, `${a.agent || "(none)"} (${a.events})`])], "filter-agent"),
    field("session", "session id"), field("path", "path or dir/"), field("q", "text…"),
    h("button", { onclick: () => zoom(0.5, 0.5, performance.now()), title: "zoom in", "data-testid": "zoom-in" }, "+"),
    h("button", { onclick: () => zoom(2, 0.5, performance.now()), title: "zoom out", "data-testid": "zoom-out" }, "−"),
    h("button", { onclick: () => { view.start = sum.first_ns / 1e6 - pad; view.end = sum.last_ns / 1e6 + pad; refresh(performance.now()); }, title: "whole history" }, "fit"),
  );
  const info = h("div", { class: "muted", "data-testid": "timeline-info" });
  const svg = s("svg", { class: "timeline", "data-testid": "timeline" });
  const list = h("div", { class: "event-list", "data-testid": "event-list" });
  const more = h("button", { onclick: () => loadList(true) }, "older events");
  container.append(toolbar, info, h("div", { class: "timeline-wrap" }, svg), h("h3", {}, "Events in view"), list, more);

  // ---- interactions: wheel zoom, drag pan --------------------------------------
  const plotWidth = () => Math.max(200, svg.clientWidth - GUTTER);
  const xOf = (t) => GUTTER + (t - view.start) / (view.end - view.start) * plotWidth();
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const at = Math.min(1, Math.max(0, (e.offsetX - GUTTER) / plotWidth()));
    zoom(e.deltaY < 0 ? 0.8 : 1.25, at, performance.now());
  }, { passive: false });
  let drag = null;
  svg.addEventListener("mousedown", (e) => { drag = { x: e.clientX, start: view.start, end: view.end, moved: false }; });
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  function onMove(e) {
    if (!drag) return;
    const dx = e.clientX - drag.x;
    if (Math.abs(dx) > 3) drag.moved = true;
    const dt = dx / plotWidth() * (drag.end - drag.start);
    view.start = drag.start - dt; view.end = drag.end - dt;
    const plot = svg.querySelector(".plot");
    if (plot) plot.setAttribute("transform", `translate(${dx},0)`); // instant feedback
  }
  function onUp() {
    if (drag && drag.moved) refresh(performance.now(), "pan");
    drag = null;
  }
  function zoom(factor, at, started) {
    const span = view.end - view.start;
    const pivot = view.start + span * at;
    const next = Math.max(1, span * factor);
    view.start = pivot - next * at; view.end = view.start + next;
    refresh(started, "zoom");
  }

  // ---- data and drawing --------------------------------------------------------
  async function refresh(started, what = "timeline") {
    const seq = ++view.seq;
    // the marks and the list of events in view are asked for at the same time
    const [data, page] = await Promise.all([
      api("timeline", { start: view.start, end: view.end, width: plotWidth(), group: view.group, ...view.filters }),
      listPage(0),
    ]);
    if (seq !== view.seq) return; // a newer request is on its way
    view.data = data;
    view.lastSeen = app.summary.last_ns / 1e6;
    draw(data);
    showList(page, false);
    rendered(what, started);
  }

  function draw(data) {
    const width = svg.clientWidth || 1000;
    const height = AXIS_H + Math.max(1, data.lanes.length) * LANE_H + 8;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("height", height);
    const plot = s("g", { class: "plot" });
    const lanes = s("g", { class: "lanes" });
    data.lanes.forEach((lane, i) => {
      const y = AXIS_H + i * LANE_H;
      const label = view.group === "session" ? `${lane.agent || "-"} · ${shortId(lane.key)}` : (lane.key || "(no agent)");
      lanes.append(
        s("rect", { x: 0, y, width, height: LANE_H, class: i % 2 ? "lane odd" : "lane" }),
        s("circle", { cx: 10, cy: y + LANE_H / 2, r: 4, fill: colourOf(lane.agent || "") }),
        s("text", { x: 20, y: y + LANE_H / 2 + 4, class: "lane-label", "data-testid": "lane", "data-key": lane.key },
          label.length > 24 ? label.slice(0, 23) + "…" : label, s("title", {}, `${label}: ${lane.events} events`)),
      );
    });
    for (const bar of data.sessions || []) {
      const x1 = xOf(bar.start), x2 = Math.max(x1 + 2, xOf(bar.end));
      plot.append(s("rect", { x: x1, y: AXIS_H + bar.lane * LANE_H + 3, width: x2 - x1, height: LANE_H - 6, rx: 4,
        class: "session-bar" }, s("title", {}, `session ${bar.session}: ${bar.events} events`)));
    }
    if (data.mode === "marks") for (const m of data.marks) plot.append(mark(m));
    else drawBuckets(plot, data);
    const clip = s("clipPath", { id: "plot-clip" }, s("rect", { x: GUTTER, y: 0, width: width - GUTTER, height }));
    const clipped = s("g", { "clip-path": "url(#plot-clip)" }, plot);
    replace(svg, clip, lanes, axis(width), clipped);
    info.textContent = `${data.total.toLocaleString()} events in view · ${fmtTime(view.start)} → ${fmtTime(view.end)}` +
      (data.mode === "buckets" ? ` · density (zoom in for single events)` : "") +
      (data.hidden_lanes ? ` · ${data.hidden_lanes} quieter lanes not shown` : "");
  }

  function mark(m) {
    const y = AXIS_H + m.lane * LANE_H + LANE_H / 2;
    const x = xOf(m.t);
    const title = s("title", {}, `${KIND_LABEL[m.kind]} · ${fmtTime(m.t, true)}\n${m.label}`);
    const attrs = { class: `mark k-${m.kind}`, "data-id": m.id, "data-kind": m.kind, "data-testid": "mark",
      onclick: (e) => { e.stopPropagation(); app.go(`decision/${m.id}`); } };
    if (m.kind === "span") {
      const x1 = xOf(m.start), x2 = Math.max(x1 + 3, xOf(m.end));
      return s("rect", { ...attrs, x: x1, y: y + 5, width: x2 - x1, height: 6, rx: 2 }, title);
    }
    if (m.kind === "decision") return s("path", { ...attrs, d: `M${x} ${y - 7}L${x + 7} ${y}L${x} ${y + 7}L${x - 7} ${y}Z` }, title);
    if (m.kind === "message") return s("circle", { ...attrs, cx: x, cy: y, r: 5 }, title);
    if (m.kind === "signal") return s("path", { ...attrs, d: `M${x} ${y - 6}L${x + 6} ${y + 5}L${x - 6} ${y + 5}Z` }, title);
    return s("rect", { ...attrs, x: x - 2.5, y: y - 8, width: 5, height: 16, rx: 1 }, title);
  }

  function drawBuckets(plot, data) {
    const max = Math.max(1, ...data.cells.map((c) => c[3]));
    const w = Math.max(1, plotWidth() * data.bucket_ms / (view.end - view.start));
    for (const [lane, bucket, kind, count] of data.cells) {
      const name = data.kinds[kind];
      const x = xOf(view.start + bucket * data.bucket_ms);
      const y = AXIS_H + lane * LANE_H + 3 + KIND_ROW[name] * 5;
      plot.append(s("rect", { x, y, width: w + 0.5, height: 4, class: `cell k-${name}`,
        "fill-opacity": (0.25 + 0.75 * Math.log1p(count) / Math.log1p(max)).toFixed(2) },
        s("title", {}, `${count} ${KIND_LABEL[name]} events`)));
    }
  }

  function axis(width) {
    const g = s("g", { class: "axis" });
    const span = view.end - view.start;
    const steps = [1, 10, 100, 1e3, 1e4, 6e4, 3e5, 9e5, 36e5, 108e5, 432e5, 864e5, 6048e5, 2592e6, 31536e6];
    const step = steps.find((st) => span / st <= (width - GUTTER) / 110) || steps[steps.length - 1];
    for (let t = Math.ceil(view.start / step) * step; t <= view.end; t += step) {
      const x = xOf(t);
      g.append(s("line", { x1: x, x2: x, y1: AXIS_H - 6, y2: 2000 }),
        s("text", { x: x + 3, y: 14 }, step >= 864e5 ? fmtTime(t).slice(0, 10) : fmtTime(t, step < 1e3).slice(step >= 864e5 ? 0 : 11)));
    }
    return g;
  }

  // ---- the list of events in view ---------------------------------------------
  const listPage = (offset) => api("events", { start: view.start, end: view.end, ...view.filters, offset, limit: 50 });

  async function loadList(append) {
    showList(await listPage(view.offset + 50), append);
  }

  function showList(page, append) {
    view.offset = page.offset;
    const rows = page.events.map((e) => h("div", { class: "event-row", "data-testid": "event-row", "data-id": e.event_id,
      onclick: () => app.go(`decision/${e.event_id}`) },
      h("span", { class: "time" }, fmtTime(Date.parse(e.time))),
      h("span", { class: `badge k-${e.kind}` }, KIND_LABEL[e.kind]),
      h("span", { class: "agent", style: `color:${colourOf(e.agent_id || "")}` }, e.agent_id || "-"),
      h("span", { class: "summary" }, e.summary)));
    if (append) list.append(...rows); else replace(list, ...rows);
    more.hidden = view.offset + 50 >= page.total;
  }

  await refresh(performance.now(), "timeline");
  return {
    live() {
      // follow the present when the view shows it; else just redraw the same range
      const last = app.summary.last_ns / 1e6;
      if (view.data && view.end >= view.lastSeen && last > view.end) {
        const span = view.end - view.start;
        view.end = last + span * 0.02; view.start = view.end - span;
      }
      refresh(performance.now(), "live");
    },
    unmount() { window.removeEventListener("mousemove", onMove); window.removeEventListener("mouseup", onUp); },
  };
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}
