"""The syncer daemon: one background syncer per local ledger.

Files next to the ledger ``L`` (e.g. ``~/.local/share/context-ledger/ledger.db``):

- ``L.syncer.lock`` -- held with ``fcntl.flock`` (exclusive, non-blocking) while a syncer
  runs: at most one syncer per ledger, and a crashed syncer never leaves a stale lock
  (the kernel drops it with the process);
- ``L.syncer.pid``  -- the running syncer's process id (written after taking the lock);
- ``L.syncer.log``  -- the log, rotated at 5 MB, 3 old files kept
  (``logging.handlers.RotatingFileHandler``);
- ``L.syncer.err``  -- raw stderr of a background syncer (start-up failures, crashes).

``run`` is the foreground loop (``ledger syncer run``); ``start``/``stop``/``status`` manage
a background one. SIGTERM (and SIGINT) stop the loop gracefully: the batch in flight is
finished and marked synced before the process exits.

``python -m syncer.daemon --db L --tenant T (--cluster-file F | --hub-url U)`` runs the loop (what ``start``
launches).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import logging.handlers
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from hub.errors import HubFailure, HubUnavailable
from hub.protocol import HubClient
from ledger import Ledger
from syncer.errors import DaemonError, SyncerAlreadyRunning, SyncerNotRunning

log = logging.getLogger("syncer")

LOG_MAX_BYTES = 5_000_000
LOG_BACKUPS = 3
#: Seconds between passes when the outbox was emptied.
DEFAULT_INTERVAL_S = 5.0
#: Seconds between two applications of the retention policy by the daemon.
DEFAULT_GC_INTERVAL_S = 3600.0
#: How the background syncer is launched (the module's ``__main__``); tests substitute a
#: launcher that installs the FoundationDB double first.
DEFAULT_LAUNCHER: list[str] = [sys.executable, "-m", "syncer.daemon"]


@dataclass(frozen=True)
class DaemonPaths:
    """Lock, pid, log and stderr files of the syncer of one ledger."""

    lock: Path
    pid: Path
    log: Path
    err: Path

    @classmethod
    def for_ledger(cls, ledger_path: str | os.PathLike) -> "DaemonPaths":
        base = Path(ledger_path).resolve()
        return cls(*(base.with_name(f"{base.name}.syncer.{ext}") for ext in ("lock", "pid", "log", "err")))


class InstanceLock:
    """An exclusive ``flock`` on the lock file; ``acquire()`` returns False when held elsewhere."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def running_pid(ledger_path: str | os.PathLike) -> int | None:
    """Pid of the syncer running for this ledger (0 if running but its pid file is not
    written yet), or None when none runs."""
    paths = DaemonPaths.for_ledger(ledger_path)
    if not paths.lock.exists():
        return None
    probe = InstanceLock(paths.lock)
    if probe.acquire():
        probe.release()
        return None
    return _read_pid(paths.pid) or 0


def daemon_status(ledger_path: str | os.PathLike) -> dict:
    """``{"running": bool, "pid": int|None, "lock": path, "pid_file": path, "log": path}``."""
    paths = DaemonPaths.for_ledger(ledger_path)
    pid = running_pid(ledger_path)
    return {"running": pid is not None, "pid": pid or None, "lock": str(paths.lock),
            "pid_file": str(paths.pid), "log": str(paths.log)}


