"""The hub's FoundationDB layout: one directory per tenant/project and its subspaces.

Every tenant/project lives in its own directory (``fdb.directory``), path
``("context-ledger", tenant_id, project_id)``. Inside it (``D`` below) the keys are
tuple-encoded (``fdb.tuple``):

==============================================  =================================================
key                                             value
==============================================  =================================================
``D["log"][vs][0]``                             the event's serialized protobuf (<= 100,000 bytes)
``D["log"][vs]["blob"]``                        ``(sha256_hex, size)``: a larger body, stored as a
                                                blob (``hub.log``)
``D["ids"][event_id]``                          ``(vs, body_sha256)``: the idempotency key, set in
                                                the same transaction as the log entry
``D["time"][time_ns][vs]``                      empty: index by event time (the agent's clock)
``D["path"][path][vs]``                         empty: history of one file path (a rename is
                                                indexed under its new and its previous path)
``D["blob"][sha256]``                           ``(size, stored_size, chunks, encoding,
                                                upload_id)``: the header, set once, = "complete"
``D["blob"][sha256][upload_id][chunk#]``        stored bytes of one upload, <= 100,000 per chunk
``D["laptops"][ledger_id]``                     ``(last_seq, wall_ns, vs)``: how far each local
                                                ledger (laptop) has synced into this project
==============================================  =================================================

``vs`` is a tuple-layer ``Versionstamp`` (see ``hub.protocol`` for positions).

Tenant isolation: a ``TenantLayout`` is bound to one tenant at construction; every
directory path is built from its ``tenant_id``. Directories are a naming scheme, not a
security boundary: any holder of the cluster file can read every tenant (see
docs/hub.md: laptops go through the gateway, whose tokens decide the tenant).
"""

from __future__ import annotations

import re

import fdb

from hub.errors import HubError

#: Root of every Context Ledger directory.
ROOT = "context-ledger"
_VS_CODE = 0x33  # tuple-layer type code of a Versionstamp (followed by its 12 bytes)
_NAME = re.compile(r"^[^\x00-\x1f\x7f/]{1,128}$")


def check_name(value: str, what: str) -> str:
    """Validate a tenant or project id (1-128 characters, no '/' or control characters)."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise HubError(f"{what} {value!r} is invalid: 1-128 characters without '/' or control characters")
    return value


def key_range(subspace, prefix: tuple) -> tuple[bytes, bytes]:
    """``(begin, end)`` keys of every key of ``subspace`` starting with the tuple ``prefix``."""
    r = subspace.range(prefix)
    return r.start, r.stop


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


class TenantLayout:
    """The directories of one tenant: ``TenantLayout(db, tenant_id)``.

    Directory prefixes are looked up again inside every transaction, never cached: a
    directory removed (and perhaps re-created under a new prefix) by another process is
    seen at once, and the lookup's reads put the directory entry in the transaction's
    read conflict ranges, so a write racing a removal conflicts (1020) instead of
    landing under an orphaned prefix and being reported as stored.
    """

    def __init__(self, db, tenant_id: str) -> None:
        self.db = db
        self.tenant_id = check_name(tenant_id, "tenant")

    def tenant_path(self) -> tuple[str, str]:
        return (ROOT, self.tenant_id)

    def project_path(self, project_id: str) -> tuple[str, str, str]:
        return (ROOT, self.tenant_id, check_name(project_id, "project"))

    def space(self, tr, project_id: str, create: bool = False) -> ProjectSpace | None:
        """The project's subspaces, looked up in transaction ``tr``; created when
        ``create``, else None when the directory does not exist."""
        path = self.project_path(project_id)
        if create:
            return ProjectSpace(fdb.directory.create_or_open(tr, path))
        try:
            return ProjectSpace(fdb.directory.open(tr, path))
        except ValueError:  # the bindings' "The directory does not exist."
            return None

    def projects(self, tr) -> list[str]:
        """Project ids of the tenant (directory names), unsorted."""
        try:
            return list(fdb.directory.list(tr, self.tenant_path()))
        except ValueError:
            return []
