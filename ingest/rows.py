"""Event -> ``analytics.swarm_events`` row.

The fast path works on the stored protobuf bytes (``events.proto``): one
``ParseFromString``, then converters *generated from the protobuf descriptors* at import
time (one straight-line function per message type that builds the JSON-form dict with a
single dict literal: no per-field loop, no pydantic), and ``orjson`` for the JSON text.
That is about 3x faster than the descriptor-walking loop it replaced and over 10x faster
than decoding into the pydantic model and calling ``to_json()``. The JSON is the same
document as ``SwarmEvent.to_json()`` (same keys, enum names, RFC 3339 timestamps;
``tests/test_ingest.py`` checks ``json.loads(row json) == json.loads(event.to_json())``
for every payload kind). Events read from the ledger or the hub were validated when they
were written, so they are not validated again here.

``event_json`` is a ``str`` (orjson's output decoded: a right-sized copy, which is
cheaper than keeping orjson's bytes objects alive for a whole batch, see ``_Generator``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import orjson
from google.protobuf.message import DecodeError

from ingest.errors import IngestError
from schemas import events_pb2
from schemas.enums import proto_names
from schemas.models import SUPPORTED_SCHEMA_VERSIONS, SwarmEvent
from schemas.timestamps import format_timestamp_parts as format_ts

#: Column order of the rows built here (the INSERT column list).
COLUMNS: tuple[str, ...] = (
    "tenant_id", "project_id", "time", "event_id", "event_type", "schema_version", "user_id",
    "session_id", "agent_id", "agent_role", "trace_id", "span_id", "caused_by", "commit_hash",
    "target_type", "target_path", "previous_path", "operation", "file_mode", "previous_file_mode",
    "previous_state_hash", "new_state_hash", "size_bytes", "lines_added", "lines_removed",
    "is_reversible", "confidence", "rationale", "input_trigger", "rejected_alternatives",
    "message_sender", "message_recipients", "signal_status", "cpu_load_percent", "memory_usage_mb",
    "span_name", "span_kind", "span_parent_id", "span_start", "span_end", "span_status",
    "source", "source_stream", "source_position", "local_seq", "hub_versionstamp", "recorded_at",
    "event_json",
)
_PAYLOADS = ("decision", "state_change", "message", "signal", "span")
_TS = "google.protobuf.Timestamp"
_NS = 1_000_000_000

# ---------------------------------------------------------------------- timestamps


def _ts(value) -> str:
    return format_ts(value.seconds, value.nanos)


# ---------------------------------------------------------------------- column mapping
#: Envelope columns -> SwarmEvent field (``time`` and ``event_type`` are computed).
_ENVELOPE_COLUMNS = {
    "tenant_id": "tenant_id", "project_id": "project_id", "event_id": "event_id",
    "schema_version": "schema_version", "user_id": "user_id", "session_id": "session_id",
    "agent_id": "agent_id", "agent_role": "agent_role", "trace_id": "trace_id", "span_id": "span_id",
    "caused_by": "caused_by", "commit_hash": "related_commit_hash",
}
#: Payload columns of each kind -> field of the payload message (JSON form; timestamps
#: as int nanoseconds). A row's columns of the other kinds hold ``_DEFAULTS``.
_PAYLOAD_COLUMNS = {
    "state_change": {
        "target_type": "target_type", "target_path": "target_resource", "previous_path": "previous_resource",
        "operation": "operation", "file_mode": "file_mode", "previous_file_mode": "previous_file_mode",
        "previous_state_hash": "previous_state_hash", "new_state_hash": "new_state_hash",
        "size_bytes": "size_bytes", "lines_added": "lines_added", "lines_removed": "lines_removed",
        "is_reversible": "is_reversible",
    },
    "decision": {"confidence": "confidence_score", "rationale": "rationale", "input_trigger": "input_trigger",
                 "rejected_alternatives": "rejected_alternatives"},
    "message": {"message_sender": "sender", "message_recipients": "recipients"},
    "signal": {"signal_status": "status", "cpu_load_percent": "cpu_load_percent",
               "memory_usage_mb": "memory_usage_mb"},
    "span": {"span_name": "name", "span_kind": "kind", "span_parent_id": "parent_span_id",
             "span_start": "start_time", "span_end": "end_time", "span_status": "status_code"},
}
_DEFAULTS = {
    "target_type": '""', "target_path": '""', "previous_path": '""', "operation": '""', "file_mode": '""',
    "previous_file_mode": '""', "previous_state_hash": '""', "new_state_hash": '""', "size_bytes": "0",
    "lines_added": "0", "lines_removed": "0", "is_reversible": "False", "confidence": "0.0",
    "rationale": '""', "input_trigger": '""', "rejected_alternatives": "()", "message_sender": '""',
    "message_recipients": "()", "signal_status": '""', "cpu_load_percent": "0.0", "memory_usage_mb": "0.0",
    "span_name": '""', "span_kind": '""', "span_parent_id": '""', "span_start": "0", "span_end": "0",
    "span_status": '""',
}
#: Provenance columns: arguments of the generated row builders.
_PROVENANCE = ("source", "source_stream", "source_position", "local_seq", "hub_versionstamp", "recorded_at")


# ---------------------------------------------------------------------- generated code
def _attr(value) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_attr(v) for v in value.array_value.values]
    if which is None:
        return ""
    return getattr(value, which)


class _Generator:
    """Writes Python source for the converters from the protobuf descriptors.

    * ``_conv_<Message>(m) -> dict``: the JSON-form dict of any message type, one dict
      literal in descriptor field order (enum names, RFC 3339 timestamps, attribute maps).
    * ``_row_<kind>(m, source, source_stream, source_position, local_seq,
      hub_versionstamp, recorded_at) -> tuple``: the whole ``swarm_events`` row of a
      SwarmEvent whose payload is ``kind``: every field is read once into a local, the
      JSON dict and the row are built from the locals, the JSON text by ``orjson``.
    """

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"_ts": _ts, "_attr": _attr, "_dumps": orjson.dumps}
        self.sources: list[str] = []
        self.done: set[str] = set()

    def value_expr(self, field, get: str) -> str:
        """Expression of a field's JSON-form value, ``get`` reading the raw field."""
        if field.message_type is not None:
            if field.message_type.full_name == _TS:
                return f"_ts({get})"
            if field.message_type.GetOptions().map_entry:
                return f"{{k: _attr(v) for k, v in {get}.items()}}"
            if field.is_repeated:
                return f"[{self.converter(field.message_type)}(v) for v in {get}]"
            owner, _, attr = get.rpartition(".")
            # an optional message (SwarmEvent.vote, a payload): None when unset, left out
            # of the JSON like SwarmEvent.to_json() leaves it out
            return f"({self.converter(field.message_type)}({get}) if {owner}.HasField({attr!r}) else None)"
        if field.enum_type is not None:
            enum_var = "_enum_" + field.enum_type.full_name.replace(".", "_")
            self.namespace[enum_var] = proto_names(field.enum_type.name)
            return f"{enum_var}[{get}]"
        if field.is_repeated:
            return f"tuple({get})"
        return get

    def converter(self, desc) -> str:
        name = "_conv_" + desc.full_name.replace(".", "_")
        if name not in self.done:
            self.done.add(name)
            items = "".join(f"\n        {f.name!r}: {self.value_expr(f, 'm.' + f.name)}," for f in desc.fields)
            self.sources.append(f"def {name}(m):\n    return {{{items}\n    }}\n")
        return name

    def row_builder(self, kind: str) -> str:
        event = events_pb2.SwarmEvent.DESCRIPTOR
        payload = event.fields_by_name[kind].message_type
        name = f"_row_{kind}"
        lines = [f"def {name}(m, {', '.join(_PROVENANCE)}):", "    ts = m.timestamp", f"    p = m.{kind}"]
        envelope = [f for f in event.fields if f.containing_oneof is None]
        for f in envelope:
            if f.message_type is None or f.message_type.full_name != _TS:
                lines.append(f"    e_{f.name} = {self.value_expr(f, 'm.' + f.name)}")
        for f in payload.fields:
            raw = f.message_type is not None and f.message_type.full_name == _TS
            lines.append(f"    p_{f.name} = {'p.' + f.name if raw else self.value_expr(f, 'p.' + f.name)}")

        def json_value(f, prefix: str) -> str:
            if f.message_type is not None and f.message_type.full_name == _TS:
                return "_ts(ts)" if prefix == "e_" else f"_ts(p_{f.name})"
            return prefix + f.name

        doc = "".join(f"\n        {f.name!r}: {json_value(f, 'e_')}," for f in envelope)
        pdoc = "".join(f"\n            {f.name!r}: {json_value(f, 'p_')}," for f in payload.fields)
        lines.append(f"    doc = {{{doc}\n        {kind!r}: {{{pdoc}\n        }},\n    }}")
        for f in envelope:  # optional messages left unset are not in the JSON
            if f.message_type is not None and f.message_type.full_name != _TS and not f.is_repeated:
                lines.append(f"    if e_{f.name} is None:\n        del doc[{f.name!r}]")
        own = _PAYLOAD_COLUMNS[kind]
        cols = []
        for column in COLUMNS:
            if column == "time":
                cols.append("ts.seconds * 1_000_000_000 + ts.nanos")
            elif column == "event_type":
                cols.append(repr(kind))
            elif column in _ENVELOPE_COLUMNS:
                cols.append("e_" + _ENVELOPE_COLUMNS[column])
            elif column in own:
                field = payload.fields_by_name[own[column]]
                if field.message_type is not None and field.message_type.full_name == _TS:
                    cols.append(f"p_{field.name}.seconds * 1_000_000_000 + p_{field.name}.nanos")
                else:
                    cols.append("p_" + field.name)
            elif column in _DEFAULTS:
                cols.append(_DEFAULTS[column])
            elif column in _PROVENANCE:
                cols.append(column)
            elif column == "event_json":
                # .decode(): a right-sized str copy. Keeping orjson's own bytes objects
                # alive (a batch holds thousands) costs ~2 page faults each: they sit in
                # oversized malloc blocks, one fresh page apiece; the copy avoids that.
                cols.append("_dumps(doc).decode()")
            else:  # pragma: no cover - a COLUMNS entry without a mapping
                raise AssertionError(f"no mapping for column {column!r}")
        lines.append("    return (\n" + "".join(f"        {c},\n" for c in cols) + "    )\n")
        self.sources.append("\n".join(lines))
        return name

    def compile(self) -> dict[str, Callable]:
        self.converter(events_pb2.SwarmEvent.DESCRIPTOR)  # the whole-event form (event_json_dict)
        names = {kind: (self.row_builder(kind), self.converter(
            events_pb2.SwarmEvent.DESCRIPTOR.fields_by_name[kind].message_type)) for kind in _PAYLOADS}
        code = compile("\n".join(self.sources), "<ingest.rows generated>", "exec")
        exec(code, self.namespace)  # noqa: S102 - our own generated source
        self.source = "\n".join(self.sources)
        return {kind: (self.namespace[row], self.namespace[conv]) for kind, (row, conv) in names.items()}


