#!/usr/bin/env python3
"""Re-record tests/agents/recorded/<agent>/ from a real run of each agent.

Usage: `.venv/bin/python tests/agents/record.py [AGENT ...]` (default: all three).
Needs `opentelemetry-proto` to decode protobuf exports. Runs happen under
/tmp/agents-recorded/<agent>/{ws,run} so that the paths in the fixtures are stable.

Writes, per agent:
  hooks.jsonl          every hook_recorder line (strings over 4000 chars shortened)
  http_hooks.jsonl     (claude) the bodies and headers Claude Code POSTed to its HTTP hooks
  otlp.json            every OTLP export request, decoded to OTLP/JSON, one per line
  model_requests.jsonl the first request of each kind the scripted server answered
  shell_tool_env.txt   the shell tool's environment (agent-specific variables only)
  summary.json         version, config written, hook events with payload keys, OTLP names
                       with attribute keys, request kinds -- the facts docs/agents-recorded.md cites
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from tests.agents.install import ensure_installed  # noqa: E402
from tests.agents.otlp_sink import decode_file, summarize  # noqa: E402
from tests.agents.runner import AGENTS, make_workspace, run_agent  # noqa: E402

OUT = HERE / "recorded"
BASE = Path("/tmp/agents-recorded")
MAX_STR = 4000
ENV_KEEP = re.compile(r"^(CLAUDE|CODEX|GEMINI|CURSOR|TRACE|OTEL|AI_AGENT)")


def shorten(obj, limit: int = MAX_STR):
    """Copy of obj with every string longer than `limit` cut, saying how much was cut."""
    if isinstance(obj, str) and len(obj) > limit:
        return obj[:limit] + f"...[{len(obj) - limit} more chars dropped by record.py]"
    if isinstance(obj, list):
        return [shorten(x, limit) for x in obj]
    if isinstance(obj, dict):
        return {k: shorten(v, limit) for k, v in obj.items()}
    return obj


def version(agent: str) -> str:
    pkg = {"claude": "@anthropic-ai/claude-code", "codex": "@openai/codex", "gemini": "@google/gemini-cli"}[agent]
    return json.loads((HERE / "node_modules" / pkg / "package.json").read_text())["version"]


def record(agent: str) -> dict:
    root = BASE / agent
    shutil.rmtree(root, ignore_errors=True)
    ws = make_workspace(root / "ws")
    run = run_agent(agent, ws, run_dir=root / "run")
    if run.exit_code != 0:
        raise SystemExit(f"{agent} exited {run.exit_code}: {run.stderr_tail[-2000:]}")
    out = OUT / agent
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    hooks = run.hooks()
    (out / "hooks.jsonl").write_text("".join(json.dumps(shorten(h)) + "\n" for h in hooks))

    requests = run.model_requests()
    http_hooks = [r for r in requests if r["kind"] == "http_hook"]
    if http_hooks:
        (out / "http_hooks.jsonl").write_text("".join(json.dumps(shorten(r)) + "\n" for r in http_hooks))
    firsts: dict[str, dict] = {}
    for r in requests:
        if r["kind"] != "http_hook":
            firsts.setdefault(r["kind"], r)
    (out / "model_requests.jsonl").write_text("".join(json.dumps(shorten(r, 2000)) + "\n" for r in firsts.values()))

    decoded = decode_file(run.otlp_log)
    (out / "otlp.json").write_text("[\n" + ",\n".join(json.dumps(shorten(d)) for d in decoded) + "\n]\n")

    env_file = run.home / "shell_tool_env.txt"
    env_lines = [ln for ln in env_file.read_text().splitlines() if ENV_KEEP.match(ln)] if env_file.exists() else []
    (out / "shell_tool_env.txt").write_text("".join(ln + "\n" for ln in env_lines))

    events: dict[str, dict] = {}
    for h in hooks:
        e = events.setdefault(h["hook_event"], {"count": 0, "payload_keys": set(), "env_keys": set()})
        e["count"] += 1
        e["payload_keys"].update((h["payload"] or {}).keys())
        e["env_keys"].update(h["env"].keys())
    tools = {}
    for r in requests:
        body = r.get("body") if isinstance(r.get("body"), dict) else {}
        names = [t.get("name") or t.get("type") for t in body.get("tools") or []]
        names += [d.get("name") for t in body.get("tools") or [] for d in t.get("functionDeclarations") or []]
        if names:
            tools.setdefault(r["kind"], [n for n in names if n])
    spec = json.loads((run.run_dir / "spec.json").read_text())
    configs = {p: Path(p).read_text() for p in spec["template_files"]}
    for p in (ws / ".codex" / "hooks.json", ws / ".gemini" / "settings.json", ws / ".claude" / "settings.json"):
        if p.exists():
            configs[str(p)] = p.read_text()
    summary = {
        "agent": agent,
        "version": version(agent),
        "argv": spec["argv"],
        "env": {k: v for k, v in spec["env"].items() if k not in ("PATH",)},
        "config_files": configs,
        "exit_code": run.exit_code,
        "duration_s": run.duration_s,
        "hook_events": {k: {"count": v["count"], "payload_keys": sorted(v["payload_keys"]),
                            "env_keys": sorted(v["env_keys"])} for k, v in events.items()},
        "hook_order": [h["hook_event"] for h in hooks],
        "model_request_kinds": {k: sum(1 for r in requests if r["kind"] == k) for k in dict.fromkeys(r["kind"] for r in requests)},
        "model_tools": tools,
        "otlp": summarize(decoded),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv: list[str]) -> None:
    ensure_installed()
    for agent in argv or AGENTS:
        s = record(agent)
        print(f"{agent} {s['version']}: {len(s['hook_order'])} hook calls, "
              f"{sum(len(v) for v in s['otlp'].values())} OTLP names -> {OUT / agent}")


if __name__ == "__main__":
    main(sys.argv[1:])
