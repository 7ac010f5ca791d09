"""The process a coding agent starts for each hook: tiny, stdlib-only, never fails.

Run as ``<python> -S -I <this file> AGENT --db DB --tenant T --project P --root ROOT``
(what ``ledger agent install`` writes into the agent's hook configuration). ``-S -I``
skip site-packages and the environment's Python settings: this file imports only
``os``, ``sys``, ``time``, ``socket``, ``json`` (and ``fcntl`` when it must start the
collector), so start-up costs what the interpreter costs and nothing more.

What it does, in order (docs/agents.md, "Latency design"):

1. read the hook's JSON from stdin (git's post-commit hook has none: a small payload
   is made up);
2. POST it to the local collector (``ledger serve``), found through
   ``<hooks dir>/collector.json``; the collector takes the work-tree snapshot, commits
   the events to SQLite and only then answers 200 — what is acknowledged is durable;
3. if no collector answers: start one (detached, single instance by a file lock) and
   wait for it within the budget, then POST;
4. if that fails too: record in-process (``python -m nervous_system.hooks.inprocess``,
   slower, same code and same result), and as a last resort append the raw payload
   durably to the spool (``<hooks dir>/spool/``) that the collector replays on start.

Whatever happens it exits 0 and prints nothing (every agent reads a hook's stdout and
exit status as decisions about the tool call), within ``--budget`` seconds (SessionEnd:
``--end-budget``, because Codex and Claude Code give SessionEnd hooks about a second).
Every failure is appended to ``<hooks dir>/failures.jsonl`` (``ledger agent status``).

The hooks dir of a ledger ``DB`` is ``DB + ".hooks"`` next to it.
"""

import os
import sys
import time

#: Environment variables forwarded to the collector (never the whole environment: the
#: agents pass their API keys to hooks).
ENV_NAMES = ("TRACEPARENT", "TRACESTATE", "ANTHROPIC_MODEL", "GEMINI_MODEL", "CLAUDE_CODE_ENTRYPOINT",
             "CODEX_TOOL_CALL_ID", "CURSOR_VERSION")
END_EVENTS = (b'"SessionEnd"', b'"sessionEnd"')


def _q(text) -> str:
    """A JSON string literal without importing json (ASCII only: header-safe)."""
    out = ['"']
    for ch in str(text):
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif 32 <= o < 127:
            out.append(ch)
        elif o < 0x10000:
            out.append("\\u%04x" % o)
        else:
            o -= 0x10000
            out.append("\\u%04x\\u%04x" % (0xD800 + (o >> 10), 0xDC00 + (o & 0x3FF)))
    out.append('"')
    return "".join(out)


def _meta_json(meta: dict) -> str:
    parts = []
    for k, v in meta.items():
        if isinstance(v, dict):
            v = "{" + ",".join(f"{_q(a)}:{_q(b)}" for a, b in v.items()) + "}"
        elif isinstance(v, int):
            v = str(v)
        else:
            v = _q(v)
        parts.append(f"{_q(k)}:{v}")
    return "{" + ",".join(parts) + "}"


def hooks_dir(db: str) -> str:
    return db + ".hooks"


def _args(argv):
    opts = {"agent": argv[0] if argv else "unknown"}
    i = 1
    while i < len(argv):
        key = argv[i]
        if key.startswith("--") and i + 1 < len(argv):
            opts[key[2:].replace("-", "_")] = argv[i + 1]
            i += 2
        else:
            i += 1
    return opts


