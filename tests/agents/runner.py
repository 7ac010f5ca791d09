"""Run a REAL coding-agent CLI offline against the scripted model, and collect what it sent.

    from tests.agents.runner import run_agent
    run = run_agent("claude", workspace)          # or "codex", "gemini"
    run.exit_code, run.hooks(), run.model_requests(), run.otlp_records()

Everything the agent sees is made fresh in a temporary directory (HOME, CODEX_HOME,
config dirs); the real user's home is never read or written. The agent runs in ONE
`unshare -n` process (loopback only) together with the scripted model server and the
OTLP sink (see netns_main.py); hooks, being children of the agent, run there too.

Per agent (see docs/agents-recorded.md for what each setting does and where it was found):

* claude: env ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY, telemetry and update checks by
  env; project hooks in `<workspace>/.claude/settings.json`; `-p --dangerously-skip-permissions`.
* codex: `$CODEX_HOME/config.toml` (custom provider, wire_api = "responses", [otel],
  project trust); project hooks in `<workspace>/.codex/hooks.json`;
  `exec --dangerously-bypass-approvals-and-sandbox --dangerously-bypass-hook-trust`.
* gemini: `$HOME/.gemini/settings.json` (auth type, telemetry, no updates/usage stats),
  env GEMINI_API_KEY / GOOGLE_GEMINI_BASE_URL; project hooks in
  `<workspace>/.gemini/settings.json`; `-p --yolo`.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
HOOK_RECORDER = HERE / "hook_recorder.py"
NETNS_MAIN = HERE / "netns_main.py"

try:  # package import (pytest) or plain script import
    from .model_server import PROMPT
except ImportError:  # pragma: no cover
    from model_server import PROMPT

AGENTS = ("claude", "codex", "gemini")

#: Every hook event each agent's config accepts (from the packages' own files, see the doc).
HOOK_EVENTS: dict[str, tuple[str, ...]] = {
    "claude": (
        "PreToolUse", "PostToolUse", "PostToolUseFailure", "PostToolBatch", "Notification",
        "UserPromptSubmit", "UserPromptExpansion", "SessionStart", "SessionEnd", "Stop",
        "StopFailure", "SubagentStart", "SubagentStop", "PreCompact", "PostCompact",
        "PreModelSwitch", "PostModelSwitch", "PermissionRequest", "PermissionDenied", "Setup",
        "TeammateIdle", "TaskCreated", "TaskCompleted", "Elicitation", "ElicitationResult",
        "ConfigChange", "WorktreeCreate", "WorktreeRemove", "InstructionsLoaded", "CwdChanged",
        "FileChanged", "DirectoryAdded", "MessageDisplay", "PreSkillShellCommand",
    ),
    "codex": (
        "SessionStart", "SessionEnd", "UserPromptSubmit", "PreToolUse", "PermissionRequest",
        "PostToolUse", "PreCompact", "PostCompact", "SubagentStart", "SubagentStop", "Stop",
    ),
    "gemini": (
        "SessionStart", "SessionEnd", "BeforeAgent", "AfterAgent", "BeforeModel", "AfterModel",
        "BeforeToolSelection", "BeforeTool", "AfterTool", "PreCompress", "Notification",
    ),
}

FAKE_KEYS = {"claude": "sk-ant-scripted-fake-key-0000000000", "codex": "sk-scripted-fake-key-0000",
             "gemini": "scripted-fake-gemini-key"}


@dataclass
class AgentRun:
    """What one run left behind. Paths are inside `run_dir` (kept after the run)."""

    agent: str
    workspace: Path
    run_dir: Path
    exit_code: int | None
    timed_out: bool
    duration_s: float
    stdout_tail: str
    stderr_tail: str
    model_log: Path
    hooks_log: Path
    otlp_log: Path
    home: Path
    result: dict = field(default_factory=dict)

    def hooks(self) -> list[dict]:
        """hook_recorder lines, in the order they were written."""
        return _read_jsonl(self.hooks_log)

    def model_requests(self) -> list[dict]:
        return _read_jsonl(self.model_log)

    def otlp_records(self) -> list[dict]:
        return _read_jsonl(self.otlp_log)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def hook_command(agent: str, event: str, hooks_log: Path) -> str:
    """Shell command line a hook entry runs: the recorder with (agent, event, log path)."""
    return " ".join(shlex.quote(str(a)) for a in (sys.executable, HOOK_RECORDER, agent, event, hooks_log))


HooksWriter = Callable[[str, Path, Path, Path], list[Path]]
"""hooks_config_writer(agent, workspace, home, hooks_log) -> files with port placeholders.

