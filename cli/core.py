"""``ledger log``, ``ledger show``, ``ledger projects``: read the local ledger."""

from __future__ import annotations

import click

from cli.common import emit_json, format_local_time, json_option, pass_app
from cli.replaying import source_option
from schemas import PAYLOAD_KINDS, format_timestamp_ns

#: Shortest event id prefix shown by `ledger log` (UUIDv7: 48-bit ms time + 12 bits).
SHORT_ID_CHARS = 18
#: Above this many rows, `ledger log` prints full ids instead of checking prefixes.
MAX_PREFIX_CHECKS = 2000


def event_dict(stored) -> dict:
    """The JSON form of a stored event: ``event.to_dict()`` plus local ``seq``,
    ``recorded_at`` (RFC 3339) and the outbox state."""
    d = stored.event.to_dict()
    d["seq"] = stored.seq
    d["recorded_at"] = format_timestamp_ns(stored.recorded_ns)
    d["hub_versionstamp"] = stored.hub_versionstamp.hex() if stored.hub_versionstamp else None
    d["sync_error"] = stored.sync_error
    return d


def summary_line(event) -> str:
    """What an event is about, in one line (path and operation, or rationale...)."""
    kind = event.kind
    if kind == "state_change":
        sc = event.state_change
        if sc.operation.value == "rename":
            return f"rename {sc.previous_resource} -> {sc.target_resource}"
        mode = f" ({sc.file_mode.value})" if sc.file_mode.value in ("executable", "symlink") else ""
        return f"{sc.operation.value} {sc.target_resource}{mode}"
    if kind == "decision":
        text = event.decision.rationale
    elif kind == "message":
        m = event.message
        text = f"{m.sender} -> {', '.join(m.recipients) or '*'}: {m.content}"
    elif kind == "signal":
        s = event.signal
        text = f"{s.status} cpu={s.cpu_load_percent:g}% mem={s.memory_usage_mb:g}MB {s.detail}"
    else:
        text = f"span {event.span.name} ({event.span.status_code.value})"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first[:120]


def _short_ids(ledger, ids: list[str]) -> dict[str, str]:
    """The shortest prefix (at least SHORT_ID_CHARS) of each id that is unique in the ledger."""
    if len(ids) > MAX_PREFIX_CHECKS:
        return {i: i for i in ids}
    from ledger.errors import EventNotFound

    out = {}
    for event_id in ids:
        n = SHORT_ID_CHARS
        while n < len(event_id):
            try:
                ledger.get(event_id[:n])
                break
            except EventNotFound:  # ambiguous prefix: show more
                n += 4 if event_id[n:n + 1] != "-" else 5
        out[event_id] = event_id[:n]
    return out


@click.command("log")
@click.argument("path", required=False)
@click.option("-n", "--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Show at most N events (0: all).")
@click.option("--since", metavar="WHEN", help="Only events at or after WHEN (time, event id or commit).")
@click.option("--until", metavar="WHEN", help="Only events at or before WHEN (time, event id or commit).")
@click.option("--agent", help="Only events of this agent id.")
@click.option("--kind", type=click.Choice(PAYLOAD_KINDS), help="Only events of this kind.")
@click.option("--commit", help="Only events linked to this commit (hash prefix).")
@click.option("--oldest-first", is_flag=True, help="Oldest first instead of newest first.")
@source_option
@json_option
@pass_app
def log_cmd(app, path: str | None, limit: int, since: str | None, until: str | None,
            agent: str | None, kind: str | None, commit: str | None, oldest_first: bool,
            source: str, as_json: bool) -> None:
    """List the project's events, newest first; PATH limits to changes of that file
    (or of everything below it when it ends with '/').

    One line per event: local time, short event id (enough to be unique; give it to
    `ledger show`), kind, agent, and the path/operation or the first line of the text.

    \b
    Examples:
      ledger log
      ledger log src/parser.py --limit 10
      ledger log src/ --since "yesterday" --kind state_change
      ledger log --agent alice@example.com --json
      ledger log --source hub --limit 20          # every laptop's events, from the hub
    """
    from replay.moments import resolve_moment

    if path is not None:
        path = path.removeprefix("./") or path
    if source == "hub":
        _hub_log(app, path, limit, since, until, agent, kind, commit, oldest_first, as_json)
        return

    lg, tenant, project = app.ledger, app.tenant, app.project()
    filters: dict = {}
    for name, value in (("since", since), ("until", until)):
        if value is None:
            continue
        moment = resolve_moment(lg, tenant, project, value)
        if moment.kind == "time":
            filters["since_ns" if name == "since" else "until_ns"] = moment.until_ns
        elif name == "since":
            filters["after_seq"] = moment.from_seq - 1
        else:
            filters["until_seq"] = moment.until_seq
    rows = list(lg.events(
        tenant_id=tenant, project_id=project, path=path, agent_id=agent, kind=kind,
        commit=commit.lower() if commit else None, limit=(limit or None),
        descending=not oldest_first, **filters,
    ))
    if as_json:
        emit_json([event_dict(r) for r in rows])
        return
    if not rows:
        click.echo("No events match.", err=True)
        return
    short = _short_ids(lg, [r.event_id for r in rows])
    width = max(len(s) for s in short.values())
    for r in rows:
        ev = r.event
        agent_text = (ev.agent_id or "-")[:28]
        click.echo(f"{format_local_time(r.time_ns)}  {short[r.event_id]:<{width}}  {r.kind:<12}  "
                   f"{agent_text:<28}  {summary_line(ev)}")
    if limit and len(rows) == limit:
        click.echo(f"(showing the {limit} {'oldest' if oldest_first else 'newest'}; "
                   "--limit 0 shows all)", err=True)


