"""The event's enumerations and their protobuf numbering: the one table of enum prefixes.

Python enums carry the friendly lowercase names used in JSON (``"coder"``,
``"modify"``); ``events.proto`` numbers them with a per-type prefix
(``AGENT_ROLE_CODER``). ``PROTO_ENUMS`` maps each proto enum type to its Python enum
and prefix; ``proto_numbers``/``from_proto_number`` convert through the generated
descriptors. No I/O.
"""

from __future__ import annotations

from enum import Enum
from functools import lru_cache


class AgentRole(str, Enum):
    UNSPECIFIED = "unspecified"
    ARCHITECT = "architect"
    CODER = "coder"
    REVIEWER = "reviewer"
    OPERATOR = "operator"
    OTHER = "other"


class TargetType(str, Enum):
    UNSPECIFIED = "unspecified"
    FILE = "file"
    ENV_VAR = "env_var"
    DB_SCHEMA = "db_schema"
    CONFIG = "config"
    OTHER = "other"


class Operation(str, Enum):
    UNSPECIFIED = "unspecified"
    CREATE = "create"
    MODIFY = "modify"
    DELETE = "delete"
    RENAME = "rename"


class FileMode(str, Enum):
    UNSPECIFIED = "unspecified"
    REGULAR = "regular"
    EXECUTABLE = "executable"
    SYMLINK = "symlink"


class Verdict(str, Enum):
    """A vote's verdict (``Vote.verdict``): approve or reject the event it names."""

    UNSPECIFIED = "unspecified"
    APPROVE = "approve"
    REJECT = "reject"


class SpanKind(str, Enum):
    UNSPECIFIED = "unspecified"
    INTERNAL = "internal"
    SERVER = "server"
    CLIENT = "client"
    PRODUCER = "producer"
    CONSUMER = "consumer"


class SpanStatusCode(str, Enum):
    UNSET = "unset"
    OK = "ok"
    ERROR = "error"


#: Proto enum type name -> (Python enum, proto value prefix).
PROTO_ENUMS: dict[str, tuple[type[Enum], str]] = {
    "AgentRole": (AgentRole, "AGENT_ROLE_"),
    "TargetType": (TargetType, "TARGET_TYPE_"),
    "Operation": (Operation, "OPERATION_"),
    "FileMode": (FileMode, "FILE_MODE_"),
    "SpanKind": (SpanKind, "SPAN_KIND_"),
    "SpanStatusCode": (SpanStatusCode, "SPAN_STATUS_CODE_"),
    "Verdict": (Verdict, "VERDICT_"),
}



@lru_cache(maxsize=None)
def proto_numbers(enum_name: str) -> dict[Enum, int]:
    """``{member: proto number}`` of the proto enum type ``enum_name`` (e.g. "FileMode")."""
    from schemas import events_pb2

    py_enum, prefix = PROTO_ENUMS[enum_name]
    values = events_pb2.DESCRIPTOR.enum_types_by_name[enum_name].values_by_name
    return {member: values[prefix + member.value.upper()].number for member in py_enum}


@lru_cache(maxsize=None)
def proto_names(enum_name: str) -> dict[int, str]:
    """``{proto number: lowercase name}`` of the proto enum type ``enum_name``, for every
    value the descriptor has (used by readers that must not fail on a new value)."""
    from schemas import events_pb2

    _, prefix = PROTO_ENUMS[enum_name]
    desc = events_pb2.DESCRIPTOR.enum_types_by_name[enum_name]
    return {v.number: v.name[len(prefix):].lower() for v in desc.values}


#: The payload kinds of an event (the ``oneof payload`` of ``SwarmEvent``), in proto order.
PAYLOAD_KINDS = ("decision", "state_change", "message", "signal", "span")
