"""``ledger log``, ``ledger show``, ``ledger projects``: read the local ledger."""

from __future__ import annotations

import click

from cli.common import emit_json, emit_jsonl, format_local_time, json_option, pass_app
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
@click.option("--session", help="Only events of this session (one agent run).")
@click.option("--trace", help="Only events of this OpenTelemetry trace (32 hex digits).")
@click.option("-p", "--patch", is_flag=True, help="Show each file change's diff.")
@click.option("--stat", is_flag=True, help="Show lines added/removed per file change.")
@click.option("--oldest-first", is_flag=True, help="Oldest first instead of newest first.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "jsonl"]), default="text",
              show_default=True, help="Output format (--json = --format json).")
@source_option
@json_option
@pass_app
def log_cmd(app, path: str | None, limit: int, since: str | None, until: str | None,
            agent: str | None, kind: str | None, commit: str | None, session: str | None,
            trace: str | None, patch: bool, stat: bool, oldest_first: bool, fmt: str,
            source: str, as_json: bool) -> None:
    """List the project's events, newest first; PATH limits to changes of that file
    (or of everything below it when it ends with '/').

    One line per event: local time, short event id (enough to be unique; give it to
    `ledger show`), kind, agent, and the path/operation or the first line of the text;
    with PATH (or -p/--stat) a file change also shows why: the first line of the decision
    behind it. A risky file change is marked [risk: TAG, ...] (`ledger show` gives the
    reasons; --json adds "risk" to each file change; docs/trust.md). Long output goes
    through the pager on a terminal.

    \b
    Examples:
      ledger log
      ledger log src/parser.py -p                 # each change with its diff and its why
      ledger log src/ --since "yesterday" --kind state_change --stat
      ledger log --session 0193f0c2-... --oldest-first
      ledger log --agent alice@example.com --json
      ledger log --source hub --limit 20          # every laptop's events, from the hub
    """
    from replay import LogQuery
    from replay.views import entry_dict

    if path is not None:
        path = path.removeprefix("./") or path
    history = open_history(app, source)
    entries = history.select(LogQuery(
        path=path, agent_id=agent, kind=kind, commit=commit, session_id=session, trace_id=trace,
        since=since, until=until, limit=limit or None, descending=not oldest_first))
    fmt = "json" if as_json else fmt
    risk = _risk_of(app, history)
    if fmt in ("json", "jsonl"):
        rows = [_with_risk(entry_dict(e), e, risk) for e in entries]
        emit_json(rows) if fmt == "json" else emit_jsonl(rows)
        return
    if not entries:
        click.echo("No events match" + (" on the hub." if source == "hub" else "."), err=True)
        return
    from cli.output import page

    ids = [e.event_id for e in entries]
    short = _short_ids(app.ledger, ids) if source == "local" else {i: i for i in ids}
    page(_log_lines(history, entries, short, patch=patch, stat=stat, why=bool(path) or patch or stat, risk=risk))
    if limit and len(entries) == limit:
        click.echo(f"(showing the {limit} {'oldest' if oldest_first else 'newest'}; "
                   "--limit 0 shows all)", err=True)


def _risk_of(app, history):
    """``event -> [RiskTag]`` with the configured rules (``ledger.risk``), content read
    from ``history``."""
    from ledger.risk import RiskRules

    rules = RiskRules.from_settings(app.settings)
    return lambda event: rules.tags(event, history.read_blob)


def _with_risk(d: dict, entry, risk) -> dict:
    """``entry_dict`` of a file change plus ``risk``: its tags with reasons (``[]``: none)."""
    if entry.event is not None and entry.event.state_change is not None:
        d["risk"] = [t.to_dict() for t in risk(entry.event)]
    return d


def _log_lines(history, entries, short: dict[str, str], *, patch: bool, stat: bool, why: bool,
               risk=None) -> list[str]:
    """The text lines of `ledger log` (see its help); ``why``: a file change's decision;
    ``risk``: ``event -> [RiskTag]``, shown as ``[risk: tag, ...]`` after a change."""
    from replay.views import change_patch, first_line, summary_line

    width = max(len(s) for s in short.values())
    reasons: dict[str, str] = {}
    lines = []
    for e in entries:
        head = f"{format_local_time(e.time_ns)}  {short[e.event_id]:<{width}}  "
        ev = e.event
        if ev is None:
            lines.append(head + f"{'(corrupt)':<12}  {e.error}")
            continue
        tags = risk(ev) if risk is not None and ev.state_change is not None else []
        marker = f"  [risk: {', '.join(t.tag for t in tags)}]" if tags else ""
        lines.append(head + f"{ev.kind:<12}  {(ev.agent_id or '-')[:28]:<28}  {summary_line(ev)}{marker}")
        if ev.state_change is None:
            continue
        if why and ev.caused_by:
            if ev.caused_by not in reasons:
                reasons[ev.caused_by] = history.rationale_of(ev.caused_by) or ""
            if reasons[ev.caused_by]:
                lines.append(f"{'':{width + 27}}why: {first_line(reasons[ev.caused_by], 100)}")
        if patch or stat:
            text, added, removed = change_patch(ev, history.read_blob)
            if stat:
                lines.append(f"{'':{width + 27}}+{added} -{removed}")
            if patch:
                lines.extend(text.rstrip("\n").splitlines() if text else
                             [f"{'':{width + 27}}(no text diff: binary, symlink, too large, or content not here)"])
    return lines


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