def _hub_log(app, path, limit, since, until, agent, kind, commit, oldest_first, as_json) -> None:
    from replay.hub import entry_dict, open_hub_history

    history = open_hub_history(app.hub(), app.settings.project, click.get_current_context().meta.get("hub_as_of"))
    entries = history.select(path=path, agent_id=agent, kind=kind,
                             commit=commit.lower() if commit else None, since=since, until=until,
                             limit=limit or None, descending=not oldest_first)
    if as_json:
        emit_json([entry_dict(e) for e in entries])
        return
    if not entries:
        click.echo("No events match on the hub.", err=True)
        return
    for e in entries:
        ev = e.record.event
        click.echo(f"{format_local_time(e.time_ns)}  {e.event_id}  {ev.kind:<12}  "
                   f"{(ev.agent_id or '-')[:28]:<28}  {summary_line(ev)}")


def _field_lines(prefix: str, data: dict, skip: set[str]) -> list[tuple[str, str]]:
    out = []
    for key, value in data.items():
        if key in skip or value in ("", None, [], {}, 0, 0.0, False, "unspecified"):
            continue
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        out.append((f"{prefix}{key}", str(value)))
    return out


@click.command("show")
@click.argument("event_id", metavar="EVENT")
@click.option("-p", "--patch", is_flag=True, help="Also print the unified diff of a file change.")
@json_option
@pass_app
def show_cmd(app, event_id: str, patch: bool, as_json: bool) -> None:
    """Show one event in full: EVENT is an event id or a unique prefix (see `ledger log`).

    \b
    Examples:
      ledger show 0190a3b4-c5d6-7abc
      ledger show 0190a3b4-c5d6-7abc --patch
      ledger show 0190a3b4-c5d6-7abc --json
    """
    stored = app.ledger.get(event_id.strip().lower(), tenant_id=app.tenant)
    ev = stored.event
    if as_json:
        emit_json(event_dict(stored))
        return
    lines = [
        ("event", ev.event_id),
        ("kind", ev.kind),
        ("time", f"{format_local_time(ev.timestamp)} ({format_timestamp_ns(ev.timestamp)})"),
        ("recorded", f"{format_local_time(stored.recorded_ns)} (seq {stored.seq})"),
        ("project", f"{ev.project_id} (tenant {ev.tenant_id})"),
    ]
    envelope = ev.to_dict()
    lines += _field_lines("", {k: envelope.get(k) for k in (
        "agent_id", "agent_role", "user_id", "session_id", "caused_by", "related_commit_hash",
        "trace_id", "span_id")}, set())
    payload = envelope[ev.kind]
    lines += _field_lines("", payload, {"diff_patch"})
    if stored.hub_versionstamp:
        lines.append(("hub", f"synced, versionstamp {stored.hub_versionstamp.hex()}"))
    elif stored.sync_error:
        lines.append(("hub", f"refused: {stored.sync_error}"))
    else:
        lines.append(("hub", "not synced yet"))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        value_lines = value.splitlines() or [""]
        click.echo(f"{key:<{width}}  {value_lines[0]}")
        for more in value_lines[1:]:
            click.echo(f"{'':<{width}}  {more}")
    if patch and ev.kind == "state_change":
        click.echo()
        if ev.state_change.diff_patch:
            click.echo(ev.state_change.diff_patch, nl=False)
        else:
            click.echo("(no text diff: binary, symlink, too large, or unchanged content)")


@click.command("projects")
@json_option
@pass_app
def projects_cmd(app, as_json: bool) -> None:
    """List the tenants/projects in the local ledger with event counts and time ranges.

    \b
    Examples:
      ledger projects
      ledger projects --json
    """
    projects = app.ledger.projects()
    if as_json:
        emit_json([{
            "tenant_id": p.tenant_id, "project_id": p.project_id, "events": p.events,
            "first": format_timestamp_ns(p.first_ns), "last": format_timestamp_ns(p.last_ns),
        } for p in projects])
        return
    if not projects:
        click.echo("No events yet: `ledger import git REPO` or record with the SDK.", err=True)
        return
    for p in projects:
        click.echo(f"{p.tenant_id}/{p.project_id}  {p.events:,} events  "
                   f"{format_local_time(p.first_ns)} .. {format_local_time(p.last_ns)}")
