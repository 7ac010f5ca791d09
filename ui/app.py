"""The Starlette application of ``ledger ui``: routes, the live event stream, and the
static single-page front end, all behind ``ui.security.Guard``.

Routes (all GET; JSON unless said otherwise):

==========================  =====================================================
``/``                       the app (``static/index.html``)
``/static/...``             its ES modules, styles and icons (shipped in the package)
``/api/summary``            project, counts per kind and agent, time range
``/api/timeline``           lanes + marks or buckets for ``start``..``end`` (ms),
                            ``width`` px, ``group`` (agent|session), filters
                            ``agent``, ``session``, ``kind``, ``path``, ``q``
``/api/events``             a page of events (newest first), same range and filters
``/api/event/{id}``         one event, its decision, the changes a decision caused
                            (with diffs), the trace waterfall
``/api/tree?at=``           the project's file tree at WHEN (any ``ledger`` WHEN)
``/api/file?path=&at=``     one file's content at WHEN
``/api/diff?a=&b=[&path=]`` paths that differ between two moments / one path's diff
``/api/history?path=``      a path's changes through renames, with the why of each
``/api/blame?path=&at=``    ``ledger blame`` of a file
``/api/audits``             the audit reports (analytics extra)
``/api/live``               server-sent events: ``update`` whenever events arrive
==========================  =====================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ui import api
from ui.security import Guard
from ui.state import UIState

STATIC = Path(__file__).resolve().parent / "static"
#: How often the poller looks for new events (seconds): one ``max(seq)`` query.
POLL_S = 0.5
#: A comment line sent on idle event streams so proxies and browsers keep them open.
KEEPALIVE_S = 15.0


async def index_page(request):
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


async def live(request):
    """Server-sent events: ``update`` with the index version and counts when new events
    have been indexed (the page then re-asks for what it shows)."""
    state: UIState = request.app.state.ui
    changed: asyncio.Event = request.app.state.changed

    async def stream():
        version = state.index.version
        yield f"event: hello\ndata: {json.dumps({'version': version})}\n\n"
        idle = 0.0
        while not await request.is_disconnected():
            try:
                await asyncio.wait_for(changed.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                idle += 1.0
                if idle >= KEEPALIVE_S:
                    idle = 0.0
                    yield ": keepalive\n\n"
                continue
            if state.index.version != version:
                version = state.index.version
                summary = state.index.summary()
                yield ("event: update\ndata: " + json.dumps(
                    {"version": version, "events": summary["events"], "last_ns": summary["last_ns"]}) + "\n\n")
            await asyncio.sleep(0.05)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


async def _poll(app) -> None:
    """Refresh the index every ``POLL_S``; wake the event streams when it grew."""
    state: UIState = app.state.ui
    while True:
        await asyncio.sleep(POLL_S)
        try:
            added = await run_in_threadpool(state.index.refresh)
        except Exception:  # a transient read error (a locked file): try again next tick
            continue
        if added:
            app.state.changed.set()
            await asyncio.sleep(0)
            app.state.changed.clear()


def create_app(state: UIState, *, token: str, port: int, hosts: tuple[str, ...] = ()) -> Guard:
    """The guarded ASGI application serving ``state`` (see the module docstring)."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.changed = asyncio.Event()
        poller = asyncio.create_task(_poll(app))
        try:
            yield
        finally:
            poller.cancel()

    routes = [
        Route("/", index_page),
        Route("/api/summary", api.summary),
        Route("/api/timeline", api.timeline),
        Route("/api/events", api.events),
        Route("/api/event/{event_id}", api.event),
        Route("/api/tree", api.tree),
        Route("/api/file", api.file_content),
        Route("/api/diff", api.diff),
        Route("/api/history", api.file_history),
        Route("/api/blame", api.blame_lines),
        Route("/api/audits", api.audits),
        Route("/api/live", live),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.ui = state
    return Guard(app, token=token, port=port, hosts=hosts)