_GENERATOR = _Generator()
_GENERATED = _GENERATOR.compile()
#: payload kind -> row builder (see ``_Generator``).
_ROW_BUILDERS: dict[str, Callable[..., tuple]] = {kind: fns[0] for kind, fns in _GENERATED.items()}
_PAYLOAD_CONVERTERS: dict[str, Callable[[Any], dict]] = {kind: fns[1] for kind, fns in _GENERATED.items()}
_CONVERT_EVENT = _GENERATOR.namespace["_conv_context_ledger_v1_SwarmEvent"]
_ONEOF = frozenset(_PAYLOADS)


def event_json_dict(msg: events_pb2.SwarmEvent) -> tuple[dict, str, dict]:
    """``(json dict, payload kind, payload dict)`` of a parsed protobuf event."""
    kind = msg.WhichOneof("payload")
    doc = {k: v for k, v in _CONVERT_EVENT(msg).items() if k not in _ONEOF and v is not None}
    payload = doc[kind] = _PAYLOAD_CONVERTERS[kind](getattr(msg, kind))
    return doc, kind, payload


#: Columns of ``COLUMNS`` the checks read.
_I_TENANT, _I_TIME, _I_EVENT_ID, _I_VERSION = (COLUMNS.index(c) for c in ("tenant_id", "time", "event_id",
                                                                          "schema_version"))
