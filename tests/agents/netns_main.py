"""Entry point that runs INSIDE a loopback-only network namespace (`unshare -n`).

Usage: `python3 netns_main.py SPEC.json`, where SPEC is written by `runner.py`:

    {"argv": [...], "env": {...}, "cwd": "...", "timeout_s": 180,
     "model_log": "...jsonl", "otlp_log": "...jsonl", "result_path": "...json",
     "stdout_path": "...", "stderr_path": "...",
     "template_files": ["config files in which to replace the port placeholders"],
     "pre_argv": [[...], ...],   # optional: commands run first, same env and cwd
     "grace_s": 3}

Steps: refuse to go on unless `lo` is the only network interface; bring `lo` up;
start the scripted model server and the OTLP sink on 127.0.0.1 (port 0); replace
`@MODEL_PORT@` / `@OTLP_PORT@` in argv, env values and the template files; run the
`pre_argv` commands (output appended to `stderr_path`; a failure ends the run with
exit_code None and `pre_failed`); run the agent CLI (stdin from /dev/null, own process group); wait up to `timeout_s`
seconds; give late hooks and telemetry flushes `grace_s` seconds; kill whatever is
left of the process group; write the result JSON:

    {"exit_code": int | None (None = timed out), "timed_out": bool,
     "duration_s": float, "model_port": int, "otlp_port": int,
     "stdout_tail": str, "stderr_tail": str}
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from model_server import ScenarioServer  # noqa: E402
from otlp_sink import OtlpSink  # noqa: E402

MODEL_PORT = "@MODEL_PORT@"
OTLP_PORT = "@OTLP_PORT@"


def bring_loopback_up() -> None:
    """`ip link set lo up` without iproute2 (SIOCGIFFLAGS / SIOCSIFFLAGS)."""
    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        raise SystemExit(f"netns_main: refusing to run outside a loopback-only namespace (interfaces: {interfaces})")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, ifr)[:18])[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 0x1))
    finally:
        s.close()


def _tail(path: Path, n: int = 8000) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ""
    return data[-n:].decode("utf-8", "replace")


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    bring_loopback_up()
    model = ScenarioServer(Path(spec["model_log"]))
    otlp = OtlpSink(Path(spec["otlp_log"]))
    ports = {MODEL_PORT: str(model.start()), OTLP_PORT: str(otlp.start())}

    def sub(s: str) -> str:
        for k, v in ports.items():
            s = s.replace(k, v)
        return s

    for f in spec.get("template_files", []):
        p = Path(f)
        p.write_text(sub(p.read_text()))
    argv = [sub(a) for a in spec["argv"]]
    env = {k: sub(v) for k, v in spec["env"].items()}
    out_p, err_p = Path(spec["stdout_path"]), Path(spec["stderr_path"])
    with open(err_p, "wb") as err:
        for pre in spec.get("pre_argv", []):
            p = subprocess.run([sub(a) for a in pre], env=env, cwd=spec["cwd"], stdin=subprocess.DEVNULL,
                               stdout=err, stderr=err, timeout=120)
            if p.returncode != 0:
                model.stop()
                otlp.stop()
                Path(spec["result_path"]).write_text(json.dumps(
                    {"exit_code": None, "timed_out": False, "duration_s": 0.0, "pre_failed": pre,
                     "model_port": int(ports[MODEL_PORT]), "otlp_port": int(ports[OTLP_PORT]),
                     "stdout_tail": "", "stderr_tail": _tail(err_p)}, indent=1))
                return 0
    t0 = time.monotonic()
    with open(out_p, "wb") as out, open(err_p, "ab") as err:
        proc = subprocess.Popen(argv, env=env, cwd=spec["cwd"], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
        timed_out = False
        try:
            code: int | None = proc.wait(timeout=spec.get("timeout_s", 180))
        except subprocess.TimeoutExpired:
            timed_out, code = True, None
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        duration = time.monotonic() - t0
        time.sleep(spec.get("grace_s", 3))
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc.returncode is None:
            proc.wait()
    model.stop()
    otlp.stop()
    result = {"exit_code": code, "timed_out": timed_out, "duration_s": round(duration, 3),
              "model_port": int(ports[MODEL_PORT]), "otlp_port": int(ports[OTLP_PORT]),
              "stdout_tail": _tail(out_p), "stderr_tail": _tail(err_p)}
    Path(spec["result_path"]).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
