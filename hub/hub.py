"""The team hub: the FoundationDB layout of Context Ledger, through the official bindings.

Every tenant/project lives in its own directory (``fdb.directory``), path
``("context-ledger", tenant_id, project_id)``. Inside it (``D`` below) the keys are
tuple-encoded (``fdb.tuple``):

==========================================  =====================================================
key                                         value
==========================================  =====================================================
``D["log"][vs][chunk#]``                    the event's serialized protobuf, split in chunks of at
                                            most 100,000 bytes (FoundationDB's value size limit)
``D["ids"][event_id]``                      tuple ``(vs,)``: the idempotency key, set in the same
                                            transaction as the log entry
``D["time"][time_ns][vs]``                  empty: index by event time (the agent's clock)
``D["path"][path][vs]``                     empty: history of one file path (a rename is indexed
                                            under both its new and its previous path)
``D["blob"][sha256]``                       tuple ``(size, stored_size, chunks, encoding)``: the
                                            header, written last, so a header means "complete"
``D["blob"][sha256][chunk#]``               content bytes (zlib when smaller), chunks <= 100,000
``D["laptops"][ledger_id]``                 tuple ``(last_seq, wall_ns, vs)``: how far each local
                                            ledger (laptop) has synced into this project
==========================================  =====================================================

``vs`` is a tuple-layer ``Versionstamp``: the 10-byte commit versionstamp FoundationDB
assigns at commit (8-byte commit version + 2-byte batch order, big-endian) followed by a
2-byte *user version* = the event's index inside its transaction. Its 12 bytes are the
event's **hub position**: unique, and ordered like the hub's global commit order. The
local ledger stores this 12-byte position as the event's ``hub_versionstamp``.

Limits respected (FoundationDB "Known limitations"): keys <= 10,000 bytes, values <=
100,000 bytes, transactions <= 10,000,000 bytes, 5 seconds per transaction. Batches are
kept well under 1 MB; one event may take at most ``MAX_HUB_EVENT_BYTES``.

Tenant isolation: a ``Hub`` is bound to one tenant at construction; no method takes a
tenant argument, every directory path is built from ``Hub.tenant_id``, and writes of an
event of another tenant raise ``TenantMismatch``.
"""

from __future__ import annotations

import os
import re
import struct
import time
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import fdb

from ledger import sha256_hex
from schemas import SwarmEvent, event_from_bytes
from syncer.errors import (
    HubBlobMissing,
    HubError,
    HubNotConfigured,
    HubUnavailable,
    TenantMismatch,
)

#: FoundationDB API version this code is written against (7.3 semantics; the bindings
#: shipped as ``foundationdb`` 7.3+ support it).
API_VERSION = 730
#: Root of every Context Ledger directory.
ROOT = "context-ledger"
#: FoundationDB limits (apple.github.io/foundationdb/known-limitations.html).
KEY_SIZE_LIMIT = 10_000
VALUE_SIZE_LIMIT = 100_000
TRANSACTION_SIZE_LIMIT = 10_000_000
#: Chunk size of event bodies and blob contents (the value size limit).
CHUNK_BYTES = VALUE_SIZE_LIMIT
#: Largest event (serialized) the hub accepts: it must fit one transaction with its keys
#: and indexes, with margin under the 10,000,000-byte transaction limit.
MAX_HUB_EVENT_BYTES = 9_000_000
#: Bytes of keys and index entries per event, beyond the body and its paths (estimate,
#: generous: directory prefix + tuple framing + event id + time + versionstamps).
EVENT_OVERHEAD_BYTES = 400
#: Default per-transaction timeout (ms) and retry limit: an unreachable cluster surfaces
#: as ``HubUnavailable`` instead of hanging (FDB options ``timeout`` / ``retry_limit``).
DEFAULT_TIMEOUT_MS = 15_000
DEFAULT_RETRY_LIMIT = 50
_VS_CODE = 0x33  # tuple-layer type code of a Versionstamp (followed by its 12 bytes)
_NAME = re.compile(r"^[^\x00-\x1f\x7f/]{1,128}$")
NO_HUB_MESSAGE = "no hub configured: set FDB_CLUSTER_FILE or pass --cluster-file"