_I_SPAN_TIMES = (COLUMNS.index("span_start"), COLUMNS.index("span_end"))
#: DateTime64(9)'s range in ClickHouse: 1900-01-01 .. 2262-04-11 (ns since the epoch).
MIN_TIME_NS = -2_208_988_800 * _NS
MAX_TIME_NS = 9_223_372_036_000_000_000


@dataclass(frozen=True)
class RefusedRow:
    """A stored event the ingestor will not load: where it is (``stream``, ``position``;
    ``seq`` for the local ledger), its id (the row's, else the body's, else ''), and why."""

    stream: str
    position: str
    event_id: str
    reason: str
    seq: int = 0


class BadRow(IngestError):
    """Why one stored event cannot become a row (``build_row``)."""


_SEALED = b"sealed:v1:"


def opened(body: bytes) -> bytes:
    """``body`` with its sealed texts (``ledger.erasure``) opened with the keys this
    process reaches (open ledgers, hubs), so analytics rows hold the plain texts until
    ``ledger erase`` deletes them (``[erased]``/``[sealed]`` where the key is gone or
    not here). A body without sealed texts is returned as is."""
    if _SEALED not in body:
        return body
    from ledger.erasure import unseal_stored
    from schemas import event_from_bytes

    try:
        return unseal_stored(event_from_bytes(body)).to_bytes()
    except Exception:  # noqa: BLE001 - build_row reports what is wrong with the body
        return body


