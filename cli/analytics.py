"""``ledger ingest``, ``ledger sql`` and ``ledger audit``: ClickHouse analytics.

Thin: each command makes one call into ``ingest`` and prints the result.
"""

from __future__ import annotations

import json
import re
import sys

import click

from cli.common import AppContext, emit_json, pass_app
from cli.output import format_option, json_flag, render
from cli.progress import progress_bar
from ledger.errors import LedgerError

clickhouse_option = click.option(
    "--clickhouse", "clickhouse_url", envvar="LEDGER_CLICKHOUSE_URL",
    help="ClickHouse URL: http(s)://user:pass@host:8123, or chdb:///dir "
         "[default: embedded chdb in <data dir>/analytics; env LEDGER_CLICKHOUSE_URL].")
no_ingest_option = click.option(
    "--no-ingest", is_flag=True,
    help="Do not bring the analytics up to date from the local ledger first (answers may be stale).")


def _url(app: AppContext, explicit: str | None) -> str:
    return explicit or app.settings.analytics_url


def _limits(app: AppContext):
    from ingest.sandbox import Limits

    return Limits.from_settings(app.settings)


def _refresh(app: AppContext, no_ingest: bool):
    """The local ledger to catch up from before a query (None: --no-ingest, or no ledger file)."""
    if no_ingest or not app.settings.ledger_path.exists():
        return None
    return app.ledger


def _note_refreshed(stats) -> None:
    if stats is not None and (stats.inserted or stats.refused):
        extra = f", {stats.refused:,} refused (see `ledger ingest`)" if stats.refused else ""
        click.echo(f"note: ingested {stats.inserted:,} new event{'s' if stats.inserted != 1 else ''} from the "
                   f"local ledger first{extra} (--no-ingest skips this)", err=True)


def _fmt(fmt: str, as_json: bool) -> str:
    return "json" if as_json else fmt


# ------------------------------------------------------------------ ingest
@click.command("ingest")
@click.option("--source", type=click.Choice(["local", "hub"]), default="local", show_default=True,
              help="local: this laptop's ledger; hub: every laptop of the tenant (FoundationDB).")
@click.option("--follow", is_flag=True, help="Keep ingesting new events as they arrive (Ctrl-C stops).")
@click.option("--batch-size", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True,
              help="Events per ClickHouse INSERT.")
@click.option("--poll-interval", type=click.FloatRange(0.05), default=1.0, show_default=True,
              help="Seconds between polls with --follow.")
@click.option("--consumer", default="default", show_default=True, help="Checkpoint name of this ingestor.")
@click.option("--cluster-file", type=click.Path(dir_okay=False), help="FoundationDB cluster file (--source hub).")
@clickhouse_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_app
def ingest_cmd(app: AppContext, source, follow, batch_size, poll_interval, consumer, cluster_file,
               clickhouse_url, as_json):
    """Load the tenant's events into ClickHouse for SQL audits, exactly once.

    Only the events of --tenant are loaded (local ledger or hub). Resumes from its
    checkpoint (stored in ClickHouse); a crash at any point followed by a re-run leaves
    every event in `swarm_events` exactly once. A stored event that cannot be loaded
    (corrupt body, unsupported schema version, id mismatch) is skipped and listed by
    sequence number and id (also in analytics.ingest_refused); it never stops the run.

    \b
    Examples:
      ledger ingest                              # local ledger -> embedded ClickHouse
      ledger --tenant acme ingest --follow       # keep going as agents record
      ledger ingest --source hub --clickhouse http://ch:8123
      ledger ingest --json | jq .refused_rows    # what was skipped, and why
    """
    from ingest.ingestor import Ingestor
    from ingest.sources import HubSource, LocalSource

    if source == "hub":
        src = HubSource(app.hub(cluster_file))
    else:
        src = LocalSource(app.ledger, tenant=app.tenant)
    url = _url(app, clickhouse_url)
    with progress_bar("ingesting", unit="events", enabled=not as_json) as update:
        ingestor = Ingestor(url, src, batch_size=batch_size, consumer=consumer,
                            progress=lambda stream, done, backlog: update(done, backlog, stream))
        if follow:
            if not as_json:
                click.echo(f"following {src.kind} source into {url} (Ctrl-C to stop)", err=True)

            def on_round(stats) -> None:
                if as_json:
                    sys.stdout.write(json.dumps(stats.as_dict(), default=str) + "\n")
                    sys.stdout.flush()
                elif stats.read:
                    click.echo(f"ingested {stats.inserted:,} events", err=True)
                    _echo_refused(stats)

            stats = ingestor.follow(poll_interval_s=poll_interval, on_round=on_round)
        else:
            stats = ingestor.run()
    if as_json:
        if not follow:
            emit_json(stats.as_dict())
        return
    rate = f" ({stats.read / stats.seconds:,.0f} events/s)" if stats.seconds and stats.read else ""
    extra = f", {stats.skipped_present:,} already present from an interrupted run" if stats.skipped_present else ""
    click.echo(f"ingested {stats.inserted:,} events of tenant {app.tenant!r} in {stats.batches} batches"
               f"{rate}{extra} into {url}")
    _echo_refused(stats)


