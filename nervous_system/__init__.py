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

from schemas.lazy import lazy_exports

_EXPORTS = {
    "Recorder": "nervous_system.recorder",
    "register_hooks": "nervous_system.recorder",
    **dict.fromkeys(["InvalidRecord", "RecordFailed", "RecorderError"], "nervous_system.errors"),
    **dict.fromkeys(["configure", "Instrumentation"], "nervous_system.setup"),
    **dict.fromkeys(["LedgerSpanProcessor", "SpanFilter"], "nervous_system.capture"),
    **dict.fromkeys(["ContextThread", "attach_from_env", "child_env", "context_from_env", "propagating",
                     "run_child", "submit"], "nervous_system.propagation"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
