"""Knowledge shared between ledgers: import another ledger's events (from a bundle file
or straight from its SQLite file) into this laptop's ledger, with provenance.

Every event written by an import keeps its exact bytes and id (ids are idempotency keys:
the same event reaching the hub from its own laptop and from here is stored once) and
its row records ``shared_from``, where it came from:

* ``bundle <file name> (ledger <ledger id>, key <fingerprint>)`` for a bundle
  (``syncer.bundles``; verified completely before anything is written);
* ``ledger <ledger id> (<path>)`` for another ledger file.

``shared_from`` is metadata of this copy, not part of the event (the event is the same
fact wherever it is stored): ``ledger show`` prints it and ``ledger log --json`` /
``ledger show --json`` carry it (null for events recorded here). An event already in
this ledger keeps its provenance (recorded here, or its first import). Events of another
tenant are skipped and counted; an event whose content neither the source nor this
ledger has is skipped (``missing_content``); an id this ledger holds with other bytes is
skipped and listed (``conflicts``). The imported events then sync to the hub like any.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ledger import Ledger
from ledger.changes import content_hash
from ledger.errors import DuplicateEventId, LedgerError, MissingContent
from schemas import SwarmEvent, event_from_bytes
from schemas.errors import SchemaError
from syncer.bundles import _frames, verify_bundle

#: Events written per SQLite transaction.
BATCH_EVENTS = 500

__all__ = ["SharedImport", "import_bundle_local", "import_ledger_local"]


@dataclass
class SharedImport:
    """What an import into the local ledger did: ``source`` (the ``shared_from`` text),
    events read, ``written`` (new here), ``already_here``, ``other_tenant`` (skipped),
    ``missing_content`` (skipped: content in neither ledger), ``refused`` (ids with why:
    other bytes here, or refused by this ledger's checks)."""

    source: str
    events: int = 0
    written: int = 0
    already_here: int = 0
    other_tenant: int = 0
    missing_content: int = 0
    refused: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def import_bundle_local(ledger: Ledger, path: str | os.PathLike, *, tenant_id: str,
                        expect_key: str | None = None) -> SharedImport:
    """Verify the bundle at ``path`` (``syncer.bundles.verify_bundle``: signature, digests,
    ``expect_key``), then import its events of ``tenant_id`` into ``ledger`` with
    ``shared_from`` naming the bundle. Raises ``BundleError`` (nothing written),
    ``StoreError``."""
    manifest = verify_bundle(path, expect_key=expect_key)
    source = (f"bundle {Path(path).name} (ledger {manifest.get('ledger_id', '?')}, "
              f"key {manifest['key_fingerprint']})")
    with zipfile.ZipFile(path) as z:
        blobs = set(manifest["blobs"])

        def read(digest: str) -> bytes | None:
            return z.read(f"blobs/{digest}") if digest in blobs else None

        return _import(ledger, (event_from_bytes(b) for b in _frames(z)), read, source, tenant_id)


def import_ledger_local(ledger: Ledger, other_path: str | os.PathLike, *, tenant_id: str) -> SharedImport:
    """Import the events of ``tenant_id`` from the ledger file ``other_path`` (opened, and
    migrated, like any ledger) into ``ledger``, in its recording order, with
    ``shared_from`` naming it. Raises ``LedgerError`` when it is this same ledger,
    ``StoreError``."""
    if Path(other_path).resolve() == Path(ledger.path).resolve():
        raise LedgerError(f"{other_path} is this ledger itself: nothing to import")
    with Ledger(other_path) as other:
        source = f"ledger {other.ledger_id} ({Path(other_path).resolve()})"

        def read(digest: str) -> bytes | None:
            return other.get_blob(digest, tenant_id=tenant_id) if other.has_blob(digest, tenant_id=tenant_id) else None

        def events() -> Iterable[SwarmEvent]:
            for stored in other.events(tenant_id=tenant_id, order="seq"):
                try:
                    event = stored.event
                except LedgerError:  # CorruptEvent: an unreadable row is not knowledge
                    continue
                yield event

        return _import(ledger, events(), read, source, tenant_id)


def _import(ledger: Ledger, events: Iterable[SwarmEvent], read: Callable[[str], bytes | None],
            source: str, tenant_id: str) -> SharedImport:
    report = SharedImport(source)
    batch: list[SwarmEvent] = []
    for event in events:
        report.events += 1
        if event.tenant_id != tenant_id:
            report.other_tenant += 1
            continue
        batch.append(event)
        if len(batch) >= BATCH_EVENTS:
            _write(ledger, batch, read, report)
            batch = []
    if batch:
        _write(ledger, batch, read, report)
    return report


def _write(ledger: Ledger, batch: list[SwarmEvent], read, report: SharedImport) -> None:
    """One transaction: each event appended (through the ledger's one write step) with
    its content, then ``shared_from`` set on the rows this import created."""
    with ledger.write_transaction() as conn:
        new_ids = []
        for event in batch:
            digest = content_hash(event)
            blobs = {}
            if digest and not ledger.has_blob(digest, tenant_id=event.tenant_id):
                data = read(digest)
                if data is None:
                    report.missing_content += 1
                    continue
                blobs[digest] = data
            try:
                appended = ledger.append(event, blobs)
            except MissingContent:
                report.missing_content += 1
                continue
            except DuplicateEventId:
                report.refused.append({"event_id": event.event_id, "reason": "this ledger holds that id "
                                       "with other content"})
                continue
            except (LedgerError, SchemaError) as exc:
                report.refused.append({"event_id": event.event_id, "reason": str(exc)})
                continue
            if appended.inserted:
                new_ids.append(event.event_id)
            else:
                report.already_here += 1
        for event_id in new_ids:
            conn.execute("UPDATE events SET shared_from = ? WHERE event_id = ? AND shared_from IS NULL",
                         (report.source, event_id))
        report.written += len(new_ids)
