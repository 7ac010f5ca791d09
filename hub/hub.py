"""``Hub``: one tenant's hub, directly on FoundationDB (the official bindings).

Implements ``hub.protocol.HubClient`` (what the syncer, the ingestor and hub replay use)
plus index reads (positions, time, path). Layout: ``hub.layout``; log and indexes:
``hub.log``; blobs: ``hub.blobs``; opening the database: ``hub.connection``.

Tenant isolation: a ``Hub`` is bound to one tenant at construction; no method takes a
tenant argument, every directory path is built from ``Hub.tenant_id``, and writes of an
event of another tenant raise ``TenantMismatch``.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator, Sequence

from hub import blobs as blob_store, chains, log, seal_keys
from hub.connection import converted, transactional
from hub.layout import TenantLayout
from hub.protocol import BlobHeader, HubRecord, WriteOutcome, iter_log


class Hub:
    """The hub of one tenant: ``Hub(db, tenant_id)`` where ``db`` is ``fdb.open(...)``
    (see ``hub.connection.open_database``).

    Thread-safe for reads; one writer (the syncer) per local ledger. Errors: FoundationDB
    errors become ``HubUnavailable`` (retry later) or ``HubError``. Method contracts:
    ``hub.protocol.HubClient``.
    """

    def __init__(self, db, tenant_id: str, *, blob_level: int = 6) -> None:
        self.layout = TenantLayout(db, tenant_id)
        self.db = db
        self.tenant_id = self.layout.tenant_id
        #: zlib level of uploaded blobs (0: stored raw).
        self.blob_level = blob_level
        from ledger.erasure import register_hub

        register_hub(self)  # readers in this process open sealed texts with the hub's keys

    @converted("list projects")
    def projects(self) -> list[str]:
        """Project ids of this tenant on the hub, sorted."""
        return sorted(_projects_tr(self.db, self.layout))

    # -- events ------------------------------------------------------------------------
    @converted("write events")
    def write_events(self, events: Sequence, origin: str = "", last_seq: int = 0) -> list[WriteOutcome]:
        """See ``hub.log.write_events``."""
        return log.write_events(self.layout, events, origin, last_seq)

    @converted("read the log")
    def read_log(self, project_id: str, after_versionstamp: bytes | None = None,
                 limit: int = 1000, *, until: bytes | None = None) -> list[HubRecord]:
        """See ``hub.protocol.HubClient.read_log``."""
        return log.read_log(self.layout, project_id, after_versionstamp, limit, until)

    def iter_log(self, project_id: str, *, after: bytes | None = None, until: bytes | None = None,
                 batch: int = 1000) -> Iterator[HubRecord]:
        """See ``hub.protocol.iter_log``."""
        return iter_log(self, project_id, after=after, until=until, batch=batch)

    @converted("read version")
    def read_version(self) -> int:
        """The cluster's current read version (commit versions <= it are visible)."""
        return log.read_version(self.layout)

    @converted("look up event ids")
    def positions(self, project_id: str, event_ids: Iterable[str]) -> dict[str, bytes]:
        """``{event_id: 12-byte position}`` for the ids present on the hub."""
        return log.positions(self.db, self.layout, project_id, list(event_ids))

    @converted("read an event")
    def get(self, project_id: str, position: bytes) -> HubRecord | None:
        """The event at a 12-byte position, or None."""
        return log.get(self.layout, project_id, position)

    @converted("read the path index")
    def path_history(self, project_id: str, path: str, after: bytes | None = None,
                     limit: int | None = None) -> list[bytes]:
        """See ``hub.log.path_history``."""
        return log.path_history(self.layout, project_id, path, after, limit)

    @converted("read the time index")
    def time_range(self, project_id: str, since_ns: int | None = None, until_ns: int | None = None,
                   limit: int | None = 10_000, reverse: bool = False) -> list[tuple[int, bytes]]:
        """See ``hub.log.time_range``."""
        return log.time_range(self.layout, project_id, since_ns, until_ns, limit, reverse)

    @converted("read laptop progress")
    def laptops(self, project_id: str) -> dict[str, tuple[int, int, bytes]]:
        """``{ledger_id: (last_seq, wall_ns, 10-byte versionstamp)}``: each laptop's last sync."""
        return log.laptops(self.layout, project_id)

    # -- hash chains (hub.chains) ------------------------------------------------------
    @converted("register a ledger key")
    def register_chain_key(self, ledger_id: str, public_key: bytes) -> bool:
        """See ``hub.chains.register_key``."""
        return chains.register_key(self.db, self.layout, ledger_id, bytes(public_key))

    @converted("append a ledger chain")
    def append_chain(self, ledger_id: str, links: Sequence, checkpoints: Sequence[dict] = ()) -> tuple[int, bytes]:
        """See ``hub.chains.append`` (links in batches of ``chains.LINKS_PER_WRITE``)."""
        result = None
        links = list(links)
        for start in range(0, max(1, len(links)), chains.LINKS_PER_WRITE):
            part = links[start:start + chains.LINKS_PER_WRITE]
            last = start + chains.LINKS_PER_WRITE >= len(links)
            result = chains.append(self.db, self.layout, ledger_id, part, list(checkpoints) if last else [])
        return result

    @converted("read a ledger chain")
    def chain_state(self, ledger_id: str, after_seq: int = 0, limit: int = 10_000) -> dict:
        """See ``hub.chains.state``."""
        return chains.state(self.db, self.layout, ledger_id, after_seq, limit)

    @converted("list ledger chains")
    def chain_ledgers(self) -> list[str]:
        """See ``hub.chains.ledgers``."""
        return chains.ledgers(self.db, self.layout)

    # -- erasure keys (hub.seal_keys) ---------------------------------------------------
    @converted("store erasure keys")
    def put_seal_keys(self, keys: Sequence[tuple[str, str, str, bytes]]) -> list[str]:
        """See ``hub.seal_keys.put`` (in batches of ``seal_keys.KEYS_PER_WRITE``)."""
        keys = list(keys)
        refused: list[str] = []
        for start in range(0, len(keys), seal_keys.KEYS_PER_WRITE):
            refused += seal_keys.put(self.db, self.layout, keys[start:start + seal_keys.KEYS_PER_WRITE])
        return refused

    @converted("read erasure keys")
    def seal_keys(self, key_ids: Iterable[str]) -> dict[str, bytes | None]:
        """See ``hub.seal_keys.get``."""
        return seal_keys.get(self.db, self.layout, list(key_ids))

    @converted("erase keys")
    def erase_seal_keys(self, *, session_id: str | None = None, agent_id: str | None = None,
                        key_ids: Sequence[str] = ()) -> int:
        """See ``hub.seal_keys.erase``."""
        return seal_keys.erase(self.db, self.layout, session_id=session_id, agent_id=agent_id,
                               key_ids=list(key_ids))

    # -- blobs -------------------------------------------------------------------------
    @converted("check blobs")
    def missing_blobs(self, project_id: str, digests: Iterable[str]) -> list[str]:
        """The SHA-256 hex digests (of ``digests``, in order) with no complete blob on the hub."""
        return blob_store.missing_blobs(self.layout, project_id, digests)

    @converted("read a blob header")
    def blob_header(self, project_id: str, digest: str) -> BlobHeader | None:
        """The header of a complete blob, or None."""
        found = blob_store.headers(self.db, self.layout, project_id, [digest]).get(digest)
        return found[0] if found else None

    @converted("upload blobs")
    def upload_blobs(self, project_id: str, blobs: Iterable[tuple[str, bytes]],
                     txn_bytes: int = blob_store.TXN_BYTES) -> tuple[int, int]:
        """See ``hub.blobs.upload_blobs`` (compressed at ``blob_level``)."""
        return blob_store.upload_blobs(self.layout, project_id, blobs, txn_bytes, self.blob_level)

    @converted("read a blob")
    def read_blob(self, project_id: str, digest: str) -> bytes:
        """See ``hub.blobs.read_blob``."""
        return blob_store.read_blob(self.layout, project_id, digest)

    def blob_reader(self, project_id: str) -> Callable[[str], bytes]:
        """``read_blob`` bound to a project: ``digest -> bytes`` (for replay)."""
        return lambda digest: self.read_blob(project_id, digest)


@transactional
def _projects_tr(tr, layout: TenantLayout) -> list[str]:
    return layout.projects(tr)
