"""Per-agent hook vocabularies: which hook event means what (pure data, stdlib only).

Every agent's hook events are mapped to one of the ``Kind`` names below; the processor
(``nervous_system.hooks.processor``) turns a kind into events. The tables are the
reference of docs/agents.md ("Event mapping"); payload field names come from the
recordings in tests/agents/recorded/ (Claude Code, Codex, Gemini CLI) and from Cursor's
hooks documentation (Cursor: not verified against a running Cursor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["AGENTS", "ALIASES", "Agent", "Kind", "canonical", "kind_of", "installed_events"]


class Kind:
    SESSION_START = "session_start"
    PROMPT = "prompt"
    PRE_TOOL = "pre_tool"
    POST_TOOL = "post_tool"
    TOOL_FAILED = "tool_failed"
    FILE_EDIT = "file_edit"  # Cursor afterFileEdit: a finished edit with no "before" hook
    ASSISTANT_TEXT = "assistant_text"  # Cursor afterAgentResponse
    TURN_END = "turn_end"
    TURN_FAILED = "turn_failed"
    SUBAGENT_START = "subagent_start"
    SUBAGENT_STOP = "subagent_stop"
    COMPACT = "compact"
    PERMISSION = "permission"
    NOTIFICATION = "notification"
    FILES_CHANGED = "files_changed"  # the agent says files changed outside a tool call
    SESSION_END = "session_end"
    COMMIT = "commit"  # git post-commit
    OTHER = "other"  # recorded as a signal


@dataclass(frozen=True)
class Agent:
    """One agent's hook vocabulary. ``events``: hook event -> kind; ``install``: the
    events ``ledger agent install`` registers (the others are documented as not
    installed, and still mapped if a user registers them); ``agent_id``: the
    ``agent_id`` of its events."""

    name: str
    agent_id: str
    events: dict[str, str]
    install: tuple[str, ...]


_CLAUDE = {
    "SessionStart": Kind.SESSION_START,
    "UserPromptSubmit": Kind.PROMPT,
    "PreToolUse": Kind.PRE_TOOL,
    "PostToolUse": Kind.POST_TOOL,
    "PostToolUseFailure": Kind.TOOL_FAILED,
    "Stop": Kind.TURN_END,
    "StopFailure": Kind.TURN_FAILED,
    "SubagentStart": Kind.SUBAGENT_START,
    "SubagentStop": Kind.SUBAGENT_STOP,
    "PreCompact": Kind.COMPACT,
    "PostCompact": Kind.COMPACT,
    "PermissionRequest": Kind.PERMISSION,
    "PermissionDenied": Kind.PERMISSION,
    "Notification": Kind.NOTIFICATION,
    "FileChanged": Kind.FILES_CHANGED,
    "SessionEnd": Kind.SESSION_END,
}
_CODEX = {
    "SessionStart": Kind.SESSION_START,
    "UserPromptSubmit": Kind.PROMPT,
    "PreToolUse": Kind.PRE_TOOL,
    "PostToolUse": Kind.POST_TOOL,
    "PermissionRequest": Kind.PERMISSION,
    "PreCompact": Kind.COMPACT,
    "PostCompact": Kind.COMPACT,
    "SubagentStart": Kind.SUBAGENT_START,
    "SubagentStop": Kind.SUBAGENT_STOP,
    "Stop": Kind.TURN_END,
    "SessionEnd": Kind.SESSION_END,
}
_GEMINI = {
    "SessionStart": Kind.SESSION_START,
    "BeforeAgent": Kind.PROMPT,
    "BeforeTool": Kind.PRE_TOOL,
    "AfterTool": Kind.POST_TOOL,
    "AfterAgent": Kind.TURN_END,
    "PreCompress": Kind.COMPACT,
    "Notification": Kind.NOTIFICATION,
    "SessionEnd": Kind.SESSION_END,
}
_CURSOR = {
    "sessionStart": Kind.SESSION_START,
    "beforeSubmitPrompt": Kind.PROMPT,
    "beforeShellExecution": Kind.PRE_TOOL,
    "beforeMCPExecution": Kind.PRE_TOOL,
    "preToolUse": Kind.PRE_TOOL,
    "afterShellExecution": Kind.POST_TOOL,
    "afterMCPExecution": Kind.POST_TOOL,
    "postToolUse": Kind.POST_TOOL,
    "postToolUseFailure": Kind.TOOL_FAILED,
    "afterFileEdit": Kind.FILE_EDIT,
    "afterAgentResponse": Kind.ASSISTANT_TEXT,
    "stop": Kind.TURN_END,
    "subagentStart": Kind.SUBAGENT_START,
    "subagentStop": Kind.SUBAGENT_STOP,
    "preCompact": Kind.COMPACT,
    "sessionEnd": Kind.SESSION_END,
}

AGENTS: dict[str, Agent] = {
    "claude-code": Agent("claude-code", "claude-code", _CLAUDE, tuple(_CLAUDE)),
    "codex": Agent("codex", "codex", _CODEX, tuple(_CODEX)),
    # PreCompress fires before every model call (no compression happened in the
    # recordings): mapped, not installed.
    "gemini": Agent("gemini", "gemini-cli", _GEMINI, tuple(e for e in _GEMINI if e != "PreCompress")),
    "cursor": Agent("cursor", "cursor", _CURSOR,
                    ("sessionStart", "beforeSubmitPrompt", "beforeShellExecution", "beforeMCPExecution",
                     "afterShellExecution", "afterMCPExecution", "afterFileEdit", "afterAgentResponse",
                     "stop", "sessionEnd")),
    "git": Agent("git", "git", {"post-commit": Kind.COMMIT}, ("post-commit",)),
}
ALIASES = {"claude": "claude-code", "claude_code": "claude-code", "gemini-cli": "gemini", "codex-cli": "codex"}


def canonical(name: str) -> str:
    """The canonical agent name (``claude`` -> ``claude-code``); ValueError if unknown."""
    name = ALIASES.get(name, name)
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; expected one of {', '.join(AGENTS)} (alias claude)")
    return name


def kind_of(agent: str, payload: dict[str, Any]) -> str:
    """The ``Kind`` of a hook payload (unknown events are ``Kind.OTHER``)."""
    event = str(payload.get("hook_event_name") or "")
    return AGENTS[agent].events.get(event, Kind.OTHER)


def installed_events(agent: str) -> tuple[str, ...]:
    return AGENTS[canonical(agent)].install
