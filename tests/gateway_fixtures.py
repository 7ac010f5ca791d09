"""The hub gateway in a real process for tests: ``ledger hub serve`` under uvicorn on
127.0.0.1, with the FoundationDB double installed (or a real cluster), and tokens.

``python -m tests.gateway_fixtures --cluster-file F --port P [--die-at POINT:N]`` runs the
gateway; ``--die-at`` makes it SIGKILL itself the N-th time it passes a named point
(test support only, by wrapping hub functions; product code has no crash hooks):

- ``events.before_commit``: an events request decoded, nothing written yet;
- ``events.after_commit``: the events transaction committed, the response not sent;
- ``blobs.after_chunks``: some chunks of a blob upload written, the blob not complete;
- ``blobs.after_finish``: a blob completed, the response not sent.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests import fdb_double

DIE_POINTS = ("events.before_commit", "events.after_commit", "blobs.after_chunks", "blobs.after_finish")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatewayProcess:
    """One gateway process; ``url``, ``log_path``; ``start()``, ``kill()``, ``log()``."""

    def __init__(self, python: str, cluster_file: str, log_path: Path, *, rate: float = 0, burst: int = 200):
        self.python, self.cluster_file, self.log_path = python, cluster_file, log_path
        self.rate, self.burst = rate, burst
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, die_at: str | None = None, timeout: float = 120.0) -> "GatewayProcess":
        args = [self.python, "-m", "tests.gateway_fixtures", "--cluster-file", self.cluster_file,
                "--port", str(self.port), "--rate", str(self.rate), "--burst", str(self.burst)]
        if die_at:
            args += ["--die-at", die_at]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if die_at and self.proc.returncode == -signal.SIGKILL:
                    return self  # served laptops already and died at its point
                raise RuntimeError(f"the gateway exited at start: {self.log()[-2000:]}")
            try:
                httpx.get(self.url + "/v1/whoami", timeout=1.0)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the gateway did not start")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def refusals(self) -> list[dict]:
        """The gateway's refusal log lines, parsed (``hub.gateway``: one JSON object a line)."""
        out = []
        for line in self.log().splitlines():
            if '"event": "refused"' in line:
                out.append(json.loads(line[line.index("{"):]))
        return out


@pytest.fixture
def gateway(python, shared_cluster_file, tmp_path):
    """A running gateway on the shared cluster file (no rate limit)."""
    g = GatewayProcess(python, shared_cluster_file, tmp_path / "gateway.log").start()
    yield g
    g.kill()


@pytest.fixture
def make_token(shared_cluster_file):
    """``make_token(tenant, scope, **kw) -> token text`` on the shared cluster."""
    from hub.connection import open_database
    from hub.tokens import create_token

    def make(tenant: str, scope: str, **kw) -> str:
        return create_token(open_database(shared_cluster_file), tenant, scope, **kw)[0]

    return make


# --------------------------------------------------------------------------- the process
def _die_at(point: str, n: int) -> None:
    """Wrap the hub function behind ``point`` so the process SIGKILLs itself the n-th time."""
    from hub import blobs, log

    count = {"n": 0}

    def hit():
        count["n"] += 1
        if count["n"] >= n:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(module, name, before: bool):
        original = getattr(module, name)

        def wrapped(*args, **kwargs):
            if before:
                hit()
            result = original(*args, **kwargs)
            if not before:
                hit()
            return result

        setattr(module, name, wrapped)

    target = {"events.before_commit": (log, "write_events", True), "events.after_commit": (log, "write_events", False),
              "blobs.after_chunks": (blobs, "put_chunks", False),
              "blobs.after_finish": (blobs, "finish_verified", False)}[point]
    wrap(*target)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cluster-file", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--die-at")
    args = parser.parse_args(argv)
    if not fdb_double.should_use_real_cluster():
        fdb_double.install()
    if args.die_at:
        point, _, n = args.die_at.partition(":")
        _die_at(point, int(n or 1))
    from hub.gateway import serve

    serve(args.cluster_file, port=args.port, rate=args.rate, burst=args.burst, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
