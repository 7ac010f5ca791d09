"""The event contract: validation, and lossless protobuf <-> model <-> JSON round trips."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from schemas import (
    AgentDecision,
    AgentMessage,
    InvalidEvent,
    SpanEventRecord,
    SpanLinkRecord,
    SpanRecord,
    StateChange,
    SwarmEvent,
    SystemSignal,
    UnknownSchemaVersion,
    event_from_bytes,
    event_from_proto,
    event_to_proto,
    format_timestamp_ns,
    is_uuid7,
    new_event_id,
    parse_event,
    parse_event_json,
    parse_timestamp_ns,
)
from schemas import deterministic_event_id, events_pb2
from schemas.ids import uuid7_unix_ms

SHA = "a" * 64


def base(**kw):
    fields = dict(event_id=new_event_id(), timestamp=1_763_726_400_123_456_789, tenant_id="acme",
                  project_id="web")
    fields.update(kw)
    return SwarmEvent(**fields)


PAYLOADS = [
    {"decision": AgentDecision(rationale="split the parser — ünïcödé 🚀", rejected_alternatives=["regex", ""],
                               memory_ids=["m1"], confidence_score=0.75, context_hash="c" * 64,
                               input_trigger="issue #12")},
    {"decision": AgentDecision()},  # empty payload must survive too
    {"state_change": StateChange(target_resource="src/日本/ファイル.py", operation="rename",
                                 previous_resource="src/old name.py", previous_state_hash=SHA,
                                 new_state_hash="b" * 64, file_mode="executable",
                                 previous_file_mode="regular", diff_patch="--- a\n+++ b\n",
                                 size_bytes=12, is_reversible=True, lines_added=3, lines_removed=1)},
    {"state_change": StateChange(target_resource="gone.txt", operation="delete", previous_state_hash=SHA)},
    {"state_change": StateChange(target_type="env_var", target_resource="PATH", operation="modify",
                                 new_state_hash=SHA, file_mode="regular")},
    {"message": AgentMessage(sender="architect", recipients=["coder-1", "coder-2"], content="")},
    {"signal": SystemSignal(status="degraded", cpu_load_percent=97.5, memory_usage_mb=1024.25, detail="swap")},
    {"span": SpanRecord(name="chat gpt-4o", kind="client", parent_span_id="1" * 16, start_time=5,
                        end_time=1_000_000_007, status_code="error", status_message="boom",
                        attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 12,
                                    "temperature": 0.5, "stream": False, "tags": ["a", "b"], "ids": [1, 2]},
                        events=[SpanEventRecord(name="exception", time=6, attributes={"exception.type": "E"})],
                        links=[SpanLinkRecord(trace_id="2" * 32, span_id="3" * 16, attributes={"k": 1})],
                        scope_name="openai.instrumentor", scope_version="1.0",
                        resource_attributes={"service.name": "agent"})},
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: next(iter(p)))
def test_round_trip_proto_and_json(payload):
    event = base(agent_role="reviewer", trace_id="ab" * 16, span_id="cd" * 8, caused_by=new_event_id(),
                 related_commit_hash="0123abcd" * 5, user_id="Zoë", session_id="s-1", agent_id="a/b",
                 **payload)
    assert event_from_bytes(event.to_bytes()) == event
    assert event_from_proto(event_to_proto(event)) == event
    assert parse_event_json(event.to_json()) == event
    assert parse_event(event.to_dict()) == event
    # the protobuf JSON of the same message is a different but equivalent view
    assert event_to_proto(event).WhichOneof("payload") == next(iter(payload))


def test_serialization_is_deterministic():
    event = base(span=PAYLOADS[-1]["span"])
    assert event.to_bytes() == event_from_bytes(event.to_bytes()).to_bytes()


def test_timestamps_keep_nanoseconds():
    ns = 1_763_726_400_000_000_001
    assert parse_timestamp_ns(format_timestamp_ns(ns)) == ns
    assert format_timestamp_ns(ns) == "2025-11-21T12:00:00.000000001Z"
    assert parse_timestamp_ns("2025-11-21T13:00:00+01:00") == 1_763_726_400 * 10**9
    aware = dt.datetime(2025, 11, 21, 12, tzinfo=dt.timezone.utc)
    assert parse_timestamp_ns(aware) == 1_763_726_400 * 10**9
    with pytest.raises(ValueError):
        parse_timestamp_ns("2025-11-21 12:00:00")  # no offset: ambiguous
    with pytest.raises(ValueError):
        parse_timestamp_ns(dt.datetime(2025, 11, 21))  # naive


def test_uuid7_ids():
    ids = [new_event_id() for _ in range(2000)]
    assert all(is_uuid7(i) for i in ids)
    assert ids == sorted(ids), "ids from one process are time-ordered"
    assert len(set(ids)) == len(ids)
    a = deterministic_event_id(1_700_000_000_000, "t", "p", "abc")
    assert a == deterministic_event_id(1_700_000_000_000, "t", "p", "abc")
    assert a != deterministic_event_id(1_700_000_000_000, "t", "p", "abd")
    assert uuid7_unix_ms(a) == 1_700_000_000_000 and is_uuid7(a)


@pytest.mark.parametrize(
    "change, fragment",
    [
        ({"target_resource": "../etc/passwd", "operation": "create", "new_state_hash": SHA, "file_mode": "regular"}, "'..'"),
        ({"target_resource": "/etc/passwd", "operation": "create", "new_state_hash": SHA, "file_mode": "regular"}, "absolute"),
        ({"target_resource": "a//b", "operation": "create", "new_state_hash": SHA, "file_mode": "regular"}, "empty"),
        ({"target_resource": "bad\udcff.txt", "operation": "create", "new_state_hash": SHA, "file_mode": "regular"}, "UTF-8"),
        ({"target_resource": "a", "operation": "create", "new_state_hash": "xyz", "file_mode": "regular"}, "SHA-256"),
        ({"target_resource": "a", "operation": "delete", "new_state_hash": SHA}, "no new_state_hash"),
        ({"target_resource": "a", "operation": "rename", "new_state_hash": SHA, "file_mode": "regular"}, "previous_resource"),
        ({"target_resource": "a", "operation": "modify", "file_mode": "regular"}, "needs new_state_hash"),
        ({"target_resource": "a", "operation": "teleport"}, "operation"),
    ],
)
def test_bad_state_changes_are_refused_with_the_reason(change, fragment):
    data = base(decision=AgentDecision()).to_dict()
    del data["decision"]
    data["state_change"] = change
    with pytest.raises(InvalidEvent) as info:
        parse_event(data, where="line 3")
    assert fragment in str(info.value)
    assert str(info.value).startswith("line 3: state_change")


def test_bad_envelopes():
    good = base(decision=AgentDecision()).to_dict()
    cases = {
        "event_id": ("not-a-uuid", "UUIDv7"),
        "trace_id": ("XYZ", "trace_id"),
        "span_id": ("00" * 8, "span_id"),
        "tenant_id": ("a/b", "tenant_id"),
        "timestamp": ("yesterday", "RFC 3339"),
        "agent_role": ("pilot", "agent_role"),
    }
    for field, (value, fragment) in cases.items():
        data = dict(good, **{field: value})
        with pytest.raises(InvalidEvent, match=fragment):
            parse_event(data)
    with pytest.raises(InvalidEvent, match="exactly one payload"):
        parse_event({k: v for k, v in good.items() if k != "decision"})
    with pytest.raises(InvalidEvent, match="exactly one payload"):
        parse_event(dict(good, message={"content": "x"}))
    with pytest.raises(InvalidEvent, match="Extra inputs"):
        parse_event(dict(good, surprise=1))
    with pytest.raises(InvalidEvent, match="confidence_score"):
        parse_event(dict(good, decision={"confidence_score": 1.5}))


def test_unknown_schema_version_is_its_own_error():
    data = dict(base(decision=AgentDecision()).to_dict(), schema_version=2)
    with pytest.raises(UnknownSchemaVersion, match="upgrade context-ledger"):
        parse_event(data)
    msg = event_to_proto(base(decision=AgentDecision()))
    msg.schema_version = 99
    with pytest.raises(UnknownSchemaVersion):
        event_from_bytes(msg.SerializeToString())


def test_garbage_bytes_and_json_are_refused():
    with pytest.raises(InvalidEvent, match="not a valid serialized"):
        event_from_bytes(b"\xff\xff\xff\xff")
    with pytest.raises(InvalidEvent, match="not valid JSON"):
        parse_event_json("{nope")
    with pytest.raises(InvalidEvent, match="UTF-8"):
        parse_event_json(b'{"event_id": "\xff"}')
    # invalid UTF-8 inside a protobuf string field
    raw = events_pb2.SwarmEvent()
    raw.tenant_id = "t"
    good = raw.SerializeToString()
    corrupt = good.replace(b"t", b"\xff")
    with pytest.raises(InvalidEvent):
        event_from_bytes(corrupt)


# ------------------------------------------------- fast serialization == generic one
from schemas.convert import generic_event_to_proto  # noqa: E402

FAST_PATH_EXTRAS = [
    # edge values where proto3 presence rules matter: zero times, -0.0, empty maps
    {"decision": AgentDecision(confidence_score=-0.0)},
    {"decision": AgentDecision(confidence_score=1.0, rejected_alternatives=[""], memory_ids=["", "x"])},
    {"message": AgentMessage()},
    {"signal": SystemSignal()},
    {"span": SpanRecord()},
    {"span": SpanRecord(events=[SpanEventRecord()], links=[SpanLinkRecord()],
                        attributes={"": "", "e": [], "nested": [True, 0, -1.5, ""]})},
    {"state_change": StateChange(target_type="config", target_resource="x", operation="create")},
    {"state_change": StateChange(target_resource="a b/c", operation="create", new_state_hash=SHA,
                                 file_mode="symlink", size_bytes=0, is_reversible=False)},
]


@pytest.mark.parametrize("payload", PAYLOADS + FAST_PATH_EXTRAS, ids=lambda p: next(iter(p)))
@pytest.mark.parametrize("role", ["unspecified", "architect", "coder", "reviewer", "operator", "other"])
def test_fast_serialization_equals_the_generic_one(payload, role):
    for envelope in (
        dict(agent_role=role),
        dict(agent_role=role, timestamp=0, user_id="", session_id="", agent_id=""),
        dict(agent_role=role, trace_id="ab" * 16, span_id="cd" * 8, caused_by=new_event_id(),
             related_commit_hash="0123abcd", user_id="Zoë", session_id="s", agent_id="a", timestamp=-1),
    ):
        event = base(**envelope, **payload)
        generic = generic_event_to_proto(event).SerializeToString(deterministic=True)
        assert event.to_bytes() == generic
        assert event_to_proto(event) == generic_event_to_proto(event)
        assert event_from_bytes(generic) == event


def test_every_enum_value_serializes_like_the_generic_path():
    from schemas import FileMode, Operation, SpanKind, SpanStatusCode, TargetType

    for target in TargetType:
        for op in Operation:
            for mode in FileMode:
                change = StateChange.model_construct(
                    target_type=target, target_resource="p", operation=op, previous_resource="",
                    previous_state_hash="", new_state_hash="", file_mode=mode, diff_patch="",
                    size_bytes=1, is_reversible=True, previous_file_mode=mode, lines_added=2,
                    lines_removed=3)
                event = SwarmEvent.model_construct(**base(decision=AgentDecision()).model_dump(
                    exclude={"decision", "state_change"}), state_change=change)
                assert event.to_bytes() == generic_event_to_proto(event).SerializeToString(deterministic=True)
    for kind in SpanKind:
        for status in SpanStatusCode:
            event = base(span=SpanRecord(kind=kind, status_code=status))
            assert event.to_bytes() == generic_event_to_proto(event).SerializeToString(deterministic=True)


def test_uuid7_validator_accepts_exactly_what_is_uuid7_accepts():
    good = new_event_id()
    candidates = [good, good.upper(), "{" + good + "}", good.replace("-", ""), "urn:uuid:" + good,
                  good + "\n", " " + good, good[:-1], good + "0", "",
                  "00000000-0000-7000-8000-000000000000", "00000000-0000-4000-8000-000000000000",
                  "00000000-0000-7000-c000-000000000000", "00000000-0000-7000-7000-000000000000",
                  "00000000-0000-7000-b000-00000000000g"]
    for variant in "0123456789abcdef":
        candidates.append(good[:19] + variant + good[20:])
        candidates.append(good[:14] + variant + good[15:])
    for text in candidates:
        try:
            reference = uuid.UUID(text).version == 7 and str(uuid.UUID(text)) == text
        except ValueError:
            reference = False
        assert is_uuid7(text) == reference, text
