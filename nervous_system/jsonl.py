"""Record events given as JSON Lines (the library behind ``ledger record``).

One JSON object per line, in the JSON form of ``SwarmEvent`` (``schemas.parse_event``:
RFC 3339 or integer-nanosecond timestamps, lowercase enum names). Blank lines are
skipped. Defaults fill what a simple producer leaves out:

* ``event_id``: a new UUIDv7 (give your own to make retries idempotent: a line whose
  event id is already stored with the same content is counted as a duplicate, not
  written twice);
* ``timestamp``: the time the line is read;
* ``tenant_id``, ``project_id``, ``agent_id``, ``session_id``: the caller's defaults
  (``ledger --tenant/--project record --agent-id/--session-id``); a line without a
  project and no default project is an error.

File contents ride beside a file state change, as a sibling key of the event:
``"content_base64": "<base64 bytes>"`` or ``"content": "<UTF-8 text>"`` (for a symlink:
the link target). With content, these are filled when missing: ``new_state_hash``
(SHA-256; if given it must match), ``size_bytes``, ``file_mode`` (``regular``),
``operation`` (``create`` if the ledger has no such path, else ``modify``),
``previous_state_hash``/``previous_file_mode`` (the ledger's current state of the path,
or of ``previous_resource`` for a rename, counting earlier lines of the same batch),
and ``diff_patch``/``lines_added``/``lines_removed`` (text files). A delete needs no
content; its previous hash is filled the same way.

A batch (all lines by default, or every ``batch_size`` lines) is ONE transaction: any
bad line — invalid JSON or UTF-8, a schema error, content that does not hash to
``new_state_hash``, a file change whose content is neither given nor stored — is
reported with its line number and nothing from that batch is written.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable, Iterator

from ledger import Ledger, PathState, sha256_hex
from ledger.changes import UNKNOWN, apply_change, file_state_change, is_file_change
from ledger.errors import LedgerError
from nervous_system.errors import InvalidRecord
from schemas import Operation, new_event_id, parse_event
from schemas.errors import SchemaError

CONTENT_KEYS = ("content_base64", "content")


class BadLine(InvalidRecord):
    """A JSON Lines input line is not a valid event; ``line`` is its 1-based number."""

    def __init__(self, line: int, message: str, *, committed: int = 0):
        self.line = line
        self.committed = committed
        note = (
            f"; nothing from its batch was written ({committed} event(s) of earlier batches are recorded)"
            if committed else "; nothing was written"
        )
        super().__init__(f"line {line}: {message}{note}")


@dataclass
class RecordResult:
    """Outcome of ``record_jsonl``: ids in input order and counts."""

    event_ids: list[str] = field(default_factory=list)
    inserted: int = 0
    duplicates: int = 0
    batches: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"recorded": self.inserted, "duplicates": self.duplicates, "batches": self.batches,
                "dry_run": self.dry_run, "event_ids": self.event_ids}


@dataclass(frozen=True)
class Defaults:
    """Values for fields a line leaves out."""

    tenant_id: str = "default"
    project_id: str | None = None
    agent_id: str = ""
    session_id: str = ""


def _lines(stream: BinaryIO | Iterable[bytes | str]) -> Iterator[tuple[int, str | None, str]]:
    """(line number, text or None if not UTF-8, error)."""
    for number, raw in enumerate(stream, start=1):
        if isinstance(raw, str):
            yield number, raw, ""
            continue
        try:
            yield number, raw.decode("utf-8"), ""
        except UnicodeDecodeError as exc:
            yield number, None, f"not valid UTF-8 ({exc.reason} at byte {exc.start})"


class _Batch:
    """Fills defaults and derived state-change fields for one batch, tracking the
    path states its earlier lines produce."""

    def __init__(self, ledger: Ledger, defaults: Defaults):
        self.ledger = ledger
        self.defaults = defaults
        #: ``{(tenant, project): {path: PathState | None}}``: states this batch's earlier
        #: lines produce (``ledger.changes.apply_change``), read before the ledger's.
        self.overlay: dict[tuple[str, str], dict[str, PathState | None]] = {}
        self.blobs: dict[str, bytes] = {}

    def state(self, tenant: str, project: str, path: str) -> PathState | None:
        overlay = self.overlay.get((tenant, project), {})
        if path in overlay:
            return overlay[path]
        return self.ledger.path_state(tenant, project, path)

    def content_of(self, digest: str) -> bytes | None:
        if digest in self.blobs:
            return self.blobs[digest]
        try:
            return self.ledger.get_blob(digest)
        except LedgerError:
            return None

    def prepare(self, data: dict[str, Any], where: str):
        content: bytes | None = None
        if "content_base64" in data and "content" in data:
            raise ValueError("give content_base64 or content, not both")
        if "content_base64" in data:
            raw = data.pop("content_base64")
            if not isinstance(raw, str):
                raise ValueError("content_base64 must be a base64 string")
            try:
                content = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"content_base64 is not valid base64: {exc}") from exc
        elif "content" in data:
            raw = data.pop("content")
            if not isinstance(raw, str):
                raise ValueError("content must be a string (use content_base64 for bytes)")
            content = raw.encode("utf-8", "surrogatepass")
        d = self.defaults
        data.setdefault("event_id", new_event_id())
        data.setdefault("timestamp", time.time_ns())
        data.setdefault("tenant_id", d.tenant_id)
        if "project_id" not in data:
            if not d.project_id:
                raise ValueError("project_id is missing and no default project is set (--project)")
            data["project_id"] = d.project_id
        if d.agent_id:
            data.setdefault("agent_id", d.agent_id)
        if d.session_id:
            data.setdefault("session_id", d.session_id)
        sc = data.get("state_change")
        if isinstance(sc, dict) and sc.get("target_type", "file") == "file":
            self._fill_state_change(data, sc, content)
        elif content is not None:
            raise ValueError("content is only allowed beside a file state_change")
        event = parse_event(data, where=where)
        if is_file_change(event):
            apply_change(self.overlay.setdefault((event.tenant_id, event.project_id), {}), event.state_change)
        return event

    def _fill_state_change(self, data: dict, sc: dict, content: bytes | None) -> None:
        """Fill what the line leaves out of a file state change from its content and the
        previous state (``ledger.changes.file_state_change``); fields the line gives win."""
        path = sc.get("target_resource")
        if not isinstance(path, str) or not path:
            return  # parse_event reports it
        tenant, project = data["tenant_id"], data["project_id"]
        op = sc.get("operation")
        source_path = sc.get("previous_resource") if op == "rename" else path
        before = self.state(tenant, project, source_path) if isinstance(source_path, str) and source_path else None
        if content is not None:
            if op == "delete":
                raise ValueError("a delete carries no content")
            given = sc.get("new_state_hash")
            if given and given != sha256_hex(content):
                raise ValueError(f"content hashes to {sha256_hex(content)}, not to new_state_hash {given}")
            old = self.content_of(before.hash) if before is not None else None
            mode = sc.get("file_mode") if isinstance(sc.get("file_mode"), str) else None
            built = file_state_change(
                path, content, before=before, old_bytes=old if before is None or old is not None else UNKNOWN,
                new_mode=mode if mode in ("regular", "executable", "symlink") else None,
                previous_path=sc.get("previous_resource") if op == "rename" else None,
                operation=Operation(op) if op in ("create", "modify", "rename") else None,
                diff="diff_patch" not in sc,
            ).model_dump(mode="json")
            for key in ("new_state_hash", "size_bytes", "file_mode", "operation", "diff_patch",
                        "lines_added", "lines_removed"):
                sc.setdefault(key, built[key])
            self.blobs[built["new_state_hash"]] = content
            op = sc["operation"]
        if op in ("modify", "rename", "delete") and before is not None:
            sc.setdefault("previous_state_hash", before.hash)
            sc.setdefault("previous_file_mode", before.mode)


def record_jsonl(
    ledger: Ledger,
    stream: BinaryIO | Iterable[bytes | str],
    defaults: Defaults = Defaults(),
    *,
    batch_size: int = 0,
    dry_run: bool = False,
) -> RecordResult:
    """Validate and record the JSON Lines of ``stream`` (see the module docstring).

    ``batch_size``: 0 (default) = the whole input is one transaction; N = commit every
    N lines (a long-running producer piping events sees them durable as it goes).
    ``dry_run``: validate everything, write nothing. Returns a ``RecordResult``; raises
    ``BadLine`` (with ``.line``) and ``RecordFailed``-family errors from the ledger.
    """
    if batch_size < 0:
        raise InvalidRecord(f"batch_size must be >= 0, not {batch_size}")
    result = RecordResult(dry_run=dry_run)
    pending: list[tuple[int, dict | None, str]] = []

    def flush_batch() -> None:
        if not pending:
            return
        batch = _Batch(ledger, defaults)
        ids: list[str] = []
        inserted = duplicates = 0
        try:
            with ledger.write_transaction():
                for number, data, error in pending:
                    if error:
                        raise BadLine(number, error, committed=result.inserted)
                    try:
                        event = batch.prepare(data, where="event")
                        if dry_run:
                            ids.append(event.event_id)
                            continue
                        appended = ledger.append(event, batch.blobs if event.kind == "state_change" else None)
                    except BadLine:
                        raise
                    except (SchemaError, LedgerError, ValueError) as exc:
                        raise BadLine(number, str(exc), committed=result.inserted) from exc
                    ids.append(appended.event_id)
                    inserted += appended.inserted
                    duplicates += not appended.inserted
                if dry_run:
                    raise _DryRun()
        except _DryRun:
            pass
        result.event_ids.extend(ids)
        result.inserted += inserted
        result.duplicates += duplicates
        result.batches += 1
        pending.clear()

    for number, text, error in _lines(stream):
        if text is not None and not text.strip():
            continue
        data = None
        if not error:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                error = f"not valid JSON ({exc.msg} at column {exc.colno})"
            else:
                if not isinstance(data, dict):
                    error = f"expected a JSON object, got {type(data).__name__}"
        pending.append((number, data, error))
        if batch_size and len(pending) >= batch_size:
            flush_batch()
    flush_batch()
    return result


class _DryRun(Exception):
    """Rolls a validated dry-run batch back."""
