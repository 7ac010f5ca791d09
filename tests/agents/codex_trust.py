#!/usr/bin/env python3
"""Persist Codex hook trust for a workspace the way Codex's own UI does: via `codex app-server`.

Codex (0.171.0) runs a non-managed command hook only when config.toml holds
`[hooks.state."<hook key>"] trusted_hash = "<the hook's current hash>"`, or when the run
has `--dangerously-bypass-hook-trust`; an untrusted hook is skipped without a word.
The key and hash are Codex's business (key e.g. `<ws>/.codex/hooks.json:pre_tool_use:0:0`,
hash `sha256:...` over the hook's definition), so this script asks Codex for them and
hands them straight back:

    -> {"id":1,"method":"initialize","params":{"clientInfo":{"name":..,"version":..}}}
    -> {"method":"initialized"}
    -> {"id":2,"method":"hooks/list","params":{"cwds":[WORKSPACE]}}
       <- result.data[0].hooks[*] = {key, eventName, currentHash, trustStatus, timeoutSec, ...}
    -> {"id":3,"method":"config/batchWrite","params":{"edits":[{"keyPath":"hooks.state",
          "value":{KEY:{"trusted_hash":HASH},...},"mergeStrategy":"upsert"}]}}

(A keyPath of `hooks.state.<key>.trusted_hash` does NOT work: the key's dots split it.)

Usage: `codex_trust.py WORKSPACE` with CODEX_HOME set; prints the JSON list of the
hooks it trusted; exit 1 if any is still untrusted afterwards. Run it inside the
loopback-only namespace like every other agent process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CODEX_JS = Path(__file__).resolve().parent / "node_modules" / "@openai" / "codex" / "bin" / "codex.js"


class AppServer:
    """A `codex app-server` child spoken to in JSON-RPC lines over stdio."""

    def __init__(self, env: dict[str, str] | None = None):
        self.p = subprocess.Popen(["node", str(CODEX_JS), "app-server"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  env=env or dict(os.environ))
        self.next_id = 0

    def call(self, method: str, params: dict) -> dict:
        self.next_id += 1
        self.p.stdin.write(json.dumps({"id": self.next_id, "method": method, "params": params}) + "\n")
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError(f"codex app-server closed before answering {method}")
            msg = json.loads(line)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def notify(self, method: str) -> None:
        self.p.stdin.write(json.dumps({"method": method}) + "\n")
        self.p.stdin.flush()

    def close(self) -> None:
        self.p.kill()
        self.p.wait()


def trust_workspace_hooks(workspace: str) -> list[dict]:
    """Trust every hook Codex lists for `workspace`; return [{key, eventName, trustStatus}] afterwards."""
    srv = AppServer()
    try:
        srv.call("initialize", {"clientInfo": {"name": "context-ledger-harness", "version": "0"}})
        srv.notify("initialized")
        hooks = srv.call("hooks/list", {"cwds": [workspace]})["data"][0]["hooks"]
        state = {h["key"]: {"trusted_hash": h["currentHash"]} for h in hooks}
        if state:
            srv.call("config/batchWrite", {"edits": [{"keyPath": "hooks.state", "value": state, "mergeStrategy": "upsert"}]})
        after = srv.call("hooks/list", {"cwds": [workspace]})["data"][0]["hooks"]
        return [{"key": h["key"], "eventName": h["eventName"], "trustStatus": h["trustStatus"],
                 "timeoutSec": h["timeoutSec"]} for h in after]
    finally:
        srv.close()


if __name__ == "__main__":
    result = trust_workspace_hooks(sys.argv[1])
    print(json.dumps(result, indent=1))
    sys.exit(0 if result and all(h["trustStatus"] == "trusted" for h in result) else 1)
