// Entry point: the header (project, counts, live state), the hash router, and the
// live event stream that tells the current view to refresh.
//
// Routes: #/timeline, #/scrubber?at=WHEN, #/decision/EVENT_ID, #/file?path=P&at=WHEN,
// #/audits. Each view module exports `mount(container, params, app)` and returns an
// object with optional `live()` (new events were recorded) and `unmount()`.

import { api, replace, rendered } from "./lib.js";
import * as timeline from "./timeline.js";
import * as scrubber from "./scrubber.js";
import * as decision from "./decision.js";
import * as file from "./file.js";
import * as audits from "./audits.js";

const VIEWS = { timeline, scrubber, decision, file, audits };

/** Shared state the views read: the project summary (counts, time range, agents). */
export const app = {
  summary: null,
  /** Navigate to a route, e.g. app.go("decision/0193...") or app.go("file", {path}). */
  go(route, params = {}) {
    const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v)).toString();
    location.hash = `#/${route}` + (query ? `?${query}` : "");
  },
};

let current = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "") || "timeline";
  const [path, query] = raw.split("?");
  const [view, ...rest] = path.split("/");
  const params = Object.fromEntries(new URLSearchParams(query || ""));
  if (rest.length) params.id = decodeURIComponent(rest.join("/"));
  return { view: VIEWS[view] ? view : "timeline", params };
}

async function route() {
  const { view, params } = parseHash();
  if (current && current.unmount) current.unmount();
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.view === view);
  const container = replace(document.getElementById("view"));
  container.dataset.view = view;
  current = await VIEWS[view].mount(container, params, app);
}

async function refreshSummary() {
  app.summary = await api("summary");
  const s = app.summary;
  document.getElementById("project").textContent = `${s.tenant}/${s.project} (${s.source})`;
  document.getElementById("counts").textContent =
    `${s.events.toLocaleString()} events · ${s.agents.length} agents · ${s.sessions.toLocaleString()} sessions`;
}

/** Server-sent events: on "update", refresh the header and let the view refresh. */
function connectLive() {
  const badge = document.getElementById("live");
  const source = new EventSource("/api/live");
  source.addEventListener("hello", () => badge.classList.add("on"));
  source.addEventListener("update", async () => {
    await refreshSummary();
    if (current && current.live) current.live();
  });
  source.onerror = () => badge.classList.remove("on"); // EventSource reconnects by itself
}

async function start() {
  await refreshSummary();
  window.addEventListener("hashchange", route);
  await route();
  connectLive();
  performance.mark("app-ready");
  rendered("app-ready");
}

start().catch((err) => {
  replace(document.getElementById("view"), `Could not load: ${err.message}`);
});
