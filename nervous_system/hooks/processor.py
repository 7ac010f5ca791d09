"""From one hook payload to events: the session/turn model and the work-tree diff.

``HookProcessor.handle(agent, payload, meta)`` is the one place hook payloads become
events, used by the collector (``ledger serve``, warm: it keeps the last snapshot of
each work tree in memory) and by the in-process fallback (cold: same code, a full
snapshot). Everything one hook produces is appended with ONE ``Ledger.append_many``
(one transaction, durable on return in ``full`` durability).

Session and turn model (docs/agents.md):

* the session id is the payload's ``session_id`` (Cursor: ``conversation_id``);
* a turn starts at the prompt (``UserPromptSubmit`` / ``BeforeAgent`` /
  ``beforeSubmitPrompt``) and ends at ``Stop`` / ``AfterAgent`` / ``stop``. Its key is
  the agent's own turn id where there is one (Codex ``turn_id``, Claude ``prompt_id``,
  Cursor ``generation_id``), else a counter; its **decision id is chosen when the turn
  starts** (deterministic: agent, session, turn key), so the file changes of the turn
  are recorded with ``caused_by`` = that id as they happen, and the ``AgentDecision``
  (rationale = the assistant's final text, input_trigger = the prompt) is recorded with
  that id at the end of the turn;
* each tool call is a span: started at the before-tool hook, recorded at the
  after-tool hook with the changes it made (trace id from ``TRACEPARENT`` when the
  hook gets one, else derived from the session; span id from the tool-use id, Gemini
  and Cursor: paired by tool name in order);
* per-session state (current turn, open tool calls) lives in a small JSON file per
  session under ``<hooks dir>/sessions/``, so a restarted collector or the in-process
  fallback carries on.

File changes: at every hook that can follow a change (prompt, before/after tool, turn
end, subagent stop, session end, commit) the work tree is snapshotted and compared
with the previous snapshot; changed paths are recorded against the ledger's own
state of each path (``previous_state_hash`` from the ledger), so replay is exact even
when the snapshot cache is cold. At session start the whole tree is compared with the
ledger (the baseline). ``.git/``, git-ignored paths and the ledger's own files are
never recorded.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import socket
import stat
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger import Ledger, PathState
from ledger.changes import UNKNOWN, apply_change, file_state_change
from ledger.errors import DuplicateEventId
from nervous_system.worktree import Entry, Excluder, StatCache, cache_path, diff, read_content, snapshot
from nervous_system.hooks.watch import Unsure, Watcher
from nervous_system.hooks.agents import AGENTS, Kind, canonical, kind_of
from schemas import (
    AgentDecision,
    AgentMessage,
    SpanKind,
    SpanRecord,
    SpanStatusCode,
    SwarmEvent,
    SystemSignal,
    deterministic_event_id,
)

__all__ = ["HookMeta", "HookProcessor", "HookResult", "hooks_dir"]

#: Longest text kept in a span attribute for a tool's input or response.
MAX_TOOL_TEXT = 32 * 1024
#: Longest prompt / rationale kept.
MAX_TEXT = 256 * 1024
_SNAPSHOT_KINDS = {Kind.PROMPT, Kind.PRE_TOOL, Kind.POST_TOOL, Kind.TOOL_FAILED, Kind.FILE_EDIT, Kind.TURN_END,
                   Kind.TURN_FAILED, Kind.SUBAGENT_STOP, Kind.FILES_CHANGED, Kind.SESSION_END, Kind.COMMIT}


def hooks_dir(db: str | os.PathLike) -> Path:
    """``<db>.hooks``: the collector's port file, lock, spool, sessions and failures log."""
    return Path(str(db) + ".hooks")


@dataclass
class HookMeta:
    """What the client adds to a payload: where to record (install's decision) and
    when the hook ran. ``delivery`` identifies one hook invocation (retries and spool
    replays of it record nothing twice)."""

    agent: str
    tenant: str = ""
    project: str = ""
    root: str = ""
    t_ns: int = 0
    delivery: str = ""
    ppid: int = 0
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], agent: str | None = None) -> "HookMeta":
        return cls(agent=agent or str(data.get("agent") or ""), tenant=str(data.get("tenant") or ""),
                   project=str(data.get("project") or ""), root=str(data.get("root") or ""),
                   t_ns=int(data.get("t_ns") or 0), delivery=str(data.get("delivery") or ""),
                   ppid=int(data.get("ppid") or 0),
                   env={str(k): str(v) for k, v in (data.get("env") or {}).items()})


