"""``ledger serve``: the local collector — agent hooks and OTLP/HTTP in one warm process.

Endpoints (127.0.0.1 by default; Starlette on uvicorn):

* ``POST /hook/{agent}`` — a hook payload (the body is the agent's JSON). From the hook
  client: where to record in header ``X-Ledger-Meta`` (JSON); from Claude Code's HTTP
  hooks: query parameters ``project``, ``tenant``, ``root``. Header
  ``X-Ledger-Token`` must match ``<hooks dir>/token`` (created on first start, mode
  0600). Answers 200 with an empty body only after the events are committed to SQLite
  (durable), 400 for a body that is not JSON, 500 when recording failed (recorded in
  the failures log; the client then falls back).
* ``POST /v1/traces``, ``/v1/logs``, ``/v1/metrics`` — OTLP/HTTP, protobuf or JSON,
  gzip; the ExportServiceResponse in the request's encoding, with partial_success for
  rejected items; 400 with nothing written for a malformed body (see
  ``nervous_system.hooks.otlp``).
* ``GET /health``.

Lifecycle: one collector per ledger file, guarded by an exclusive ``flock`` on
``<hooks dir>/collector.lock`` held for the process lifetime (a second one exits at
once). It writes ``<hooks dir>/collector.json`` (port, pid, token) and
``collector.port`` (``PORT TOKEN``, for the hook client) once it listens and removes
them on exit. Started by hand (``ledger serve``) or by the first hook that
finds none (``--auto``: detached, port 4318 or, if taken, any free port; exits after
``--idle-timeout`` seconds without a request, default 1800). On start it records the
payloads the client spooled while no collector was reachable, oldest first.
All writes go through one worker thread, in arrival order.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import fcntl
import hashlib
import json
import os
import secrets
import socket
import sys
import threading
import time
from pathlib import Path

from ledger import Ledger
from nervous_system.hooks import otlp
from nervous_system.hooks.client import record_failure
from nervous_system.hooks.processor import HookMeta, HookProcessor, hooks_dir

__all__ = ["Collector", "main", "build_app"]

DEFAULT_PORT = 4318
DEFAULT_IDLE_S = 1800.0


def _token(hdir: Path) -> str:
    path = hdir / "token"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    hdir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(16)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
    return value


class Collector:
    """The collector's state: ledger, hook processor, one writer thread."""

    def __init__(self, ledger: Ledger, *, tenant: str = "default", project: str = "", fail_first: int = 0):
        self.ledger = ledger
        self.hdir = hooks_dir(ledger.path)
        self.token = _token(self.hdir)
        self.tenant, self.project = tenant, project
        self.processor = HookProcessor(ledger, default_tenant=tenant, default_project=project, state_dir=self.hdir,
                                       watch=True)
        self.writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-collector")
        self.last_activity = time.monotonic()
        self.fail_first = fail_first  # test support: answer 503 AFTER committing, to force exporter retries
        self._failed: dict[str, int] = {}
        self._session_owner: dict[str, tuple[str, str]] = {}
        self.counts = {"hooks": 0, "spans": 0, "logs": 0, "metric_points": 0, "rejected": 0}

    # ------------------------------------------------------------------ hooks
    def handle_hook(self, agent: str, payload: dict, meta: HookMeta) -> int:
        try:
            result = self.processor.handle(agent, payload, meta)
        except Exception as exc:
            record_failure(str(self.hdir), agent, "collector", f"{type(exc).__name__}: {exc}",
                           str(payload.get("hook_event_name", "")) if isinstance(payload, dict) else "")
            raise
        self.counts["hooks"] += 1
        return len(result.event_ids)

    def replay_spool(self) -> int:
        """Record spooled hooks, oldest first; returns how many were recorded."""
        sdir = self.hdir / "spool"
        if not sdir.is_dir():
            return 0
        done = 0
        for path in sorted(p for p in sdir.iterdir() if p.suffix == ".json" and not p.name.startswith(".")):
            try:
                item = json.loads(path.read_text())
                meta = HookMeta.from_dict(item["meta"])
                self.handle_hook(meta.agent, json.loads(item["payload"]), meta)
                path.unlink()
                done += 1
            except Exception as exc:  # noqa: BLE001 - keep it for a person to look at
                (sdir / "failed").mkdir(exist_ok=True)
                os.replace(path, sdir / "failed" / path.name)
                record_failure(str(self.hdir), "?", "spool replay", f"{path.name}: {type(exc).__name__}: {exc}")
        return done

    # ------------------------------------------------------------------ OTLP
    def _who(self, resource: dict, attrs: dict) -> otlp.Who:
        session = otlp.session_of(resource, attrs)
        tenant = str(resource.get("ledger.tenant.id") or "")
        project = str(resource.get("ledger.project.id") or "")
        if session and not (tenant and project):
            owner = self.processor.sessions_by_id.get(session) or self._session_owner.get(session)
            if owner is None and session not in self._session_owner:
                found = next(iter(self.ledger.events(session_id=session, limit=1)), None)
                owner = (found.tenant_id, found.project_id) if found is not None else None
                if owner is not None or len(self._session_owner) < 10_000:
                    self._session_owner[session] = owner  # None: not a hook session (asked once)
            if owner is not None:
                tenant, project = tenant or owner[0], project or owner[1]
        return otlp.Who(tenant or self.tenant, project or self.project or str(resource.get("service.namespace") or "")
                        or "default", session)

    def handle_otlp(self, path: str, request) -> tuple[int, str]:
        signal = otlp.SIGNALS[path][0]
        if signal == "traces":
            events, rejected, error = otlp.span_events(request, self._who)
        elif signal == "logs":
            events, rejected, error = otlp.log_events(request, self._who, time.time_ns())
        else:
            self.counts["metric_points"] += otlp.metric_points(request)
            return 0, ""
        if events:
            try:
                self.ledger.append_many(events)
            except Exception:  # noqa: BLE001 - one bad event must not lose the others
                for e in events:
                    try:
                        self.ledger.append(e)
                    except Exception as exc:  # noqa: BLE001
                        rejected += 1
                        error = error or f"{type(exc).__name__}: {exc}"
        self.counts["spans" if signal == "traces" else "logs"] += len(events)
        self.counts["rejected"] += rejected
        return rejected, error

    def should_fail(self, path: str) -> bool:
        n = self._failed.get(path, 0)
        if n < self.fail_first:
            self._failed[path] = n + 1
            return True
        return False


