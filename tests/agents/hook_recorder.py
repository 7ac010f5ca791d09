#!/usr/bin/env python3
"""Hook entry used for every hook event of every agent: record, then do nothing.

Usage (the agent runs it): `python3 hook_recorder.py AGENT EVENT [LOG]`.
Appends one JSON line to LOG (default: the file named by $AGENT_HOOK_LOG; the path
is passed in argv because an agent may not hand its whole environment to hooks):
  {"agent", "argv", "hook_event" (argv[2]), "payload" (stdin parsed as JSON, else
   {"raw": text}), "env" (CLAUDE_*, CODEX_*, GEMINI_*, CURSOR_*, TRACEPARENT,
   TRACESTATE, OTEL_*), "env_names" (every variable's name), "cwd", "pid", "ppid",
   "time_ns"}
and exits 0 with no output: for all three agents, exit 0 with empty stdout means
"no decision, carry on". It never fails the agent: any error goes to stderr only.
"""

import json
import os
import sys
import time

PREFIXES = ("CLAUDE_", "CODEX_", "GEMINI_", "CURSOR_", "TRACEPARENT", "TRACESTATE", "OTEL_")


def main() -> None:
    t = time.time_ns()
    raw = sys.stdin.read() if not sys.stdin.isatty() else ""
    try:
        payload = json.loads(raw) if raw.strip() else None
    except ValueError:
        payload = {"raw": raw}
    line = {
        "agent": sys.argv[1] if len(sys.argv) > 1 else None,
        "argv": sys.argv[1:],
        "hook_event": sys.argv[2] if len(sys.argv) > 2 else None,
        "payload": payload,
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(PREFIXES)},
        "env_names": sorted(os.environ),  # names only: shows how the agent filters a hook's environment
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "time_ns": t,
    }
    path = sys.argv[3] if len(sys.argv) > 3 else os.environ.get("AGENT_HOOK_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # never break the agent
        print(f"hook_recorder: {exc!r}", file=sys.stderr)
    sys.exit(0)
