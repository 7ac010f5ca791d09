"""The agent SDK: record decisions, file changes, messages and signals, linked to
OpenTelemetry traces.

    import nervous_system
    inst = nervous_system.configure(project_id="web", agent_id="coder-1")
    with inst.tracer("agent").start_as_current_span("plan"):
        why = inst.recorder.decision("use a trie", confidence=0.7)
        inst.recorder.file_change("src/trie.py", b"...")

    # or without tracing:
    from nervous_system import Recorder
    rec = Recorder(project_id="web", agent_id="coder-1", agent_role="coder")

Importing this package changes nothing process-wide. A ``Recorder`` links its events to
OpenTelemetry by default (``link_spans=True``, see ``nervous_system.otel``): events
recorded inside an active span carry its trace/span ids and appear as span events.
"""

from nervous_system.capture import LedgerSpanProcessor, SpanFilter
from nervous_system.errors import InvalidRecord, RecordFailed, RecorderError
from nervous_system.propagation import (
    ContextThread,
    attach_from_env,
    child_env,
    context_from_env,
    propagating,
    run_child,
    submit,
)
from nervous_system.recorder import Recorder, register_hooks
from nervous_system.setup import Instrumentation, configure


__all__ = [
    "Recorder",
    "RecorderError",
    "InvalidRecord",
    "RecordFailed",
    "register_hooks",
    "configure",
    "Instrumentation",
    "LedgerSpanProcessor",
    "SpanFilter",
    "child_env",
    "context_from_env",
    "attach_from_env",
    "propagating",
    "ContextThread",
    "submit",
    "run_child",
]
