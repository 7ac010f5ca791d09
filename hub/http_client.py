"""``HttpHub``: the ``HubClient`` of a laptop that reaches the hub through the gateway
(``hub_url`` + ``hub_token``): no cluster file, no FoundationDB client library.

The tenant is the token's (``GET /v1/whoami``); a client made for another tenant is
refused at once. Writes are the gateway's exactly-once operations: a request retried
after a lost response finds the events by their ids and returns the same positions.
Blobs are compressed here (zlib) and sent in batches, or, when large, as an upload
session of chunked parts that the gateway verifies before marking the blob complete.

Errors: connection failures, 429 (after waiting ``Retry-After`` a few times) and 5xx
raise ``HubUnavailable``; the rest follow ``hub.wire``.
"""

from __future__ import annotations

import time
from typing import Iterable, Iterator, Sequence

import httpx

from hub.content import EncodedBlob
from hub.errors import HubError, HubUnavailable, TenantMismatch
from hub.protocol import CHUNK_BYTES, HubRecord, WriteOutcome, iter_log
from hub.wire import API, b64, exception_of, unb64
from ledger import sha256_hex

#: Seconds per request (connect, read, write); bytes per blob batch and per upload part.
DEFAULT_TIMEOUT_S = 60.0
BLOB_BATCH_BYTES = 2 * 1024 * 1024
PART_BYTES = 40 * CHUNK_BYTES
#: How often a 429 is waited out before giving up with ``HubUnavailable``.
RATE_LIMIT_RETRIES = 5