def build_row(body: bytes, source: str, stream: str, position: str, local_seq: int, hub_versionstamp: str,
              recorded_ns: int, *, event_id: str | None = None, tenant: str | None = None) -> tuple:
    """One checked ``swarm_events`` row; raises ``BadRow`` saying what is wrong: a body that
    is not an event (protobuf), has no payload, an enum value or time this code cannot
    represent, a schema version outside ``SUPPORTED_SCHEMA_VERSIONS``, an id other than
    ``event_id`` (the id its store keeps it under) or a tenant other than ``tenant``."""
    msg = events_pb2.SwarmEvent()
    body = opened(body)
    try:
        msg.ParseFromString(body)
    except DecodeError as exc:
        raise BadRow(f"the stored body is not a readable event ({exc})") from None
    kind = msg.WhichOneof("payload")
    if kind is None:
        raise BadRow("the stored event has no payload (decision, state_change, message, signal or span)")
    try:
        row = _ROW_BUILDERS[kind](msg, source, stream, position, local_seq, hub_versionstamp, recorded_ns)
    except KeyError as exc:
        raise BadRow(f"the stored event has a value this version does not know ({kind}: enum {exc})") from None
    except (OverflowError, ValueError, TypeError) as exc:
        raise BadRow(f"the stored event has a value out of range ({type(exc).__name__}: {exc})") from None
    if row[_I_VERSION] not in SUPPORTED_SCHEMA_VERSIONS:
        raise BadRow(f"schema_version {row[_I_VERSION]} is not supported (this version reads "
                     f"{sorted(SUPPORTED_SCHEMA_VERSIONS)}); upgrade context-ledger to ingest it")
    if event_id is not None and row[_I_EVENT_ID] != event_id:
        raise BadRow(f"the body's event id {row[_I_EVENT_ID]!r} differs from the id it is stored under {event_id!r}")
    if tenant is not None and row[_I_TENANT] != tenant:
        raise BadRow(f"the body belongs to another tenant than the stream's {tenant!r}")
    for i in (_I_TIME, *_I_SPAN_TIMES):
        if not MIN_TIME_NS <= row[i] < MAX_TIME_NS:
            raise BadRow(f"{COLUMNS[i]} {row[i]} ns is outside 1900..2262, which ClickHouse cannot store")
    return row


