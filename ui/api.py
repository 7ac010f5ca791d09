"""The UI's JSON endpoints, each a thin layer over ``replay`` (and ``ingest`` for audits).

Events are always shown in THE JSON shape (``replay.views.entry_dict``) with their
``summary_line``; moments are resolved by THE WHEN parser (``History.resolve``). Errors
of the library become ``{"error": message}`` with status 400 (404 for unknown ids).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from ledger.errors import EventNotFound, LedgerError
from replay.blame import blame
from replay.history import LogQuery
from replay.views import entry_dict, first_line, summary_line
from schemas.errors import ContextLedgerError
from ui import traces
from ui.index import R_ID, Filters
from ui.state import UIState, moment_dict
from ui.timeline import window

#: Longest file content sent to the browser (bytes).
MAX_CONTENT = 1 << 20
#: Events per page of the event list.
PAGE = 50


def _state(request: Request) -> UIState:
    return request.app.state.ui


def _int(value: str | None, default: int | None) -> int | None:
    return default if value in (None, "") else int(float(value))


def _filters(q) -> Filters:
    return Filters(agent=q.get("agent") or None, session=q.get("session") or None,
                   kind=q.get("kind") or None, path=q.get("path") or None, text=q.get("q") or None)


def _range(q) -> tuple[int | None, int | None]:
    """``start``/``end`` query parameters (milliseconds since the epoch) as ns."""
    start = q.get("start")
    end = q.get("end")
    return (None if not start else int(float(start) * 1e6), None if not end else int(float(end) * 1e6))


def endpoint(fn):
    """Run ``fn(request, state)`` and answer JSON; library errors become 400/404."""
    async def run(request: Request):
        from starlette.concurrency import run_in_threadpool

        try:
            return JSONResponse(await run_in_threadpool(fn, request, _state(request)))
        except EventNotFound as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except (ContextLedgerError, LedgerError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
    run.__name__ = fn.__name__
    return run


def event_json(entry) -> dict:
    """``entry_dict`` plus the summary line and kind the pages show (an event whose
    stored body cannot be read shows its error)."""
    d = entry_dict(entry)
    d["summary"] = summary_line(entry.event) if entry.event is not None else f"unreadable event: {entry.error}"
    d["kind"] = entry.event.kind if entry.event is not None else "error"
    return d


# ------------------------------------------------------------------ summary, timeline, events
@endpoint
def summary(request, state: UIState):
    out = state.index.summary()
    out.update(project=state.history.project, tenant=state.history.tenant, source=state.source)
    return out


@endpoint
def timeline(request, state: UIState):
    q = request.query_params
    start, end = _range(q)
    return window(state.index, start, end, _int(q.get("width"), 1200), group=q.get("group") or "agent",
                  filters=_filters(q))


@endpoint
def events(request, state: UIState):
    """A page of the events in the range matching the filters, newest first."""
    q = request.query_params
    start, end = _range(q)
    filters = _filters(q)
    rows = state.index.between(start, end)
    if filters:
        rows = [r for r in rows if filters.match(r)]
    offset = _int(q.get("offset"), 0)
    limit = min(_int(q.get("limit"), PAGE), 500)
    stop = max(0, len(rows) - offset)
    page = rows[max(0, stop - limit):stop][::-1]  # newest first
    return {"total": len(rows), "offset": offset,
            "events": [event_json(state.history.get(r[R_ID])) for r in page]}


@endpoint
def event(request, state: UIState):
    """One event with what it links to: its decision, the changes a decision caused
    (with their diffs), and the trace of its session as a waterfall."""
    entry = state.history.get(request.path_params["event_id"])
    ev = entry.event
    out = {"event": event_json(entry)}
    if ev is None:
        return out
    if ev.caused_by:
        try:
            out["decision"] = event_json(state.history.get(ev.caused_by))
        except EventNotFound:
            out["decision"] = None
    decision_id = ev.event_id if ev.kind == "decision" else ev.caused_by
    if decision_id:
        out["caused"] = [event_json(state.history.get(i)) for i in state.index.matching(caused_by=decision_id, limit=500)]
    out["trace"] = traces.waterfall(state.history, state.index, ev)
    return out


# ------------------------------------------------------------------ files: scrubber, file view
@endpoint
def tree(request, state: UIState):
    moment = state.resolve(request.query_params.get("at"))
    files, conflicts = state.tree(moment)
    return {"moment": moment_dict(moment), "conflicts": conflicts, "count": len(files),
            "files": [[p, h, m] for p, (h, m) in sorted(files.items())]}


@endpoint
def file_content(request, state: UIState):
    q = request.query_params
    moment = state.resolve(q.get("at"))
    path = q.get("path") or ""
    files, _ = state.tree(moment)
    if path not in files:
        raise ValueError(f"{path!r} is not a file of the project at {moment.describe()}")
    digest, mode = files[path]
    try:
        data = state.history.read_blob(digest)
    except LookupError:
        reason = state.history.withheld(digest)  # a secret file: recorded by hash only
        if not reason:
            raise
        return {"path": path, "hash": digest, "mode": mode, "size": 0, "binary": False, "truncated": False,
                "text": None, "withheld": reason, "moment": moment_dict(moment)}
    binary = b"\0" in data[:8000]
    text = None
    if not binary:
        try:
            text = data[:MAX_CONTENT].decode("utf-8")
        except UnicodeDecodeError:
            binary = True
    return {"path": path, "hash": digest, "mode": mode, "size": len(data), "binary": binary,
            "truncated": len(data) > MAX_CONTENT, "text": text, "moment": moment_dict(moment)}


@endpoint
def diff(request, state: UIState):
    q = request.query_params
    return state.diff(state.resolve(q.get("a")), state.resolve(q.get("b")), q.get("path") or None)


@endpoint
def file_history(request, state: UIState):
    """Every change of a path, newest first, through renames (the lineage blame reads),
    each with the first line of the decision behind it."""
    from replay.blame import PathNotInTree, lineage

    q = request.query_params
    path = q.get("path") or ""
    moment = state.resolve(q.get("at"))
    try:
        ids = [row.event_id for row in lineage(state.changes(moment), path)]
    except PathNotInTree:  # deleted by then: its changes by name
        ids = [e.event_id for e in state.history.select(LogQuery(path=path, limit=500))]
    changes = []
    for event_id in ids[:500]:
        item = event_json(state.history.get(event_id))
        cause = item.get("caused_by")
        item["why"] = first_line(state.history.rationale_of(cause) or "") if cause else ""
        changes.append(item)
    return {"path": path, "moment": moment_dict(moment), "changes": changes}


@endpoint
def blame_lines(request, state: UIState):
    q = request.query_params
    moment = state.resolve(q.get("at"))
    return blame(state.history, q.get("path") or "", moment, changes=state.changes(moment)).to_dict()


# ------------------------------------------------------------------ audits
@endpoint
def audits(request, state: UIState):
    from ui.audits import audit_reports

    return audit_reports(state.analytics_url, state.history.tenant, state.history.project,
                         state.index.summary())
