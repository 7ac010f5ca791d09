"""``ledger hub serve``: the authenticated HTTP gateway in front of FoundationDB.

An ASGI app (Starlette; served by uvicorn, TLS by ``--tls-cert``/``--tls-key``) that
laptops reach with a token instead of a cluster file. Stateless: tokens, data and upload
sessions live in FoundationDB, so several gateways can run behind a load balancer
(rate limits are per process).

Every request: token (``Authorization: Bearer``) looked up in FoundationDB (revocation
and expiry effective at once) -> scope checked against the route's permission -> rate
limit (token bucket per token) -> body size limit -> the call on the token tenant's
``hub.hub.Hub``. The tenant comes from the token, never from the request: project names
in URLs are resolved under the token's tenant, so another tenant's ids, blobs and upload
ids behave as absent. Every refusal (any 4xx answer) is logged as one JSON line on the
``hub.gateway`` logger: ``{"event": "refused", "status", "reason", "token_id", "tenant",
"route", "client"}`` (the tenant is the token's, never one named by the request).

Routes (``hub.wire`` has the JSON shapes and error codes; permission in brackets):
``GET /v1/whoami`` [any], ``GET /v1/version`` [read], ``GET /v1/projects`` [read],
``POST /v1/events`` [write], ``GET /v1/projects/{p}/log`` [read],
``GET /v1/projects/{p}/laptops`` [read], ``GET /v1/projects/{p}/blobs/{d}`` [read],
``POST /v1/projects/{p}/blobs/missing`` [write], ``POST /v1/projects/{p}/blobs`` [write],
``POST /v1/projects/{p}/blobs/{d}/uploads`` [write],
``PUT /v1/projects/{p}/blobs/{d}/uploads/{u}/chunks/{i}`` [write],
``POST /v1/projects/{p}/blobs/{d}/uploads/{u}/finish`` [write].
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass

import fdb
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub import blobs, tokens
from hub.connection import convert_fdb_error
from hub.content import ENCODINGS, EncodedBlob, decode_blob
from hub.errors import HubError, HubFailure, TenantMismatch
from hub.hub import Hub
from hub.protocol import CHUNK_BYTES, BlobHeader
from hub.wire import API, b64, error_body, status_of, unb64
from ledger import sha256_hex
from schemas import event_from_bytes

log = logging.getLogger("hub.gateway")

#: Request body limits (bytes): an events batch may hold one event up to the hub's 9 MB
#: limit in base64; blob batches and upload chunks are smaller; the rest is small JSON.
EVENTS_BODY_BYTES = 16 * 1024 * 1024
BLOBS_BODY_BYTES = 8 * 1024 * 1024
SMALL_BODY_BYTES = 1024 * 1024
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]{24,40}$")


class Refused(Exception):
    """A request refused before reaching the hub: ``status``, ``code``, ``reason``."""

    def __init__(self, status: int, code: str, message: str, reason: str) -> None:
        super().__init__(message)
        self.status, self.code, self.reason = status, code, reason


class RateLimiter:
    """Token buckets per token id: ``rate`` requests per second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = float(rate), float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """0 when a request may go now (and count it), else seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            level, last = self._buckets.get(key, (self.burst, now))
            level = min(self.burst, level + (now - last) * self.rate)
            if level < 1:
                self._buckets[key] = (level, now)
                return (1 - level) / self.rate
            self._buckets[key] = (level - 1, now)
            return 0.0


@dataclass
class Call:
    """What a route handler gets: the request, its token, the tenant's hub, the body."""

    request: Request
    token: tokens.TokenInfo
    hub: Hub
    body: bytes

    def param(self, name: str) -> str:
        return self.request.path_params[name]

    def json(self) -> dict:
        try:
            data = json.loads(self.body or b"{}")
        except ValueError as exc:
            raise HubError(f"the request body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise HubError("the request body must be a JSON object")
        return data


class Gateway:
    """The app's state: the database, a ``Hub`` per tenant, the rate limiter."""

    def __init__(self, db, *, rate: float = 50.0, burst: int = 200) -> None:
        self.db = db
        self.limiter = RateLimiter(rate, burst)
        self._hubs: dict[str, Hub] = {}

    def hub_of(self, tenant: str) -> Hub:
        hub = self._hubs.get(tenant)
        if hub is None:
            hub = self._hubs[tenant] = Hub(self.db, tenant)
        return hub

    def route(self, path: str, handler, permission: str | None, methods: list[str],
              max_body: int = SMALL_BODY_BYTES) -> Route:
        async def endpoint(request: Request):
            token = None
            try:
                header = request.headers.get("authorization", "")
                text = header[7:].strip() if header.lower().startswith("bearer ") else None
                token = await run_in_threadpool(tokens.authenticate, self.db, text)
                if permission and not token.allows(permission):
                    raise Refused(403, "forbidden", f"a {token.scope} token cannot do this", "scope")
                wait = self.limiter.retry_after(token.id)
                if wait:
                    raise Refused(429, "rate_limited", "too many requests; retry later", "rate limit")
                body = await _read_body(request, max_body)
                result = await run_in_threadpool(_converted, handler, Call(request, token, self.hub_of(token.tenant),
                                                                           body))
            except Refused as exc:
                self._refused(request, token, exc.status, exc.reason)
                headers = {"Retry-After": "1"} if exc.status == 429 else None
                return JSONResponse(error_body(exc.code, str(exc)), exc.status, headers=headers)
            except HubFailure as exc:
                status, code, extra = status_of(exc)
                if status < 500:
                    self._refused(request, token, status, getattr(exc, "reason", "") or code)
                else:
                    log.warning(json.dumps({"event": "error", "status": status, "route": _route(request),
                                            "token_id": token.id if token else None, "message": str(exc)}))
                return JSONResponse(error_body(code, str(exc), **extra), status)
            return result if isinstance(result, Response) else JSONResponse(result)

        return Route(path, endpoint, methods=methods)

    def _refused(self, request: Request, token, status: int, reason: str) -> None:
        text = request.headers.get("authorization", "")
        log.warning(json.dumps({
            "event": "refused", "status": status, "reason": reason,
            "token_id": token.id if token else tokens.token_id_of(text[7:].strip()),
            "tenant": token.tenant if token else None, "route": _route(request),
            "client": request.client.host if request.client else None,
        }))


def _converted(handler, call: "Call"):
    """Run a handler: FoundationDB errors become hub errors (``convert_fdb_error``) and a
    request whose fields have the wrong type or are missing becomes a ``HubError`` (400)."""
    try:
        return handler(call)
    except HubFailure:
        raise
    except fdb.FDBError as exc:
        raise convert_fdb_error(exc, "serve the request") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise HubError(f"malformed request: {type(exc).__name__}: {exc}") from exc


def _route(request: Request) -> str:
    return f"{request.method} {request.url.path}"


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Refused(413, "too_large", f"the request body is over {limit:,} bytes", "too large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, "too_large", f"the request body is over {limit:,} bytes", "too large")
        chunks.append(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------- handlers
class _Event:
    """An event decoded from a request body: the attributes ``Hub.write_events`` reads."""

    def __init__(self, body: bytes) -> None:
        try:
            self.event = event_from_bytes(body)
        except Exception as exc:  # noqa: BLE001 - any decoding failure is the client's
            raise HubError(f"an event body is not a valid SwarmEvent: {exc}") from exc
        self.body = body
        self.event_id, self.tenant_id = self.event.event_id, self.event.tenant_id
        self.project_id, self.time_ns = self.event.project_id, self.event.timestamp


def _whoami(call: Call) -> dict:
    return {"tenant": call.token.tenant, "scope": call.token.scope, "token_id": call.token.id}


def _version(call: Call) -> dict:
    return {"read_version": call.hub.read_version()}


def _projects(call: Call) -> dict:
    return {"projects": call.hub.projects()}


def _write_events(call: Call) -> dict:
    data = call.json()
    events = [_Event(unb64(b)) for b in data.get("events", [])]
    for e in events:
        if e.tenant_id != call.token.tenant:
            raise TenantMismatch(f"event {e.event_id} is not of this token's tenant; nothing was written")
    outcomes = call.hub.write_events(events, origin=str(data.get("origin", ""))[:200],
                                     last_seq=int(data.get("last_seq", 0)))
    return {"outcomes": [{"event_id": o.event_id, "position": o.position.hex(), "inserted": o.inserted}
                         for o in outcomes]}


def _chain_key(call: Call) -> dict:
    return {"new": call.hub.register_chain_key(call.param("ledger"), unb64(call.json()["public_key"]))}


def _chain_append(call: Call) -> dict:
    from hub.protocol import HubLink

    data = call.json()
    links = [HubLink.from_wire(w) for w in data.get("links", [])]
    seq, head = call.hub.append_chain(call.param("ledger"), links, list(data.get("checkpoints", [])))
    return {"head_seq": seq, "head": head.hex()}


def _chain_state(call: Call) -> dict:
    after = int(call.request.query_params.get("after", "0"))
    limit = min(max(int(call.request.query_params.get("limit", "10000")), 1), 10_000)
    st = call.hub.chain_state(call.param("ledger"), after, limit)
    return {"public_key": b64(st["public_key"]) if st["public_key"] else None,
            "head": [st["head"][0], bytes(st["head"][1]).hex()] if st["head"] else None,
            "links": [lk.to_wire() for lk in st["links"]], "checkpoints": st["checkpoints"]}


def _chain_ledgers(call: Call) -> dict:
    return {"ledgers": call.hub.chain_ledgers()}


def _put_seal_keys(call: Call) -> dict:
    keys = [(str(k["key_id"]), str(k["session_id"]), str(k["agent_id"]), unb64(k["key"]))
            for k in call.json().get("keys", [])]
    return {"refused": call.hub.put_seal_keys(keys)}


def _get_seal_keys(call: Call) -> dict:
    ids = [str(i) for i in call.json().get("key_ids", [])][:10_000]
    return {"keys": {k: (b64(v) if v is not None else None) for k, v in call.hub.seal_keys(ids).items()}}


def _erase_seal_keys(call: Call) -> dict:
    data = call.json()
    return {"cleared": call.hub.erase_seal_keys(session_id=data.get("session_id") or None,
                                                 agent_id=data.get("agent_id") or None,
                                                 key_ids=[str(i) for i in data.get("key_ids", [])])}


def _hex_arg(call: Call, name: str) -> bytes | None:
    value = call.request.query_params.get(name)
    if value is None:
        return None
    if not _HEX.match(value):
        raise HubError(f"{name} must be a hub position in hex (20 or 24 digits)")
    return bytes.fromhex(value)


def _read_log(call: Call) -> dict:
    limit = min(max(int(call.request.query_params.get("limit", "1000")), 1), 10_000)
    records = call.hub.read_log(call.param("project"), _hex_arg(call, "after"), limit, until=_hex_arg(call, "until"))
    return {"records": [{"position": r.position.hex(), "body": b64(r.body)} for r in records]}


def _laptops(call: Call) -> dict:
    return {"laptops": {k: [s, w, v.hex()] for k, (s, w, v) in call.hub.laptops(call.param("project")).items()}}


def _digest(call: Call) -> str:
    digest = call.param("digest")
    if not _DIGEST.match(digest):
        raise HubError("a blob digest is 64 lower-case hex digits (SHA-256)")
    return digest


def _read_blob(call: Call) -> Response:
    return Response(call.hub.read_blob(call.param("project"), _digest(call)), media_type="application/octet-stream")


def _missing(call: Call) -> dict:
    digests = [str(d) for d in call.json().get("digests", [])][:10_000]
    return {"missing": call.hub.missing_blobs(call.param("project"), digests)}


def _put_blobs(call: Call) -> dict:
    items = []
    for b in call.json().get("blobs", []):
        header = _header(b)
        stored = unb64(b["data"])
        blob = EncodedBlob(str(b["digest"]), header, stored)
        if len(stored) != header.stored_size:
            raise HubError(f"blob {blob.digest}: {len(stored):,} bytes sent, stored_size says {header.stored_size:,}")
        try:
            data = decode_blob(header.encoding, stored)
        except Exception as exc:  # noqa: BLE001 - zlib errors
            raise HubError(f"blob {blob.digest} refused: {exc}") from exc
        if len(data) != header.size or sha256_hex(data) != blob.digest:
            raise HubError(f"blob {blob.digest} refused: its bytes do not hash to the digest")
        items.append(blob)
    written, stored_bytes = blobs.store_encoded(call.hub.layout, call.param("project"), items)
    return {"written": written, "stored_bytes": stored_bytes}


def _header(data: dict) -> BlobHeader:
    try:
        header = BlobHeader(int(data["size"]), int(data["stored_size"]), int(data["chunks"]), str(data["encoding"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise HubError(f"a blob needs size, stored_size, chunks and encoding: {exc}") from exc
    if header.encoding not in ENCODINGS or header.chunks != max(1, -(-header.stored_size // CHUNK_BYTES)):
        raise HubError("blob header: unknown encoding or a chunk count that does not match stored_size")
    return header


def _begin_upload(call: Call) -> dict:
    _digest(call)
    return {"upload_id": blobs.new_upload_id().hex()}


def _upload_id(call: Call) -> bytes:
    value = call.param("upload")
    if not re.fullmatch(r"[0-9a-f]{32}", value):
        raise HubError("an upload id is 32 hex digits, as returned when the upload began")
    return bytes.fromhex(value)


def _put_chunks(call: Call) -> dict:
    first = int(call.param("first"))
    data = call.body
    chunks = [data[i : i + CHUNK_BYTES] for i in range(0, max(1, len(data)), CHUNK_BYTES)]
    per_txn = max(1, blobs.TXN_BYTES // (CHUNK_BYTES + 200))
    for start in range(0, len(chunks), per_txn):
        blobs.put_chunks(call.hub.layout, call.param("project"), _digest(call), _upload_id(call), first + start,
                         chunks[start : start + per_txn])
    return {"chunks": len(chunks)}


def _finish_upload(call: Call) -> dict:
    written = blobs.finish_verified(call.hub.layout, call.param("project"), _digest(call), _upload_id(call),
                                    _header(call.json()))
    return {"written": written}


def create_app(db, *, rate: float = 50.0, burst: int = 200) -> Starlette:
    """The gateway's ASGI app on database ``db`` (``hub.connection.open_database``);
    ``rate`` requests per second per token (0: unlimited), bursts of ``burst``."""
    g = Gateway(db, rate=rate, burst=burst)
    blob = API + "/projects/{project}/blobs/{digest}"
    routes = [
        g.route(API + "/whoami", _whoami, None, ["GET"]),
        g.route(API + "/version", _version, "read", ["GET"]),
        g.route(API + "/projects", _projects, "read", ["GET"]),
        g.route(API + "/events", _write_events, "write", ["POST"], EVENTS_BODY_BYTES),
        g.route(API + "/projects/{project}/log", _read_log, "read", ["GET"]),
        g.route(API + "/projects/{project}/laptops", _laptops, "read", ["GET"]),
        g.route(API + "/chains", _chain_ledgers, "read", ["GET"]),
        g.route(API + "/chains/{ledger}", _chain_state, "read", ["GET"]),
        g.route(API + "/chains/{ledger}/key", _chain_key, "write", ["POST"]),
        g.route(API + "/chains/{ledger}/links", _chain_append, "write", ["POST"], EVENTS_BODY_BYTES),
        g.route(API + "/seal-keys", _put_seal_keys, "write", ["POST"]),
        g.route(API + "/seal-keys/read", _get_seal_keys, "read", ["POST"]),
        g.route(API + "/seal-keys/erase", _erase_seal_keys, "write", ["POST"]),
        g.route(API + "/projects/{project}/blobs/missing", _missing, "write", ["POST"]),
        g.route(API + "/projects/{project}/blobs", _put_blobs, "write", ["POST"], BLOBS_BODY_BYTES),
        g.route(blob, _read_blob, "read", ["GET"]),
        g.route(blob + "/uploads", _begin_upload, "write", ["POST"]),
        g.route(blob + "/uploads/{upload}/chunks/{first:int}", _put_chunks, "write", ["PUT"], BLOBS_BODY_BYTES),
        g.route(blob + "/uploads/{upload}/finish", _finish_upload, "write", ["POST"]),
    ]
    app = Starlette(routes=routes)

    async def not_found(request, exc):
        g._refused(request, None, 404, "no route")
        return JSONResponse(error_body("not_found", f"no route {request.method} {request.url.path}"), 404)

    app.add_exception_handler(404, not_found)
    return app


def serve(cluster_file, *, host: str = "127.0.0.1", port: int = 8470, tls_cert: str | None = None,
          tls_key: str | None = None, rate: float = 50.0, burst: int = 200, log_level: str = "info") -> None:
    """Run the gateway under uvicorn until interrupted (``ledger hub serve``)."""
    import uvicorn

    from hub.connection import open_database

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(open_database(cluster_file), rate=rate, burst=burst)
    uvicorn.run(app, host=host, port=port, ssl_certfile=tls_cert, ssl_keyfile=tls_key, log_level=log_level,
                access_log=False)