def _echo_refused(stats) -> None:
    if not stats.refused:
        return
    click.echo(f"refused {stats.refused:,} stored event{'s' if stats.refused != 1 else ''} that cannot be loaded "
               "(skipped; all are listed in analytics.ingest_refused):", err=True)
    for row in stats.refused_rows:
        where = f"seq {row.seq}" if row.seq else f"{row.stream} position {row.position}"
        click.echo(f"  {where} event {row.event_id or '?'}: {row.reason}", err=True)
    if stats.refused > len(stats.refused_rows):
        click.echo(f"  ... and {stats.refused - len(stats.refused_rows):,} more", err=True)


# ------------------------------------------------------------------ sql
def _params(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: use NAME=VALUE", param_hint="--param")
        out[name] = value
    return out


@click.command("sql")
@click.argument("query")
@format_option
@json_flag
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Query parameter for {NAME:Type} placeholders (repeatable).")
@no_ingest_option
@clickhouse_option
@pass_app
def sql_cmd(app: AppContext, query, fmt, as_json, params, no_ingest, clickhouse_url):
    """Run ONE read-only SQL query on the tenant's analytics events (table swarm_events).

    The query sees only --tenant's rows and only swarm_events (plus numbers(), values()
    and harmless system tables); files, URLs, other servers, dictionaries, writes and
    SETTINGS are refused. Limits: sql_max_execution_time, sql_max_memory_usage,
    sql_max_result_rows (ledger.toml / LEDGER_SQL_MAX_*). New local events are ingested
    first (--no-ingest skips that). QUERY '-' reads the query from stdin.

    \b
    Examples:
      ledger sql "SELECT agent_id, count() FROM swarm_events GROUP BY agent_id"
      ledger sql "SELECT * FROM swarm_events WHERE target_path = {p:String} LIMIT 5" --param p=src/app.py
      ledger sql --format csv "SELECT event_type, count() FROM swarm_events GROUP BY 1" > kinds.csv
      ledger sql --format vertical "SELECT * FROM swarm_events ORDER BY time DESC LIMIT 1"
      ledger --tenant acme sql --no-ingest --json "SELECT count() FROM swarm_events"
    """
    from ingest.readonly import open_query

    if query == "-":
        query = sys.stdin.read()
    with open_query(_url(app, clickhouse_url), query, _params(params), tenant=app.tenant,
                    limits=_limits(app), refresh=_refresh(app, no_ingest)) as result:
        _note_refreshed(result.refreshed)
        render(result.columns, result.rows, _fmt(fmt, as_json))


# ------------------------------------------------------------------ audits
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.I)
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration_s(text: str) -> int:
    """'90s', '15m', '1h', '1h30m', '2d', '1w' or plain seconds -> whole seconds (>= 1)."""
    text = text.strip()
    if text.isdigit():
        seconds = int(text)
    else:
        parts = _DURATION.findall(text)
        if not parts or _DURATION.sub("", text).strip():
            raise click.BadParameter(f"{text!r}: use a duration like 90s, 15m, 1h, 1h30m, 2d")
        seconds = int(sum(float(n) * _UNITS[u.lower()] for n, u in parts))
    if seconds < 1:
        raise click.BadParameter("the window must be at least 1 second")
    return seconds


def when_ns(app: AppContext, text: str) -> int:
    """WHEN (``replay.moments``: a time, an event id or prefix, a commit, a git revision)
    as event time in ns; events and commits are looked up in the local ledger's project
    when one can be chosen, else only times are understood."""
    from ledger.errors import AmbiguousProject, ProjectNotFound
    from replay import LocalHistory
    from replay.moments import time_of

    try:
        history = LocalHistory(app.ledger, app.tenant, app.project())
    except (ProjectNotFound, AmbiguousProject):  # no single local project: times only
        history = None
    return time_of(text, history)


def _audit_output(fn):
    fn = format_option(fn)
    fn = json_flag(fn)
    fn = no_ingest_option(fn)
    fn = clickhouse_option(fn)
    return fn


