"""Test support: a `ledger serve` collector in a child process, and a tiny HTTP client."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[1] / "nervous_system" / "hooks" / "hook.py"


@dataclass
class RunningCollector:
    proc: subprocess.Popen
    db: Path
    port: int
    token: str

    @property
    def hdir(self) -> Path:
        return Path(str(self.db) + ".hooks")

    def post(self, path: str, body: bytes, headers: dict | None = None) -> tuple[int, bytes, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("POST", path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read(), dict(resp.getheaders())
        finally:
            conn.close()

    def hook(self, agent: str, payload: dict, meta: dict | None = None) -> int:
        status, _, _ = self.post(f"/hook/{agent}", json.dumps(payload).encode(),
                                 {"X-Ledger-Token": self.token, "X-Ledger-Meta": json.dumps(meta or {}),
                                  "Content-Type": "application/json"})
        return status

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_collector(db: Path, *extra: str, timeout: float = 60) -> RunningCollector:
    hdir = Path(str(db) + ".hooks")
    info = hdir / "collector.json"
    if info.exists():
        info.unlink()
    proc = subprocess.Popen([sys.executable, "-m", "nervous_system.hooks.collector", "--db", str(db), "--port", "0",
                             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"collector exited {proc.returncode}: {proc.stderr.read().decode()[-3000:]}")
        try:
            data = json.loads(info.read_text())
            if data["pid"] == proc.pid:
                return RunningCollector(proc, db, int(data["port"]), data["token"])
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("collector did not start in time")


def run_client(agent: str, payload: dict | bytes, db: Path, root: Path, *, tenant: str = "default",
               project: str = "proj", env: dict | None = None, extra: tuple[str, ...] = (),
               timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the hook command exactly as an agent would (python -S -I client.py ...)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return subprocess.run([sys.executable, "-S", "-I", str(CLIENT), agent, "--db", str(db), "--tenant", tenant,
                           "--project", project, "--root", str(root), "--port", "0", *extra],
                          input=body, capture_output=True, timeout=timeout, cwd=root,
                          env={**os.environ, **(env or {})})


def gz(data: bytes) -> bytes:
    return gzip.compress(data)