def row_from_body(
    body: bytes,
    *,
    source: str,
    stream: str,
    position: str,
    local_seq: int = 0,
    hub_versionstamp: bytes | None = None,
    recorded_ns: int = 0,
) -> tuple:
    """One ``swarm_events`` row (values in ``COLUMNS`` order) from serialized protobuf.

    ``source`` is "local" or "hub"; ``stream``/``position`` name where the row came from
    (``position`` fixed-width and sortable inside the stream); ``hub_versionstamp`` the
    10-byte commit versionstamp if known; ``recorded_ns`` the local receive time (ns).
    ``event_json`` (last column) is the JSON text (str). Raises ``BadRow`` (see
    ``build_row``) on bytes that are not a loadable event.
    """
    return build_row(body, source, stream, position, local_seq,
                     bytes(hub_versionstamp[:10]).hex() if hub_versionstamp else "", recorded_ns)


def local_rows(records: Iterable[tuple], stream: str, *,
               tenant: str | None = None) -> tuple[list[tuple], list[RefusedRow]]:
    """Rows of local ledger records ``(seq, body, hub_versionstamp or None, recorded_ns,
    event_id)`` (``Ledger.event_rows``), in order, and the records refused (``build_row``:
    unreadable, unsupported schema version, id or tenant mismatch, out-of-range values),
    each reported by seq and id, never raised. A good record gives the same row as
    ``row_from_body(body, source="local", stream=stream, position=local_position(seq),
    local_seq=seq, ...)``; the common case runs in one tight loop."""
    new_msg, builders, supported = events_pb2.SwarmEvent, _ROW_BUILDERS, SUPPORTED_SCHEMA_VERSIONS
    lo, hi = MIN_TIME_NS, MAX_TIME_NS
    rows: list[tuple] = []
    refused: list[RefusedRow] = []
    append = rows.append
    for seq, body, versionstamp, recorded_ns, event_id in records:
        vs = versionstamp[:10].hex() if versionstamp else ""
        try:
            msg = new_msg()
            msg.ParseFromString(opened(body) if _SEALED in body else body)
            row = builders[msg.WhichOneof("payload")](msg, "local", stream, f"{seq:020d}", seq, vs, recorded_ns)
            if (row[_I_EVENT_ID] == event_id and row[_I_VERSION] in supported
                    and (tenant is None or row[_I_TENANT] == tenant) and lo <= row[_I_TIME] < hi
                    and lo <= row[_I_SPAN_TIMES[0]] < hi and lo <= row[_I_SPAN_TIMES[1]] < hi):
                append(row)
                continue
        except Exception:  # noqa: BLE001 - any failure: build_row below says which
            pass
        try:
            append(build_row(body, "local", stream, f"{seq:020d}", seq, vs, recorded_ns,
                             event_id=event_id, tenant=tenant))
        except BadRow as exc:
            refused.append(RefusedRow(stream, f"{seq:020d}", event_id or "", str(exc), seq))
        except Exception as exc:  # noqa: BLE001 - never let one stored row stop the ingest
            refused.append(RefusedRow(stream, f"{seq:020d}", event_id or "",
                                      f"the stored event cannot be converted ({type(exc).__name__}: {exc})", seq))
    return rows, refused


def row_from_event(event: SwarmEvent, **kwargs) -> tuple:
    """Like ``row_from_body`` for a model (serialises it first)."""
    return row_from_body(event.to_bytes(), **kwargs)


def local_position(seq: int) -> str:
    """Fixed-width sortable position of a local ledger seq (20 digits)."""
    return f"{seq:020d}"