def _run(app: AppContext, name: str, opts: dict, **params) -> None:
    from ingest.audits import AUDITS, run_audit

    result = run_audit(_url(app, opts["clickhouse_url"]), name, tenant=app.tenant, limits=_limits(app),
                       refresh=_refresh(app, opts["no_ingest"]), project=app.settings.project or "", **params)
    _note_refreshed(result.refreshed)
    fmt = _fmt(opts["fmt"], opts["as_json"])
    render(result.columns, result.rows, fmt, title=None if fmt in ("csv", "json", "jsonl") else AUDITS[name].summary)


@click.group("audit")
def audit_group():
    """Ready audit reports over the tenant's analytics events, and `unapproved`.

    `ledger audit unapproved` reads the local ledger (no analytics extra needed): the
    risky changes no approval covers. Every other report is a documented SQL file
    (`ledger audit sql NAME` prints it) over ClickHouse, to copy and adapt. --project limits a report to one project (default: every project of
    --tenant). New local events are ingested first (--no-ingest skips that); reports run
    in the same sandbox and limits as `ledger sql`.

    \b
    Examples:
      ledger audit hot-files --min-changes 5 --window 1h
      ledger audit decisions --before "2 hours ago"
      ledger audit reverted --max-confidence 0.6
      ledger audit agents --since "1 week ago"
      ledger audit why src/app.py
      ledger audit unapproved --since "1 week ago"
    """


@audit_group.command("hot-files")
@click.option("--min-changes", type=click.IntRange(1), default=5, show_default=True,
              help="Report a path changed at least this many times within one window.")
@click.option("--window", default="1h", show_default=True, help="Window length: 90s, 15m, 1h, 2d ...")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@_audit_output
@pass_app
def hot_files_cmd(app, min_changes, window, limit, **opts):
    """Hot files and loops: paths changed at least N times within a window.

    \b
    Examples:
      ledger audit hot-files                          # >= 5 changes within an hour
      ledger audit hot-files --min-changes 3 --window 15m --format csv
    """
    _run(app, "hot-files", opts, min_changes=min_changes, window_s=parse_duration_s(window), limit=limit)


@audit_group.command("decisions")
@click.option("--before", "before", default=None, help="Moment (default: now): RFC 3339, '2 hours ago' ...")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@_audit_output
@pass_app
def decisions_cmd(app, before, limit, **opts):
    """Decisions up to a moment, newest first, with the changes each one caused.

    \b
    Examples:
      ledger audit decisions --before "2 hours ago"
      ledger audit decisions --before 3f2a9c1 --limit 10 --json   # up to a commit
    """
    import time

    _run(app, "decisions", opts, before=when_ns(app, before) if before else time.time_ns(), limit=limit)


@audit_group.command("reverted")
@click.option("--max-confidence", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Changes whose decision's confidence is below this count as low-confidence.")
@_audit_output
@pass_app
def reverted_cmd(app, max_confidence, **opts):
    """Low-confidence changes later reverted (previous content restored, or created file deleted).

    \b
    Examples:
      ledger audit reverted
      ledger audit reverted --max-confidence 0.6 --format vertical
    """
    _run(app, "reverted", opts, max_confidence=max_confidence)


@audit_group.command("agents")
@click.option("--since", default=None, help="From this moment (default: the beginning).")
@click.option("--until", default=None, help="Up to this moment (default: now and later).")
@_audit_output
@pass_app
def agents_cmd(app, since, until, **opts):
    """Activity per agent and role: events, decisions, changes, lines, files, sessions.

    \b
    Examples:
      ledger audit agents
      ledger audit agents --since "1 week ago" --until yesterday --format csv
    """
    _run(app, "agents", opts, since=when_ns(app, since) if since else None,
         until=when_ns(app, until) if until else None)


@audit_group.command("why")
@click.argument("path")
@_audit_output
@pass_app
def why_cmd(app, path, **opts):
    """Every change of PATH with the decision behind it (via caused_by).

    \b
    Examples:
      ledger audit why src/app.py
      ledger --project web audit why src/app.py --format vertical
    """
    _run(app, "why", opts, path=path)


@audit_group.command("sql")
@click.argument("name", required=False)
def audit_sql_cmd(name):
    """Print the SQL file of report NAME (or list the reports) to copy and adapt.

    \b
    Examples:
      ledger audit sql                  # the reports and their files
      ledger audit sql reverted         # paste into `ledger sql -` with --param values
    """
    from ingest.audits import AUDITS

    if name is None:
        for audit in AUDITS.values():
            click.echo(f"{audit.name:10}  {audit.summary}  ({audit.path})")
        return
    if name not in AUDITS:
        raise LedgerError(f"unknown report {name!r}; reports: {', '.join(AUDITS)}")
    click.echo(AUDITS[name].sql(), nl=False)


def _add_local_audits() -> None:
    from cli.approvals import unapproved_cmd  # light: the library loads when it runs

    audit_group.add_command(unapproved_cmd)


_add_local_audits()