def _vote_line(v: dict) -> str:
    """One vote (``VoteRecord.to_dict``) for people: verdict, who, vote id, reason."""
    who = "/".join(p for p in (v["user_id"], v["agent_id"]) if p) or "(anonymous)"
    return f"{v['verdict']} by {who} ({v['vote_id']})" + (f": {v['reason']}" if v["reason"] else "")


@click.command("show")
@click.argument("event_id", metavar="EVENT")
@click.option("-p", "--patch", is_flag=True, help="Also print the unified diff of a file change.")
@json_option
@pass_app
def show_cmd(app, event_id: str, patch: bool, as_json: bool) -> None:
    """Show one event in full: EVENT is an event id or a unique prefix (see `ledger log`).
    A decision also lists the changes it caused and the votes on it; a file change its
    risk tags and whether an approval covers it (docs/trust.md).

    \b
    Examples:
      ledger show 0190a3b4-c5d6-7abc
      ledger show 0190a3b4-c5d6-7abc --patch
      ledger show 0190a3b4-c5d6-7abc --json
    """
    from replay.views import change_patch, entry_dict, event_dict, printable, summary_line

    from ledger.approvals import coverage_of, votes_on

    stored = app.ledger.get(event_id.strip().lower(), tenant_id=app.tenant)
    ev = stored.event
    caused = []
    history = app.history(ev.project_id)
    if ev.kind == "decision":
        from replay import LogQuery

        caused = history.select(LogQuery(caused_by=ev.event_id, descending=False))
    extra: dict = {}
    tags = []
    if ev.kind == "decision":
        extra["caused"] = [entry_dict(e) for e in caused]
        if ev.vote is None:
            extra["votes"] = [v.to_dict() for v in votes_on(app.ledger, app.tenant, ev.event_id)]
    elif ev.kind == "state_change":
        tags = _risk_of(app, history)(ev)
        extra["risk"] = [t.to_dict() for t in tags]
        extra["approval"] = coverage_of(app.ledger, ev, allow_self=app.settings.approvals_allow_self).to_dict()
    if as_json:
        emit_json({**event_dict(stored), **extra})
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
    if ev.vote is not None:
        lines.append(("vote", f"{ev.vote.verdict.value} {ev.vote.target_event_id}"))
    if stored.shared_from:
        lines.append(("shared from", stored.shared_from))
    if tags:
        lines.append(("risk", "\n".join(f"{t.tag}: {t.reason}" for t in tags)))
    if "approval" in extra and (tags or extra["approval"]["votes"]):
        a = extra["approval"]
        lines.append(("approval", "\n".join([a["status"]] + [_vote_line(v) for v in a["votes"]])))
    if extra.get("votes"):
        lines.append(("votes", "\n".join(_vote_line(v) for v in extra["votes"])))
    if stored.hub_versionstamp:
        lines.append(("hub", f"synced, position {stored.hub_versionstamp.hex()}"))
    elif stored.sync_error:
        lines.append(("hub", f"refused: {stored.sync_error}"))
    else:
        lines.append(("hub", "not synced yet"))
    if caused:
        lines.append(("caused", "\n".join(f"{e.event_id}  {summary_line(e.event) if e.event else e.error}"
                                          for e in caused)))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        value_lines = [printable(v) for v in value.splitlines()] or [""]
        click.echo(f"{key:<{width}}  {value_lines[0]}")
        for more in value_lines[1:]:
            click.echo(f"{'':<{width}}  {more}")
    if patch and ev.kind == "state_change":
        click.echo()
        text, _, _ = change_patch(ev, history.read_blob)
        if text:
            click.echo(text, nl=False)
        else:
            click.echo("(no text diff: binary, symlink, too large, or content not here)")
