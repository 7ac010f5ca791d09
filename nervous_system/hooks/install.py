"""``ledger agent install|uninstall|status``: write, remove and list agents' hook configs.

Each agent's project-level hook file is **merged** into: other hooks and keys are left
as they are, running install twice changes nothing, and uninstall removes exactly the
entries install added (ours are recognised by the client path in their command, the
collector URL, or Gemini's handler name ``context-ledger``). Where to record (ledger
file, tenant, project, repository root) is written into the hook command itself, and
every install is listed in ``<hooks dir>/installs.json`` with the files it created and
the keys it added, which uninstall and status read.

| agent | file | notes |
| --- | --- | --- |
| claude-code | ``.claude/settings.json`` | ``--http``: HTTP hooks to the collector (SessionStart stays a command hook: Claude sends no HTTP hook for it) |
| codex | ``.codex/hooks.json`` (``--user``: ``$CODEX_HOME/hooks.json``) | project trust in ``$CODEX_HOME/config.toml`` and per-hook trust through ``codex app-server`` |
| gemini | ``.gemini/settings.json`` | the workspace must be trusted (``GEMINI_CLI_TRUST_WORKSPACE=true``, ``--skip-trust`` or a trusted folder) |
| cursor | ``.cursor/hooks.json`` | |
| git | ``post-commit`` in ``git rev-parse --git-path hooks`` | a marked block, appended to an existing hook |
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nervous_system.hooks.agents import AGENTS, canonical
from nervous_system.hooks.processor import hooks_dir

__all__ = ["InstallError", "Target", "install", "uninstall", "status", "hook_command", "CLIENT_PATH"]

CLIENT_PATH = Path(__file__).resolve().parent / "hook.py"
SHELL_PATH = Path(__file__).resolve().parent / "hook.sh"
MARK = "nervous_system/hooks/hook"
GEMINI_NAME = "context-ledger"
BLOCK_BEGIN = "# >>> context-ledger >>>"
BLOCK_END = "# <<< context-ledger <<<"
DEFAULT_PORT = 4318
#: Handler timeout written into the configs (seconds; Gemini: milliseconds): above the
#: client's own budget, so the agent never kills a hook that is still within it.
TIMEOUT_S = 60


class InstallError(Exception):
    """The install cannot be done (not a repository, unreadable config, ...)."""


@dataclass
class Target:
    """Where hooks record: the repository root, the ledger file, tenant and project."""

    root: Path
    db: Path
    tenant: str
    project: str
    python: str = sys.executable
    port: int = DEFAULT_PORT


@dataclass
class Report:
    agent: str
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changed: bool = False

    def to_dict(self) -> dict:
        return {"agent": self.agent, "files": self.files, "notes": self.notes, "changed": self.changed}


def repo_root(start: Path) -> Path:
    """The git work tree containing ``start`` (else ``start`` itself)."""
    from nervous_system.repo import repository_root

    found = repository_root(start)
    return Path(found).resolve() if found else Path(start).resolve()


def hook_command(agent: str, t: Target) -> str:
    """The command line the agent runs for every hook: ``bash hook.sh PYTHON ...`` (bash
    builtins only on the fast path) where bash 4+ is installed, else
    ``PYTHON -S -I hook.py ...`` (see docs/agents.md, "Latency")."""
    args = [agent, "--db", str(t.db), "--tenant", t.tenant, "--project", t.project, "--root", str(t.root),
            "--port", str(t.port)]
    bash = _bash()
    if bash:
        return shlex.join([bash, str(SHELL_PATH), t.python, *args])
    return shlex.join([t.python, "-S", "-I", str(CLIENT_PATH), *args])


def _bash() -> str | None:
    """An absolute bash 5+ (EPOCHREALTIME, /dev/tcp), or None."""
    if os.environ.get("LEDGER_HOOK_NO_BASH"):
        return None
    path = shutil.which("bash")
    if not path:
        return None
    try:
        out = subprocess.run([path, "-c", "echo ${BASH_VERSINFO[0]}"], capture_output=True, text=True, timeout=10)
        return path if int(out.stdout.strip() or 0) >= 5 else None
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


# ---------------------------------------------------------------------- json files
def _read_json(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text() or "{}")
    except ValueError as exc:
        raise InstallError(f"{path} is not valid JSON ({exc}); fix it first, nothing was changed") from exc
    if not isinstance(data, dict):
        raise InstallError(f"{path} does not hold a JSON object; nothing was changed")
    return data


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _ours(handler: Any) -> bool:
    if not isinstance(handler, dict):
        return False
    command = str(handler.get("command", ""))
    return (MARK in command or "nervous_system/hooks/client.py" in command or handler.get("name") == GEMINI_NAME
            or "/hook/claude-code" in str(handler.get("url", "")))


def _merge_hooks(data: dict, handlers: dict[str, dict], nested: bool = True) -> None:
    """Put our handler on each event: replace ours if there, else add a group."""
    hooks = data.setdefault("hooks", {})
    for event, handler in handlers.items():
        groups = hooks.setdefault(event, [])
        placed = False
        if nested:
            for group in groups:
                inner = group.get("hooks", []) if isinstance(group, dict) else []
                for i, h in enumerate(inner):
                    if _ours(h):
                        if not placed:
                            inner[i] = handler
                            placed = True
                        else:
                            inner[i] = None
                if isinstance(group, dict) and "hooks" in group:
                    group["hooks"] = [h for h in inner if h is not None]
            hooks[event] = [g for g in groups if not (isinstance(g, dict) and g.get("hooks") == [])]
            if not placed:
                hooks[event].append({"hooks": [handler]})
        else:
            kept, placed = [], False
            for h in groups:
                if _ours(h):
                    if not placed:
                        kept.append(handler)
                        placed = True
                else:
                    kept.append(h)
            if not placed:
                kept.append(handler)
            hooks[event] = kept


def _remove_hooks(data: dict, nested: bool = True) -> bool:
    hooks = data.get("hooks")
    if not isinstance(hooks, dict):
        return False
    changed = False
    for event in list(hooks):
        groups = hooks[event]
        if not isinstance(groups, list):
            continue
        if nested:
            new_groups = []
            for g in groups:
                if isinstance(g, dict) and isinstance(g.get("hooks"), list):
                    inner = [h for h in g["hooks"] if not _ours(h)]
                    if len(inner) != len(g["hooks"]):
                        changed = True
                        if not inner:
                            continue
                        g = {**g, "hooks": inner}
                new_groups.append(g)
        else:
            new_groups = [h for h in groups if not _ours(h)]
            changed = changed or len(new_groups) != len(groups)
        if new_groups:
            hooks[event] = new_groups
        else:
            del hooks[event]
    return changed


# ---------------------------------------------------------------------- manifest
def _manifest_path(db: Path) -> Path:
    return hooks_dir(db) / "installs.json"


def _manifest(db: Path) -> dict:
    try:
        return json.loads(_manifest_path(db).read_text())
    except (OSError, ValueError):
        return {}


def _save_manifest(db: Path, data: dict) -> None:
    _write_json(_manifest_path(db), data)


def _key(agent: str, root: Path, user: bool = False) -> str:
    return f"{agent}{' (user)' if user else ''} {root}"


# ---------------------------------------------------------------------- per agent
def _codex_home() -> Path:
    return Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex")


def _json_agent_file(agent: str, root: Path, user: bool) -> Path:
    if agent == "claude-code":
        return root / ".claude" / "settings.json"
    if agent == "codex":
        return (_codex_home() if user else root / ".codex") / "hooks.json"
    if agent == "gemini":
        return root / ".gemini" / "settings.json"
    if agent == "cursor":
        return root / ".cursor" / "hooks.json"
    raise InstallError(agent)


def _handlers(agent: str, t: Target, http: bool, token: str) -> dict[str, dict]:
    cmd = hook_command(agent, t)
    out = {}
    for event in AGENTS[agent].install:
        if agent == "gemini":
            out[event] = {"type": "command", "name": GEMINI_NAME, "command": cmd, "timeout": TIMEOUT_S * 1000}
        elif agent == "cursor":
            out[event] = {"command": cmd}
        elif agent == "claude-code" and http and event != "SessionStart":
            from urllib.parse import urlencode

            q = urlencode({"project": t.project, "tenant": t.tenant, "root": str(t.root)})
            out[event] = {"type": "http", "url": f"http://127.0.0.1:{t.port}/hook/claude-code?{q}",
                          "headers": {"X-Ledger-Token": token}, "timeout": TIMEOUT_S}
        else:
            out[event] = {"type": "command", "command": cmd, "timeout": TIMEOUT_S}
    return out


def _claude_user_settings() -> Path:
    return Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude") / "settings.json"


def _apply_otel(data: dict, patch: dict, added_log: dict) -> None:
    """Set the patch's keys that are absent (or that we set earlier); log what we add."""
    for top, values in patch.items():
        section = data.setdefault(top, {})
        added = added_log.setdefault(top, [])
        for k, v in values.items():
            if k not in section:
                added.append(k)
            if k not in section or k in added:
                section[k] = v


