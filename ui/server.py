"""Running ``ledger ui``: bind (loopback, a free port by default), build the index,
serve with uvicorn, print the URL with its token, open the browser.

``UIServer`` runs the server in a background thread (tests, the benchmark, and the
``ledger ui`` command, which then waits for Ctrl-C)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from replay.history import History
from ui.app import create_app
from ui.security import check_bind_host, new_token
from ui.state import UIState

__all__ = ["UIServer"]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class UIServer:
    """The UI of ``history`` served on ``host:port`` (port 0: a free one).

    ``allow_remote`` must be True for a non-loopback ``host`` (``ValueError``
    otherwise). ``url`` (with the token) is set once ``start`` returns.
    """

    def __init__(self, history: History, *, host: str = "127.0.0.1", port: int = 0,
                 allow_remote: bool = False, analytics_url: str | None = None, token: str | None = None):
        check_bind_host(host, allow_remote)
        self.host = host
        self.token = token or new_token()
        self.state = UIState(history, analytics_url=analytics_url)
        self.state.warm()  # the scrubber's checkpoint trees, before the first request
        self.sock = _bind(host, port)
        self.port = self.sock.getsockname()[1]
        shown = f"[{host.strip('[]')}]" if ":" in host.strip("[]") else host
        self.base = f"http://{'127.0.0.1' if host in ('127.0.0.1', 'localhost') else shown}:{self.port}"
        self.url = f"{self.base}/?token={self.token}"
        extra = () if host in ("127.0.0.1", "localhost", "::1", "[::1]") else (shown,)
        app = create_app(self.state, token=self.token, port=self.port, hosts=extra)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> "UIServer":
        """Serve in a daemon thread; return once it accepts connections."""
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="ledger-ui", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the UI server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> "UIServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