def setup_logging(paths: DaemonPaths, *, to_stderr: bool) -> logging.Handler:
    """Send the ``syncer`` logger to the rotating log file (and stderr when asked)."""
    handler = logging.handlers.RotatingFileHandler(paths.log, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s pid=%(process)d %(message)s"))
    log.addHandler(handler)
    if to_stderr:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(stream)
    log.setLevel(logging.INFO)
    return handler


def run(
    ledger_path: str | os.PathLike,
    tenant_id: str,
    cluster_file: str | os.PathLike | None = None,
    *,
    hub_url: str | None = None,
    interval: float = DEFAULT_INTERVAL_S,
    stop: threading.Event | None = None,
    to_stderr: bool = False,
    syncer_options: dict | None = None,
    hub_options: dict | None = None,
    backoff_base: float = 0.5,
    backoff_cap: float = 60.0,
    connect: Callable[[], HubClient] | None = None,
    gc_interval: float = DEFAULT_GC_INTERVAL_S,
) -> None:
    """Run the sync loop in this process until ``stop`` is set or SIGTERM/SIGINT arrives.

    Every ``gc_interval`` seconds (after a pass) it also applies the retention policy of
    the configuration (``ledger.retention.gc``: expired events removed and recorded,
    legal holds respected); no policy, no removal.

    The hub client comes from ``connect()`` when given, else from ``hub.open_hub``: the
    gateway at ``hub_url`` (token from LEDGER_HUB_TOKEN), or FoundationDB at
    ``cluster_file`` with ``hub_options`` (``timeout_ms``, ``retry_limit``).
    Takes the ledger's instance lock first: raises ``SyncerAlreadyRunning`` if another
    syncer holds it. Backs off with jitter while the hub is unreachable.
    """
    from syncer.syncer import Backoff, Syncer

    connect = connect or (lambda: _open_hub(tenant_id, cluster_file, hub_url, hub_options or {}))

    paths = DaemonPaths.for_ledger(ledger_path)
    lock = InstanceLock(paths.lock)
    if not lock.acquire():
        pid = _read_pid(paths.pid)
        raise SyncerAlreadyRunning(
            f"a syncer is already running for {ledger_path} (pid {pid or 'unknown'}); "
            "see `ledger syncer status`, or `ledger syncer stop` first"
        )
    stop = stop or threading.Event()
    handlers: list[logging.Handler] = []
    previous: dict = {}
    ledger = None
    try:
        paths.pid.write_text(f"{os.getpid()}\n")
        handlers = [setup_logging(paths, to_stderr=to_stderr)]
        if to_stderr:
            handlers.append(log.handlers[-1])
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
        log.info("syncer started for %s (tenant %s, hub %s)", ledger_path, tenant_id, hub_url or cluster_file)
        ledger = Ledger(ledger_path)
        backoff = Backoff(backoff_base, backoff_cap)
        hub = None
        while hub is None and not stop.is_set():
            try:
                hub = connect()
            except HubUnavailable as exc:
                delay = backoff.next_delay()
                log.warning("cannot open the hub, retrying in %.1fs: %s", delay, exc)
                stop.wait(delay)
        if hub is not None:
            Syncer(ledger, hub, **(syncer_options or {})).run_forever(
                stop, interval=interval, backoff=backoff, on_pass=_retention_pass(ledger, tenant_id, gc_interval))
        log.info("syncer stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for h in handlers:
            log.removeHandler(h)
            h.close()
        if ledger is not None:
            ledger.close()
        if _read_pid(paths.pid) == os.getpid():
            with contextlib.suppress(OSError):
                paths.pid.unlink()
        lock.release()


def _retention_pass(ledger: Ledger, tenant_id: str, every_s: float) -> Callable:
    """An ``on_pass`` callback applying the configured retention policy at most once per
    ``every_s`` seconds (errors are logged: retention never stops the syncer)."""
    from ledger import retention
    from ledger.config import load_settings
    from ledger.errors import LedgerError

    try:
        policy = retention.Policy.from_config(load_settings().retention)
    except LedgerError as exc:
        log.error("retention policy not applied: %s", exc)
        policy = retention.Policy()
    last = [float("-inf")]

    def on_pass(_report, _error) -> None:
        if not policy or time.monotonic() - last[0] < every_s:
            return
        last[0] = time.monotonic()
        try:
            report = retention.gc(ledger, tenant_id=tenant_id, policy=policy)
        except LedgerError as exc:
            log.error("retention gc failed: %s", exc)
            return
        if report.total or report.held:
            log.info("retention gc: %s", report.to_dict())
    return on_pass


def _open_hub(tenant_id: str, cluster_file, hub_url: str | None, options: dict) -> HubClient:
    """The daemon's hub client (the process's composition root: the only place the syncer
    names the hub package's factory rather than the protocol)."""
    from hub.client import open_hub

    if hub_url:
        return open_hub(tenant_id, url=hub_url, token=os.environ.get("LEDGER_HUB_TOKEN"))
    return open_hub(tenant_id, cluster_file=cluster_file, **options)


def start(
    ledger_path: str | os.PathLike,
    tenant_id: str,
    cluster_file: str | os.PathLike | None = None,
    *,
    hub_url: str | None = None,
    hub_token: str | None = None,
    interval: float = DEFAULT_INTERVAL_S,
    launcher: Sequence[str] | None = None,
    wait_s: float = 15.0,
) -> int:
    """Start a background syncer for the ledger; returns its pid once it holds the lock.
    It sends to the gateway at ``hub_url`` (``hub_token`` passed in its environment, never
    on its command line) or to FoundationDB at ``cluster_file``.

    Raises ``SyncerAlreadyRunning`` if one runs, ``DaemonError`` (with the tail of its
    stderr) if it exits or does not come up within ``wait_s`` seconds.
    """
    pid = running_pid(ledger_path)
    if pid is not None:
        raise SyncerAlreadyRunning(
            f"a syncer is already running for {ledger_path} (pid {pid or 'starting'}); "
            "`ledger syncer stop` first"
        )
    paths = DaemonPaths.for_ledger(ledger_path)
    paths.lock.parent.mkdir(parents=True, exist_ok=True)
    where = ["--hub-url", hub_url] if hub_url else ["--cluster-file", str(Path(cluster_file).resolve())]
    cmd = [*(launcher or DEFAULT_LAUNCHER), "--db", str(Path(ledger_path).resolve()), "--tenant", tenant_id,
           *where, "--interval", str(interval)]
    env = {**os.environ, "LEDGER_HUB_TOKEN": hub_token} if hub_token else None
    with open(paths.err, "ab") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if running_pid(ledger_path) == proc.pid:
            return proc.pid
        if proc.poll() is not None:
            tail = _tail(paths.err)
            raise DaemonError(f"the syncer exited at start (status {proc.returncode}): {tail or 'no output'}")
        time.sleep(0.02)
    raise DaemonError(f"the syncer did not start within {wait_s:.0f}s; see {paths.err} and {paths.log}")


def stop(ledger_path: str | os.PathLike, *, wait_s: float = 30.0) -> int:
    """Ask the ledger's background syncer to stop (SIGTERM: it finishes its current batch)
    and wait until it has exited. Returns its pid. Raises ``SyncerNotRunning`` or
    ``DaemonError`` when it does not exit within ``wait_s`` seconds."""
    pid = running_pid(ledger_path)
    if pid is None:
        raise SyncerNotRunning(f"no syncer is running for {ledger_path}")
    deadline = time.monotonic() + wait_s
    while not pid and time.monotonic() < deadline:  # starting: pid file not yet written
        time.sleep(0.02)
        pid = running_pid(ledger_path)
        if pid is None:
            raise SyncerNotRunning(f"no syncer is running for {ledger_path}")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError as exc:
        raise SyncerNotRunning(f"the syncer (pid {pid}) of {ledger_path} has already exited") from exc
    except PermissionError as exc:
        raise DaemonError(f"not allowed to signal the syncer (pid {pid}): {exc}") from exc
    while time.monotonic() < deadline:
        if running_pid(ledger_path) is None:
            return pid
        time.sleep(0.02)
    raise DaemonError(
        f"the syncer (pid {pid}) did not stop within {wait_s:.0f}s (it finishes its current "
        f"batch first); wait, or force it with `kill -9 {pid}` (nothing is lost: unsynced "
        "events stay in the outbox)"
    )


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry of ``python -m syncer.daemon`` (the background syncer)."""
    parser = argparse.ArgumentParser(prog="python -m syncer.daemon", description=__doc__.split("\n")[0])
    parser.add_argument("--db", required=True, help="SQLite ledger file")
    parser.add_argument("--tenant", required=True, help="tenant id (the only one this syncer sends)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--cluster-file", help="FoundationDB cluster file (direct access)")
    where.add_argument("--hub-url", help="the hub gateway's URL (token in LEDGER_HUB_TOKEN)")
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S, help="seconds between passes")
    parser.add_argument("--batch-bytes", type=int, default=None)
    parser.add_argument("--batch-events", type=int, default=None)
    parser.add_argument("--timeout-ms", type=int, default=None, help="per-transaction timeout")
    parser.add_argument("--backoff-base", type=float, default=0.5, help="first backoff delay (s)")
    parser.add_argument("--backoff-cap", type=float, default=60.0, help="longest backoff delay (s)")
    parser.add_argument("--foreground", action="store_true", help="also log to stderr")
    args = parser.parse_args(argv)
    syncer_options = {k: v for k, v in (("batch_bytes", args.batch_bytes), ("batch_events", args.batch_events))
                      if v is not None}
    hub_options = {"timeout_ms": args.timeout_ms} if args.timeout_ms else {}
    try:
        run(args.db, args.tenant, args.cluster_file, hub_url=args.hub_url, interval=args.interval,
            to_stderr=args.foreground,
            syncer_options=syncer_options, hub_options=hub_options,
            backoff_base=args.backoff_base, backoff_cap=args.backoff_cap)
    except (SyncerAlreadyRunning, HubFailure) as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