Installs the agent's hooks however the caller likes (e.g. `ledger agent install`).
`home` is the temp HOME (for codex, CODEX_HOME is `home/.codex`). It may return files
that contain `@MODEL_PORT@` / `@OTLP_PORT@`, which are filled in inside the namespace."""


def default_hooks_writer(agent: str, workspace: Path, home: Path, hooks_log: Path) -> list[Path]:
    """Project-level hooks: the recorder on EVERY event the agent offers."""
    events = HOOK_EVENTS[agent]
    if agent == "claude":
        path = workspace / ".claude" / "settings.json"
        hooks = {}
        for ev in events:
            entry = [{"type": "command", "command": hook_command(agent, ev, hooks_log)}]
            # Claude Code also has HTTP hooks: POST the same JSON to the scripted server.
            entry.append({"type": "http", "url": f"http://127.0.0.1:@MODEL_PORT@/hooks/claude/{ev}"})
            hooks[ev] = [{"hooks": entry}]
        _merge_json(path, {"hooks": hooks})
        return [path]
    if agent == "codex":
        path = workspace / ".codex" / "hooks.json"
        _merge_json(path, {"hooks": {ev: [{"hooks": [{"type": "command", "command": hook_command(agent, ev, hooks_log)}]}]
                                     for ev in events}})
        return []
    if agent == "gemini":
        path = workspace / ".gemini" / "settings.json"
        _merge_json(path, {"hooks": {ev: [{"hooks": [{"type": "command", "name": f"recorder-{ev}",
                                                      "command": hook_command(agent, ev, hooks_log)}]}]
                                     for ev in events}})
        return []
    raise ValueError(agent)


def _merge_json(path: Path, patch: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(patch)
    path.write_text(json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------- per-agent setup


def _base_env(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "TMPDIR": str(home / "tmp"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }


def _setup_claude(workspace: Path, home: Path, otlp: bool) -> tuple[list[str], dict[str, str], list[Path]]:
    env = {
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:@MODEL_PORT@",
        "ANTHROPIC_API_KEY": FAKE_KEYS["claude"],
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",  # vendor telemetry only: OTel export still works (verified)
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",  # drops the HEAD /api/hello probe too
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1",
        "IS_SANDBOX": "1",  # lets --dangerously-skip-permissions run as root
    }
    if otlp:
        env.update({
            "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_TRACES_EXPORTER": "otlp",
            "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:@OTLP_PORT@",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_LOGS_EXPORT_INTERVAL": "500",
            "OTEL_TRACES_EXPORT_INTERVAL": "500",
            "OTEL_LOG_TOOL_DETAILS": "1",
            "OTEL_LOG_USER_PROMPTS": "1",
        })
    (home / ".claude").mkdir(parents=True, exist_ok=True)
    exe = NODE_MODULES / "@anthropic-ai" / "claude-code-linux-x64" / "claude"
    if not exe.exists():
        exe = NODE_MODULES / ".bin" / "claude"
    argv = [str(exe), "-p", PROMPT, "--dangerously-skip-permissions", "--output-format", "json", "--verbose"]
    return argv, env, []


def _setup_codex(workspace: Path, home: Path, otlp: bool) -> tuple[list[str], dict[str, str], list[Path]]:
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    toml = f"""# written by tests/agents/runner.py
model = "gpt-5.5"
model_provider = "scripted"
check_for_update_on_startup = false
approval_policy = "never"
sandbox_mode = "danger-full-access"

[model_providers.scripted]
name = "scripted"
base_url = "http://127.0.0.1:@MODEL_PORT@/v1"
env_key = "SCRIPTED_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[projects.{json.dumps(str(workspace))}]
trust_level = "trusted"

[analytics]
enabled = false

[feedback]
enabled = false
"""
    if otlp:
        toml += """
