"""The gateway's wire format, shared by the server (``hub.gateway``) and the HTTP client
(``hub.http_client``): JSON bodies with binary fields in base64, and the one mapping
between hub errors and HTTP statuses.

Errors are ``{"error": {"code": C, "message": M, ...}}`` with these statuses and codes:

====== ================== =====================================================
status code               meaning (client exception)
====== ================== =====================================================
400    ``bad_request``    malformed request or refused data (``HubError``)
401    ``unauthorized``   token missing, malformed, unknown, revoked, expired
                          (``HubAuthError``)
403    ``forbidden``      the token's scope does not allow it (``HubAuthError``)
403    ``tenant_mismatch`` an event of another tenant than the token's
                          (``TenantMismatch``)
404    ``not_found``      no such blob (``HubBlobMissing``) or route
409    ``chain_refused``  a laptop's hash chain does not follow what the hub
                          holds (``HubChainRefused``)
409    ``conflict``       event ids on the hub with other content; ``event_ids``
                          lists them (``HubConflict``)
413    ``too_large``      the request body is over the route's limit (``HubError``)
429    ``rate_limited``   over the token's rate; ``Retry-After`` (``HubUnavailable``
                          once retries run out)
503    ``unavailable``    FoundationDB unreachable or busy (``HubUnavailable``)
====== ================== =====================================================
"""

from __future__ import annotations

import base64

from hub.errors import (
    HubAuthError,
    HubBlobMissing,
    HubChainRefused,
    HubConflict,
    HubError,
    HubFailure,
    HubUnavailable,
    TenantMismatch,
)

API = "/v1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def error_body(code: str, message: str, **extra) -> dict:
    return {"error": {"code": code, "message": message, **extra}}


def status_of(exc: HubFailure) -> tuple[int, str, dict]:
    """``(status, code, extra)`` of a hub error raised while serving a request."""
    if isinstance(exc, HubConflict):
        return 409, "conflict", {"event_ids": exc.event_ids}
    if isinstance(exc, HubChainRefused):
        return 409, "chain_refused", {}
    if isinstance(exc, HubBlobMissing):
        return 404, "not_found", {}
    if isinstance(exc, TenantMismatch):
        return 403, "tenant_mismatch", {}
    if isinstance(exc, HubAuthError):
        return (401 if exc.reason != "scope" else 403), ("unauthorized" if exc.reason != "scope" else "forbidden"), {}
    if isinstance(exc, HubUnavailable):
        return 503, "unavailable", {}
    return 400, "bad_request", {}


def exception_of(status: int, body: dict | None, what: str) -> HubFailure:
    """The client-side exception for an error response."""
    err = (body or {}).get("error") or {}
    code, message = err.get("code", ""), err.get("message") or f"HTTP {status}"
    text = f"the hub gateway refused to {what}: {message}"
    if status == 409 and code == "chain_refused":
        return HubChainRefused(text)
    if status == 409:
        return HubConflict(text, err.get("event_ids") or [])
    if status == 404 and code == "not_found":
        return HubBlobMissing(text)
    if code == "tenant_mismatch":
        return TenantMismatch(text)
    if status in (401, 403):
        return HubAuthError(text + "; ask the hub's operator for a token (`ledger hub token create`) and "
                            "set LEDGER_HUB_TOKEN (or hub_token in ledger.toml)", code)
    if status == 429 or status >= 500:
        return HubUnavailable(text + "; events stay in the local outbox and are sent on the next try")
    return HubError(text)
