"""``ledger log``, ``ledger show``, ``ledger projects``: read the local ledger."""

from __future__ import annotations

import click

from cli.common import emit_json, format_local_time, json_option, pass_app
from cli.replaying import open_history, source_option
from schemas.enums import PAYLOAD_KINDS
from schemas.timestamps import format_timestamp_ns

#: Shortest event id prefix shown by `ledger log` (UUIDv7: 48-bit ms time + 12 bits).
SHORT_ID_CHARS = 18
#: Above this many rows, `ledger log` prints full ids instead of checking prefixes.
MAX_PREFIX_CHECKS = 2000


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
    from replay import LogQuery
    from replay.views import entry_dict, summary_line

    if path is not None:
        path = path.removeprefix("./") or path
    history = open_history(app, source)
    entries = history.select(LogQuery(
        path=path, agent_id=agent, kind=kind, commit=commit, since=since, until=until,
        limit=limit or None, descending=not oldest_first))
    if as_json:
        emit_json([entry_dict(e) for e in entries])
        return
    if not entries:
        click.echo("No events match" + (" on the hub." if source == "hub" else "."), err=True)
        return
    ids = [e.event_id for e in entries]
    short = _short_ids(app.ledger, ids) if source == "local" else {i: i for i in ids}
    width = max(len(s) for s in short.values())
    for e in entries:
        ev = e.event
        click.echo(f"{format_local_time(e.time_ns)}  {short[e.event_id]:<{width}}  {ev.kind:<12}  "
                   f"{(ev.agent_id or '-')[:28]:<28}  {summary_line(ev)}")
    if limit and len(entries) == limit:
        click.echo(f"(showing the {limit} {'oldest' if oldest_first else 'newest'}; "
                   "--limit 0 shows all)", err=True)


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
    from replay.views import event_dict

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
