import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_ROLE_UNSPECIFIED: _ClassVar[AgentRole]
    AGENT_ROLE_ARCHITECT: _ClassVar[AgentRole]
    AGENT_ROLE_CODER: _ClassVar[AgentRole]
    AGENT_ROLE_REVIEWER: _ClassVar[AgentRole]
    AGENT_ROLE_OPERATOR: _ClassVar[AgentRole]
    AGENT_ROLE_OTHER: _ClassVar[AgentRole]

class TargetType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TARGET_TYPE_UNSPECIFIED: _ClassVar[TargetType]
    TARGET_TYPE_FILE: _ClassVar[TargetType]
    TARGET_TYPE_ENV_VAR: _ClassVar[TargetType]
    TARGET_TYPE_DB_SCHEMA: _ClassVar[TargetType]
    TARGET_TYPE_CONFIG: _ClassVar[TargetType]
    TARGET_TYPE_OTHER: _ClassVar[TargetType]

class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_UNSPECIFIED: _ClassVar[Operation]
    OPERATION_CREATE: _ClassVar[Operation]
    OPERATION_MODIFY: _ClassVar[Operation]
    OPERATION_DELETE: _ClassVar[Operation]
    OPERATION_RENAME: _ClassVar[Operation]

class FileMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILE_MODE_UNSPECIFIED: _ClassVar[FileMode]
    FILE_MODE_REGULAR: _ClassVar[FileMode]
    FILE_MODE_EXECUTABLE: _ClassVar[FileMode]
    FILE_MODE_SYMLINK: _ClassVar[FileMode]

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_APPROVE: _ClassVar[Verdict]
    VERDICT_REJECT: _ClassVar[Verdict]

class SpanKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPAN_KIND_UNSPECIFIED: _ClassVar[SpanKind]
    SPAN_KIND_INTERNAL: _ClassVar[SpanKind]
    SPAN_KIND_SERVER: _ClassVar[SpanKind]
    SPAN_KIND_CLIENT: _ClassVar[SpanKind]
    SPAN_KIND_PRODUCER: _ClassVar[SpanKind]
    SPAN_KIND_CONSUMER: _ClassVar[SpanKind]

class SpanStatusCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPAN_STATUS_CODE_UNSET: _ClassVar[SpanStatusCode]
    SPAN_STATUS_CODE_OK: _ClassVar[SpanStatusCode]
    SPAN_STATUS_CODE_ERROR: _ClassVar[SpanStatusCode]
AGENT_ROLE_UNSPECIFIED: AgentRole
AGENT_ROLE_ARCHITECT: AgentRole
AGENT_ROLE_CODER: AgentRole
AGENT_ROLE_REVIEWER: AgentRole
AGENT_ROLE_OPERATOR: AgentRole
AGENT_ROLE_OTHER: AgentRole
TARGET_TYPE_UNSPECIFIED: TargetType
TARGET_TYPE_FILE: TargetType
TARGET_TYPE_ENV_VAR: TargetType
TARGET_TYPE_DB_SCHEMA: TargetType
TARGET_TYPE_CONFIG: TargetType
TARGET_TYPE_OTHER: TargetType
OPERATION_UNSPECIFIED: Operation
OPERATION_CREATE: Operation
OPERATION_MODIFY: Operation
OPERATION_DELETE: Operation
OPERATION_RENAME: Operation
FILE_MODE_UNSPECIFIED: FileMode
FILE_MODE_REGULAR: FileMode
FILE_MODE_EXECUTABLE: FileMode
FILE_MODE_SYMLINK: FileMode
VERDICT_UNSPECIFIED: Verdict
VERDICT_APPROVE: Verdict
VERDICT_REJECT: Verdict
SPAN_KIND_UNSPECIFIED: SpanKind
SPAN_KIND_INTERNAL: SpanKind
SPAN_KIND_SERVER: SpanKind
SPAN_KIND_CLIENT: SpanKind
SPAN_KIND_PRODUCER: SpanKind
SPAN_KIND_CONSUMER: SpanKind
SPAN_STATUS_CODE_UNSET: SpanStatusCode
SPAN_STATUS_CODE_OK: SpanStatusCode
SPAN_STATUS_CODE_ERROR: SpanStatusCode