@dataclass
class HookResult:
    kind: str
    event_ids: list[str]
    inserted: int


def _h(*parts: str, n: int = 32) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:n]


def _text(value: Any, limit: int = MAX_TOOL_TEXT) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class HookProcessor:
    """Turns hook payloads into events in ``ledger`` (see the module docstring).

    ``default_tenant``/``default_project``: used when the hook's meta names none.
    ``watch``: keep an inotify watch on each work tree (``nervous_system.hooks.watch``)
    so a hook re-reads only the paths the kernel reported (the collector; a cold
    in-process hook walks the tree). Thread-safe: one hook is processed at a time.
    """

    def __init__(self, ledger: Ledger, *, default_tenant: str = "default", default_project: str = "",
                 state_dir: Path | None = None, watch: bool = False):
        self.ledger = ledger
        self.default_tenant = default_tenant
        self.default_project = default_project
        self.state_dir = Path(state_dir) if state_dir else hooks_dir(ledger.path)
        self._lock = threading.RLock()
        self._trees: dict[str, dict] = {}  # root -> entries, taken_ns, excluder, watcher
        self.watch = watch
        self.snapshot_stats = {"full": 0, "incremental": 0}
        self._sessions: dict[str, dict] = {}
        self.sessions_by_id: dict[str, tuple[str, str]] = {}  # session id -> (tenant, project)

    # ------------------------------------------------------------------ state
    def _session_path(self, agent: str, session: str) -> Path:
        return self.state_dir / "sessions" / f"{_h(agent, session, n=24)}.json"

    def _session(self, agent: str, session: str) -> dict:
        key = f"{agent}\x1f{session}"
        st = self._sessions.get(key)
        if st is None:
            try:
                st = json.loads(self._session_path(agent, session).read_text())
            except (OSError, ValueError):
                st = {"agent": agent, "session": session, "turn": None, "turns": 0, "tools": {}, "queue": {}}
            self._sessions[key] = st
        return st

    def _save(self, st: dict) -> None:
        path = self._session_path(st["agent"], st["session"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(st))
        os.replace(tmp, path)

    def last_session(self, root: str) -> dict | None:
        """The most recently active session state recording ``root`` (for git commits)."""
        best = None
        for st in self._sessions.values():
            if st.get("root") == root and (best is None or st.get("seen_ns", 0) > best.get("seen_ns", 0)):
                best = st
        if best is None:
            sdir = self.state_dir / "sessions"
            for p in sdir.glob("*.json") if sdir.is_dir() else ():
                try:
                    st = json.loads(p.read_text())
                except (OSError, ValueError):
                    continue
                if st.get("root") == root and (best is None or st.get("seen_ns", 0) > best.get("seen_ns", 0)):
                    best = st
        return best

    # ------------------------------------------------------------------ main
    def handle(self, agent: str, payload: dict[str, Any], meta: HookMeta) -> HookResult:
        """Record what one hook payload means; returns the event ids (all committed)."""
        agent = canonical(agent)
        if not isinstance(payload, dict):
            raise ValueError("the hook payload is not a JSON object")
        if agent == "git" and not payload.get("hook_event_name"):
            payload = {**payload, "hook_event_name": "post-commit"}  # git hooks get no stdin
        with self._lock:
            return _Handling(self, agent, payload, meta).run()

    # ------------------------------------------------------------------ snapshots
    def excluder(self, root: Path) -> Excluder:
        extra = []
        try:
            rel = self.state_dir.resolve().relative_to(root)
            extra.append(rel.as_posix() + "/")
        except ValueError:
            pass
        return Excluder(root, extra, self.ledger.path)

    def take_snapshot(self, root: Path, full: bool = False) -> tuple[dict[str, Entry], dict[str, Entry] | None, Excluder]:
        """(current snapshot, previous snapshot of this root or None, excluder); from
        an incremental snapshot, both restricted to the paths that may have changed.
        Incremental (only the paths the watcher reported) when a watcher vouches for
        the tree, else a full walk with the previous snapshot as stat cache."""
        key = str(root)
        tree = self._trees.get(key)
        if tree is not None and tree.get("watcher") is not None and not full:
            try:
                now, touched = self._incremental(root, tree)
                prev = tree["entries"]
                tree["entries"] = now
                self.snapshot_stats["incremental"] += 1
                # only touched paths can differ: diffing them alone gives the same changes
                return ({p: now[p] for p in touched if p in now}, {p: prev[p] for p in touched if p in prev},
                        tree["excluder"])
            except Unsure:
                tree["watcher"].close()
                tree["watcher"] = None
        excl = self.excluder(root)
        watcher = None
        if self.watch:
            if tree is not None and tree.get("watcher") is not None:
                tree["watcher"].close()
            skip = _ignored_dirs(root)
            try:
                watcher = Watcher(str(root), lambda rel: rel in skip or excl.excluded(rel, True))
            except Unsure:
                watcher = None
        prev = tree["entries"] if tree else None
        if prev is not None:  # warm: the last snapshot is the stat cache
            cache = StatCache.of(key, {p: (e.stat_key, e.digest) for p, e in prev.items()}, tree["taken"])
        else:  # cold (in-process, a new collector): the persistent stat cache
            cache = StatCache.load(cache_path(self.ledger.path, root), root)
        snap = snapshot(root, excl, cache=cache)
        now = snap.entries
        self._trees[key] = {"entries": now, "taken": snap.taken_ns, "excluder": excl, "watcher": watcher}
        self.snapshot_stats["full"] += 1
        return now, prev, excl

    def _incremental(self, root: Path, tree: dict) -> tuple[dict[str, Entry], set[str]]:
        w, excl, prev = tree["watcher"], tree["excluder"], tree["entries"]
        paths, added, removed = w.drain()
        if any(p == ".gitignore" or p.endswith("/.gitignore") for p in paths | added | removed):
            raise Unsure("ignore rules changed")
        cand = set(paths)
        for d in removed:
            prefix = d + "/"
            cand.update(p for p in prev if p.startswith(prefix))
            cand.add(d)
        new_dirs = [d for d in added if not excl.excluded(d, True)]
        if new_dirs:
            ignored = _git_ignored(root, new_dirs)
            for d in new_dirs:
                if d not in ignored:
                    cand.update(w.add_tree(d))
        fresh = [p for p in cand if p not in prev and not excl.excluded_file(p)]
        ignored = _git_ignored(root, fresh) if fresh else set()
        now = dict(prev)
        for rel in cand:
            if rel in ignored or excl.excluded_file(rel):
                continue
            entry = _entry(root, rel)
            if entry is None:
                now.pop(rel, None)
            else:
                now[rel] = entry
        return now, cand

    def forget_snapshot(self, root: Path) -> None:
        tree = self._trees.pop(str(root), None)
        if tree and tree.get("watcher") is not None:
            tree["watcher"].close()


def _git_ignored(root: Path, paths: list[str]) -> set[str]:
    """Which of ``paths`` git ignores (tracked paths never are)."""
    if not paths:
        return set()
    try:
        out = subprocess.run(["git", "-C", str(root), "check-ignore", "-z", "--stdin"],
                             input=b"\0".join(p.encode("utf-8", "surrogateescape") for p in paths) + b"\0",
                             capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unsure(f"git check-ignore: {exc}") from exc
    if out.returncode not in (0, 1):
        if b"not a git repository" in out.stderr:
            return set()
        raise Unsure(f"git check-ignore failed: {out.stderr[:200]!r}")
    return {p.decode("utf-8", "surrogateescape") for p in out.stdout.split(b"\0") if p}


def _ignored_dirs(root: Path) -> set[str]:
    """Directories git ignores (the watcher does not watch them)."""
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--others", "--ignored", "--exclude-standard",
                              "--directory"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    if out.returncode != 0:
        return set()
    return {p.decode("utf-8", "surrogateescape")[:-1] for p in out.stdout.split(b"\0") if p.endswith(b"/")}


def _stat_key(st: os.stat_result) -> tuple:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode)  # as nervous_system.worktree


def _entry(root: Path, rel: str) -> Entry | None:
    """The snapshot entry of one path now (None: gone, or not a file or symlink);
    the same rules as ``nervous_system.worktree.snapshot`` for one path."""
    full = os.path.join(root, rel)
    try:
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            target = os.fsencode(os.readlink(full))
            return Entry(rel, "symlink", hashlib.sha256(target).hexdigest(), len(target), _stat_key(st))
        if not stat.S_ISREG(st.st_mode):
            return None
        h = hashlib.sha256()
        with open(full, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    except (FileNotFoundError, NotADirectoryError):
        return None
    mode = "executable" if st.st_mode & stat.S_IXUSR else "regular"
    return Entry(rel, mode, h.hexdigest(), st.st_size, _stat_key(st))


class _Handling:
    """One hook being handled: builds the list of events, then appends it."""

    def __init__(self, proc: HookProcessor, agent: str, payload: dict, meta: HookMeta):
        self.proc, self.agent, self.payload, self.meta = proc, agent, payload, meta
        self.spec = AGENTS[agent]
        self.kind = kind_of(agent, payload)
        self.event_name = str(payload.get("hook_event_name") or "")
        self.now = meta.t_ns or time.time_ns()
        self.ms = self.now // 1_000_000
        self.delivery = meta.delivery or _h(json.dumps(payload, sort_keys=True, default=str), str(self.now))
        self.session = str(payload.get("session_id") or payload.get("conversation_id") or "")
        root = meta.root or str(payload.get("cwd") or "") or (payload.get("workspace_roots") or [""])[0]
        self.root = Path(root or os.getcwd()).resolve()
        self.tenant = meta.tenant or proc.default_tenant
        self.project = meta.project or proc.default_project or self.root.name
        self.events: list[SwarmEvent] = []
        self.blobs: dict[str, bytes] = {}
        self.overlay: dict[str, PathState | None] = {}
        self.st = proc._session(agent, self.session) if self.session else None
        trace = _traceparent(meta.env.get("TRACEPARENT", ""))
        self.trace_id = trace[0] if trace else _h("hook-trace", agent, self.session)
        self.parent_span = trace[1] if trace else ""

    # ---------------------------------------------------------------- helpers
    def _id(self, *parts: str) -> str:
        return deterministic_event_id(self.ms, "hook", self.agent, self.delivery, *parts)

    def _agent_id(self) -> str:
        sub = self.payload.get("agent_id") or self.payload.get("subagent_id")
        if sub and self.kind not in (Kind.SUBAGENT_START,):
            return f"{self.spec.agent_id}/subagent:{sub}"
        return self.spec.agent_id

    def _envelope(self, event_id: str, *, agent_id: str | None = None, span_id: str = "", caused_by: str = "",
                  commit: str = "", timestamp: int | None = None, **payload) -> SwarmEvent:
        return SwarmEvent(
            event_id=event_id, timestamp=timestamp or self.now, tenant_id=self.tenant, project_id=self.project,
            user_id=_user(), session_id=self.session, agent_id=agent_id or self._agent_id(),
            agent_role="coder" if self.agent != "git" else "operator", trace_id=self.trace_id, span_id=span_id,
            caused_by=caused_by, related_commit_hash=commit, **payload)

    def _signal(self, status: str, detail: dict, **kw) -> None:
        self.events.append(self._envelope(self._id("signal", status), signal=SystemSignal(
            status=status, detail=_text(detail, MAX_TEXT)), **kw))

    def _turn(self, create: bool = True) -> dict | None:
        st = self.st
        if st is None:
            return None
        turn = st.get("turn")
        key = self._turn_key()
        if turn is not None and key and turn.get("key") != key and self.kind == Kind.PROMPT:
            turn = None
        if turn is None and create:
            st["turns"] = st.get("turns", 0) + 1
            key = key or f"turn-{st['turns']}"
            turn = {"key": key, "decision": deterministic_event_id(self.ms, "hook-turn", self.agent, self.session, key),
                    "span": _h("hook-turn-span", self.agent, self.session, key, n=16), "start_ns": self.now,
                    "prompt": "", "text": ""}
            st["turn"] = turn
        return turn

    def _turn_key(self) -> str:
        p = self.payload
        return str(p.get("turn_id") or p.get("prompt_id") or p.get("generation_id") or "")

    # ---------------------------------------------------------------- changes
    def record_changes(self, *, caused_by: str, span_id: str = "", agent_id: str | None = None,
                       full: bool = False, commit: str = "") -> int:
        """Snapshot the work tree and queue a StateChange per difference."""
        if not self.root.is_dir():
            return 0
        now, prev, excl = self.proc.take_snapshot(self.root, full=full)
        if prev is None or full:
            tree = self.proc.ledger.current_tree(self.tenant, self.project)
            prev = {p: Entry(p, s.mode, s.hash, 0, ()) for p, s in tree.items() if not excl.excluded_file(p)}
        count = 0
        for ch in diff(prev, now):
            if self._change(ch, now, caused_by=caused_by, span_id=span_id, agent_id=agent_id, commit=commit):
                count += 1
        return count

    def _state(self, path: str) -> PathState | None:
        if path in self.overlay:
            return self.overlay[path]
        return self.proc.ledger.path_state(self.tenant, self.project, path)

    def _change(self, ch, now: dict[str, Entry], **kw) -> bool:
        op, path = ch.op, ch.path
        if op == "delete":
            before = self._state(path)
            if before is None:
                return False
            new = None
            prev_path = None
        else:
            try:
                new = read_content(self.root, path, ch.mode)
            except (FileNotFoundError, NotADirectoryError):
                return False
            prev_path = ch.previous_path if op == "rename" else None
            before = self._state(prev_path) if prev_path else self._state(path)
            if prev_path and before is None:  # the ledger does not know the source: a create
                prev_path = None
                before = self._state(path)
            if before is not None and not prev_path and before.hash == _sha(new) and before.mode == ch.mode:
                return False  # the ledger already has exactly this
        old = UNKNOWN
        if before is not None and before.hash:
            try:
                old = self.proc.ledger.get_blob(before.hash)
            except Exception:  # noqa: BLE001 - no diff then
                old = UNKNOWN
        sc = file_state_change(path, new, before=before, old_bytes=old, new_mode=ch.mode or None,
                               previous_path=prev_path)
        apply_change(self.overlay, sc)
        if new is not None:
            self.blobs[sc.new_state_hash] = new
        eid = self._id("change", sc.operation.value, path, prev_path or "", sc.new_state_hash, sc.file_mode.value)
        self.events.append(self._envelope(eid, agent_id=kw.get("agent_id"), span_id=kw.get("span_id", ""),
                                          caused_by=kw.get("caused_by", ""), commit=kw.get("commit", ""),
                                          state_change=sc))
        return True

    # ---------------------------------------------------------------- kinds
    def run(self) -> HookResult:
        k = self.kind
        if (self.st is not None and not self.st.get("baseline") and k in (Kind.PROMPT, Kind.PRE_TOOL)
                and self.agent != "git"):
            self.baseline()  # the session's first hook is not a session start (Cursor, a late install)
        handler = getattr(self, "on_" + k, None) or self.on_other
        handler()
        if self.st is not None:
            self.st["seen_ns"] = self.now
            self.st["root"] = str(self.root)
            self.st["tenant"], self.st["project"] = self.tenant, self.project
            self.proc.sessions_by_id[self.session] = (self.tenant, self.project)
        inserted = 0
        if self.events:
            try:
                inserted = sum(a.inserted for a in self.proc.ledger.append_many(self.events, self.blobs))
            except DuplicateEventId:
                # a retried or replayed delivery whose first attempt was recorded
                inserted = 0
        if self.st is not None:
            self.proc._save(self.st)
        return HookResult(k, [e.event_id for e in self.events], inserted)

    def on_session_start(self) -> None:
        p = self.payload
        context = {
            "event": self.event_name, "source": p.get("source", ""), "host": socket.gethostname(),
            "os": platform.platform(), "user": _user(), "agent": self.agent,
            "agent_version": _agent_version(self.meta.ppid), "model": _model(p, self.meta.env),
            "cwd": p.get("cwd") or str(self.root), "root": str(self.root),
            "transcript_path": p.get("transcript_path", ""), **_git_context(self.root),
        }
        if self.st is not None:
            self.st["context"] = {k: context[k] for k in ("agent_version", "model")}
        self._signal("session start", context)
        self.baseline()

    def baseline(self) -> None:
        """Record the tree as it is now versus what the ledger knows (changes made
        outside any recorded session), by agent ``ledger-baseline``."""
        self.proc.forget_snapshot(self.root)
        mark = len(self.events)
        base = self._id("baseline")
        n = self.record_changes(caused_by=base, agent_id="ledger-baseline", full=True)
        if n:
            self.events.insert(mark, self._envelope(base, agent_id="ledger-baseline", decision=AgentDecision(
                rationale=f"work tree state at the start of {self.agent} session {self.session} "
                          "(changes made outside any recorded session)",
                input_trigger=f"{self.agent} {self.event_name}", confidence_score=1.0)))
        if self.st is not None:
            self.st["baseline"] = True

    def _outside_tool_changes(self) -> None:
        turn = self._turn(create=False)
        self.record_changes(caused_by=turn["decision"] if turn else "")

    def on_prompt(self) -> None:
        self._outside_tool_changes()
        turn = self._turn()
        prompt = str(self.payload.get("prompt") or "")
        turn["prompt"] = prompt[:MAX_TEXT]
        self.events.append(self._envelope(self._id("prompt"), agent_id=self.spec.agent_id, message=AgentMessage(
            sender="user", recipients=[self._agent_id()], content=prompt[:MAX_TEXT])))

    def _tool_name(self) -> str:
        p = self.payload
        if "tool_name" in p:
            return str(p["tool_name"])
        if self.agent == "cursor":
            if "command" in p:
                return "Shell"
            if self.event_name == "afterFileEdit":
                return "Edit"
        return self.event_name

    def _tool_input(self) -> Any:
        p = self.payload
        if "tool_input" in p:
            return p["tool_input"]
        if self.agent == "cursor":
            keys = ("command", "cwd") if "command" in p else ("file_path", "edits")
            return {k: p[k] for k in keys if k in p}
        return None

    def _tool_id(self, pre: bool) -> str:
        p = self.payload
        tid = str(p.get("tool_use_id") or p.get("tool_call_id") or "")
        if tid:
            return tid
        # no id (Gemini, Cursor): pair before/after by tool name, in order
        queue = self.st.setdefault("queue", {}).setdefault(self._tool_name(), []) if self.st is not None else []
        if pre:
            self.st["seq"] = self.st.get("seq", 0) + 1
            tid = f"{self._tool_name()}#{self.st['seq']}"
            queue.append(tid)
            return tid
        return queue.pop(0) if queue else ""

    def on_pre_tool(self) -> None:
        self._outside_tool_changes()
        turn = self._turn()
        tid = self._tool_id(pre=True)
        if self.st is not None:
            self.st["tools"][tid] = {"start_ns": self.now, "turn": turn["key"] if turn else ""}

    def on_post_tool(self, failed: bool = False) -> None:
        turn = self._turn()
        tid = self._tool_id(pre=False)
        started = (self.st["tools"].pop(tid, None) if self.st is not None and tid else None) or {}
        tid = tid or f"{self._tool_name()}@{self.delivery}"
        span_id = _h("hook-tool-span", self.agent, self.session, tid, n=16)
        self.record_changes(caused_by=turn["decision"] if turn else "", span_id=span_id)
        p = self.payload
        failed = failed or bool(p.get("error")) or (isinstance(p.get("tool_response"), dict)
                                                    and p["tool_response"].get("success") is False)
        start = int(started.get("start_ns") or 0)
        if not start and p.get("duration_ms") is not None:
            try:
                start = self.now - int(float(p["duration_ms"]) * 1_000_000)
            except (TypeError, ValueError):
                start = 0
        start = start or self.now
        name = self._tool_name()
        attrs = {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, "gen_ai.tool.call.id": tid,
            "gen_ai.conversation.id": self.session, "gen_ai.agent.name": self._agent_id(),
            "ledger.hook.agent": self.agent, "ledger.tool.input": _text(self._tool_input()),
            "ledger.tool.response": _text(p.get("tool_response", p.get("output", p.get("result_json")))),
            "ledger.tool.success": not failed, "ledger.tool.duration_ms": (self.now - start) / 1e6,
        }
        if p.get("duration_ms") is not None:
            attrs["ledger.tool.reported_duration_ms"] = _text(p.get("duration_ms"))
        if p.get("error"):
            attrs["error.type"] = _text(p.get("error"), 1024)
        record = SpanRecord(
            name=f"execute_tool {name}", kind=SpanKind.INTERNAL,
            parent_span_id=self.parent_span or (turn["span"] if turn else ""),
            start_time=start, end_time=self.now,
            status_code=SpanStatusCode.ERROR if failed else SpanStatusCode.OK,
            status_message=_text(p.get("error"), 1024) if failed else "", attributes=attrs,
            scope_name="context-ledger.hooks", scope_version="1")
        self.events.append(self._envelope(self._id("span", tid), span_id=span_id, span=record,
                                          caused_by=turn["decision"] if turn else ""))

    def on_tool_failed(self) -> None:
        self.on_post_tool(failed=True)

    def on_file_edit(self) -> None:
        tid = self._tool_id(pre=True)
        if self.st is not None:
            self.st["tools"][tid] = {"start_ns": self.now}
        self.on_post_tool()

    def on_assistant_text(self) -> None:
        turn = self._turn()
        if turn is not None:
            turn["text"] = str(self.payload.get("text") or "")[:MAX_TEXT]

    def on_turn_end(self, failed: bool = False) -> None:
        turn = self._turn()
        cause = turn["decision"] if turn else self._id("decision")
        self.record_changes(caused_by=cause)
        p = self.payload
        text = str(p.get("last_assistant_message") or p.get("prompt_response") or (turn or {}).get("text") or "")
        if not text and p.get("transcript_path"):
            text = _transcript_text(str(p["transcript_path"]))
        prompt = (turn or {}).get("prompt") or str(p.get("prompt") or "")
        if failed:
            text = text or f"turn failed: {_text(p.get('error') or p.get('reason') or p, 2000)}"
        self.events.append(self._envelope(cause, agent_id=self.spec.agent_id, decision=AgentDecision(
            rationale=text[:MAX_TEXT], input_trigger=prompt[:MAX_TEXT],
            context_hash=_h(self.session, (turn or {}).get("key", "")), confidence_score=0.0)))
        if turn is not None:
            self.events.append(self._envelope(self._id("turn-span"), span_id=turn["span"], span=SpanRecord(
                name=f"{self.agent} turn", kind=SpanKind.INTERNAL, parent_span_id=self.parent_span,
                start_time=turn["start_ns"], end_time=self.now,
                status_code=SpanStatusCode.ERROR if failed else SpanStatusCode.OK,
                attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": self.session,
                            "gen_ai.agent.name": self.spec.agent_id, "ledger.turn.key": turn["key"],
                            "ledger.decision.id": cause},
                scope_name="context-ledger.hooks", scope_version="1")))
        if self.st is not None:
            self.st["turn"] = None
            self.st["last_decision"] = cause

    def on_turn_failed(self) -> None:
        self.on_turn_end(failed=True)

    def on_subagent_start(self) -> None:
        p = self.payload
        self._signal("subagent start", {"event": self.event_name, "agent_id": p.get("agent_id", ""),
                                        "agent_type": p.get("agent_type", "")})

    def on_subagent_stop(self) -> None:
        p = self.payload
        turn = self._turn(create=False)
        sub = self._agent_id()
        self.record_changes(caused_by=turn["decision"] if turn else "", agent_id=sub)
        text = str(p.get("last_assistant_message") or "")
        if not text and p.get("agent_transcript_path"):
            text = _transcript_text(str(p["agent_transcript_path"]))
        self.events.append(self._envelope(self._id("subagent-message"), agent_id=sub, message=AgentMessage(
            sender=sub, recipients=[self.spec.agent_id], content=text[:MAX_TEXT])))
        self._signal("subagent stop", {"event": self.event_name, "agent_type": p.get("agent_type", "")},
                     agent_id=sub)

    def on_files_changed(self) -> None:
        self._outside_tool_changes()
        self._signal("files changed", {"event": self.event_name, "payload": _small(self.payload)})

    def on_compact(self) -> None:
        self._signal("compaction", {"event": self.event_name, "trigger": self.payload.get("trigger", ""),
                                    "summary": _text(self.payload.get("custom_instructions"), 4000)})

    def on_permission(self) -> None:
        p = self.payload
        self._signal("permission", {"event": self.event_name, "tool_name": p.get("tool_name", ""),
                                    "tool_input": _text(p.get("tool_input"), 4000)})

    def on_notification(self) -> None:
        p = self.payload
        self.events.append(self._envelope(self._id("notification"), message=AgentMessage(
            sender=self._agent_id(), recipients=["user"],
            content=str(p.get("message") or p.get("notification_type") or _text(_small(p), 4000)))))

    def on_session_end(self) -> None:
        turn = self._turn(create=False)
        self.record_changes(caused_by=turn["decision"] if turn else "")
        self._signal("session end", {"event": self.event_name, "reason": self.payload.get("reason", "")})

    def on_other(self) -> None:
        self._signal(f"hook {self.event_name or 'unknown'}", {"event": self.event_name,
                                                             "payload": _small(self.payload)})

    def on_commit(self) -> None:
        head = _git(self.root, "rev-parse", "HEAD")
        if not head:
            return
        last = self.proc.last_session(str(self.root))
        if last is not None and not self.session:
            self.session = last["session"]
        cause = self._id("commit", head)
        message = _git(self.root, "log", "-1", "--format=%B", head)
        self.record_changes(caused_by=cause, commit=head)
        self.events.append(self._envelope(cause, agent_id="git", commit=head, decision=AgentDecision(
            rationale=message[:MAX_TEXT], input_trigger=f"git commit {head}",
            context_hash=(last or {}).get("last_decision", "") or "", confidence_score=1.0)))


# ---------------------------------------------------------------------- helpers
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _small(payload: dict) -> dict:
    return {k: (v if isinstance(v, (int, float, bool)) or v is None else _text(v, 2000))
            for k, v in payload.items() if k not in ("llm_request", "llm_response")}


_USER: list[str] = []


def _user() -> str:
    if not _USER:
        try:
            _USER.append(getpass.getuser())
        except Exception:  # noqa: BLE001
            _USER.append("")
    return _USER[0]


def _traceparent(value: str) -> tuple[str, str] | None:
    parts = value.strip().split("-")
    if len(parts) >= 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
        t, s = parts[1].lower(), parts[2].lower()
        if int(t, 16) and int(s, 16):
            return t, s
    return None


def _git(root: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _git_context(root: Path) -> dict:
    return {"git_branch": _git(root, "rev-parse", "--abbrev-ref", "HEAD"), "git_head": _git(root, "rev-parse", "HEAD")}


def _model(payload: dict, env: dict) -> str:
    return str(payload.get("model") or env.get("ANTHROPIC_MODEL") or env.get("GEMINI_MODEL") or "")


def _agent_version(ppid: int) -> str:
    """The agent's npm package version, found from the hook's parent processes'
    command lines (Linux /proc; best effort)."""
    pid = ppid
    for _ in range(4):
        if pid <= 1:
            return ""
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return ""
        for arg in args[:3]:
            path = Path(os.fsdecode(arg))
            if not path.is_absolute():
                continue
            for parent in list(path.parents)[:6]:
                pkg = parent / "package.json"
                if pkg.is_file():
                    try:
                        data = json.loads(pkg.read_text())
                    except (OSError, ValueError):
                        break
                    if data.get("version"):
                        return f"{data.get('name', '')}@{data['version']}"
        try:
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        except (IndexError, ValueError):
            return ""
    return ""


def _transcript_text(path: str) -> str:
    """The last assistant text of a transcript (Claude Code, Codex, Gemini JSON Lines;
    best effort), reading at most its last 1 MiB."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - (1 << 20)))
            lines = fh.read().splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            item = json.loads(line)
        except ValueError:
            continue
        text = _assistant_text(item)
        if text:
            return text
    return ""


def _assistant_text(item: Any) -> str:
    if not isinstance(item, dict):
        return ""
    for inner in ("message", "payload"):
        if isinstance(item.get(inner), dict):
            t = _assistant_text(item[inner])
            if t:
                return t
    role = item.get("role") or item.get("type")
    if role not in ("assistant", "model", "gemini"):
        return ""
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") in
                 ("text", "output_text", None)]
        return "".join(p for p in parts if isinstance(p, str))
    return ""
