"""Pydantic v2 models of the event envelope, with lossless protobuf and JSON conversion.

The protobuf message ``context_ledger.v1.SwarmEvent`` (``events.proto``) is the wire
and storage contract; these models validate it and give it a friendly JSON form:

* enums are lowercase names without prefix (``"coder"``, ``"modify"``, ``"executable"``);
* timestamps are RFC 3339 UTC text with up to nanosecond precision on output and accept
  RFC 3339 text, integer nanoseconds since the epoch, or aware ``datetime`` on input;
  in Python they are ``int`` nanoseconds since the Unix epoch;
* the payload is exactly one of ``decision``, ``state_change``, ``message``, ``signal``,
  ``span``;
* ``vote`` (optional, only on a decision) makes the decision a vote on another event.

``event_from_proto(event_to_proto(e)) == e`` and ``parse_event_json(e.to_json()) == e``
hold for every valid event (see ``tests/test_schemas.py``). No I/O happens here.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from schemas import fastproto as _fast
from schemas.enums import (
    PAYLOAD_KINDS,
    AgentRole,
    FileMode,
    Operation,
    SpanKind,
    SpanStatusCode,
    TargetType,
    Verdict,
)
from schemas.ids import COMMIT_HEX_RE, UUID7_RE, is_span_id, is_trace_id
from schemas.paths import check_relative_path
from schemas.timestamps import format_timestamp_ns, parse_timestamp_ns

#: The schema version this code writes. Events with a version outside
#: SUPPORTED_SCHEMA_VERSIONS are refused (an older reader must not guess).
SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[^\x00-\x1f\x7f/]{1,128}$")


TimestampNs = Annotated[
    int,
    BeforeValidator(parse_timestamp_ns),
    PlainSerializer(format_timestamp_ns, return_type=str, when_used="json"),
]

AttributeScalar = Union[str, bool, int, float]
AttributeValue = Union[AttributeScalar, list[AttributeScalar]]
Attributes = dict[str, AttributeValue]


def _check_hash(value: str, field: str) -> str:
    if value and not _SHA256_HEX.match(value):
        raise ValueError(f"{field} must be 64 lowercase hex characters (SHA-256) or empty")
    return value


# -------------------------------------------------------------------------- models
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False, validate_default=False)


class AgentDecision(_Model):
    """Why an agent did something: the rationale, the alternatives it rejected.

    ``confidence_score`` is 0.0-1.0; 0.0 means "not given" (proto3 keeps no presence for
    a double, so an unset score and 0.0 are the same on the wire).
    """

    context_hash: str = ""
    input_trigger: str = ""
    rationale: str = ""
    rejected_alternatives: list[str] = Field(default_factory=list)
    memory_ids: list[str] = Field(default_factory=list)
    confidence_score: float = Field(0.0, ge=0.0, le=1.0)


class StateChange(_Model):
    """A change of one resource; for files, hashes are SHA-256 hex of the bytes."""

    target_type: TargetType = TargetType.FILE
    target_resource: str
    operation: Operation
    previous_resource: str = ""
    previous_state_hash: str = ""
    new_state_hash: str = ""
    file_mode: FileMode = FileMode.UNSPECIFIED
    diff_patch: str = ""
    size_bytes: int = Field(0, ge=0)
    is_reversible: bool = False
    previous_file_mode: FileMode = FileMode.UNSPECIFIED
    lines_added: int = Field(0, ge=0)
    lines_removed: int = Field(0, ge=0)
    #: Why the new content is not stored ("" = it is), e.g. "secret-file"
    #: (``ledger.secret_files``): the hash is kept, the bytes are not.
    content_withheld: str = ""

    @field_validator("previous_state_hash", "new_state_hash")
    @classmethod
    def _hashes(cls, v: str, info) -> str:
        return _check_hash(v, info.field_name)

    @model_validator(mode="after")
    def _consistent(self) -> "StateChange":
        if self.target_type != TargetType.FILE:
            if not self.target_resource:
                raise ValueError("target_resource is empty")
            return self
        check_relative_path(self.target_resource)
        op = self.operation
        if op == Operation.UNSPECIFIED:
            raise ValueError("operation is required (create, modify, delete or rename)")
        if op == Operation.RENAME:
            if not self.previous_resource:
                raise ValueError("a rename needs previous_resource (the old path)")
            check_relative_path(self.previous_resource)
        elif self.previous_resource:
            raise ValueError("previous_resource is only allowed on a rename")
        if op == Operation.CREATE and self.previous_state_hash:
            raise ValueError("a create has no previous_state_hash")
        if op == Operation.DELETE:
            if self.new_state_hash:
                raise ValueError("a delete has no new_state_hash")
        elif not self.new_state_hash:
            raise ValueError(f"a {op.value} of a file needs new_state_hash (SHA-256 of the new bytes)")
        if op != Operation.DELETE and self.file_mode == FileMode.UNSPECIFIED:
            raise ValueError("file_mode is required: regular, executable or symlink")
        if self.content_withheld and (op == Operation.DELETE or self.file_mode == FileMode.SYMLINK):
            raise ValueError("content_withheld is only for the content of a regular or executable file "
                             "(a delete has none; a symlink's target is needed to replay it)")
        return self


class AgentMessage(_Model):
    """Agent-to-agent talk."""

    sender: str = ""
    recipients: list[str] = Field(default_factory=list)
    content: str = ""


class SystemSignal(_Model):
    """A health signal: status, CPU load (percent), memory (MB)."""

    status: str = ""
    cpu_load_percent: float = Field(0.0, ge=0.0)
    memory_usage_mb: float = Field(0.0, ge=0.0)
    detail: str = ""


class SpanEventRecord(_Model):
    """An OpenTelemetry span event."""

    name: str = ""
    time: TimestampNs = 0
    attributes: Attributes = Field(default_factory=dict)


class SpanLinkRecord(_Model):
    """An OpenTelemetry span link."""

    trace_id: str = ""
    span_id: str = ""
    attributes: Attributes = Field(default_factory=dict)


class SpanRecord(_Model):
    """A finished OpenTelemetry span; times are int nanoseconds since the epoch."""

    name: str = ""
    kind: SpanKind = SpanKind.UNSPECIFIED
    parent_span_id: str = ""
    start_time: TimestampNs = 0
    end_time: TimestampNs = 0
    status_code: SpanStatusCode = SpanStatusCode.UNSET
    status_message: str = ""
    attributes: Attributes = Field(default_factory=dict)
    events: list[SpanEventRecord] = Field(default_factory=list)
    links: list[SpanLinkRecord] = Field(default_factory=list)
    scope_name: str = ""
    scope_version: str = ""
    resource_attributes: Attributes = Field(default_factory=dict)

    @field_validator("parent_span_id")
    @classmethod
    def _parent(cls, v: str) -> str:
        if v and not is_span_id(v):
            raise ValueError("parent_span_id must be 16 lowercase hex characters or empty")
        return v




class Vote(_Model):
    """A vote on another event (``ledger approve``/``ledger reject``): the event voted on
    (a file change or a decision, by its UUIDv7 id) and the verdict. Carried only by a
    decision, whose rationale is the reason (rules: docs/trust.md)."""

    target_event_id: str
    verdict: Verdict

    @field_validator("target_event_id")
    @classmethod
    def _target(cls, v: str) -> str:
        if not UUID7_RE.fullmatch(v):
            raise ValueError("target_event_id must be the event_id (UUIDv7) of the event voted on")
        return v

    @field_validator("verdict")
    @classmethod
    def _verdict(cls, v: Verdict) -> Verdict:
        if v == Verdict.UNSPECIFIED:
            raise ValueError("verdict must be approve or reject")
        return v


class SwarmEvent(_Model):
    """The envelope of every recorded fact (``context_ledger.v1.SwarmEvent``).

    ``timestamp`` is int nanoseconds since the Unix epoch (UTC, the agent's clock).
    Exactly one payload field is set; ``kind`` names it.
    Raises ``pydantic.ValidationError`` when built from bad data.
    """

    event_id: str
    timestamp: TimestampNs
    schema_version: int = SCHEMA_VERSION
    tenant_id: str
    project_id: str
    user_id: str = ""
    session_id: str = ""
    agent_id: str = ""
    agent_role: AgentRole = AgentRole.UNSPECIFIED
    trace_id: str = ""
    span_id: str = ""
    caused_by: str = ""
    related_commit_hash: str = ""
    decision: AgentDecision | None = None
    state_change: StateChange | None = None
    message: AgentMessage | None = None
    signal: SystemSignal | None = None
    span: SpanRecord | None = None
    vote: Vote | None = None

    @field_validator("event_id")
    @classmethod
    def _event_id(cls, v: str) -> str:
        if not UUID7_RE.fullmatch(v):
            raise ValueError("event_id must be a lowercase UUIDv7 (RFC 9562)")
        return v

    @field_validator("caused_by")
    @classmethod
    def _caused_by(cls, v: str) -> str:
        if v and not UUID7_RE.fullmatch(v):
            raise ValueError("caused_by must be the event_id (UUIDv7) of a decision, or empty")
        return v

    @field_validator("schema_version")
    @classmethod
    def _schema_version(cls, v: int) -> int:
        if v not in SUPPORTED_SCHEMA_VERSIONS:
            raise ValueError(
                f"unknown schema_version {v}: this version of context-ledger understands "
                f"{sorted(SUPPORTED_SCHEMA_VERSIONS)}; upgrade context-ledger to read it"
            )
        return v

    @field_validator("tenant_id", "project_id")
    @classmethod
    def _names(cls, v: str, info) -> str:
        if not _NAME.match(v):
            raise ValueError(
                f"{info.field_name} must be 1-128 characters without '/' or control characters"
            )
        return v

    @field_validator("trace_id")
    @classmethod
    def _trace(cls, v: str) -> str:
        if v and not is_trace_id(v):
            raise ValueError("trace_id must be 32 lowercase hex characters (W3C trace-id) or empty")
        return v

    @field_validator("span_id")
    @classmethod
    def _span(cls, v: str) -> str:
        if v and not is_span_id(v):
            raise ValueError("span_id must be 16 lowercase hex characters (W3C span-id) or empty")
        return v

    @field_validator("related_commit_hash")
    @classmethod
    def _commit(cls, v: str) -> str:
        if v and not COMMIT_HEX_RE.match(v):
            raise ValueError("related_commit_hash must be lowercase hex (a git commit id) or empty")
        return v

    @model_validator(mode="after")
    def _one_payload(self) -> "SwarmEvent":
        if self.vote is not None:
            if self.decision is None:
                raise ValueError("vote is only allowed on a decision (the vote's reason is its rationale)")
            if self.vote.target_event_id == self.event_id:
                raise ValueError("a vote cannot name its own event")
        if (
            (self.decision is not None) + (self.state_change is not None) + (self.message is not None)
            + (self.signal is not None) + (self.span is not None)
        ) == 1:
            return self
        present = [k for k in PAYLOAD_KINDS if getattr(self, k) is not None]
        if len(present) != 1:
            raise ValueError(
                "exactly one payload is required, one of "
                f"{', '.join(PAYLOAD_KINDS)}; got {present or 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        """The payload's name: decision, state_change, message, signal or span."""
        if self.decision is not None:
            return "decision"
        if self.state_change is not None:
            return "state_change"
        if self.message is not None:
            return "message"
        if self.signal is not None:
            return "signal"
        if self.span is not None:
            return "span"
        raise AssertionError("validated event has no payload")

    @property
    def payload(self) -> _Model:
        return getattr(self, self.kind)

    def to_json(self) -> str:
        """Compact JSON text (unset payloads left out)."""
        return self.model_dump_json(exclude_none=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (timestamps as RFC 3339 text, enums as names)."""
        return self.model_dump(mode="json", exclude_none=True)

    def to_bytes(self) -> bytes:
        """Serialized protobuf (the storage form): deterministic, and identical to the
        generic descriptor-driven conversion (built by ``schemas.fastproto``)."""
        return _fast.event_message(self).SerializeToString(deterministic=True)