class AgentDecision(_message.Message):
    __slots__ = ("context_hash", "input_trigger", "rationale", "rejected_alternatives", "memory_ids", "confidence_score")
    CONTEXT_HASH_FIELD_NUMBER: _ClassVar[int]
    INPUT_TRIGGER_FIELD_NUMBER: _ClassVar[int]
    RATIONALE_FIELD_NUMBER: _ClassVar[int]
    REJECTED_ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_IDS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_SCORE_FIELD_NUMBER: _ClassVar[int]
    context_hash: str
    input_trigger: str
    rationale: str
    rejected_alternatives: _containers.RepeatedScalarFieldContainer[str]
    memory_ids: _containers.RepeatedScalarFieldContainer[str]
    confidence_score: float
    def __init__(self, context_hash: _Optional[str] = ..., input_trigger: _Optional[str] = ..., rationale: _Optional[str] = ..., rejected_alternatives: _Optional[_Iterable[str]] = ..., memory_ids: _Optional[_Iterable[str]] = ..., confidence_score: _Optional[float] = ...) -> None: ...

class StateChange(_message.Message):
    __slots__ = ("target_type", "target_resource", "operation", "previous_resource", "previous_state_hash", "new_state_hash", "file_mode", "diff_patch", "size_bytes", "is_reversible", "previous_file_mode", "lines_added", "lines_removed", "content_withheld")
    TARGET_TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_RESOURCE_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATE_HASH_FIELD_NUMBER: _ClassVar[int]
    NEW_STATE_HASH_FIELD_NUMBER: _ClassVar[int]
    FILE_MODE_FIELD_NUMBER: _ClassVar[int]
    DIFF_PATCH_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    IS_REVERSIBLE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FILE_MODE_FIELD_NUMBER: _ClassVar[int]
    LINES_ADDED_FIELD_NUMBER: _ClassVar[int]
    LINES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    CONTENT_WITHHELD_FIELD_NUMBER: _ClassVar[int]
    target_type: TargetType
    target_resource: str
    operation: Operation
    previous_resource: str
    previous_state_hash: str
    new_state_hash: str
    file_mode: FileMode
    diff_patch: str
    size_bytes: int
    is_reversible: bool
    previous_file_mode: FileMode
    lines_added: int
    lines_removed: int
    content_withheld: str
    def __init__(self, target_type: _Optional[_Union[TargetType, str]] = ..., target_resource: _Optional[str] = ..., operation: _Optional[_Union[Operation, str]] = ..., previous_resource: _Optional[str] = ..., previous_state_hash: _Optional[str] = ..., new_state_hash: _Optional[str] = ..., file_mode: _Optional[_Union[FileMode, str]] = ..., diff_patch: _Optional[str] = ..., size_bytes: _Optional[int] = ..., is_reversible: _Optional[bool] = ..., previous_file_mode: _Optional[_Union[FileMode, str]] = ..., lines_added: _Optional[int] = ..., lines_removed: _Optional[int] = ..., content_withheld: _Optional[str] = ...) -> None: ...

class AgentMessage(_message.Message):
    __slots__ = ("sender", "recipients", "content")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    sender: str
    recipients: _containers.RepeatedScalarFieldContainer[str]
    content: str
    def __init__(self, sender: _Optional[str] = ..., recipients: _Optional[_Iterable[str]] = ..., content: _Optional[str] = ...) -> None: ...

class SystemSignal(_message.Message):
    __slots__ = ("status", "cpu_load_percent", "memory_usage_mb", "detail")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CPU_LOAD_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USAGE_MB_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    status: str
    cpu_load_percent: float
    memory_usage_mb: float
    detail: str
    def __init__(self, status: _Optional[str] = ..., cpu_load_percent: _Optional[float] = ..., memory_usage_mb: _Optional[float] = ..., detail: _Optional[str] = ...) -> None: ...