class HttpHub:
    """One tenant's hub through the gateway at ``url`` with ``token``.

    ``tenant_id``: when given, must be the token's tenant (else ``TenantMismatch``);
    ``blob_level``: zlib level of uploaded blobs (0: raw). Method contracts:
    ``hub.protocol.HubClient``."""

    def __init__(self, url: str, token: str, tenant_id: str | None = None, *, blob_level: int = 6,
                 timeout_s: float = DEFAULT_TIMEOUT_S, transport: httpx.BaseTransport | None = None) -> None:
        if not token:
            raise HubError("no hub token: set LEDGER_HUB_TOKEN (or hub_token in ledger.toml) to the token the "
                           "hub's operator created with `ledger hub token create`")
        self.url = url.rstrip("/")
        self.blob_level = blob_level
        self._http = httpx.Client(base_url=self.url + API, headers={"Authorization": f"Bearer {token}"},
                                  timeout=timeout_s, transport=transport)
        me = self._call("GET", "/whoami", what="identify the token")
        self.scope, self.token_id = me["scope"], me["token_id"]
        self.tenant_id = me["tenant"]
        if tenant_id is not None and tenant_id != self.tenant_id:
            raise TenantMismatch(
                f"the hub token is for tenant {self.tenant_id!r}, not {tenant_id!r}: run with "
                f"--tenant {self.tenant_id} (or LEDGER_TENANT), or use that tenant's token")
        from ledger.erasure import register_hub

        register_hub(self)  # readers in this process open sealed texts with the hub's keys

    def close(self) -> None:
        self._http.close()

    # -- transport ---------------------------------------------------------------------
    def _call(self, method: str, path: str, *, what: str, raw: bool = False, **kwargs):
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise HubUnavailable(f"cannot reach the hub gateway at {self.url} to {what}: {exc}; events stay "
                                     "in the local outbox and are sent on the next try") from exc
            if response.status_code == 429 and attempt < RATE_LIMIT_RETRIES:
                time.sleep(min(float(response.headers.get("retry-after", "1") or 1), 10.0))
                continue
            break
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            raise exception_of(response.status_code, body, what)
        return response.content if raw else response.json()

    # -- HubClient ---------------------------------------------------------------------
    def projects(self) -> list[str]:
        return self._call("GET", "/projects", what="list projects")["projects"]

    def read_version(self) -> int:
        return self._call("GET", "/version", what="read the hub version")["read_version"]

    def write_events(self, events: Sequence, origin: str = "", last_seq: int = 0) -> list[WriteOutcome]:
        for e in events:
            if e.tenant_id != self.tenant_id:
                raise TenantMismatch(f"event {e.event_id} belongs to tenant {e.tenant_id!r}; this hub connection "
                                     f"is for tenant {self.tenant_id!r} only")
        if not events:
            return []
        data = self._call("POST", "/events", what="write events",
                          json={"origin": origin, "last_seq": last_seq, "events": [b64(bytes(e.body)) for e in events]})
        return [WriteOutcome(o["event_id"], bytes.fromhex(o["position"]), o["inserted"]) for o in data["outcomes"]]

    # -- hash chains (hub.chains) -------------------------------------------------------
    def register_chain_key(self, ledger_id: str, public_key: bytes) -> bool:
        return self._call("POST", f"/chains/{ledger_id}/key", what="register the ledger's key",
                          json={"public_key": b64(bytes(public_key))})["new"]

    def append_chain(self, ledger_id: str, links: Sequence, checkpoints: Sequence[dict] = ()) -> tuple[int, bytes]:
        links = list(links)
        result = None
        for start in range(0, max(1, len(links)), 2000):
            last = start + 2000 >= len(links)
            data = self._call("POST", f"/chains/{ledger_id}/links", what="send the ledger's chain", json={
                "links": [lk.to_wire() for lk in links[start:start + 2000]],
                "checkpoints": list(checkpoints) if last else []})
            result = (data["head_seq"], bytes.fromhex(data["head"]))
        return result

    def chain_state(self, ledger_id: str, after_seq: int = 0, limit: int = 10_000) -> dict:
        from hub.protocol import HubLink

        data = self._call("GET", f"/chains/{ledger_id}", what="read the ledger's chain",
                          params={"after": after_seq, "limit": limit})
        return {"public_key": unb64(data["public_key"]) if data["public_key"] else None,
                "head": (data["head"][0], bytes.fromhex(data["head"][1])) if data["head"] else None,
                "links": [HubLink.from_wire(w) for w in data["links"]], "checkpoints": data["checkpoints"]}

    def chain_ledgers(self) -> list[str]:
        return self._call("GET", "/chains", what="list ledger chains")["ledgers"]

    # -- erasure keys (hub.seal_keys) ---------------------------------------------------
    def put_seal_keys(self, keys: Sequence[tuple[str, str, str, bytes]]) -> list[str]:
        keys = list(keys)
        refused: list[str] = []
        for start in range(0, len(keys), 1000):
            refused += self._call("POST", "/seal-keys", what="upload erasure keys", json={"keys": [
                {"key_id": k, "session_id": s, "agent_id": a, "key": b64(bytes(v))}
                for k, s, a, v in keys[start:start + 1000]]})["refused"]
        return refused

    def seal_keys(self, key_ids: Iterable[str]) -> dict[str, bytes | None]:
        data = self._call("POST", "/seal-keys/read", what="read erasure keys", json={"key_ids": list(key_ids)})
        return {k: (unb64(v) if v is not None else None) for k, v in data["keys"].items()}

    def erase_seal_keys(self, *, session_id: str | None = None, agent_id: str | None = None,
                        key_ids: Sequence[str] = ()) -> int:
        return self._call("POST", "/seal-keys/erase", what="erase keys on the hub", json={
            "session_id": session_id, "agent_id": agent_id, "key_ids": list(key_ids)})["cleared"]

    def missing_blobs(self, project_id: str, digests: Iterable[str]) -> list[str]:
        digests = list(dict.fromkeys(digests))
        if not digests:
            return []
        return self._call("POST", f"/projects/{project_id}/blobs/missing", what="check blobs",
                          json={"digests": digests})["missing"]

    def upload_blobs(self, project_id: str, blobs: Iterable[tuple[str, bytes]],
                     txn_bytes: int = 800_000) -> tuple[int, int]:
        """See ``hub.protocol.HubClient.upload_blobs``; ``txn_bytes`` is the gateway's
        business (it keeps every FoundationDB transaction under 1 MB) and is ignored here."""
        written = stored = 0
        batch: list[EncodedBlob] = []
        size = 0
        for digest, data in blobs:
            blob = EncodedBlob.of(digest, data, self.blob_level)
            if blob.header.stored_size > BLOB_BATCH_BYTES // 2:
                if self._upload_session(project_id, blob):
                    written, stored = written + 1, stored + blob.header.stored_size
                continue
            if batch and size + blob.header.stored_size > BLOB_BATCH_BYTES:
                n, b = self._put_batch(project_id, batch)
                written, stored, batch, size = written + n, stored + b, [], 0
            batch.append(blob)
            size += blob.header.stored_size
        if batch:
            n, b = self._put_batch(project_id, batch)
            written, stored = written + n, stored + b
        return written, stored

    def _put_batch(self, project_id: str, batch: list[EncodedBlob]) -> tuple[int, int]:
        data = self._call("POST", f"/projects/{project_id}/blobs", what="upload blobs", json={"blobs": [
            {"digest": b.digest, "size": b.header.size, "stored_size": b.header.stored_size,
             "chunks": b.header.chunks, "encoding": b.header.encoding, "data": b64(b.stored)} for b in batch]})
        return data["written"], data["stored_bytes"]

    def _upload_session(self, project_id: str, blob: EncodedBlob) -> bool:
        base = f"/projects/{project_id}/blobs/{blob.digest}/uploads"
        upload = self._call("POST", base, what="begin a blob upload")["upload_id"]
        for start in range(0, len(blob.stored), PART_BYTES):
            self._call("PUT", f"{base}/{upload}/chunks/{start // CHUNK_BYTES}", what="upload a blob part",
                       content=blob.stored[start : start + PART_BYTES],
                       headers={"Content-Type": "application/octet-stream"})
        h = blob.header
        return self._call("POST", f"{base}/{upload}/finish", what="finish a blob upload", json={
            "size": h.size, "stored_size": h.stored_size, "chunks": h.chunks, "encoding": h.encoding})["written"]

    def read_log(self, project_id: str, after_versionstamp: bytes | None = None, limit: int = 1000, *,
                 until: bytes | None = None) -> list[HubRecord]:
        params = {"limit": str(limit)}
        if after_versionstamp is not None:
            params["after"] = bytes(after_versionstamp).hex()
        if until is not None:
            params["until"] = bytes(until).hex()
        data = self._call("GET", f"/projects/{project_id}/log", what="read the log", params=params)
        return [_record(r) for r in data["records"]]

    def iter_log(self, project_id: str, *, after: bytes | None = None, until: bytes | None = None,
                 batch: int = 1000) -> Iterator[HubRecord]:
        return iter_log(self, project_id, after=after, until=until, batch=batch)

    def read_blob(self, project_id: str, digest: str) -> bytes:
        data = self._call("GET", f"/projects/{project_id}/blobs/{digest}", what=f"read blob {digest}", raw=True)
        if sha256_hex(data) != digest:
            raise HubError(f"blob {digest} from the hub gateway is corrupt: its bytes hash differently")
        return data

    def laptops(self, project_id: str) -> dict[str, tuple[int, int, bytes]]:
        data = self._call("GET", f"/projects/{project_id}/laptops", what="read laptop progress")["laptops"]
        return {k: (s, w, bytes.fromhex(v)) for k, (s, w, v) in data.items()}


def _record(data: dict) -> HubRecord:
    position = bytes.fromhex(data["position"])
    return HubRecord(position[:10], int.from_bytes(position[10:], "big"), unb64(data["body"]))