def _otel_patch(agent: str, t: Target) -> dict:
    endpoint = f"http://127.0.0.1:{t.port}"
    if agent == "claude-code":
        return {"env": {"CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_LOGS_EXPORTER": "otlp",
                        "OTEL_METRICS_EXPORTER": "otlp", "OTEL_TRACES_EXPORTER": "otlp",
                        "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}}
    if agent == "gemini":
        return {"telemetry": {"enabled": True, "target": "local", "otlpEndpoint": endpoint, "otlpProtocol": "http",
                              "logPrompts": True}}
    return {}


def _token(db: Path) -> str:
    from nervous_system.hooks.collector import _token as make

    return make(hooks_dir(db))


def install(agent: str, t: Target, *, user: bool = False, http: bool = False, otel: bool = False,
            trust: bool = True, codex_bin: str | None = None) -> Report:
    """Install ``agent``'s hooks for ``t``; returns what was done."""
    agent = canonical(agent)
    rep = Report(agent)
    manifest = _manifest(t.db)
    key = _key(agent, t.root, user)
    entry = manifest.get(key) or {"agent": agent, "root": str(t.root), "user": user, "created": [], "added": {}}
    entry.update({"db": str(t.db), "tenant": t.tenant, "project": t.project, "time_ns": time.time_ns()})
    if agent == "git":
        path = _git_hook_path(t.root)
        created = not path.exists()
        rep.changed = _install_git(path, t)
        if created:
            entry["created"] = sorted(set(entry["created"]) | {str(path)})
        rep.files.append(str(path))
    else:
        path = _json_agent_file(agent, t.root, user)
        created = not path.exists()
        if not path.parent.exists():
            entry["created"] = sorted(set(entry["created"]) | {str(path.parent) + "/"})
        data = _read_json(path)
        before = json.dumps(data, sort_keys=True)
        if agent == "cursor":
            data.setdefault("version", 1)
        _merge_hooks(data, _handlers(agent, t, http, _token(t.db) if http else ""), nested=agent != "cursor")
        if otel and agent == "gemini":
            _apply_otel(data, _otel_patch(agent, t), entry["added"])
        if otel and agent == "codex":
            rep.notes.append(_codex_otel(t, entry))
        if json.dumps(data, sort_keys=True) != before:
            _write_json(path, data)
            rep.changed = True
        if created:
            entry["created"] = sorted(set(entry["created"]) | {str(path)})
        rep.files.append(str(path))
        if otel and agent == "claude-code":
            # Claude Code 2.1 reads OTEL_* from the env block of the USER settings, not of
            # the project's (verified with the real CLI): no project attribute there, the
            # collector joins its telemetry to the hook session by session id
            upath = _claude_user_settings()
            udata = _read_json(upath)
            if not upath.exists():
                entry["created_user"] = [str(upath)]
            ubefore = json.dumps(udata, sort_keys=True)
            _apply_otel(udata, _otel_patch(agent, t), entry.setdefault("added_user", {}))
            if json.dumps(udata, sort_keys=True) != ubefore:
                _write_json(upath, udata)
                rep.changed = True
            rep.files.append(str(upath))
        if agent == "codex":
            rep.notes.extend(_codex_trust(t, entry, user, trust, codex_bin))
        if agent == "gemini":
            rep.notes.append("Gemini CLI runs project hooks only in a trusted workspace: start it with "
                             "GEMINI_CLI_TRUST_WORKSPACE=true or --skip-trust, or trust this folder when it asks.")
        if http:
            rep.notes.append(f"HTTP hooks go to the collector on 127.0.0.1:{t.port} (started by the SessionStart "
                             "command hook, or run `ledger serve`).")
    if otel and agent in ("claude-code", "gemini"):
        rep.notes.append(f"OpenTelemetry export goes to http://127.0.0.1:{t.port} (`ledger serve`).")
    entry["files"] = sorted(set(entry.get("files", [])) | set(rep.files))
    manifest[key] = entry
    _save_manifest(t.db, manifest)
    return rep


def uninstall(agent: str, t: Target, *, user: bool = False) -> Report:
    """Remove exactly what ``install`` added for ``agent`` in ``t.root``."""
    agent = canonical(agent)
    rep = Report(agent)
    manifest = _manifest(t.db)
    key = _key(agent, t.root, user)
    entry = manifest.get(key, {"created": [], "added": {}})
    if agent == "git":
        path = _git_hook_path(t.root)
        if path.exists():
            text = path.read_text()
            new = _strip_block(text)
            if new != text:
                rep.changed = True
                if str(path) in entry.get("created", []) and new.strip() in ("", "#!/bin/sh"):
                    path.unlink()
                else:
                    path.write_text(new)
                rep.files.append(str(path))
    else:
        path = _json_agent_file(agent, t.root, user)
        if path.exists():
            data = _read_json(path)
            changed = _remove_hooks(data, nested=agent != "cursor")
            if isinstance(data.get("hooks"), dict) and not data["hooks"]:
                del data["hooks"]
            for top, keys in (entry.get("added") or {}).items():
                section = data.get(top)
                if isinstance(section, dict):
                    for k in keys:
                        if section.pop(k, None) is not None:
                            changed = True
                    if not section:
                        del data[top]
            if agent == "cursor" and set(data) == {"version"} and str(path) in entry.get("created", []):
                data = {}
            if changed:
                rep.changed = True
                rep.files.append(str(path))
                if not data and str(path) in entry.get("created", []):
                    path.unlink()
                    if str(path.parent) + "/" in entry.get("created", []):
                        try:
                            path.parent.rmdir()
                        except OSError:
                            pass  # something else lives there now
                else:
                    _write_json(path, data)
        if agent == "claude-code" and entry.get("added_user"):
            upath = _claude_user_settings()
            if upath.exists():
                udata = _read_json(upath)
                for top, keys in entry["added_user"].items():
                    section = udata.get(top)
                    if isinstance(section, dict):
                        for k in keys:
                            section.pop(k, None)
                        if not section:
                            del udata[top]
                if not udata and str(upath) in entry.get("created_user", []):
                    upath.unlink()
                else:
                    _write_json(upath, udata)
                rep.changed = True
                rep.files.append(str(upath))
        if agent == "codex":
            cfg = _codex_home() / "config.toml"
            if cfg.exists():
                text = cfg.read_text()
                new = _strip_block(text)
                if new != text:
                    cfg.write_text(new)
                    rep.changed = True
                    rep.files.append(str(cfg))
    manifest.pop(key, None)
    _save_manifest(t.db, manifest)
    return rep


# ---------------------------------------------------------------------- codex
def _append_block(path: Path, body: str, tag: str) -> bool:
    text = path.read_text() if path.exists() else ""
    begin = f"{BLOCK_BEGIN} {tag}"
    if begin in text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    sep = "" if not text or text.endswith("\n") else "\n"
    path.write_text(f"{text}{sep}{begin}\n{body.rstrip()}\n{BLOCK_END}\n")
    return True


def _strip_block(text: str) -> str:
    out, skip = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith(BLOCK_BEGIN):
            skip = True
            continue
        if skip and line.startswith(BLOCK_END):
            skip = False
            continue
        if not skip:
            out.append(line)
    return "".join(out)


def _codex_trust(t: Target, entry: dict, user: bool, trust: bool, codex_bin: str | None) -> list[str]:
    notes = []
    cfg = _codex_home() / "config.toml"
    text = cfg.read_text() if cfg.exists() else ""
    table = f"[projects.{json.dumps(str(t.root))}]"
    if not user and table not in text:
        _append_block(cfg, f'{table}\ntrust_level = "trusted"', f"trust {t.root}")
        notes.append(f"trusted the project in {cfg} ({table} trust_level = \"trusted\"): Codex reads project "
                     "hooks only in trusted projects")
    if not trust:
        notes.append("hook trust not written (--no-trust): Codex skips untrusted hooks without a word; run "
                     "`ledger agent install codex` again without --no-trust, or approve the hooks in Codex")
        return notes
    argv = shlex.split(codex_bin) if codex_bin else ([shutil.which("codex")] if shutil.which("codex") else None)
    if not argv:
        notes.append("Codex not found on PATH: its hooks stay untrusted (skipped without a word) until you "
                     "approve them in Codex, or rerun with --codex-bin PATH")
        return notes
    try:
        trusted = trust_codex_hooks(argv, t.root)
        notes.append(f"trusted {trusted} Codex hook(s) through `codex app-server` (hooks/list, config/batchWrite)")
    except Exception as exc:  # noqa: BLE001 - say what the user must do
        notes.append(f"could not trust the hooks through codex app-server ({exc}); approve them in Codex "
                     "or run codex with --dangerously-bypass-hook-trust")
    return notes


def trust_codex_hooks(argv: list[str], root: Path, timeout: float = 60) -> int:
    """Ask ``codex app-server`` for the hooks of ``root`` and persist trust for ours
    (Codex computes the key and hash); returns how many are trusted afterwards."""
    p = subprocess.Popen([*argv, "app-server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + timeout
    next_id = [0]

    def call(method: str, params: dict) -> dict:
        next_id[0] += 1
        p.stdin.write(json.dumps({"id": next_id[0], "method": method, "params": params}) + "\n")
        p.stdin.flush()
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                raise RuntimeError(f"codex app-server closed before answering {method}")
            msg = json.loads(line)
            if msg.get("id") == next_id[0]:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
        raise TimeoutError(method)

    try:
        call("initialize", {"clientInfo": {"name": "context-ledger", "version": "0"}})
        p.stdin.write(json.dumps({"method": "initialized"}) + "\n")
        p.stdin.flush()
        hooks = call("hooks/list", {"cwds": [str(root)]})["data"][0]["hooks"]
        ours = {h["key"]: {"trusted_hash": h["currentHash"]} for h in hooks
                if MARK in json.dumps(h) or _key_is_ours(h)}
        if ours:
            call("config/batchWrite", {"edits": [{"keyPath": "hooks.state", "value": ours, "mergeStrategy": "upsert"}]})
        after = call("hooks/list", {"cwds": [str(root)]})["data"][0]["hooks"]
        return sum(1 for h in after if h["key"] in ours and h.get("trustStatus") == "trusted")
    finally:
        p.kill()
        p.wait()


def _key_is_ours(hook: dict) -> bool:
    """A hooks.json key (``<file>:<event>:<group>:<handler>``) whose handler is ours."""
    try:
        file, event, g, h = hook["key"].rsplit(":", 3)
        data = json.loads(Path(file).read_text())
        norm = event.replace("_", "").lower()
        groups = next(v for k, v in data["hooks"].items() if k.lower() == norm)
        return _ours(groups[int(g)]["hooks"][int(h)])
    except Exception:  # noqa: BLE001
        return False


def _codex_otel(t: Target, entry: dict) -> str:
    cfg = _codex_home() / "config.toml"
    text = cfg.read_text() if cfg.exists() else ""
    if "[otel]" in text:
        return f"{cfg} already has an [otel] table: point its exporters at http://127.0.0.1:{t.port}/v1/..."
    ep = f"http://127.0.0.1:{t.port}"
    _append_block(cfg, f"""[otel]
log_user_prompt = true
exporter = {{ otlp-http = {{ endpoint = "{ep}/v1/logs", protocol = "binary" }} }}
trace_exporter = {{ otlp-http = {{ endpoint = "{ep}/v1/traces", protocol = "binary" }} }}
metrics_exporter = {{ otlp-http = {{ endpoint = "{ep}/v1/metrics", protocol = "binary" }} }}""", "otel")
    return f"Codex telemetry ([otel], user-level in {cfg}) now goes to {ep}"


# ---------------------------------------------------------------------- git
def _git_hook_path(root: Path) -> Path:
    out = subprocess.run(["git", "-C", str(root), "rev-parse", "--git-path", "hooks"], capture_output=True,
                         text=True, timeout=10)
    if out.returncode != 0:
        raise InstallError(f"{root} is not a git repository: {out.stderr.strip()}")
    hooks = Path(out.stdout.strip())
    if not hooks.is_absolute():
        hooks = root / hooks
    return hooks / "post-commit"


def _install_git(path: Path, t: Target) -> bool:
    body = f"{hook_command('git', t)} </dev/null >/dev/null 2>&1 || true"
    text = path.read_text() if path.exists() else ""
    if BLOCK_BEGIN in text:
        new = _strip_block(text)
        new_text = f"{new}{'' if new.endswith(chr(10)) or not new else chr(10)}{BLOCK_BEGIN} post-commit\n{body}\n{BLOCK_END}\n"
        if new_text == text:
            return False
        path.write_text(new_text)
    else:
        if not text:
            text = "#!/bin/sh\n"
        _append_block_text = f"{text}{'' if text.endswith(chr(10)) else chr(10)}{BLOCK_BEGIN} post-commit\n{body}\n{BLOCK_END}\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_append_block_text)
    path.chmod(path.stat().st_mode | 0o111)
    return True


# ---------------------------------------------------------------------- status
def status(root: Path, db: Path) -> dict:
    """What is installed where (for ``root`` and in the manifest of ``db``), the last
    event per agent, and hook failures."""
    manifest = _manifest(db)
    installed = []
    for key, entry in sorted(manifest.items()):
        present = []
        for f in entry.get("files", []):
            p = Path(f)
            try:
                present.append(p.exists() and (MARK in p.read_text() or GEMINI_NAME in p.read_text()))
            except OSError:
                present.append(False)
        installed.append({"agent": entry["agent"], "root": entry["root"], "user": entry.get("user", False),
                          "files": entry.get("files", []), "tenant": entry.get("tenant"),
                          "project": entry.get("project"), "db": entry.get("db"),
                          "present": all(present) if present else False})
    hdir = hooks_dir(db)
    failures = []
    try:
        for line in (hdir / "failures.jsonl").read_text().splitlines():
            try:
                failures.append(json.loads(line))
            except ValueError:
                continue
    except OSError:
        pass
    collector = None
    try:
        collector = json.loads((hdir / "collector.json").read_text())
        collector.pop("token", None)
        try:
            os.kill(int(collector["pid"]), 0)
            collector["running"] = True
        except (OSError, ValueError, KeyError):
            collector["running"] = False
    except (OSError, ValueError):
        pass
    spooled = len(list((hdir / "spool").glob("*.json"))) if (hdir / "spool").is_dir() else 0
    return {"root": str(root), "db": str(db), "installed": installed, "collector": collector,
            "spooled": spooled, "failures": len(failures), "recent_failures": failures[-10:]}


def last_events(ledger, installed: list[dict]) -> dict[str, dict]:
    """The newest event of each installed agent (by agent id prefix) in its project."""
    out = {}
    for item in installed:
        agent_id = AGENTS[item["agent"]].agent_id
        for stored in ledger.events(tenant_id=item["tenant"], project_id=item["project"], agent_id=agent_id,
                                    limit=1, descending=True):
            ev = stored.event
            out[item["agent"]] = {"event_id": ev.event_id, "time_ns": ev.timestamp, "kind": stored.kind,
                                  "session_id": ev.session_id}
    return out
