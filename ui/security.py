"""Who may talk to ``ledger ui``: guarded like Jupyter.

The UI shows a project's whole history (code, decisions, messages), so every request
must prove it comes from the person who started the server:

* **Token.** ``secrets.token_urlsafe(32)``, printed in the URL on standard output.
  ``?token=...`` is accepted once: the answer is a redirect to the same page without
  it that sets the token as an ``HttpOnly; SameSite=Strict`` cookie (named after the
  port, as cookies do not tell ports apart). Every page, asset, API and event-stream
  request is then checked against the cookie (or a ``?token=``), in constant time. No
  token, a wrong one: 403.
* **Host header** must name this server (``127.0.0.1:PORT``, ``localhost:PORT``,
  ``[::1]:PORT``, or the explicitly allowed host): a DNS-rebinding page, whose
  requests carry its own host name, gets 403 even with the cookie.
* **Origin**, when a browser sends one, must be this server's; only GET and HEAD are
  served (the UI never changes anything).
* **Loopback only**: ``check_bind_host`` refuses another interface unless asked for
  explicitly (``ledger ui --host 0.0.0.0 --allow-remote``), and the caller warns.
* **Headers**: a strict Content-Security-Policy (scripts, styles, images and
  connections from this origin only: no inline script, no CDN), no referrer (the
  token never leaks through a Referer), no framing, no caching of API answers.
"""

from __future__ import annotations

import ipaddress
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

__all__ = ["new_token", "Guard", "check_bind_host", "is_loopback", "cookie_name"]

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def new_token() -> str:
    """A fresh secret for one server run."""
    return secrets.token_urlsafe(32)


def cookie_name(port: int) -> str:
    return f"ledger-ui-token-{port}"


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_host(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback interface unless ``allow_remote``. Raises ``ValueError``."""
    if not is_loopback(host) and not allow_remote:
        raise ValueError(
            f"--host {host} would serve the ledger to other machines; the UI binds to loopback "
            "only unless you also pass --allow-remote (anyone who can reach the port and has "
            "the token can read the whole history)")


def _forbidden(reason: str):
    body = f"403 Forbidden: {reason}\n".encode()
    return [
        {"type": "http.response.start", "status": 403,
         "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                     (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]},
        {"type": "http.response.body", "body": body},
    ]


class Guard:
    """ASGI middleware enforcing the rules of the module docstring around ``app``.

    ``hosts``: the extra host names (without port) that are allowed in the Host header
    besides loopback's; ``port``: the port the server listens on.
    """

    def __init__(self, app, *, token: str, port: int, hosts: tuple[str, ...] = ()):
        self.app = app
        self.token = token
        self.port = port
        names = ("127.0.0.1", "localhost", "[::1]", *hosts)
        self.hosts = {f"{name}:{port}".encode() for name in names}
        self.origins = {b"http://" + h for h in self.hosts}
        self.cookie = cookie_name(port)

    def _token_ok(self, value: str | None) -> bool:
        return bool(value) and secrets.compare_digest(value.encode(), self.token.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        reason = self._refusal(scope, headers)
        if reason:
            for message in _forbidden(reason):
                await send(message)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = dict(query).get("token")
        if given is not None and not scope["path"].startswith("/api/"):
            # first visit: trade the URL token for a cookie, and drop it from the URL
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = (scope["path"] + ("?" + rest if rest else "")).encode()
            cookie = f"{self.cookie}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode()
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", location), (b"set-cookie", cookie),
                                    (b"content-length", b"0"), *SECURITY_HEADERS]})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                extra = list(SECURITY_HEADERS)
                if scope["path"].startswith("/api/"):
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope, headers: dict[bytes, bytes]) -> str | None:
        """Why the request is refused, or None."""
        if headers.get(b"host", b"") not in self.hosts:
            return "unexpected Host header (this server answers only to its own address)"
        origin = headers.get(b"origin")
        if origin is not None and origin not in self.origins:
            return "cross-origin request"
        if scope["method"] not in ("GET", "HEAD"):
            return "read-only server"
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if self._token_ok(query.get("token")):
            return None
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get(b"cookie", b"").decode("latin-1"))
        except Exception:  # a malformed Cookie header is just "no cookie"
            return "missing or wrong token: open the URL `ledger ui` printed"
        morsel = cookies.get(self.cookie)
        if morsel is None or not self._token_ok(morsel.value):
            return "missing or wrong token: open the URL `ledger ui` printed"
        return None
