// File: the history of one path (through renames), with the why of each change, and
// its blame at a moment: each line with the change that last wrote it, the agent,
// time, commit and the first line of the decision behind it (GET /api/blame, the
// same as `ledger blame`).

import { api, h, replace, fmtTime, shortId, colourOf, rendered } from "./lib.js";

export async function mount(container, params, app) {
  const pathBox = h("input", { type: "search", placeholder: "path, e.g. src/app.py", value: params.path || "", "data-testid": "file-path" });
  const atBox = h("input", { type: "search", placeholder: "at WHEN (default: now)", value: params.at || "", "data-testid": "file-at" });
  const open = () => app.go("file", { path: pathBox.value.trim(), at: atBox.value.trim() });
  for (const box of [pathBox, atBox]) box.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
  container.append(h("div", { class: "toolbar" }, pathBox, atBox, h("button", { onclick: open }, "show")));
  if (!params.path) {
    container.append(h("p", { class: "muted" }, "Type a path, or open one from the scrubber or a decision."));
    return {};
  }
  const started = performance.now();
  const historyBox = h("section", { class: "card", "data-testid": "file-history" });
  const blameBox = h("section", { class: "card", "data-testid": "blame" });
  container.append(h("div", { class: "split wide-right" }, historyBox, blameBox));
  const [history, blame] = await Promise.all([
    api("history", { path: params.path, at: params.at }).catch((e) => ({ error: e.message })),
    api("blame", { path: params.path, at: params.at }).catch((e) => ({ error: e.message })),
  ]);
  showHistory(historyBox, history, app);
  showBlame(blameBox, blame, app);
  rendered("file", started);
  return {};
}

function showHistory(box, data, app) {
  if (data.error) return replace(box, h("p", { class: "muted" }, data.error));
  replace(box, h("h3", {}, `History of ${data.path} (${data.changes.length} changes)`),
    ...data.changes.map((c) => h("div", { class: "history-row", "data-testid": "history-row", "data-id": c.event_id,
      onclick: () => app.go(`decision/${c.event_id}`) },
      h("div", {}, h("span", { class: "time" }, fmtTime(Date.parse(c.time))), " ",
        h("span", { class: "agent", style: `color:${colourOf(c.agent_id || "")}` }, c.agent_id || "-"), " ",
        h("span", { class: "muted" }, c.summary)),
      h("div", { class: "why", "data-testid": "why" }, c.why || "(no decision recorded)"))));
}

function showBlame(box, data, app) {
  if (data.error) return replace(box, h("p", { class: "muted" }, data.error));
  const table = h("table", { class: "blame" });
  let previous = null;
  for (const line of data.lines) {
    const first = line.event_id !== previous;
    previous = line.event_id;
    table.append(h("tr", { class: first ? "first" : "", "data-testid": "blame-line", "data-event": line.event_id,
      "data-commit": line.commit },
      h("td", { class: "who", style: `border-left:4px solid ${colourOf(line.event_id)}` },
        first ? h("a", { href: `#/decision/${line.event_id}`, title: line.rationale }, `${shortId(line.event_id)} ${line.agent_id}`) : ""),
      h("td", { class: "why" }, first ? `${line.commit ? line.commit.slice(0, 8) + " " : ""}${line.rationale}` : ""),
      h("td", { class: "ln" }, String(line.line)),
      h("td", { class: "src" }, line.content)));
  }
  replace(box, h("h3", {}, `Blame · ${data.moment} · ${data.versions} versions`), table);
}
