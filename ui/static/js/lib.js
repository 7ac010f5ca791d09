// Small helpers shared by every view: JSON requests, DOM building, formatting.
//
// Everything from the ledger (paths, rationales, messages, file contents) reaches the
// page through textContent or attribute values set by `h`/`s` below, never as HTML:
// recorded text cannot inject markup or script. The Content-Security-Policy of the
// server forbids inline scripts anyway.

/** GET /api/<path> with query parameters; resolves to JSON, rejects with the server's message. */
export async function api(path, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") query.set(k, v);
  }
  const url = `/api/${path}` + (query.toString() ? `?${query}` : "");
  const response = await fetch(url, { credentials: "same-origin" });
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

/** Create an HTML element: h("div", {class: "x", onclick: fn}, child, "text", ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** Create an SVG element, same calling convention as `h`. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    // through the CSSOM: the Content-Security-Policy forbids style attributes in markup
    else if (k === "style") el.style.cssText = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Remove every child of `el` and append `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Local time of a millisecond timestamp, to the second (or ms with `precise`). */
export function fmtTime(ms, precise = false) {
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return precise ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
}

/** Milliseconds since the epoch of an RFC 3339 time (nanoseconds cut to ms). */
export function parseTime(text) {
  return Date.parse(text.replace(/(\.\d{3})\d+/, "$1"));
}

/** A duration in ms as "850 ms", "12.3 s", "4 min", "3.2 h", "5 d". */
export function fmtDuration(ms) {
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  if (s < 86400 * 2) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

/** The first 13 characters of an event id (enough to tell ids apart on screen). */
export const shortId = (id) => (id || "").slice(0, 13);

/** Kind -> display name and CSS class (colours live in app.css). */
export const KIND_LABEL = {
  decision: "decision", state_change: "file change", message: "message", signal: "signal", span: "span",
};

/** A coloured unified diff: one <pre> with a line element per diff line. */
export function diffView(patch) {
  const pre = h("pre", { class: "diff" });
  for (const line of (patch || "").split("\n")) {
    let cls = "";
    if (line.startsWith("+++") || line.startsWith("---")) cls = "meta";
    else if (line.startsWith("@@")) cls = "hunk";
    else if (line.startsWith("+")) cls = "add";
    else if (line.startsWith("-")) cls = "del";
    pre.append(h("span", { class: cls }, line), "\n");
  }
  return pre;
}

/** Stable colour for a string (agents, sessions): an HSL hue from its hash. */
export function colourOf(text) {
  let x = 0;
  for (let i = 0; i < text.length; i++) x = (x * 31 + text.charCodeAt(i)) | 0;
  return `hsl(${Math.abs(x) % 360} 65% 62%)`;
}

/** Mark the end of a render for tests and the benchmark: increments data-render on
 *  <body> and records how long the interaction took since `started` (performance.now()). */
export function rendered(what, started) {
  const body = document.body;
  body.dataset.render = String(Number(body.dataset.render || 0) + 1);
  body.dataset.lastRender = what;
  if (started !== undefined) {
    window.__uiTimings = window.__uiTimings || [];
    window.__uiTimings.push({ what, ms: performance.now() - started });
  }
}

/** Copy text to the clipboard, falling back to selecting it in a prompt-like field. */
export async function copyText(text, field) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (field) { field.focus(); field.select(); }
    return false;
  }
}
