"""Offline bundles (sneaker-net): a ledger's events and blobs in one signed,
self-verifying file, for sites with no network to the hub (file drop, USB).

A bundle is a zip file with:

- ``events.bin``: the serialized events (``SwarmEvent``), each as a 4-byte big-endian
  length + its bytes, in the ledger's recording order;
- ``blobs/<sha256>``: the content every file change names (its name is its SHA-256);
- ``manifest.json``: format and version, ledger id, tenants, count, ``since_ns``, the
  SHA-256 and size of ``events.bin``, the size of every blob, and the signer's Ed25519
  public key (base64) and fingerprint (first 16 hex digits of its SHA-256);
- ``manifest.sig``: the Ed25519 signature of ``manifest.json``'s exact bytes.

Import verifies everything before writing anything: the signature (and, with
``expect_key``, the signer's fingerprint), that the zip holds exactly the members the
manifest names, every digest and size, and that every event decodes. A bundle altered
in any byte is refused (``BundleError``). Writing then follows the syncer's rules
(blobs first, events in batches checked against their idempotency keys), so importing
the same bundle twice, or one whose events already synced, writes each event once;
events of another tenant than the hub client's are skipped and counted, events whose
id the hub holds with other content are skipped and listed (``conflicts``).

The signing key is the exporting ledger's: ``<ledger file>.bundle-key`` (Ed25519,
PKCS#8 PEM, mode 0600), created on first export. Without ``expect_key`` a bundle proves
it was not altered since the key inside it signed it, not who holds that key. An event
whose content the exporting ledger did not have is skipped (``missing_content``), as the
syncer refuses it: the hub never holds an event whose content is missing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hub.errors import HubConflict
from hub.protocol import HubClient
from ledger import Ledger, keys
from ledger.changes import content_hash
from schemas import event_from_bytes
from syncer.errors import SyncError
from syncer.syncer import upload_needed_blobs

FORMAT = "context-ledger-bundle"
VERSION = 1
#: Bytes of event bodies per hub write (as the syncer's batches: well under 1 MB).
BATCH_BYTES = 500_000
BATCH_EVENTS = 500


class BundleError(SyncError):
    """A bundle cannot be written or is refused (altered, unsigned, malformed)."""


@dataclass
class BundleReport:
    """What an export or import did: counts of events and blobs, the signer's
    ``key_fingerprint``; for an import also ``written``/``already_on_hub`` events,
    ``other_tenant`` (skipped) and ``conflicts`` (ids the hub holds with other content)."""

    path: str
    events: int = 0
    blobs: int = 0
    key_fingerprint: str = ""
    written: int = 0
    already_on_hub: int = 0
    other_tenant: int = 0
    missing_content: int = 0
    conflicts: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- keys
def key_path(ledger: Ledger) -> Path:
    """Where the ledger's signing key lives: next to the ledger file (``ledger.keys``)."""
    return keys.key_path(ledger.path)


def signing_key(ledger: Ledger) -> Ed25519PrivateKey:
    """The ledger's Ed25519 signing key (``ledger.keys``: one per ledger, also signing
    the hash chain's checkpoints), created (mode 0600) when there is none."""
    return keys.signing_key(ledger.path)


