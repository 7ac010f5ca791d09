#!/usr/bin/env python3
"""Test wrapper around the ledger hook command: `tree_snapshot_hook.py SNAPDIR -- CMD...`.

Runs CMD with the hook's stdin (the real `ledger agent install` command), and after an
after-tool hook (PostToolUse / AfterTool) copies the work tree (the hook's cwd, without
.git) to SNAPDIR/<n>-<tool id> — the tree at that tool-call boundary, taken after the
ledger acknowledged the hook. Prints nothing and exits 0 like the hook it wraps.
"""

import json
import os
import shutil
import subprocess
import sys
import time

AFTER = {"PostToolUse", "AfterTool", "PostToolUseFailure"}


def main() -> None:
    snapdir = sys.argv[1]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    data = sys.stdin.buffer.read()
    subprocess.run(cmd, input=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        payload = json.loads(data)
    except ValueError:
        return
    if payload.get("hook_event_name") not in AFTER:
        return
    root = cmd[cmd.index("--root") + 1]
    tool = str(payload.get("tool_use_id") or payload.get("tool_name") or "tool")
    os.makedirs(snapdir, exist_ok=True)
    n = len([d for d in os.listdir(snapdir) if not d.startswith(".")])
    dest = os.path.join(snapdir, f"{n:03d}-{tool}")
    shutil.copytree(root, dest, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    with open(dest + ".json", "w") as fh:
        json.dump({"tool": tool, "event": payload.get("hook_event_name"), "session_id": payload.get("session_id"),
                   "time_ns": time.time_ns()}, fh)


if __name__ == "__main__":
    try:
        main()
    finally:
        os._exit(0)
