"""A scripted multi-agent session through the SDK, for the UI's tests and screenshots.

Three agents in three sessions: an architect plans inside an LLM span (``gen_ai.*``
attributes with token counts) and decides, creating two files and calling a tool; a
coder decides with low confidence, edits one file, renames the other, messages and
signals; a shell command run through ``nervous_system.exec`` edits a file (a change no
SDK call made); a reviewer writes back. Contents are fixed so tests can check them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ledger import Ledger

PROJECT = "web"
LEXER = b"def tokens(text):\n    return text.split()\n"
PARSER_1 = b"from lexer import tokens\n\n\ndef parse(text):\n    return list(tokens(text))\n"
PARSER_2 = (b"from tokens import tokens\n\n\ndef parse(text):\n    if not text:\n        return []\n"
            b"    return list(tokens(text))\n")


@dataclass
class Session:
    """Ids of what the script recorded (for assertions)."""

    ids: dict[str, str] = field(default_factory=dict)
    agents: tuple[str, ...] = ("architect-1", "coder-1", "ledger-exec", "reviewer-1")


def record_session(lg: Ledger, work: Path) -> Session:
    """Record the scripted session into ``lg`` (project ``web``); ``work`` is a scratch
    directory the shell command runs in."""
    import nervous_system
    from nervous_system import Recorder
    from nervous_system.exec import run_and_record

    def agent(name: str, role: str):
        inst = nervous_system.configure(lg, project_id=PROJECT, agent_id=name, agent_role=role,
                                        otlp=False, set_global=False)
        return inst, inst.tracer(name)

    def llm(model: str, tokens_in: int, tokens_out: int) -> dict:
        return {"gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": tokens_in, "gen_ai.usage.output_tokens": tokens_out}

    out = Session()
    arch, tracer = agent("architect-1", "architect")
    with tracer.start_as_current_span("chat plan", attributes=llm("test-model-large", 1200, 350)):
        out.ids["plan"] = arch.recorder.decision(
            "split the parser into a lexer and a parser", confidence=0.82, input_trigger="issue #12: parser too slow",
            rejected_alternatives=["one big regular expression", "a parser generator"])
        with tracer.start_as_current_span("execute_tool read_file", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "read_file"}):
            out.ids["lexer"] = arch.recorder.file_change("src/lexer.py", LEXER)
        out.ids["parser"] = arch.recorder.file_change("src/parser.py", PARSER_1)
        out.ids["hello"] = arch.recorder.message("lexer and parser are in; please handle empty input",
                                                 recipients=["coder-1"])
    arch.shutdown()

    coder, tracer = agent("coder-1", "coder")
    with tracer.start_as_current_span("chat fix", attributes=llm("test-model-small", 800, 120)):
        out.ids["fix"] = coder.recorder.decision("handle empty input; rename the lexer module", confidence=0.4,
                                                 input_trigger="message from architect-1")
        out.ids["rename"] = coder.recorder.file_change("src/tokens.py", None, previous_path="src/lexer.py")
        out.ids["edit"] = coder.recorder.file_change("src/parser.py", PARSER_2)
        out.ids["signal"] = coder.recorder.signal("ok", cpu_load_percent=37.5, memory_usage_mb=512)
    coder.shutdown()

    # a shell command changes a file: recorded by snapshots of the work tree
    (work / "src").mkdir(parents=True, exist_ok=True)
    (work / "src" / "tokens.py").write_bytes(LEXER)
    (work / "src" / "parser.py").write_bytes(PARSER_2)
    shell = Recorder(lg, project_id=PROJECT, agent_id="ledger-exec", agent_role="operator")
    from opentelemetry.trace import NoOpTracer

    result = run_and_record(["sh", "-c", "sed -i 's/text.split()/text.split(None)/' src/tokens.py"],
                            recorder=shell, tracer=NoOpTracer(), root=work)
    out.ids["shell"] = result.changes[0][1]
    out.ids["shell_decision"] = result.decision_id

    reviewer = Recorder(lg, project_id=PROJECT, agent_id="reviewer-1", agent_role="reviewer")
    out.ids["review"] = reviewer.decision("approve: empty input handled, lexer renamed", confidence=0.9)
    out.ids["review_msg"] = reviewer.message("approved", recipients=["coder-1", "architect-1"])
    out.ids["review_signal"] = reviewer.signal("degraded", cpu_load_percent=91.0, detail="slow disk")
    return out