def fingerprint(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


# --------------------------------------------------------------------------- export
def export_bundle(ledger: Ledger, path: str | os.PathLike, *, since_ns: int | None = None,
                  tenant_id: str | None = None) -> BundleReport:
    """Write the ledger's events (of ``tenant_id`` when given, recorded at event time
    ``>= since_ns`` when given) and the content they name to a signed bundle at ``path``
    (written to a temporary name, then renamed). Raises ``BundleError``."""
    key = signing_key(ledger)
    public_raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    digest = hashlib.sha256()
    size = count = 0
    tenants: set[str] = set()
    blobs: dict[str, int] = {}
    owner: dict[str, str] = {}  # digest -> the tenant whose content it is (ledger.owners)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            with z.open("events.bin", "w") as out:
                for e in ledger.events(tenant_id=tenant_id, since_ns=since_ns, order="seq"):
                    frame = struct.pack(">I", len(e.body)) + bytes(e.body)
                    out.write(frame)
                    digest.update(frame)
                    size, count = size + len(frame), count + 1
                    tenants.add(e.tenant_id)
                    needed = content_hash(e.event)
                    if needed and needed not in owner and ledger.has_blob(needed, tenant_id=e.tenant_id):
                        owner[needed] = e.tenant_id
            for needed, tenant in owner.items():
                data = ledger.get_blob(needed, tenant_id=tenant)
                z.writestr(f"blobs/{needed}", data)
                blobs[needed] = len(data)
            manifest = json.dumps({
                "format": FORMAT, "version": VERSION, "created_ns": time.time_ns(), "ledger_id": ledger.ledger_id,
                "tenants": sorted(tenants), "since_ns": since_ns,
                "events": {"member": "events.bin", "count": count, "size": size, "sha256": digest.hexdigest()},
                "blobs": blobs, "public_key": base64.b64encode(public_raw).decode(),
                "key_fingerprint": fingerprint(public_raw),
            }, sort_keys=True).encode()
            z.writestr("manifest.json", manifest)
            z.writestr("manifest.sig", key.sign(manifest))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BundleError(f"cannot write the bundle {path}: {exc}") from exc
    return BundleReport(str(path), count, len(blobs), fingerprint(public_raw))


# --------------------------------------------------------------------------- import
def verify_bundle(path: str | os.PathLike, *, expect_key: str | None = None) -> dict:
    """Check a bundle completely (see the module docstring) and return its manifest.
    Raises ``BundleError`` naming what is wrong."""
    try:
        with zipfile.ZipFile(path) as z:
            manifest_bytes, sig = z.read("manifest.json"), z.read("manifest.sig")
            manifest = json.loads(manifest_bytes)
            public_raw = base64.b64decode(manifest["public_key"])
            try:
                Ed25519PublicKey.from_public_bytes(public_raw).verify(sig, manifest_bytes)
            except InvalidSignature as exc:
                raise BundleError(f"bundle {path} is refused: its manifest signature does not verify "
                                  "(the bundle was altered)") from exc
            if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
                raise BundleError(f"bundle {path}: unknown format or version {manifest.get('version')!r}")
            if expect_key and fingerprint(public_raw) != expect_key.lower():
                raise BundleError(f"bundle {path} is signed by key {fingerprint(public_raw)}, not {expect_key}")
            expected = {"manifest.json", "manifest.sig", "events.bin", *(f"blobs/{d}" for d in manifest["blobs"])}
            names = z.namelist()
            if set(names) != expected or len(names) != len(expected):
                raise BundleError(f"bundle {path} is refused: its members differ from its signed manifest")
            digest, size, count = hashlib.sha256(), 0, 0
            for body in _frames(z, digest):
                event_from_bytes(body)
                size, count = size + 4 + len(body), count + 1
            ev = manifest["events"]
            if (digest.hexdigest(), size, count) != (ev["sha256"], ev["size"], ev["count"]):
                raise BundleError(f"bundle {path} is refused: events.bin differs from its signed digest")
            for d, n in manifest["blobs"].items():
                data = z.read(f"blobs/{d}")
                if len(data) != n or hashlib.sha256(data).hexdigest() != d:
                    raise BundleError(f"bundle {path} is refused: blob {d} differs from its signed digest")
    except BundleError:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, struct.error) as exc:
        raise BundleError(f"bundle {path} is refused: it is not a readable bundle ({exc})") from exc
    return manifest


def _frames(z: zipfile.ZipFile, digest=None):
    with z.open("events.bin") as f:
        while True:
            head = f.read(4)
            if not head:
                return
            (n,) = struct.unpack(">I", head)
            body = f.read(n)
            if len(body) != n:
                raise BundleError("events.bin ends inside an event")
            if digest is not None:
                digest.update(head + body)
            yield body


class _Row:
    """An event from a bundle, shaped as ``hub.protocol.EventLike``."""

    def __init__(self, body: bytes) -> None:
        self.body, self.event = body, event_from_bytes(body)
        self.event_id, self.tenant_id = self.event.event_id, self.event.tenant_id
        self.project_id, self.time_ns = self.event.project_id, self.event.timestamp


def import_bundle(hub: HubClient, path: str | os.PathLike, *, expect_key: str | None = None) -> BundleReport:
    """Verify the bundle (``verify_bundle``), then write its blobs and events to ``hub``
    exactly once (see the module docstring). Raises ``BundleError`` (nothing written),
    ``HubUnavailable``/``HubError`` from the hub (re-running the import resumes safely)."""
    manifest = verify_bundle(path, expect_key=expect_key)
    report = BundleReport(str(path), manifest["events"]["count"], len(manifest["blobs"]), manifest["key_fingerprint"])
    with zipfile.ZipFile(path) as z:
        batch: list[_Row] = []
        size = 0
        for body in _frames(z):
            row = _Row(body)
            if row.tenant_id != hub.tenant_id:
                report.other_tenant += 1
                continue
            needed = content_hash(row.event)
            if needed and needed not in manifest["blobs"]:
                report.missing_content += 1
                continue
            if batch and (size + len(body) > BATCH_BYTES or len(batch) >= BATCH_EVENTS):
                _write(hub, z, batch, report)
                batch, size = [], 0
            batch.append(row)
            size += len(body)
        if batch:
            _write(hub, z, batch, report)
    return report


def _write(hub: HubClient, z: zipfile.ZipFile, batch: list[_Row], report: BundleReport) -> None:
    upload_needed_blobs(hub, batch, lambda d: z.read(f"blobs/{d}"))
    try:
        outcomes = hub.write_events(batch)
    except HubConflict as exc:
        report.conflicts.extend(exc.event_ids)
        rest = [r for r in batch if r.event_id not in set(exc.event_ids)]
        if rest and len(rest) < len(batch):
            _write(hub, z, rest, report)
        return
    for o in outcomes:
        if o.inserted:
            report.written += 1
        else:
            report.already_on_hub += 1
