"""The timeline's data for a visible time range: lanes, and marks or buckets.

The browser asks for the range it shows and its width in pixels; the answer is sized
by the screen, not by the history: at most ``max_marks`` individual marks when few
events are visible, else counts per (lane, time bucket, kind) — a few pixels per
bucket — so 100,000 events never travel to the browser.

Times in answers are milliseconds since the epoch as floats (JavaScript numbers hold
nanosecond counts only approximately); event ids identify events exactly.
"""

from __future__ import annotations

from ui.index import KINDS, add_session, R_AGENT, R_END, R_ID, R_KIND, R_LABEL, R_PATH, R_SESSION, R_START, R_TIME, EventIndex, Filters

#: Most individual marks sent for one view; above it, buckets.
MAX_MARKS = 1500
#: Most lanes sent (the busiest in the range); the answer says how many were left out.
MAX_LANES = 60
#: Pixels per bucket.
BUCKET_PX = 3
#: Most session bars drawn behind the marks of agent lanes.
MAX_SESSION_BARS = 400


def _ms(ns: int) -> float:
    return ns / 1e6


#: Answers kept per index (the newest).
_CACHE_SIZE = 32


def window(index: EventIndex, start_ns: int | None, end_ns: int | None, width_px: int, *,
           group: str = "agent", filters: Filters = Filters(), max_marks: int = MAX_MARKS,
           max_lanes: int = MAX_LANES) -> dict:
    """The timeline between ``start_ns`` and ``end_ns`` (None: the first/last event)
    ``width_px`` pixels wide; ``group``: "agent" (a lane per agent, its sessions as bars)
    or "session" (a lane per session). Answers are cached per index version (the first
    view of every page load asks for the same whole range)."""
    cache = index.answers
    key = (index.version, start_ns, end_ns, width_px, group, filters, max_marks, max_lanes)
    hit = cache.get(key)
    if hit is None:
        hit = _window(index, start_ns, end_ns, width_px, group=group, filters=filters,
                      max_marks=max_marks, max_lanes=max_lanes)
        if len(cache) >= _CACHE_SIZE:
            cache.pop(next(iter(cache)), None)
        cache[key] = hit
    return hit


def _window(index: EventIndex, start_ns: int | None, end_ns: int | None, width_px: int, *,
           group: str = "agent", filters: Filters = Filters(), max_marks: int = MAX_MARKS,
           max_lanes: int = MAX_LANES) -> dict:
    rows = index.between(start_ns, end_ns)
    if filters:
        rows = [r for r in rows if filters.match(r)]
    if start_ns is None or end_ns is None:
        summary_rows = index.between(None, None)
        first = summary_rows[0][R_TIME] if summary_rows else 0
        last = summary_rows[-1][R_TIME] if summary_rows else 0
        start_ns = first if start_ns is None else start_ns
        end_ns = max(last, start_ns + 1) if end_ns is None else end_ns
    key = R_SESSION if group == "session" else R_AGENT
    few = len(rows) <= max_marks
    buckets = max(1, width_px // BUCKET_PX)
    size = max(1, (end_ns - start_ns) / buckets)
    kind_no = {k: i for i, k in enumerate(KINDS)}
    # one pass: events per lane, first time and agent of each lane, sessions, and (when
    # there are too many events for marks) counts per (lane, bucket, kind)
    counts: dict[str, int] = {}
    firsts: dict[str, int] = {}
    agent_of: dict[str, str] = {}
    sessions: dict[str, list] = {}
    cells: dict[tuple[str, int, int], int] = {}
    last_bucket = buckets - 1
    for r in rows:
        k = r[key]
        if k in counts:
            counts[k] += 1
        else:
            counts[k] = 1
            firsts[k] = r[R_TIME]
            agent_of[k] = r[R_AGENT]
        add_session(sessions, r)
        if not few:
            b = int((r[R_TIME] - start_ns) / size)
            cell = (k, b if b < last_bucket else last_bucket, kind_no[r[R_KIND]])
            cells[cell] = cells.get(cell, 0) + 1
    shown = sorted(counts, key=lambda k: -counts[k])[:max_lanes]
    shown.sort(key=lambda k: firsts[k])
    lane_of = {k: i for i, k in enumerate(shown)}
    lanes = [{"key": k, "agent": agent_of[k], "events": counts[k]} for k in shown]
    out = {
        "start": _ms(start_ns), "end": _ms(end_ns), "group": group, "total": len(rows),
        "lanes": lanes, "hidden_lanes": len(counts) - len(shown), "kinds": list(KINDS),
        "version": index.version,
    }
    if few:
        out["mode"] = "marks"
        out["marks"] = [{
            "t": _ms(r[R_TIME]), "lane": lane_of[r[key]], "kind": r[R_KIND], "id": r[R_ID],
            "label": r[R_LABEL], "path": r[R_PATH],
            **({"start": _ms(r[R_START]), "end": _ms(r[R_END])} if r[R_KIND] == "span" else {}),
        } for r in rows if r[key] in lane_of]
    else:
        out["mode"] = "buckets"
        out["bucket_ms"] = size / 1e6
        # [lane, bucket, kind index, count]
        out["cells"] = [[lane_of[k], b, kind, n] for (k, b, kind), n in cells.items() if k in lane_of]
    if group == "agent":
        bars = [(s, v) for s, v in sessions.items() if v[3] > 1 and v[2] > v[1] and v[0] in lane_of]
        bars.sort(key=lambda sv: -sv[1][3])
        out["sessions"] = [{"session": s, "lane": lane_of[v[0]], "start": _ms(v[1]), "end": _ms(v[2]),
                            "events": v[3]} for s, v in bars[:MAX_SESSION_BARS]]
    return out
