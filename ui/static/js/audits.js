// Audits: the `ledger audit` reports read from the analytics database, as charts and
// tables — activity per agent over time, hot files, low-confidence changes later
// reverted, activity per agent, recent decisions. Without the analytics extra the
// view says exactly what to install.

import { api, h, s, replace, fmtTime, colourOf, rendered } from "./lib.js";

export async function mount(container, params, app) {
  const started = performance.now();
  container.append(h("p", { class: "muted" }, "Reading the analytics database…"));
  const data = await api("audits").catch((e) => ({ available: true, error: e.message, reports: {} }));
  replace(container);
  if (!data.available) {
    container.append(h("section", { class: "card", "data-testid": "audits-install" },
      h("h2", {}, "Audits need the analytics extra"), h("p", {}, data.message),
      h("pre", { class: "code" }, data.install)));
    rendered("audits", started);
    return {};
  }
  if (data.error) container.append(h("p", { class: "warning", "data-testid": "audits-error" }, data.error));
  const r = data.reports || {};
  if (data.activity) container.append(card("Activity per agent over time", activityChart(data.activity), "activity"));
  if (r.hot_files) container.append(card("Hot files", barChart(r.hot_files, "path", "total_changes"), "hot-files"), table(r.hot_files, "hot-files-table"));
  if (r.reverted) container.append(card("Low-confidence changes later reverted", table(r.reverted, "reverted-table")));
  if (r.agents) container.append(card("Agents", table(r.agents, "agents-table")));
  if (r.decisions) container.append(card("Recent decisions", table(r.decisions, "decisions-table")));
  rendered("audits", started);
  return {};
}

function card(title, body, testid) {
  return h("section", { class: "card", "data-testid": testid }, h("h3", {}, title), body);
}

function table(result, testid) {
  if (!result.rows.length) return h("p", { class: "muted", "data-testid": testid }, "Nothing to report.");
  return h("div", { class: "table-wrap" }, h("table", { class: "report", "data-testid": testid },
    h("thead", {}, h("tr", {}, result.columns.map((c) => h("th", {}, c)))),
    h("tbody", {}, result.rows.map((row) => h("tr", {}, row.map((v) => h("td", {}, v === null ? "" : Array.isArray(v) ? v.join(", ") : String(v))))))));
}

/** Stacked columns: events per agent in each time slice. */
function activityChart(activity) {
  const W = 900, H = 220, left = 40, bottom = 30;
  const slices = activity.slices.length - 1;
  const agents = Object.keys(activity.agents);
  const totals = Array.from({ length: slices }, (_, i) => agents.reduce((n, a) => n + activity.agents[a][i], 0));
  const max = Math.max(1, ...totals);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", "data-testid": "activity-chart" });
  const bw = (W - left) / Math.max(1, slices);
  for (let i = 0; i < slices; i++) {
    let y = H - bottom;
    for (const a of agents) {
      const v = activity.agents[a][i];
      if (!v) continue;
      const hgt = (H - bottom - 10) * v / max;
      y -= hgt;
      svg.append(s("rect", { x: left + i * bw + 2, y, width: bw - 4, height: hgt, fill: colourOf(a) }, s("title", {}, `${a}: ${v} events`)));
    }
    if (i % 3 === 0) svg.append(s("text", { x: left + i * bw + 2, y: H - 10, class: "axis-label" }, fmtTime(activity.slices[i]).slice(0, 16)));
  }
  svg.append(s("text", { x: 2, y: 14, class: "axis-label" }, String(max)));
  const legend = h("div", { class: "legend" }, agents.map((a) => h("span", {}, h("i", { style: `background:${colourOf(a)}` }), a)));
  return h("div", {}, svg, legend);
}

/** Horizontal bars of `value` per `label` column. */
function barChart(result, labelCol, valueCol) {
  const li = result.columns.indexOf(labelCol), vi = result.columns.indexOf(valueCol);
  const rows = result.rows.slice(0, 15);
  const max = Math.max(1, ...rows.map((r) => Number(r[vi]) || 0));
  return h("div", { class: "bars" }, rows.map((r) => h("div", { class: "bar-row" },
    h("span", { class: "bar-label" }, String(r[li])),
    h("span", { class: "bar", style: `width:${(Number(r[vi]) || 0) / max * 60}%` }),
    h("span", { class: "bar-value" }, String(r[vi])))));
}