def build_app(col: Collector):
    """The Starlette application of a collector."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def run(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(col.writer, fn, *args)

    async def hook(request: Request) -> Response:
        col.last_activity = time.monotonic()
        agent = request.path_params["agent"]
        if not secrets.compare_digest(request.headers.get("x-ledger-token", request.query_params.get("token", "")),
                                      col.token):
            return Response("bad or missing X-Ledger-Token\n", status_code=401)
        body = await request.body()
        raw_meta = request.headers.get("x-ledger-meta")
        try:
            payload = json.loads(body or b"{}")
            if raw_meta:
                meta = HookMeta.from_dict(json.loads(raw_meta), agent)
            else:  # Claude Code HTTP hooks: where to record comes in the URL
                q = request.query_params
                meta = HookMeta(agent=agent, tenant=q.get("tenant", ""), project=q.get("project", ""),
                                root=q.get("root", ""), t_ns=time.time_ns(),
                                delivery=hashlib.sha256(body).hexdigest()[:24])
        except (ValueError, TypeError) as exc:
            record_failure(str(col.hdir), agent, "collector", f"malformed hook request: {exc}")
            return Response(f"malformed hook request: {exc}\n", status_code=400)
        if not isinstance(payload, dict):
            return Response("the hook payload must be a JSON object\n", status_code=400)
        try:
            n = await run(col.handle_hook, agent, payload, meta)
        except ValueError as exc:
            return Response(f"{exc}\n", status_code=400)
        except Exception as exc:  # noqa: BLE001 - already in the failures log
            return Response(f"{type(exc).__name__}: {exc}\n", status_code=500)
        return Response(b"", status_code=200, headers={"X-Ledger-Events": str(n)})

    async def export(request: Request) -> Response:
        col.last_activity = time.monotonic()
        path = request.url.path
        body = await request.body()
        try:
            message, fmt = otlp.decode(path, body, request.headers.get("content-type", ""),
                                       request.headers.get("content-encoding", ""))
        except otlp.MalformedRequest as exc:
            return JSONResponse({"code": 3, "message": str(exc)}, status_code=400)
        rejected, error = await run(col.handle_otlp, path, message)
        if col.should_fail(path):
            return Response(b"", status_code=503, headers={"Retry-After": "0"})
        data, ctype = otlp.encode_response(path, fmt, rejected, error)
        return Response(data, media_type=ctype)

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "pid": os.getpid(), "db": str(col.ledger.path), **col.counts})

    return Starlette(routes=[
        Route("/hook/{agent}", hook, methods=["POST"]),
        Route("/v1/traces", export, methods=["POST"]),
        Route("/v1/logs", export, methods=["POST"]),
        Route("/v1/metrics", export, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ])


def _bind(host: str, port: int, auto: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        if not auto or port == 0:
            sock.close()
            raise
        sock.bind((host, 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(db: str | os.PathLike, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, auto: bool = False,
          idle_timeout: float | None = None, tenant: str = "default", project: str = "", fail_first: int = 0,
          ready=None) -> int:
    """Run the collector until stopped (SIGINT/SIGTERM) or idle; returns an exit status.
    ``ready(port)`` is called once it listens."""
    import uvicorn

    hdir = hooks_dir(db)
    hdir.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(hdir / "collector.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f"a collector for {db} is already running (lock {hdir / 'collector.lock'})", file=sys.stderr)
        return 0 if auto else 1
    ledger = Ledger(db)
    col = Collector(ledger, tenant=tenant, project=project, fail_first=fail_first)
    sock = _bind(host, port, auto)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(build_app(col), log_level="warning", access_log=False, lifespan="off",
                            timeout_keep_alive=30)
    server = uvicorn.Server(config)
    idle = idle_timeout if idle_timeout is not None else (DEFAULT_IDLE_S if auto else 0)
    info = {"port": bound, "host": host, "pid": os.getpid(), "token": col.token, "db": str(Path(db).resolve()),
            "started_ns": time.time_ns()}

    def publish() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.005)
        if server.should_exit:
            return
        tmp = hdir / f".collector.{os.getpid()}.json"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(info))
        os.replace(tmp, hdir / "collector.json")
        tmp = hdir / f".collector.{os.getpid()}.port"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{bound} {col.token}\n")
        os.replace(tmp, hdir / "collector.port")  # what the hook client reads (no json import there)
        if ready is not None:
            ready(bound)
        while idle and not server.should_exit:
            time.sleep(min(1.0, idle / 4))
            if time.monotonic() - col.last_activity > idle:
                server.should_exit = True

    # spooled hooks first, so they keep their place before anything new
    col.replay_spool()
    threading.Thread(target=publish, name="ledger-collector-publish", daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        try:
            current = json.loads((hdir / "collector.json").read_text())
            if current.get("pid") == os.getpid():
                (hdir / "collector.port").unlink(missing_ok=True)
                (hdir / "collector.json").unlink()
        except (OSError, ValueError):
            pass
        col.writer.shutdown(wait=True)
        ledger.close()
        os.close(lock_fd)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nervous_system.hooks.collector")
    ap.add_argument("--db", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("--auto", action="store_true")
    ap.add_argument("--idle-timeout", type=float, default=None)
    ap.add_argument("--tenant", default="default")
    ap.add_argument("--project", default="")
    ap.add_argument("--fail-first", type=int, default=0, help=argparse.SUPPRESS)  # test support
    args = ap.parse_args(argv)
    idle = args.idle_timeout
    if idle is None and os.environ.get("LEDGER_COLLECTOR_IDLE_S"):
        idle = float(os.environ["LEDGER_COLLECTOR_IDLE_S"])
    return serve(args.db, host=args.host, port=args.port, auto=args.auto, idle_timeout=idle,
                 tenant=args.tenant, project=args.project, fail_first=args.fail_first)


if __name__ == "__main__":
    sys.exit(main())