# --------------------------------------------------------------------------- opening
def resolve_cluster_file(explicit: str | os.PathLike | None, settings=None) -> Path:
    """The cluster file to use: ``explicit``, else ``settings.cluster_file`` (ledger.toml
    ``fdb_cluster_file`` or FDB_CLUSTER_FILE). Raises ``HubNotConfigured`` when none is set
    and ``HubUnavailable`` when the file does not exist."""
    path = Path(explicit) if explicit else (settings.cluster_file if settings is not None else None)
    if path is None:
        env = os.environ.get("FDB_CLUSTER_FILE")
        path = Path(env) if env else None
    if path is None:
        raise HubNotConfigured(NO_HUB_MESSAGE)
    if not path.is_file():
        raise HubUnavailable(
            f"FoundationDB cluster file {path} does not exist: copy the cluster's fdb.cluster "
            "there, or point FDB_CLUSTER_FILE / --cluster-file at it"
        )
    return path


def select_api_version() -> int:
    """Select ``API_VERSION`` in the bindings unless a version is already selected;
    returns the version in effect. Raises ``HubUnavailable`` if the FoundationDB client
    library (libfdb_c) cannot be loaded (see docs/hub.md for installing it)."""
    if fdb.is_api_version_selected():
        return fdb.get_api_version()
    try:
        fdb.api_version(API_VERSION)
    except Exception as exc:  # the bindings raise a bare Exception when libfdb_c is missing
        raise HubUnavailable(
            f"cannot load the FoundationDB client library: {exc}; install the FoundationDB "
            "client package for your OS (see docs/hub.md, 'Installing the client library')"
        ) from exc
    return API_VERSION


def open_database(cluster_file: str | os.PathLike, *, timeout_ms: int = DEFAULT_TIMEOUT_MS,
                  retry_limit: int = DEFAULT_RETRY_LIMIT):
    """Open the cluster named by ``cluster_file`` (``fdb.open``), with a per-transaction
    timeout (ms) and retry limit so a dead cluster gives ``HubUnavailable``, not a hang.

    The bindings cache one ``Database`` per cluster file in a process, and these are
    database options: the last call's ``timeout_ms``/``retry_limit`` apply to every
    ``Hub`` of that cluster in the process (each product process opens the hub once).
    """
    select_api_version()
    try:
        db = fdb.open(str(cluster_file))
        db.options.set_transaction_timeout(int(timeout_ms))
        db.options.set_transaction_retry_limit(int(retry_limit))
    except fdb.FDBError as exc:
        raise HubUnavailable(f"cannot open FoundationDB cluster {cluster_file}: {exc}") from exc
    return db


