"""The hub client protocol: what a laptop (syncer), the ingestor and hub replay may ask
of the team hub, the shapes exchanged, and the limits a client must respect.

``HubClient`` is implemented by ``hub.hub.Hub`` (direct FoundationDB access, through the
official bindings) and, for laptops, by the gateway's HTTP client. Code written against
this module never imports ``fdb``: importing it is cheap and needs no client library.

Units: sizes are bytes; times are nanoseconds since the Unix epoch (UTC); a hub
*versionstamp* is the 10-byte FoundationDB commit versionstamp of the transaction that
wrote an event (8-byte commit version + 2-byte batch order, big-endian); a hub
*position* is 12 bytes: the versionstamp + the 2-byte index of the event in its
transaction. Positions are unique and ordered like the hub's global commit order.

Errors (``hub.errors``): ``HubUnavailable`` (cannot reach the hub now: retry later),
``HubError`` (refused, or data this version cannot read), ``HubBlobMissing``,
``HubConflict`` (an id with other content), ``TenantMismatch`` (an event of another
tenant was given).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Iterator, Protocol, Sequence, runtime_checkable

from schemas import SwarmEvent, event_from_bytes

# FoundationDB limits (apple.github.io/foundationdb/known-limitations.html).
#: Largest key (bytes).
KEY_SIZE_LIMIT = 10_000
#: Largest value (bytes).
VALUE_SIZE_LIMIT = 100_000
#: Largest transaction (bytes of keys, values and conflict ranges).
TRANSACTION_SIZE_LIMIT = 10_000_000
#: Chunk size of event bodies and blob contents (the value size limit).
CHUNK_BYTES = VALUE_SIZE_LIMIT
#: Largest event (serialized) the hub accepts: it must fit one transaction with its keys
#: and indexes, with margin under the 10,000,000-byte transaction limit.
MAX_HUB_EVENT_BYTES = 9_000_000
#: Bytes of keys and index entries per event, beyond the body and its paths (estimate,
#: generous: directory prefix + tuple framing + event id + time + versionstamps).
EVENT_OVERHEAD_BYTES = 400


def position_of(versionstamp: bytes, user_version: int) -> bytes:
    """12-byte hub position from a 10-byte commit versionstamp and a user version."""
    return bytes(versionstamp) + struct.pack(">H", user_version)


def commit_version(position: bytes) -> int:
    """The FoundationDB commit version inside a 10- or 12-byte versionstamp."""
    return struct.unpack(">Q", bytes(position[:8]))[0]


@dataclass(frozen=True)
class HubRecord:
    """One event read from a project's hub log.

    ``versionstamp``: the 10-byte commit versionstamp of the transaction that wrote it
    (several events of one batch share it); ``user_version``: the event's index in that
    transaction; ``position``: both, 12 bytes, unique and in hub order. ``body`` is the
    serialized protobuf; ``event`` decodes it (``SwarmEvent``).
    """

    versionstamp: bytes
    user_version: int
    body: bytes = field(repr=False)

    @property
    def position(self) -> bytes:
        return position_of(self.versionstamp, self.user_version)

    @cached_property
    def event(self) -> SwarmEvent:
        """The decoded event; sealed texts (``ledger.erasure``) are opened with the keys
        of the ledgers open in this process (``[erased]``/``[sealed]`` otherwise)."""
        event = event_from_bytes(self.body)
        if b"sealed:v1:" in self.body:
            from ledger.erasure import unseal_stored

            event = unseal_stored(event)
        return event


@dataclass(frozen=True)
class WriteOutcome:
    """Result of writing one event: its 12-byte hub position and whether this call wrote it
    (False: it was already on the hub, e.g. after commit_unknown_result)."""

    event_id: str
    position: bytes
    inserted: bool


@dataclass(frozen=True)
class BlobHeader:
    """A complete blob on the hub: raw size, stored (encoded) size, chunk count, encoding."""

    size: int
    stored_size: int
    chunks: int
    encoding: str


@dataclass(frozen=True)
class HubLink:
    """One link as the hub keeps it (digest and chain: 32 raw bytes each)."""

    seq: int
    event_id: str
    project_id: str
    digest: bytes
    chain: bytes
    removed: bool = False
    on_hub: bool = False

    def to_wire(self) -> list:
        return [self.seq, self.event_id, self.project_id, self.digest.hex(), self.chain.hex(), self.removed,
                self.on_hub]

    @classmethod
    def from_wire(cls, w: Sequence) -> "HubLink":
        return cls(int(w[0]), str(w[1]), str(w[2]), bytes.fromhex(w[3]), bytes.fromhex(w[4]), bool(w[5]),
                   bool(w[6]) if len(w) > 6 else False)


def event_paths(event: SwarmEvent) -> list[str]:
    """Paths a file state change is indexed under: its path, and its previous path on rename."""
    sc = event.state_change
    if sc is None or sc.target_type.value != "file":
        return []
    paths = [sc.target_resource]
    if sc.previous_resource:
        paths.append(sc.previous_resource)
    return paths


def event_hub_bytes(body_len: int, paths: Sequence[str]) -> int:
    """Estimated bytes an event adds to a transaction (body, chunk keys, index keys)."""
    chunks = max(1, -(-body_len // CHUNK_BYTES))
    return body_len + chunks * 80 + EVENT_OVERHEAD_BYTES + sum(2 * len(p.encode()) + 80 for p in paths)


class EventLike(Protocol):
    """An event to write (``ledger.StoredEvent`` has this shape): ``body`` is the
    serialized ``SwarmEvent`` and ``event`` its decoded form; ``time_ns`` its event time."""

    event_id: str
    tenant_id: str
    project_id: str
    time_ns: int
    body: bytes

    @property
    def event(self) -> SwarmEvent: ...


@runtime_checkable
class HubClient(Protocol):
    """One tenant's view of the team hub. The tenant is fixed when the client is made
    (``tenant_id``); no method takes a tenant, and another tenant's data behaves as absent."""

    #: The tenant every call acts for.
    tenant_id: str

    def projects(self) -> list[str]:
        """Project ids of the tenant on the hub, sorted (``[]`` when none)."""
        ...

    def write_events(self, events: Sequence[EventLike], origin: str = "", last_seq: int = 0) -> list[WriteOutcome]:
        """Write ``events`` (any projects of the tenant) atomically and exactly once: an
        event whose id is already on the hub is not written again and keeps its position.
        ``origin`` (the local ledger id) and ``last_seq`` (its last local sequence number in
        the batch) record the laptop's progress. Returns one ``WriteOutcome`` per event, in
        order. Raises ``TenantMismatch`` (nothing written), ``HubConflict`` (ids on the hub
        with different content, listed in ``event_ids``; nothing written),
        ``HubUnavailable``, ``HubError``."""
        ...

    def missing_blobs(self, project_id: str, digests: Iterable[str]) -> list[str]:
        """The SHA-256 hex digests of ``digests`` (deduplicated, in order) with no complete
        blob in the project."""
        ...

    def upload_blobs(self, project_id: str, blobs: Iterable[tuple[str, bytes]],
                     txn_bytes: int = 500_000) -> tuple[int, int]:
        """Store content blobs ``(sha256_hex, data)``, each once per hash, each visible only
        when complete; ``txn_bytes`` bounds the bytes per write. Returns ``(blobs_written,
        stored_bytes_written)``. Raises ``HubError`` when data does not hash to its digest."""
        ...

    def read_log(self, project_id: str, after_versionstamp: bytes | None = None, limit: int = 1000, *,
                 until: bytes | None = None) -> list[HubRecord]:
        """Events of the project in hub order after ``after_versionstamp`` (10 bytes: after
        that whole commit; 12: after that position; None: from the start), up to ``until``
        (10/12 bytes, inclusive). A page holds about ``limit`` events (finishing the last
        commit), fewer when it reaches about 1 MB of bodies or 2 s: resume after
        ``records[-1].position``. ``[]`` when the project does not exist."""
        ...

    def iter_log(self, project_id: str, *, after: bytes | None = None, until: bytes | None = None,
                 batch: int = 1000) -> Iterator[HubRecord]:
        """Every event of the project in hub order (pages of ``batch``), bounded by the
        hub's version when the scan starts and by ``until`` (inclusive)."""
        ...

    def read_blob(self, project_id: str, digest: str) -> bytes:
        """The content with SHA-256 ``digest``, verified. Raises ``HubBlobMissing``."""
        ...

    def laptops(self, project_id: str) -> dict[str, tuple[int, int, bytes]]:
        """``{ledger_id: (last_seq, wall_ns, 10-byte versionstamp)}``: each laptop's last sync."""
        ...

    def put_seal_keys(self, keys: Sequence[tuple[str, str, str, bytes]]) -> list[str]:
        """Store erasure keys ``(key_id, session_id, agent_id, 32-byte key)``; returns the
        ids refused because they were erased (``hub.seal_keys``)."""
        ...

    def seal_keys(self, key_ids: Iterable[str]) -> dict[str, bytes | None]:
        """``{key_id: key}`` held, ``{key_id: None}`` erased; unknown ids absent."""
        ...

    def erase_seal_keys(self, *, session_id: str | None = None, agent_id: str | None = None,
                        key_ids: Sequence[str] = ()) -> int:
        """Destroy the keys of a session or agent (and ``key_ids``); returns keys cleared."""
        ...


def iter_log(client, project_id: str, *, after: bytes | None = None, until: bytes | None = None,
             batch: int = 1000) -> Iterator[HubRecord]:
    """``HubClient.iter_log`` for any client with ``read_log`` and ``read_version``: every
    event of the project in hub order, over as many pages as needed, bounded by the read
    version taken at the start (events committed while it runs are not half-seen) and by
    ``until`` (10/12-byte position, inclusive)."""
    bound = client.read_version()
    while True:
        records = client.read_log(project_id, after, batch, until=until)
        if not records:
            return
        for r in records:
            if commit_version(r.versionstamp) > bound:
                return
            yield r
        after = records[-1].position
