"""Record events given as JSON Lines (the library behind ``ledger record``).

One JSON object per line, in the JSON form of ``SwarmEvent`` (``schemas.parse_event``,
lowercase enum names). Blank lines are skipped. Timestamps are RFC 3339 text, or
``"timestamp_ns"`` (integer nanoseconds), or an integer ``"timestamp"`` whose size makes
its unit unambiguous (seconds, ms, µs or ns for times between 2001 and 2286; anything
else is refused — an integer of seconds never becomes 1970). Defaults fill what a
simple producer leaves out (``nervous_system.jsonl_fill``):

* ``event_id``: a new UUIDv7. Give your own to make retries idempotent: a line whose
  event id is already stored counts as a duplicate (nothing written) when it agrees
  with the stored event on every field it gives — also when it leaves the timestamp
  or derived fields out, and when the same line appears twice in one input; a line
  that disagrees is refused as a conflict;
* ``timestamp``: the time the line is read;
* ``tenant_id``, ``project_id``, ``agent_id``, ``session_id``: the caller's defaults
  (``ledger --tenant/--project record --agent-id/--session-id``); a line without a
  project and no default project is an error;
* ``caused_by`` of a file change: the latest decision of the same session (earlier
  lines included); a message's ``sender``: its ``agent_id``.

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
bad line — invalid JSON or UTF-8, JSON nested deeper than ``MAX_JSON_DEPTH``, a schema
error, content that does not hash to ``new_state_hash``, a file change whose content is
neither given nor stored — is reported with its line number and nothing from that batch
is written. Memory stays bounded whatever the input's size: a batch is spooled to a
temporary file while it is read (the ledger's write lock is not held meanwhile), then
written line by line in one transaction.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterable, Iterator

from ledger import Ledger
from ledger.errors import LedgerError
from nervous_system.errors import InvalidRecord
from nervous_system.jsonl_fill import MAX_CONTENT_BASE64_CHARS, Defaults, LineFiller
from schemas import MAX_EVENT_BYTES
from schemas.errors import SchemaError

__all__ = ["BadLine", "RecordResult", "Defaults", "record_jsonl", "MAX_JSON_DEPTH", "MAX_LINE_BYTES"]

#: Deepest JSON nesting accepted in a line (an event is a few levels deep).
MAX_JSON_DEPTH = 64
#: Longest line accepted, in bytes: an event (at most ``MAX_EVENT_BYTES`` serialized)
#: plus its inline content in base64 (at most ``MAX_CONTENT_BYTES``): about 166 MiB.
MAX_LINE_BYTES = MAX_EVENT_BYTES + MAX_CONTENT_BASE64_CHARS


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


def _depth_ok(text: str) -> bool:
    """False when brackets nest deeper than ``MAX_JSON_DEPTH`` (checked before parsing:
    a deep document would exhaust the parser's recursion)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _decode(number: int, raw: bytes | str) -> tuple[dict | None, str]:
    """The JSON object of a line, or None and what is wrong with it."""
    if isinstance(raw, bytes):
        if len(raw) > MAX_LINE_BYTES:
            return None, f"the line is {len(raw):,} bytes long; at most {MAX_LINE_BYTES:,} are accepted"
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, f"not valid UTF-8 ({exc.reason} at byte {exc.start})"
    if ("[[" in raw or "{{" in raw or raw.count("{") + raw.count("[") > MAX_JSON_DEPTH) and not _depth_ok(raw):
        return None, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    if not isinstance(data, dict):
        return None, f"expected a JSON object, got {type(data).__name__}"
    return data, ""


class _Spool:
    """One batch's raw lines in a temporary file: memory stays bounded and the ledger's
    write lock is not held while a slow producer writes."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()
        self.count = 0

    def add(self, number: int, raw: bytes) -> None:
        self.file.write(number.to_bytes(8, "big") + len(raw).to_bytes(8, "big") + raw)
        self.count += 1

    def lines(self) -> Iterator[tuple[int, bytes]]:
        self.file.seek(0)
        for _ in range(self.count):
            header = self.file.read(16)
            yield int.from_bytes(header[:8], "big"), self.file.read(int.from_bytes(header[8:], "big"))

    def close(self) -> None:
        self.file.close()


class _DryRun(Exception):
    """Rolls a validated dry-run batch back."""


def _write_batch(ledger: Ledger, spool: _Spool, defaults: Defaults, result: RecordResult, dry_run: bool) -> None:
    """Write one spooled batch in one transaction (rolled back for a dry run)."""
    filler = LineFiller(ledger, defaults)
    ids: list[str] = []
    inserted = duplicates = 0
    try:
        with ledger.write_transaction():
            for number, raw in spool.lines():
                data, error = _decode(number, raw)
                if error:
                    raise BadLine(number, error, committed=result.inserted)
                try:
                    event, blobs = filler.prepare(data, where="event")
                    appended = ledger.append(event, blobs or None)
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
    result.inserted += 0 if dry_run else inserted
    result.duplicates += 0 if dry_run else duplicates
    result.batches += 1


def _bounded_lines(stream: BinaryIO | Iterable[bytes | str]) -> Iterator[bytes | str | None]:
    """The lines of ``stream``; a line longer than ``MAX_LINE_BYTES`` is yielded as None
    once that much of it was read, and the rest is never read (memory stays bounded
    whatever the input). Iterables without ``readline`` (lists of lines) pass through."""
    readline = getattr(stream, "readline", None)
    if readline is None:
        yield from stream
        return
    while True:
        line = readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        yield line if len(line) <= MAX_LINE_BYTES else None


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
    ``dry_run``: validate everything (including against the ledger), write nothing.
    Returns a ``RecordResult``; raises ``BadLine`` (with ``.line``) and
    ``RecordFailed``-family errors from the ledger.
    """
    if batch_size < 0:
        raise InvalidRecord(f"batch_size must be >= 0, not {batch_size}")
    result = RecordResult(dry_run=dry_run)
    spool = _Spool()
    try:
        for number, raw in enumerate(_bounded_lines(stream), start=1):
            if raw is None:
                raise BadLine(number, f"the line is longer than {MAX_LINE_BYTES:,} bytes, the most accepted "
                              "(an event plus its inline content of at most MAX_CONTENT_BYTES)",
                              committed=result.inserted)
            if isinstance(raw, str):
                raw = raw.encode("utf-8", "surrogatepass")
            if not raw.strip():
                continue
            spool.add(number, raw)
            if batch_size and spool.count >= batch_size:
                _write_batch(ledger, spool, defaults, result, dry_run)
                spool.close()
                spool = _Spool()
        if spool.count:
            _write_batch(ledger, spool, defaults, result, dry_run)
    finally:
        spool.close()
    return result
