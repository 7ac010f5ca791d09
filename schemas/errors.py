"""Errors raised while validating events. All derive from ``SchemaError`` (a ValueError)."""


class SchemaError(ValueError):
    """Base class for event validation errors."""


class InvalidEvent(SchemaError):
    """The event is malformed: the message names each bad field and why."""


class UnknownSchemaVersion(InvalidEvent):
    """The event's schema_version is newer (or older) than this code understands."""


class EventTooLarge(InvalidEvent):
    """The serialized event exceeds the size limit (the message gives both sizes in bytes)."""
