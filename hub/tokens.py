"""Gateway tokens: per-tenant bearer tokens with a scope, stored hashed in FoundationDB.

A token reads ``clh_<id>_<secret>``: ``id`` is 12 hex digits (6 random bytes, for lookup
and for logs), ``secret`` 43 characters (32 random bytes, base64url). The hub keeps only
SHA-256(secret), in the directory ``("context-ledger-admin", "tokens")`` under
``(id,)`` -> ``(sha256, tenant, scope, created_ns, expires_ns, revoked_ns, label)``
(``expires_ns``/``revoked_ns`` 0: never / not revoked). Gateways are stateless: every
request looks its token up, so a revocation takes effect at once on every gateway.

Scopes: ``write`` (a laptop syncs: write events, upload and check blobs), ``read``
(replay, log, ingest: read events, blobs, projects, progress), ``admin`` (both).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from dataclasses import asdict, dataclass

import fdb

from hub.connection import converted, transactional
from hub.errors import HubAuthError, HubError
from hub.layout import check_name

ADMIN_ROOT = "context-ledger-admin"
SCOPES = ("write", "read", "admin")
#: What each scope may do (``hub.gateway`` routes name one of these).
PERMISSIONS = {"write": {"write"}, "read": {"read"}, "admin": {"read", "write"}}
_TOKEN = re.compile(r"^clh_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_ID = re.compile(r"^(?:clh_)?([0-9a-f]{12})$")


@dataclass(frozen=True)
class TokenInfo:
    """A token as stored (never its secret): ``id``, ``tenant``, ``scope``, times in ns
    since the epoch (``expires_ns``/``revoked_ns`` None: never / not revoked), ``label``."""

    id: str
    tenant: str
    scope: str
    created_ns: int
    expires_ns: int | None
    revoked_ns: int | None
    label: str

    def to_dict(self) -> dict:
        return asdict(self)

    def allows(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.scope]


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _space(tr, create: bool):
    path = (ADMIN_ROOT, "tokens")
    if create:
        return fdb.directory.create_or_open(tr, path)
    try:
        return fdb.directory.open(tr, path)
    except ValueError:
        return None


def _info(token_id: str, value: bytes) -> TokenInfo:
    _, tenant, scope, created, expires, revoked, label = fdb.tuple.unpack(value)
    return TokenInfo(token_id, tenant, scope, created, expires or None, revoked or None, label)


@converted("create a token")
def create_token(db, tenant: str, scope: str, *, expires_ns: int | None = None, label: str = "") -> tuple[str, TokenInfo]:
    """A new token for ``tenant`` with ``scope``: ``(token_text, info)``. The text is
    returned once and never stored. Raises ``HubError`` for a bad tenant or scope."""
    check_name(tenant, "tenant")
    if scope not in SCOPES:
        raise HubError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    token_id = os.urandom(6).hex()
    secret = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    info = TokenInfo(token_id, tenant, scope, time.time_ns(), expires_ns, None, label)
    _put_tr(db, token_id, _digest(secret), info)
    return f"clh_{token_id}_{secret}", info


@transactional
def _put_tr(tr, token_id, digest, info):
    space = _space(tr, create=True)
    tr[space.pack((token_id,))] = fdb.tuple.pack(
        (digest, info.tenant, info.scope, info.created_ns, info.expires_ns or 0, 0, info.label))


@converted("list tokens")
def list_tokens(db, tenant: str | None = None) -> list[TokenInfo]:
    """Every token (of ``tenant`` when given), oldest first; secrets are never listed."""
    return sorted((i for i in _list_tr(db) if tenant is None or i.tenant == tenant), key=lambda i: i.created_ns)


@transactional
def _list_tr(tr):
    space = _space(tr, create=False)
    if space is None:
        return []
    return [_info(space.unpack(kv.key)[0], bytes(kv.value)) for kv in tr.get_range(*_bounds(space))]


def _bounds(space):
    r = space.range()
    return r.start, r.stop


@converted("revoke a token")
def revoke_token(db, token_or_id: str) -> TokenInfo:
    """Revoke a token given as its text or its id; effective for the next request on
    every gateway. Raises ``HubError`` when no such token exists."""
    m = _TOKEN.match(token_or_id.strip()) or _ID.match(token_or_id.strip())
    if not m:
        raise HubError("give a token (clh_<id>_<secret>) or its 12-hex-digit id, as `ledger hub token list` shows")
    info = _revoke_tr(db, m.group(1), time.time_ns())
    if info is None:
        raise HubError(f"no token with id {m.group(1)}; see `ledger hub token list`")
    return info


@transactional
def _revoke_tr(tr, token_id, now):
    space = _space(tr, create=False)
    if space is None:
        return None
    value = tr[space.pack((token_id,))]
    if not value.present():
        return None
    fields = list(fdb.tuple.unpack(bytes(value)))
    fields[5] = fields[5] or now
    tr[space.pack((token_id,))] = fdb.tuple.pack(tuple(fields))
    return _info(token_id, fdb.tuple.pack(tuple(fields)))


def token_id_of(text: str | None) -> str | None:
    """The id part of a token text (for logs), or None when it is not shaped like one."""
    m = _TOKEN.match(text or "")
    return m.group(1) if m else None


@converted("check a token")
def authenticate(db, text: str | None, *, now_ns: int | None = None) -> TokenInfo:
    """The ``TokenInfo`` of a valid token text. Raises ``HubAuthError`` (``reason``:
    ``missing``, ``malformed``, ``unknown``, ``wrong secret``, ``revoked``, ``expired``)."""
    if not text:
        raise HubAuthError("no token: send `Authorization: Bearer <token>`", "missing")
    m = _TOKEN.match(text)
    if not m:
        raise HubAuthError("the token is malformed", "malformed")
    token_id, secret = m.groups()
    value = _get_tr(db, token_id)
    if value is None:
        raise HubAuthError("the token is not valid", "unknown")
    info = _info(token_id, value)
    if not hmac.compare_digest(fdb.tuple.unpack(value)[0], _digest(secret)):
        raise HubAuthError("the token is not valid", "wrong secret")
    now_ns = now_ns or time.time_ns()
    if info.revoked_ns:
        raise HubAuthError("the token was revoked", "revoked")
    if info.expires_ns and info.expires_ns <= now_ns:
        raise HubAuthError("the token has expired", "expired")
    return info


@transactional
def _get_tr(tr, token_id):
    space = _space(tr, create=False)
    if space is None:
        return None
    value = tr[space.pack((token_id,))]
    return bytes(value) if value.present() else None
