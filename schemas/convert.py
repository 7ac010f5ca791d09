"""Lossless conversion between the pydantic models and the protobuf message (the
storage and wire form): ``event_to_proto``/``event_from_proto``/``event_from_bytes``, and
JSON input (``parse_event``/``parse_event_json``) with errors that name each bad field.
No I/O.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from google.protobuf.message import DecodeError
from pydantic import BaseModel, ValidationError

from schemas import events_pb2
from schemas import fastproto as _fast
from schemas.enums import PROTO_ENUMS, proto_numbers
from schemas.errors import InvalidEvent, UnknownSchemaVersion
from schemas.models import SwarmEvent

def _enum_to_proto(enum_name: str, value: Enum) -> int:
    return proto_numbers(enum_name)[value]


def _enum_from_proto(enum_name: str, number: int) -> Enum:
    py_enum, prefix = PROTO_ENUMS[enum_name]
    desc = events_pb2.DESCRIPTOR.enum_types_by_name[enum_name].values_by_number.get(number)
    if desc is None:
        raise InvalidEvent(f"unknown {enum_name} value {number}")
    return py_enum(desc.name[len(prefix):].lower())


def _attr_from_proto(value: events_pb2.AttributeValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_attr_from_proto(v) for v in value.array_value.values]
    if which is None:
        return ""
    return getattr(value, which)


def _fill(msg, model: BaseModel) -> None:
    for field in msg.DESCRIPTOR.fields:
        name = field.name
        value = getattr(model, name)
        if value is None:
            continue
        if field.message_type is not None:
            mname = field.message_type.full_name
            if mname == "google.protobuf.Timestamp":
                sub = getattr(msg, name)
                sub.seconds, sub.nanos = divmod(value, 1_000_000_000)
            elif field.message_type.GetOptions().map_entry:
                target = getattr(msg, name)
                for k, v in value.items():
                    _fast.attribute_to_proto(v, target[k])
            elif field.is_repeated:
                target = getattr(msg, name)
                for item in value:
                    _fill(target.add(), item)
            else:
                sub = getattr(msg, name)
                sub.SetInParent()
                _fill(sub, value)
        elif field.enum_type is not None:
            setattr(msg, name, _enum_to_proto(field.enum_type.name, value))
        elif field.is_repeated:
            getattr(msg, name).extend(value)
        else:
            setattr(msg, name, value)


def _read(msg) -> dict[str, Any]:
    out: dict[str, Any] = {}
    oneof_fields = {f.name for o in msg.DESCRIPTOR.oneofs for f in o.fields}
    for field in msg.DESCRIPTOR.fields:
        name = field.name
        if name in oneof_fields and not msg.HasField(name):
            continue
        value = getattr(msg, name)
        if field.message_type is not None:
            mname = field.message_type.full_name
            if (mname != "google.protobuf.Timestamp" and not field.is_repeated
                    and not msg.HasField(name)):
                continue  # an optional message left unset (SwarmEvent.vote): None in the model
            if mname == "google.protobuf.Timestamp":
                out[name] = value.seconds * 1_000_000_000 + value.nanos
            elif field.message_type.GetOptions().map_entry:
                out[name] = {k: _attr_from_proto(v) for k, v in value.items()}
            elif field.is_repeated:
                out[name] = [_read(item) for item in value]
            else:
                out[name] = _read(value)
        elif field.enum_type is not None:
            out[name] = _enum_from_proto(field.enum_type.name, value)
        elif field.is_repeated:
            out[name] = list(value)
        else:
            out[name] = value
    return out


def event_to_proto(event: SwarmEvent) -> events_pb2.SwarmEvent:
    """Convert a validated model to the protobuf message (fast builders of
    ``schemas.fastproto``; same content as ``generic_event_to_proto``)."""
    return _fast.event_message(event)


def generic_event_to_proto(event: SwarmEvent) -> events_pb2.SwarmEvent:
    """The reference conversion: walks the protobuf descriptors (slower). The fast
    builders must produce the same bytes (checked by the tests for every payload kind)."""
    msg = events_pb2.SwarmEvent()
    _fill(msg, event)
    return msg


def event_from_proto(msg: events_pb2.SwarmEvent) -> SwarmEvent:
    """Validate a protobuf message into a model. Raises ``InvalidEvent``/``UnknownSchemaVersion``."""
    return _validated(lambda: SwarmEvent.model_validate(_read(msg)), where="protobuf event")


def event_from_bytes(data: bytes) -> SwarmEvent:
    """Parse and validate serialized protobuf bytes. Raises ``InvalidEvent``."""
    msg = events_pb2.SwarmEvent()
    try:
        msg.ParseFromString(data)
    except DecodeError as exc:  # includes invalid UTF-8 in string fields
        raise InvalidEvent(f"not a valid serialized SwarmEvent: {exc}") from exc
    return event_from_proto(msg)


def parse_event(data: dict[str, Any], where: str = "event") -> SwarmEvent:
    """Validate a JSON-like dict into a model. Raises ``InvalidEvent``/``UnknownSchemaVersion``
    whose message names each bad field."""
    if not isinstance(data, dict):
        raise InvalidEvent(f"{where}: expected a JSON object, got {type(data).__name__}")
    return _validated(lambda: SwarmEvent.model_validate(data), where=where)


def parse_event_json(text: str | bytes, where: str = "event") -> SwarmEvent:
    """Parse JSON text into a validated model. Raises ``InvalidEvent``."""
    try:
        data = json.loads(text)
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"{where}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise InvalidEvent(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
    return parse_event(data, where=where)


def _validated(build, where: str) -> SwarmEvent:
    try:
        return build()
    except ValidationError as exc:
        problems = []
        unknown_version = False
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "event"
            msg = err["msg"].removeprefix("Value error, ")
            if "unknown schema_version" in msg:
                unknown_version = True
            problems.append(f"{loc}: {msg}")
        cls = UnknownSchemaVersion if unknown_version else InvalidEvent
        raise cls(f"{where}: " + "; ".join(problems)) from exc