def record_failure(hdir: str, agent: str, stage: str, error: str, event: str = "") -> None:
    """Append one line to the failures log; never raises."""
    try:
        import json

        os.makedirs(hdir, exist_ok=True)
        line = json.dumps({"time_ns": time.time_ns(), "agent": agent, "event": event, "stage": stage,
                           "error": error[:2000], "pid": os.getpid()}) + "\n"
        fd = os.open(os.path.join(hdir, "failures.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except Exception:  # noqa: BLE001 - the agent must go on whatever happens
        pass


def _endpoint(hdir: str):
    """(port, token) from ``collector.port`` (``PORT TOKEN``, written by the collector)."""
    try:
        with open(os.path.join(hdir, "collector.port"), "rb") as fh:
            port, token = fh.read().split()[:2]
        return int(port), token.decode("ascii")
    except Exception:  # noqa: BLE001 - no collector yet
        return None


def post(port: int, token: str, path: str, body: bytes, meta: dict, timeout: float) -> int:
    """One HTTP/1.1 POST on a raw socket (http.client costs more to import than this
    whole file); returns the status code. Raises OSError on connection failure."""
    import _socket  # the C module: socket.py's own imports cost more than this whole request

    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\nX-Ledger-Token: {token}\r\n"
            f"X-Ledger-Meta: {_meta_json(meta)}\r\n\r\n").encode("ascii")
    deadline = time.monotonic() + timeout
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.settimeout(min(timeout, 0.5))
        sock.connect(("127.0.0.1", port))
        sock.sendall(head + body)
        chunks = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer within the budget")
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except _socket.timeout as exc:
                raise TimeoutError("no answer within the budget") from exc
            if not data:
                break
            chunks.append(data)
            if _complete(b"".join(chunks)):
                break
    finally:
        sock.close()
    reply = b"".join(chunks)
    try:
        return int(reply.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise OSError(f"malformed answer from the collector: {reply[:80]!r}") from None


def _complete(reply: bytes) -> bool:
    head, sep, rest = reply.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(rest) >= int(value.strip() or 0)
    return False


def start_collector(hdir: str, opts: dict) -> bool:
    """Start ``ledger serve`` detached unless one holds the lock; True if started."""
    import fcntl

    os.makedirs(hdir, exist_ok=True)
    fd = os.open(os.path.join(hdir, "collector.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a collector is running or starting
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    argv = [sys.executable, "-I", "-m", "nervous_system.hooks.collector", "--db", opts["db"],
            "--port", opts.get("port", "4318"), "--auto"]
    pid = os.fork()
    if pid == 0:  # child: detach completely, then become the collector
        try:
            os.setsid()
            if os.fork() != 0:
                os._exit(0)
            null = os.open(os.devnull, os.O_RDWR)
            log = os.open(os.path.join(hdir, "collector.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.chdir("/")
            os.execv(sys.executable, argv)
        finally:
            os._exit(127)
    os.waitpid(pid, 0)
    return True


def in_process(opts: dict, meta: dict, body: bytes, timeout: float) -> None:
    """Record without the collector: a full Python process with the same code."""
    import json
    import subprocess

    proc = subprocess.run([sys.executable, "-I", "-m", "nervous_system.hooks.inprocess", json.dumps(meta)],
                          input=body, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"in-process recording failed (exit {proc.returncode}): "
                           f"{proc.stderr.decode('utf-8', 'replace')[-1500:]}")


def spool(hdir: str, meta: dict, body: bytes) -> None:
    """Append the raw hook durably to the spool; the collector records it when it starts."""
    import json

    sdir = os.path.join(hdir, "spool")
    os.makedirs(sdir, exist_ok=True)
    name = f"{meta['t_ns']:020d}-{meta['delivery']}.json"
    tmp = os.path.join(sdir, "." + name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, json.dumps({"meta": meta, "payload": body.decode("utf-8", "replace")}).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, os.path.join(sdir, name))
    dfd = os.open(sdir, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def run(argv) -> None:
    t_ns = time.time_ns()
    started = time.monotonic()
    opts = _args(argv)
    agent = opts["agent"]
    db = opts.get("db") or ""
    hdir = hooks_dir(db) if db else os.path.expanduser("~/.local/share/context-ledger/ledger.db.hooks")
    body = b""
    try:
        body = sys.stdin.buffer.read() if not sys.stdin.isatty() else b""
    except Exception as exc:  # noqa: BLE001
        record_failure(hdir, agent, "stdin", repr(exc))
    if not body.strip():
        import json

        body = json.dumps({"hook_event_name": opts.get("event", "post-commit" if agent == "git" else ""),
                           "cwd": os.getcwd()}).encode()
    ending = any(name in body for name in END_EVENTS)
    budget = float(opts.get("end_budget", "0.9") if ending else opts.get("budget", "30"))
    if opts.get("t_ns", "").isdigit():  # handed over by hook.sh, with its delivery id
        t_ns = int(opts["t_ns"])
    meta = {"agent": agent, "db": db, "tenant": opts.get("tenant", ""), "project": opts.get("project", ""),
            "root": opts.get("root", ""), "t_ns": t_ns, "delivery": opts.get("delivery") or os.urandom(12).hex(),
            "ppid": int(opts["ppid"]) if opts.get("ppid", "").isdigit() else os.getppid(),
            "env": {k: os.environ[k] for k in ENV_NAMES if k in os.environ}}
    path = f"/hook/{agent}"

    def left() -> float:
        return budget - (time.monotonic() - started)

    errors = []
    for attempt in range(2):
        ep = _endpoint(hdir)
        if ep is not None:
            try:
                status = post(ep[0], ep[1], path, body, meta, max(left(), 0.05))
                if status == 200:
                    return
                if status == 400:  # the payload itself is bad: no fallback can record it
                    record_failure(hdir, agent, "payload", "the collector refused the payload as malformed")
                    return
                errors.append(f"collector answered {status}")
                break  # it is up but refused: do not start another one
            except OSError as exc:
                errors.append(f"collector on port {ep[0]}: {exc!r}")
        if attempt == 0 and not ending and db:
            try:
                start_collector(hdir, opts)
            except Exception as exc:  # noqa: BLE001
                errors.append(f"cannot start the collector: {exc!r}")
            wait_until = time.monotonic() + min(float(opts.get("start_wait", "20")), max(left() - 2, 0))
            while time.monotonic() < wait_until:
                ep2 = _endpoint(hdir)
                if ep2 is not None and ep2 != ep:
                    break
                time.sleep(0.02)
        else:
            break
    import json

    event = ""
    try:
        event = str(json.loads(body).get("hook_event_name", ""))
    except Exception:  # noqa: BLE001
        pass
    if not ending and db and left() > 1:
        try:
            in_process(opts, meta, body, left() - 0.3)
            record_failure(hdir, agent, "collector", "; ".join(errors) + " (recorded in-process)", event)
            return
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))
    try:
        spool(hdir, meta, body)
        record_failure(hdir, agent, "collector", "; ".join(errors) + " (spooled)", event)
    except Exception as exc:  # noqa: BLE001
        record_failure(hdir, agent, "spool", "; ".join(errors) + f"; spool failed: {exc!r}", event)


def main() -> None:
    try:
        run(sys.argv[1:])
    except BaseException as exc:  # noqa: BLE001 - never fail the agent
        try:
            record_failure(hooks_dir(_args(sys.argv[1:]).get("db", "")), "?", "client", repr(exc))
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