[otel]
environment = "harness"
log_user_prompt = true
exporter = { otlp-http = { endpoint = "http://127.0.0.1:@OTLP_PORT@/v1/logs", protocol = "binary" } }
trace_exporter = { otlp-http = { endpoint = "http://127.0.0.1:@OTLP_PORT@/v1/traces", protocol = "binary" } }
metrics_exporter = { otlp-http = { endpoint = "http://127.0.0.1:@OTLP_PORT@/v1/metrics", protocol = "binary" } }
"""
    cfg = codex_home / "config.toml"
    cfg.write_text(toml)
    env = {"CODEX_HOME": str(codex_home), "SCRIPTED_API_KEY": FAKE_KEYS["codex"]}
    argv = ["node", str(NODE_MODULES / "@openai" / "codex" / "bin" / "codex.js"), "exec", "--strict-config",
            "--dangerously-bypass-approvals-and-sandbox", "--dangerously-bypass-hook-trust",
            "--skip-git-repo-check", "--color", "never", "--json", PROMPT]
    return argv, env, [cfg]


def _setup_gemini(workspace: Path, home: Path, otlp: bool) -> tuple[list[str], dict[str, str], list[Path]]:
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
        "privacy": {"usageStatisticsEnabled": False},
        "ide": {"enabled": False, "hasSeenNudge": True},
        "telemetry": {"enabled": otlp, "target": "local", "otlpEndpoint": "http://127.0.0.1:@OTLP_PORT@",
                      "otlpProtocol": "http", "logPrompts": True, "traces": True},
    }
    path = home / ".gemini" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")
    env = {
        "GEMINI_API_KEY": FAKE_KEYS["gemini"],
        "GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:@MODEL_PORT@",
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
    }
    argv = ["node", str(NODE_MODULES / "@google" / "gemini-cli" / "bundle" / "gemini.js"),
            "-p", PROMPT, "--yolo", "--output-format", "json"]
    return argv, env, [path]


_SETUP = {"claude": _setup_claude, "codex": _setup_codex, "gemini": _setup_gemini}


def unshare_prefix() -> list[str]:
    """`unshare -n` as root; a user namespace (`-rn`) otherwise."""
    if not shutil.which("unshare"):
        raise RuntimeError("the agent harness needs `unshare` (util-linux) to run agents without network")
    return ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]


def check_unshare() -> None:
    """Raise RuntimeError with a clear message if a loopback-only namespace cannot be made."""
    p = subprocess.run([*unshare_prefix(), sys.executable, "-c", "import socket; print(socket.if_nameindex())"],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise RuntimeError(f"cannot create a network namespace with {unshare_prefix()}: {p.stderr.strip()}")


def run_agent(agent: str, workspace: Path, *, hooks_config_writer: HooksWriter | None = None,
              extra_env: dict[str, str] | None = None, otlp: bool = True, timeout_s: float = 180,
              run_dir: Path | None = None, prompt: str | None = None,
              codex_hook_trust: str = "bypass", pre_commands: list[list[str]] | None = None) -> AgentRun:
    """Run `agent` ("claude" | "codex" | "gemini") once on `workspace` with the scripted model.

    Args:
        workspace: the project directory (the agent's cwd); the caller prepares it.
        hooks_config_writer: installs hooks (default: `default_hooks_writer`, the
            recorder on every event); see `HooksWriter`.
        extra_env: added to (and overriding) the agent's environment.
        otlp: turn the agent's OpenTelemetry export on, pointed at the sink.
        timeout_s: seconds before the agent's process group is killed.
        run_dir: where logs and the temp HOME go (default: a new temp directory).
        prompt: the user prompt (default: model_server.PROMPT; the scenario ignores it).
        codex_hook_trust: "bypass" runs `codex exec --dangerously-bypass-hook-trust`;
            "app-server" instead persists trust for the workspace's hooks first, with
            codex_trust.py inside the namespace (what a real install has to do);
            "none" does neither (Codex then skips the hooks without a word).
        pre_commands: more commands run inside the namespace before the agent (after
            the trust step), e.g. `ledger agent install codex` doing its own trust.
    Returns:
        AgentRun with exit code, output tails and the three logs' paths.
    """
    if agent not in _SETUP:
        raise ValueError(f"unknown agent {agent!r}; expected one of {AGENTS}")
    workspace = Path(workspace).resolve()
    run_dir = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix=f"agent-{agent}-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    home = run_dir / "home"
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    logs = {k: run_dir / f"{k}.jsonl" for k in ("model", "hooks", "otlp")}
    for p in logs.values():
        p.write_text("")
    argv, env_agent, templates = _SETUP[agent](workspace, home, otlp)
    if prompt is not None:
        argv = [prompt if a == PROMPT else a for a in argv]
    pre_argv: list[list[str]] = []
    if codex_hook_trust not in ("bypass", "app-server", "none"):
        raise ValueError(f"codex_hook_trust must be 'bypass', 'app-server' or 'none', not {codex_hook_trust!r}")
    if agent == "codex" and codex_hook_trust != "bypass":
        argv = [a for a in argv if a != "--dangerously-bypass-hook-trust"]
        if codex_hook_trust == "app-server":
            pre_argv.append([sys.executable, str(HERE / "codex_trust.py"), str(workspace)])
    pre_argv.extend(pre_commands or [])
    writer = hooks_config_writer or default_hooks_writer
    templates = templates + list(writer(agent, workspace, home, logs["hooks"]) or [])
    env = {**_base_env(home), **env_agent, "AGENT_HOOK_LOG": str(logs["hooks"]), **(extra_env or {})}
    spec = {"argv": argv, "env": env, "cwd": str(workspace), "timeout_s": timeout_s,
            "model_log": str(logs["model"]), "otlp_log": str(logs["otlp"]),
            "result_path": str(run_dir / "result.json"), "stdout_path": str(run_dir / "stdout.txt"),
            "stderr_path": str(run_dir / "stderr.txt"), "template_files": [str(t) for t in templates],
            "pre_argv": pre_argv,
            "grace_s": 3}
    spec_path = run_dir / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    proc = subprocess.run([*unshare_prefix(), sys.executable, str(NETNS_MAIN), str(spec_path)],
                          capture_output=True, text=True, timeout=timeout_s + 60)
    result_path = run_dir / "result.json"
    if proc.returncode != 0 or not result_path.exists():
        raise RuntimeError(f"netns_main failed (exit {proc.returncode}): {proc.stderr[-4000:]}")
    res = json.loads(result_path.read_text())
    if res.get("pre_failed"):
        raise RuntimeError(f"pre-run command {res['pre_failed']} failed: {res['stderr_tail'][-4000:]}")
    return AgentRun(agent=agent, workspace=workspace, run_dir=run_dir, exit_code=res["exit_code"],
                    timed_out=res["timed_out"], duration_s=res["duration_s"], stdout_tail=res["stdout_tail"],
                    stderr_tail=res["stderr_tail"], model_log=logs["model"], hooks_log=logs["hooks"],
                    otlp_log=logs["otlp"], home=home, result=res)


def make_workspace(path: Path) -> Path:
    """A small git repo for the scenario: notes.txt, old.txt, run.sh, .gitignore, one commit."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "notes.txt").write_text("first line\n")
    (path / "old.txt").write_text("to be renamed\n")
    (path / "run.sh").write_text("#!/bin/sh\necho run\n")
    (path / ".gitignore").write_text("*.log\n")
    genv = {**os.environ, "GIT_AUTHOR_NAME": "harness", "GIT_AUTHOR_EMAIL": "harness@example.invalid",
            "GIT_COMMITTER_NAME": "harness", "GIT_COMMITTER_EMAIL": "harness@example.invalid"}
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "init"]):
        subprocess.run(cmd, cwd=path, check=True, env=genv, capture_output=True)
    return path


if __name__ == "__main__":  # python tests/agents/runner.py AGENT [RUN_DIR]
    a = sys.argv[1]
    rd = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp(prefix=f"agent-{a}-"))
    ws = make_workspace(rd / "ws")
    r = run_agent(a, ws, run_dir=rd / "run")
    print(json.dumps({"exit_code": r.exit_code, "timed_out": r.timed_out, "duration_s": r.duration_s,
                      "run_dir": str(r.run_dir), "hooks": len(r.hooks()), "model_requests": len(r.model_requests()),
                      "otlp": len(r.otlp_records())}, indent=1))
