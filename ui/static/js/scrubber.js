// Scrubber: drag through time and see the project's files as they were.
//
// The slider maps to event time (first .. last event); any WHEN typed in the box works
// too (a time, an event id, a recorded commit). For each position the server builds the
// tree with replay's own rules (GET /api/tree?at=WHEN: exactly what `ledger replay --at`
// writes). Pick a file to read it; mark two moments A and B to diff them; copy the
// `ledger restore --at` command of the moment shown.

import { api, h, s, replace, fmtTime, diffView, copyText, rendered } from "./lib.js";

const STEPS = 10000;

export async function mount(container, params, app) {
  const sum = app.summary;
  const first = (sum.first_ns || 0) / 1e6, last = (sum.last_ns || 0) / 1e6;
  const state = { moment: null, file: null, a: null, b: null, inflight: false, pending: null };

  const density = s("svg", { class: "density", viewBox: "0 0 1000 40", preserveAspectRatio: "none" });
  const slider = h("input", { type: "range", min: 0, max: STEPS, value: STEPS, class: "scrub", "data-testid": "scrubber" });
  const whenBox = h("input", { type: "search", placeholder: "WHEN: time, event id or commit", "data-testid": "when" });
  const momentLine = h("div", { class: "moment", "data-testid": "moment" });
  const restore = h("input", { readonly: true, class: "restore", "data-testid": "restore-command" });
  const copyButton = h("button", { "data-testid": "copy-restore", onclick: async () => {
    copyButton.textContent = (await copyText(restore.value, restore)) ? "copied" : "select + copy";
    setTimeout(() => { copyButton.textContent = "copy"; }, 1500);
  } }, "copy");
  const treeBox = h("div", { class: "tree", "data-testid": "tree" });
  const fileBox = h("div", { class: "file-pane", "data-testid": "file-pane" }, h("p", { class: "muted" }, "Pick a file."));
  const compare = h("div", { class: "compare", "data-testid": "compare" });
  const markA = h("button", { "data-testid": "mark-a", onclick: () => { state.a = state.moment; showCompare(); } }, "set A");
  const markB = h("button", { "data-testid": "mark-b", onclick: () => { state.b = state.moment; showCompare(); } }, "set B");

  container.append(
    h("div", { class: "scrub-wrap" }, density, slider),
    h("div", { class: "toolbar" }, whenBox, h("button", { onclick: () => go(whenBox.value.trim(), performance.now()) }, "go"),
      markA, markB, h("span", { class: "grow" }), restore, copyButton),
    momentLine, compare,
    h("div", { class: "split" }, treeBox, fileBox),
  );

  // --- the slider: positions -> times, at most one request in flight ------------
  const timeAt = (v) => first + (last - first) * (v / STEPS);
  const iso = (ms) => new Date(Math.ceil(ms)).toISOString();
  slider.addEventListener("input", () => go(iso(timeAt(Number(slider.value))), performance.now()));
  whenBox.addEventListener("keydown", (e) => { if (e.key === "Enter") go(whenBox.value.trim(), performance.now()); });

  async function go(when, started) {
    if (state.inflight) { state.pending = [when, started]; return; }
    state.inflight = true;
    try {
      const tree = await api("tree", { at: when });
      showTree(tree);
      if (state.file) await showFile(state.file);
      rendered("scrub", started);
    } catch (err) {
      momentLine.textContent = err.message;
    } finally {
      state.inflight = false;
    }
    if (state.pending) { const [w, t] = state.pending; state.pending = null; go(w, t); }
  }

  function showTree(tree) {
    const m = tree.moment;
    state.moment = m;
    momentLine.dataset.when = m.when;
    momentLine.textContent = `${m.describe} · local ${fmtTime(m.time_ms, true)} · ${tree.count.toLocaleString()} files` +
      (tree.conflicts ? ` · ${tree.conflicts} replay conflicts` : "");
    restore.value = `ledger restore --at '${m.when}'`;
    if (m.time_ms >= first && m.time_ms <= last && last > first && document.activeElement !== slider)
      slider.value = String(Math.round((m.time_ms - first) / (last - first) * STEPS));
    // files as an indented tree: a row per directory (once) and per file
    const rows = [];
    let previous = [];
    for (const [path, hash, mode] of tree.files) {
      const parts = path.split("/");
      for (let i = 0; i < parts.length - 1; i++) {
        if (previous[i] !== parts[i]) {
          rows.push(h("div", { class: "dir", style: `padding-left:${i * 14}px` }, parts[i] + "/"));
          previous = parts.slice(0, i + 1);
        }
      }
      previous = parts.slice(0, -1);
      rows.push(h("div", { class: `file m-${mode}` + (path === state.file ? " selected" : ""),
        style: `padding-left:${(parts.length - 1) * 14}px`, "data-path": path, "data-hash": hash, "data-mode": mode,
        "data-testid": "tree-file", onclick: () => { state.file = path; markSelected(); showFile(path); } },
        parts[parts.length - 1] + (mode === "executable" ? " *" : mode === "symlink" ? " ->" : "")));
    }
    replace(treeBox, ...rows);
  }

  function markSelected() {
    for (const el of treeBox.querySelectorAll(".file")) el.classList.toggle("selected", el.dataset.path === state.file);
  }

  async function showFile(path) {
    if (!state.moment) return;
    try {
      const f = await api("file", { path, at: state.moment.when });
      const header = h("div", { class: "file-head" }, h("b", {}, f.path), ` · ${f.mode} · ${f.size.toLocaleString()} bytes `,
        h("a", { href: `#/file?path=${encodeURIComponent(f.path)}&at=${encodeURIComponent(state.moment.when)}` }, "history & blame"));
      const body = f.binary ? h("p", { class: "muted" }, "Binary content.") : numbered(f.text);
      replace(fileBox, header, body);
    } catch (err) {
      replace(fileBox, h("p", { class: "muted" }, `${path}: ${err.message}`));
    }
  }

  async function showCompare() {
    markA.textContent = state.a ? `A: ${fmtTime(state.a.time_ms)}` : "set A";
    markB.textContent = state.b ? `B: ${fmtTime(state.b.time_ms)}` : "set B";
    if (!state.a || !state.b) return;
    const started = performance.now();
    const d = await api("diff", { a: state.a.when, b: state.b.when });
    const patch = h("div", { class: "patch" });
    const items = d.paths.map((p) => h("div", { class: `diff-path st-${p.status}`, "data-testid": "diff-path", "data-path": p.path,
      onclick: async () => {
        const one = await api("diff", { a: state.a.when, b: state.b.when, path: p.path });
        const x = one.paths[0];
        replace(patch, x && x.patch ? diffView(x.patch) : h("p", { class: "muted" }, x && x.binary ? "Binary content differs." : "Mode change only."));
      } }, `${p.status.padEnd(12)} ${p.path}`));
    replace(compare, h("div", { class: "muted" }, `${d.paths.length} paths differ from A to B`), h("div", { class: "diff-list" }, items), patch);
    rendered("diff", started);
  }

  await go(params.at || "now", performance.now());
  drawDensity();
  async function drawDensity() {
    if (!(last > first)) return;
    const t = await api("timeline", { start: first, end: last, width: 1000, kind: "state_change", group: "agent" });
    const counts = new Map();
    if (t.mode === "buckets") for (const [, b, , n] of t.cells) counts.set(b, (counts.get(b) || 0) + n);
    else for (const m of t.marks) { const b = Math.floor((m.t - first) / (last - first) * 333); counts.set(b, (counts.get(b) || 0) + 1); }
    const n = t.mode === "buckets" ? Math.round((last - first) / t.bucket_ms) : 333;
    const max = Math.max(1, ...counts.values());
    replace(density, ...[...counts].map(([b, c]) => s("rect", { x: b / n * 1000, width: Math.max(1, 1000 / n), y: 40 - 40 * c / max, height: 40 * c / max, class: "bar" })));
  }
  return { live() { drawDensity(); } };
}

/** File text with line numbers (a <pre> of rows). */
function numbered(text) {
  const pre = h("pre", { class: "code" });
  text.split("\n").forEach((line, i) => pre.append(h("span", { class: "ln" }, String(i + 1)), line, "\n"));
  return pre;
}