def check_name(value: str, what: str) -> str:
    """Validate a tenant or project id (1-128 characters, no '/' or control characters)."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise HubError(f"{what} {value!r} is invalid: 1-128 characters without '/' or control characters")
    return value


# --------------------------------------------------------------------------- records
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
        return event_from_bytes(self.body)


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


class ProjectSpace:
    """The subspaces of one project directory (see the module docstring)."""

    def __init__(self, directory) -> None:
        self.directory = directory
        self.log = directory["log"]
        self.ids = directory["ids"]
        self.time = directory["time"]
        self.path = directory["path"]
        self.blob = directory["blob"]
        self.laptops = directory["laptops"]
        self._log_prefix = self.log.key()

    def log_after(self, after: bytes | None) -> bytes:
        """First log key after ``after`` (a 10-byte commit versionstamp: after that whole
        commit; 12 bytes: after that event; None: the start of the log)."""
        if after is None:
            return self.log.range().start
        after = bytes(after)
        if len(after) == 10:
            after = after + b"\xff\xff"
        if len(after) != 12:
            raise HubError(f"a hub versionstamp has 10 or 12 bytes, not {len(after)}")
        return self._log_prefix + bytes([_VS_CODE]) + after + b"\xff"

    def split_log_key(self, key: bytes) -> bytes:
        """The 12-byte position inside a log key."""
        start = len(self._log_prefix)
        if key[start] != _VS_CODE:
            raise HubError(f"unexpected key in the hub log: {key!r}")
        return bytes(key[start + 1 : start + 13])


def encode_blob(data: bytes) -> tuple[str, bytes]:
    """``(encoding, stored)``: zlib (level 6) when smaller, else raw."""
    if len(data) >= 64:
        packed = zlib.compress(data, 6)
        if len(packed) < len(data):
            return "zlib", packed
    return "raw", data


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


def transactional(fn):
    """``@fdb.transactional``, applied on first call: the bindings refuse to decorate
    before ``fdb.api_version`` is selected, and importing this module must not load
    the client library (``open_database`` selects the version)."""
    wrapped = None

    def call(*args, **kwargs):
        nonlocal wrapped
        if wrapped is None:
            select_api_version()
            wrapped = fdb.transactional(fn)
        return wrapped(*args, **kwargs)

    call.__name__ = fn.__name__
    call.__doc__ = fn.__doc__
    return call


def _converted(what: str):
    """Decorator: turn FDBError into HubUnavailable (retryable / time-outs) or HubError."""

    def wrap(fn):
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except fdb.FDBError as exc:
                raise convert_fdb_error(exc, what) from exc

        inner.__name__ = fn.__name__
        inner.__doc__ = fn.__doc__
        return inner

    return wrap


#: Error codes that mean "cannot reach / overloaded / try later" rather than "refused".
_UNAVAILABLE_CODES = {1004, 1007, 1009, 1020, 1021, 1025, 1026, 1031, 1037, 1038, 1039, 1042,
                      1051, 1078, 1213, 1515, 2008}


def convert_fdb_error(exc: "fdb.FDBError", what: str) -> Exception:
    """The syncer error for a FoundationDB error: ``HubUnavailable`` for transient ones
    (timeouts, conflicts beyond the retry limit, unknown results), else ``HubError``."""
    code = getattr(exc, "code", None)
    desc = getattr(exc, "description", b"") or b""
    desc = desc.decode(errors="replace") if isinstance(desc, bytes) else str(desc)
    if code in _UNAVAILABLE_CODES:
        return HubUnavailable(f"hub {what} failed: {desc} (FoundationDB error {code}); "
                              "events stay in the local outbox and are sent on the next try")
    return HubError(f"hub {what} failed: {desc} (FoundationDB error {code})")


# --------------------------------------------------------------------------- the hub
class Hub:
    """The hub of one tenant: ``Hub(db, tenant_id)`` where ``db`` is ``fdb.open(...)``.

    Thread-safe for reads; one writer (the syncer) per local ledger. Errors: FoundationDB
    errors become ``HubUnavailable`` (retry later) or ``HubError``.
    """

    def __init__(self, db, tenant_id: str) -> None:
        self.db = db
        self.tenant_id = check_name(tenant_id, "tenant")
        self._spaces: dict[str, ProjectSpace] = {}

    # -- directories -------------------------------------------------------------------
    def _path(self, project_id: str) -> tuple[str, str, str]:
        return (ROOT, self.tenant_id, check_name(project_id, "project"))

    def _space(self, tr, project_id: str, created: dict | None = None) -> ProjectSpace | None:
        """The project's subspaces; created (and noted in ``created``) when ``created`` is
        a dict, else None if the directory does not exist. Only directories known to be
        committed are cached."""
        space = self._spaces.get(project_id)
        if space is not None:
            return space
        path = self._path(project_id)
        if created is None:
            if not fdb.directory.exists(tr, path):
                return None
            space = ProjectSpace(fdb.directory.open(tr, path))
            self._spaces[project_id] = space
            return space
        space = created.get(project_id)
        if space is None:
            space = created[project_id] = ProjectSpace(fdb.directory.create_or_open(tr, path))
        return space

    @_converted("list projects")
    def projects(self) -> list[str]:
        """Project ids of this tenant on the hub, sorted."""
        return sorted(self._projects_tr(self.db))

    @transactional
    def _projects_tr(self, tr) -> list[str]:
        path = (ROOT, self.tenant_id)
        if not fdb.directory.exists(tr, path):
            return []
        return list(fdb.directory.list(tr, path))

    # -- writing events ----------------------------------------------------------------
    @_converted("write events")
    def write_events(self, events: Sequence, origin: str = "", last_seq: int = 0) -> list[WriteOutcome]:
        """Write events (objects with ``event_id``, ``time_ns``, ``tenant_id``,
        ``project_id``, ``body`` and ``event``, like ``ledger.StoredEvent``) in ONE
        transaction, skipping those whose idempotency key ``ids/<event_id>`` is already
        present (checked inside the transaction, so a retry after commit_unknown_result
        (1021) never duplicates). Returns one ``WriteOutcome`` per event, in order.

        ``origin`` (the local ledger id) and ``last_seq`` update the per-laptop progress key.
        Raises ``TenantMismatch`` for an event of another tenant (nothing written),
        ``HubUnavailable``/``HubError`` on FoundationDB errors.
        """
        for e in events:
            if e.tenant_id != self.tenant_id:
                raise TenantMismatch(
                    f"event {e.event_id} belongs to tenant {e.tenant_id!r}; this hub connection "
                    f"is for tenant {self.tenant_id!r} only"
                )
        if not events:
            return []
        created: dict = {}
        result = self._write_events_tr(self.db, events, origin, last_seq, created)
        existing, written, vs_future = result
        self._spaces.update(created)  # committed: safe to cache
        versionstamp = bytes(vs_future.wait()) if vs_future is not None else None
        out = []
        for e in events:
            if e.event_id in existing:
                out.append(WriteOutcome(e.event_id, existing[e.event_id], False))
            else:
                out.append(WriteOutcome(e.event_id, position_of(versionstamp, written[e.event_id]), True))
        return out

    @transactional
    def _write_events_tr(self, tr, events, origin, last_seq, created):
        created.clear()
        spaces = {p: self._space(tr, p, created) for p in {e.project_id for e in events}}
        checks = [tr[spaces[e.project_id].ids.pack((e.event_id,))] for e in events]
        existing: dict[str, bytes] = {}
        written: dict[str, int] = {}
        touched: set[str] = set()
        for e, present in zip(events, checks):
            if present.present():
                existing[e.event_id] = fdb.tuple.unpack(bytes(present))[0].to_bytes()
                continue
            sp = spaces[e.project_id]
            uv = len(written)
            vs = fdb.tuple.Versionstamp(user_version=uv)
            body = bytes(e.body)
            for i in range(0, max(1, len(body)), CHUNK_BYTES):
                tr.set_versionstamped_key(sp.log.pack_with_versionstamp((vs, i // CHUNK_BYTES)),
                                          body[i : i + CHUNK_BYTES])
            tr.set_versionstamped_value(sp.ids.pack((e.event_id,)), fdb.tuple.pack_with_versionstamp((vs,)))
            tr.set_versionstamped_key(sp.time.pack_with_versionstamp((e.time_ns, vs)), b"")
            for p in event_paths(e.event):
                tr.set_versionstamped_key(sp.path.pack_with_versionstamp((p, vs)), b"")
            written[e.event_id] = uv
            touched.add(e.project_id)
        vs_future = None
        if written:
            if origin:
                now = time.time_ns()
                for p in touched:
                    tr.set_versionstamped_value(
                        spaces[p].laptops.pack((origin,)),
                        fdb.tuple.pack_with_versionstamp((last_seq, now, fdb.tuple.Versionstamp())),
                    )
            vs_future = tr.get_versionstamp()
        return existing, written, vs_future

    # -- reading events ----------------------------------------------------------------
    @_converted("read the log")
    def read_log(self, project_id: str, after_versionstamp: bytes | None = None,
                 limit: int = 1000, *, until: bytes | None = None) -> list[HubRecord]:
        """Events of ``project_id`` in hub order (versionstamp order) after
        ``after_versionstamp`` (10 bytes: after that whole commit; 12 bytes: after that
        event position; None: from the start), up to about ``limit`` events.

        The events of one commit are never split: the list may run past ``limit`` to
        finish the last commit, so resuming with ``records[-1].versionstamp`` loses nothing.
        ``until`` (10 or 12 bytes, inclusive) stops at that hub position.
        One read transaction (5-second limit): keep ``limit`` in the thousands.
        """
        return self._read_log_tr(self.db, project_id, after_versionstamp, limit, until)

    @transactional
    def _read_log_tr(self, tr, project_id, after, limit, until) -> list[HubRecord]:
        space = self._space(tr, project_id)
        if space is None:
            return []
        begin = space.log_after(after)
        end = space.log.range().stop
        stop_at = None
        if until is not None:
            until = bytes(until)
            stop_at = until + b"\xff\xff" if len(until) == 10 else until
        records: list[HubRecord] = []
        cur_pos: bytes | None = None
        chunks: list[bytes] = []
        for kv in tr.get_range(begin, end):
            pos = space.split_log_key(kv.key)
            if pos != cur_pos:
                if cur_pos is not None:
                    records.append(HubRecord(cur_pos[:10], struct.unpack(">H", cur_pos[10:])[0], b"".join(chunks)))
                    if len(records) >= limit and pos[:10] != cur_pos[:10]:
                        cur_pos = None
                        break
                if stop_at is not None and pos > stop_at:
                    cur_pos = None
                    break
                cur_pos, chunks = pos, []
            chunks.append(bytes(kv.value))
        if cur_pos is not None:
            records.append(HubRecord(cur_pos[:10], struct.unpack(">H", cur_pos[10:])[0], b"".join(chunks)))
        return records

    def iter_log(self, project_id: str, *, after: bytes | None = None, until: bytes | None = None,
                 batch: int = 1000) -> Iterator[HubRecord]:
        """Every event of the project in hub order, over as many read transactions as needed.

        The scan is bounded by the read version taken at its start (so events committed
        while it runs are not half-seen), and by ``until`` (10/12-byte position, inclusive).
        """
        bound = self.read_version()
        while True:
            records = self.read_log(project_id, after, batch, until=until)
            if not records:
                return
            for r in records:
                if commit_version(r.versionstamp) > bound:
                    return
                yield r
            after = records[-1].versionstamp

    @_converted("read version")
    def read_version(self) -> int:
        """The cluster's current read version (commit versions <= it are visible)."""
        tr = self.db.create_transaction()
        return tr.get_read_version().wait()

    @_converted("look up event ids")
    def positions(self, project_id: str, event_ids: Iterable[str]) -> dict[str, bytes]:
        """``{event_id: 12-byte position}`` for the ids present on the hub."""
        return self._positions_tr(self.db, project_id, list(event_ids))

    @transactional
    def _positions_tr(self, tr, project_id, event_ids):
        space = self._space(tr, project_id)
        if space is None:
            return {}
        futures = [(i, tr[space.ids.pack((i,))]) for i in event_ids]
        return {i: fdb.tuple.unpack(bytes(f))[0].to_bytes() for i, f in futures if f.present()}

    @_converted("read an event")
    def get(self, project_id: str, position: bytes) -> HubRecord | None:
        """The event at a 12-byte position, or None."""
        return self._get_tr(self.db, project_id, bytes(position))

    @transactional
    def _get_tr(self, tr, project_id, position):
        space = self._space(tr, project_id)
        if space is None:
            return None
        vs = fdb.tuple.Versionstamp.from_bytes(position)
        chunks = [bytes(kv.value) for kv in tr.get_range(*_range(space.log, (vs,)))]
        if not chunks:
            return None
        return HubRecord(position[:10], vs.user_version, b"".join(chunks))

    @_converted("read the path index")
    def path_history(self, project_id: str, path: str) -> list[bytes]:
        """12-byte positions of the events that changed ``path`` (or renamed from it), in hub order."""
        return self._path_tr(self.db, project_id, path)

    @transactional
    def _path_tr(self, tr, project_id, path):
        space = self._space(tr, project_id)
        if space is None:
            return []
        return [space.path.unpack(kv.key)[1].to_bytes() for kv in tr.get_range(*_range(space.path, (path,)))]

    @_converted("read the time index")
    def time_range(self, project_id: str, since_ns: int | None = None, until_ns: int | None = None,
                   limit: int = 10_000) -> list[tuple[int, bytes]]:
        """``[(time_ns, position)]`` of events with ``since_ns <= time_ns <= until_ns``
        (inclusive, either side optional), in event-time order."""
        return self._time_tr(self.db, project_id, since_ns, until_ns, limit)

    @transactional
    def _time_tr(self, tr, project_id, since_ns, until_ns, limit):
        space = self._space(tr, project_id)
        if space is None:
            return []
        begin = space.time.pack((since_ns,)) if since_ns is not None else space.time.range().start
        end = space.time.pack((until_ns + 1,)) if until_ns is not None else space.time.range().stop
        out = []
        for kv in tr.get_range(begin, end, limit=limit):
            t, vs = space.time.unpack(kv.key)
            out.append((t, vs.to_bytes()))
        return out

    @_converted("read laptop progress")
    def laptops(self, project_id: str) -> dict[str, tuple[int, int, bytes]]:
        """``{ledger_id: (last_seq, wall_ns, 10-byte versionstamp)}``: each laptop's last sync."""
        return self._laptops_tr(self.db, project_id)

    @transactional
    def _laptops_tr(self, tr, project_id):
        space = self._space(tr, project_id)
        if space is None:
            return {}
        out = {}
        for kv in tr.get_range(*_range(space.laptops, ())):
            (origin,) = space.laptops.unpack(kv.key)
            seq, wall, vs = fdb.tuple.unpack(bytes(kv.value))
            out[origin] = (seq, wall, vs.to_bytes()[:10])
        return out

    # -- blobs -------------------------------------------------------------------------
    @_converted("check blobs")
    def missing_blobs(self, project_id: str, digests: Iterable[str]) -> list[str]:
        """The SHA-256 hex digests (of ``digests``, in order) with no complete blob on the hub."""
        digests = list(dict.fromkeys(digests))
        if not digests:
            return []
        found = self._headers_tr(self.db, project_id, digests)
        return [d for d in digests if d not in found]

    @transactional
    def _headers_tr(self, tr, project_id, digests):
        space = self._space(tr, project_id)
        if space is None:
            return {}
        futures = [(d, tr[space.blob.pack((d,))]) for d in digests]
        return {d: _header(f) for d, f in futures if f.present()}

    @_converted("read a blob header")
    def blob_header(self, project_id: str, digest: str) -> BlobHeader | None:
        """The header of a complete blob, or None."""
        return self._headers_tr(self.db, project_id, [digest]).get(digest)

    @_converted("upload blobs")
    def upload_blobs(self, project_id: str, blobs: Iterable[tuple[str, bytes]],
                     txn_bytes: int = 500_000) -> tuple[int, int]:
        """Upload content blobs ``(sha256_hex, data)`` to the project, each written once per
        hash (skipped when its header exists), chunked under the 100,000-byte value limit.

        Small blobs are grouped into transactions of about ``txn_bytes``; a larger blob is
        spread over several transactions and its header is written last, in the
        transaction of its final chunks, so a header always means "complete".
        Returns ``(blobs_written, stored_bytes_written)``.
        """
        txn_bytes = max(CHUNK_BYTES, int(txn_bytes))
        count = stored_total = 0
        group: list[tuple[str, list[bytes], BlobHeader]] = []
        group_bytes = 0

        def flush():
            nonlocal group, group_bytes, count, stored_total
            if group:
                created: dict = {}
                n, b = self._put_blobs_tr(self.db, project_id, group, created)
                self._spaces.update(created)
                count += n
                stored_total += b
            group, group_bytes = [], 0

        for digest, data in blobs:
            if sha256_hex(data) != digest:
                raise HubError(f"content given for blob {digest} hashes to {sha256_hex(data)}")
            encoding, stored = encode_blob(data)
            chunks = [stored[i : i + CHUNK_BYTES] for i in range(0, max(1, len(stored)), CHUNK_BYTES)]
            header = BlobHeader(len(data), len(stored), len(chunks), encoding)
            size = len(stored) + 100 * len(chunks)
            if size > txn_bytes:
                flush()
                count_b, bytes_b = self._put_large_blob(project_id, digest, chunks, header, txn_bytes)
                count += count_b
                stored_total += bytes_b
                continue
            if group_bytes + size > txn_bytes:
                flush()
            group.append((digest, chunks, header))
            group_bytes += size
        flush()
        return count, stored_total

    def _put_large_blob(self, project_id, digest, chunks, header, txn_bytes) -> tuple[int, int]:
        if self.blob_header(project_id, digest) is not None:
            return 0, 0
        per_txn = max(1, txn_bytes // CHUNK_BYTES)
        body_end = max(0, len(chunks) - per_txn)
        for start in range(0, body_end, per_txn):
            created: dict = {}
            self._put_chunks_tr(self.db, project_id, digest, start, chunks[start : min(start + per_txn, body_end)], created)
            self._spaces.update(created)
        created = {}
        n, b = self._put_blobs_tr(self.db, project_id, [(digest, chunks, header)], created,
                                  first_chunk=body_end)
        self._spaces.update(created)
        return n, (header.stored_size if n else 0)

    @transactional
    def _put_chunks_tr(self, tr, project_id, digest, start, chunks, created):
        created.clear()
        space = self._space(tr, project_id, created)
        for i, chunk in enumerate(chunks, start):
            tr[space.blob.pack((digest, i))] = chunk

    @transactional
    def _put_blobs_tr(self, tr, project_id, group, created, first_chunk: int = 0):
        created.clear()
        space = self._space(tr, project_id, created)
        present = [tr[space.blob.pack((d,))] for d, _, _ in group]
        n = stored = 0
        for (digest, chunks, header), f in zip(group, present):
            if f.present():
                continue
            for i in range(first_chunk, len(chunks)):
                tr[space.blob.pack((digest, i))] = chunks[i]
            tr[space.blob.pack((digest,))] = fdb.tuple.pack(
                (header.size, header.stored_size, header.chunks, header.encoding))
            n += 1
            stored += header.stored_size
        return n, stored

    @_converted("read a blob")
    def read_blob(self, project_id: str, digest: str) -> bytes:
        """The content with SHA-256 ``digest`` from the project's hub blobs, verified.

        Raises ``HubBlobMissing`` when there is no complete blob, ``HubError`` when the
        stored bytes do not hash to ``digest``. Large blobs are read over several
        transactions (blobs are immutable once their header exists).
        """
        header = self.blob_header(project_id, digest)
        if header is None:
            raise HubBlobMissing(
                f"content {digest} is not on the hub for project {project_id!r} of tenant "
                f"{self.tenant_id!r} (has the laptop that recorded it synced? run `ledger sync` there)"
            )
        parts: list[bytes] = []
        step = 50
        for start in range(0, header.chunks, step):
            parts.extend(self._chunks_tr(self.db, project_id, digest, start, min(start + step, header.chunks)))
        stored = b"".join(parts)
        if len(parts) != header.chunks or len(stored) != header.stored_size:
            raise HubError(f"blob {digest} on the hub is incomplete: {len(parts)}/{header.chunks} chunks")
        data = zlib.decompress(stored) if header.encoding == "zlib" else stored
        if sha256_hex(data) != digest:
            raise HubError(f"blob {digest} on the hub is corrupt: its bytes hash differently")
        return data

    @transactional
    def _chunks_tr(self, tr, project_id, digest, start, stop):
        space = self._space(tr, project_id)
        return [bytes(kv.value) for kv in
                tr.get_range(space.blob.pack((digest, start)), space.blob.pack((digest, stop)))]

    def blob_reader(self, project_id: str) -> Callable[[str], bytes]:
        """``read_blob`` bound to a project: ``digest -> bytes`` (for replay)."""
        return lambda digest: self.read_blob(project_id, digest)


def _header(value) -> BlobHeader:
    size, stored, chunks, encoding = fdb.tuple.unpack(bytes(value))
    return BlobHeader(size, stored, chunks, encoding)


def _range(subspace, prefix: tuple) -> tuple[bytes, bytes]:
    r = subspace.range(prefix)
    return r.start, r.stop


def connect(cluster_file: str | os.PathLike | None, tenant_id: str, settings=None, **options) -> Hub:
    """Resolve the cluster file (see ``resolve_cluster_file``), open it and return the
    tenant's ``Hub``. Raises ``HubNotConfigured`` / ``HubUnavailable``."""
    path = resolve_cluster_file(cluster_file, settings)
    return Hub(open_database(path, **options), tenant_id)