class AttributeValue(_message.Message):
    __slots__ = ("string_value", "bool_value", "int_value", "double_value", "array_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    ARRAY_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    bool_value: bool
    int_value: int
    double_value: float
    array_value: AttributeArray
    def __init__(self, string_value: _Optional[str] = ..., bool_value: _Optional[bool] = ..., int_value: _Optional[int] = ..., double_value: _Optional[float] = ..., array_value: _Optional[_Union[AttributeArray, _Mapping]] = ...) -> None: ...

class AttributeArray(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[AttributeValue]
    def __init__(self, values: _Optional[_Iterable[_Union[AttributeValue, _Mapping]]] = ...) -> None: ...

class SpanEventRecord(_message.Message):
    __slots__ = ("name", "time", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    time: _timestamp_pb2.Timestamp
    attributes: _containers.MessageMap[str, AttributeValue]
    def __init__(self, name: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attributes: _Optional[_Mapping[str, AttributeValue]] = ...) -> None: ...

class SpanLinkRecord(_message.Message):
    __slots__ = ("trace_id", "span_id", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    trace_id: str
    span_id: str
    attributes: _containers.MessageMap[str, AttributeValue]
    def __init__(self, trace_id: _Optional[str] = ..., span_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, AttributeValue]] = ...) -> None: ...

class Vote(_message.Message):
    __slots__ = ("target_event_id", "verdict")
    TARGET_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    target_event_id: str
    verdict: Verdict
    def __init__(self, target_event_id: _Optional[str] = ..., verdict: _Optional[_Union[Verdict, str]] = ...) -> None: ...

class SpanRecord(_message.Message):
    __slots__ = ("name", "kind", "parent_span_id", "start_time", "end_time", "status_code", "status_message", "attributes", "events", "links", "scope_name", "scope_version", "resource_attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    class ResourceAttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: AttributeValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AttributeValue, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARENT_SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    LINKS_FIELD_NUMBER: _ClassVar[int]
    SCOPE_NAME_FIELD_NUMBER: _ClassVar[int]
    SCOPE_VERSION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: SpanKind
    parent_span_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    status_code: SpanStatusCode
    status_message: str
    attributes: _containers.MessageMap[str, AttributeValue]
    events: _containers.RepeatedCompositeFieldContainer[SpanEventRecord]
    links: _containers.RepeatedCompositeFieldContainer[SpanLinkRecord]
    scope_name: str
    scope_version: str
    resource_attributes: _containers.MessageMap[str, AttributeValue]
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[SpanKind, str]] = ..., parent_span_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status_code: _Optional[_Union[SpanStatusCode, str]] = ..., status_message: _Optional[str] = ..., attributes: _Optional[_Mapping[str, AttributeValue]] = ..., events: _Optional[_Iterable[_Union[SpanEventRecord, _Mapping]]] = ..., links: _Optional[_Iterable[_Union[SpanLinkRecord, _Mapping]]] = ..., scope_name: _Optional[str] = ..., scope_version: _Optional[str] = ..., resource_attributes: _Optional[_Mapping[str, AttributeValue]] = ...) -> None: ...

class SwarmEvent(_message.Message):
    __slots__ = ("event_id", "timestamp", "schema_version", "tenant_id", "project_id", "user_id", "session_id", "agent_id", "agent_role", "trace_id", "span_id", "caused_by", "related_commit_hash", "decision", "state_change", "message", "signal", "span", "vote")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ROLE_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    SPAN_ID_FIELD_NUMBER: _ClassVar[int]
    CAUSED_BY_FIELD_NUMBER: _ClassVar[int]
    RELATED_COMMIT_HASH_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    SPAN_FIELD_NUMBER: _ClassVar[int]
    VOTE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    timestamp: _timestamp_pb2.Timestamp
    schema_version: int
    tenant_id: str
    project_id: str
    user_id: str
    session_id: str
    agent_id: str
    agent_role: AgentRole
    trace_id: str
    span_id: str
    caused_by: str
    related_commit_hash: str
    decision: AgentDecision
    state_change: StateChange
    message: AgentMessage
    signal: SystemSignal
    span: SpanRecord
    vote: Vote
    def __init__(self, event_id: _Optional[str] = ..., timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., schema_version: _Optional[int] = ..., tenant_id: _Optional[str] = ..., project_id: _Optional[str] = ..., user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., agent_role: _Optional[_Union[AgentRole, str]] = ..., trace_id: _Optional[str] = ..., span_id: _Optional[str] = ..., caused_by: _Optional[str] = ..., related_commit_hash: _Optional[str] = ..., decision: _Optional[_Union[AgentDecision, _Mapping]] = ..., state_change: _Optional[_Union[StateChange, _Mapping]] = ..., message: _Optional[_Union[AgentMessage, _Mapping]] = ..., signal: _Optional[_Union[SystemSignal, _Mapping]] = ..., span: _Optional[_Union[SpanRecord, _Mapping]] = ..., vote: _Optional[_Union[Vote, _Mapping]] = ...) -> None: ...
