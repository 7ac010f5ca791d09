"""``ledger ingest``, ``ledger sql`` and ``ledger audit``: ClickHouse analytics.

Thin: each command makes one call into ``ingest`` and prints the result.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import sys

import click

from cli.common import AppContext, emit_json, pass_app
from cli.progress import progress_bar
from ledger.errors import LedgerError

_FORMATS = click.Choice(["table", "csv", "json"])
clickhouse_option = click.option(
    "--clickhouse", "clickhouse_url", envvar="LEDGER_CLICKHOUSE_URL",
    help="ClickHouse URL: http(s)://user:pass@host:8123, or chdb:///dir "
         "[default: embedded chdb in <data dir>/analytics; env LEDGER_CLICKHOUSE_URL].")


def _url(app: AppContext, explicit: str | None) -> str:
    return explicit or app.settings.analytics_url


# ------------------------------------------------------------------ output
def _cell(value) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _jsonable(value):
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return value


def print_result(result, fmt: str) -> None:
    """Print a ``QueryResult`` as a rich table, CSV or JSON (list of objects)."""
    if fmt == "json":
        emit_json([{k: _jsonable(v) for k, v in row.items()} for row in result.as_dicts()])
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        for row in result.rows:
            writer.writerow([_cell(v) for v in row])
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(show_lines=False, header_style="bold")
        for name in result.columns:
            table.add_column(name, overflow="fold")
        for row in result.rows:
            table.add_row(*[_cell(v) for v in row])
        Console(soft_wrap=False).print(table)
        click.echo(f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}", err=True)


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
    """Load events into ClickHouse for SQL audits, exactly once.

    Resumes from its checkpoint (stored in ClickHouse); a crash at any point followed by
    a re-run leaves every event in `swarm_events` exactly once.

    \b
    Examples:
      ledger ingest                              # local ledger -> embedded ClickHouse
      ledger ingest --follow                     # keep going as agents record
      ledger ingest --source hub --clickhouse http://ch:8123
    """
    from ingest.ingestor import Ingestor
    from ingest.sources import HubSource, LocalSource

    if source == "hub":
        src = HubSource(app.hub(cluster_file))
    else:
        src = LocalSource(app.ledger)
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

            stats = ingestor.follow(poll_interval_s=poll_interval, on_round=on_round)
        else:
            stats = ingestor.run()
    if as_json:
        if not follow:
            emit_json(stats.as_dict())
        return
    rate = f" ({stats.read / stats.seconds:,.0f} events/s)" if stats.seconds and stats.read else ""
    extra = f", {stats.skipped_present:,} already present from an interrupted run" if stats.skipped_present else ""
    click.echo(f"ingested {stats.inserted:,} events in {stats.batches} batches{rate}{extra} into {url}")


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
@click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Query parameter for {NAME:Type} placeholders (repeatable).")
@clickhouse_option
@pass_app
def sql_cmd(app: AppContext, query, fmt, as_json, params, clickhouse_url):
    """Run ONE read-only SQL query on the analytics database (table swarm_events).

    Writes are refused by ClickHouse itself (readonly setting); several statements,
    INSERT, DROP, ALTER, SYSTEM ... are refused with an error and change nothing.
    QUERY '-' reads the query from stdin.

    \b
    Examples:
      ledger sql "SELECT agent_id, count() FROM swarm_events GROUP BY agent_id"
      ledger sql "SELECT * FROM swarm_events WHERE target_path = {p:String}" --param p=src/app.py
      ledger sql --format csv "SELECT event_type, count() FROM swarm_events GROUP BY 1" > kinds.csv
    """
    from ingest.readonly import run_readonly

    if query == "-":
        query = sys.stdin.read()
    result = run_readonly(_url(app, clickhouse_url), query, _params(params))
    print_result(result, "json" if as_json else fmt)


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
    fn = click.option("--format", "fmt", type=_FORMATS, default="table", show_default=True)(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(fn)
    fn = clickhouse_option(fn)
    return fn


def _run(app: AppContext, name: str, clickhouse_url, fmt, as_json, **params) -> None:
    from ingest.audits import run_audit

    result = run_audit(_url(app, clickhouse_url), name, tenant=app.tenant,
                       project=app.settings.project or "", **params)
    print_result(result, "json" if as_json else fmt)


@click.group("audit")
def audit_group():
    """Ready audit reports over the analytics database (run `ledger ingest` first).

    Each report is a documented SQL file (`ledger audit sql NAME` prints it) to copy
    and adapt. --project limits a report to one project (default: every project).

    \b
    Examples:
      ledger audit hot-files --min-changes 5 --window 1h
      ledger audit decisions --before "2 hours ago"
      ledger audit reverted --max-confidence 0.6
      ledger audit agents --since "1 week ago"
      ledger audit why src/app.py
    """


@audit_group.command("hot-files")
@click.option("--min-changes", type=click.IntRange(1), default=5, show_default=True,
              help="Report a path changed at least this many times within one window.")
@click.option("--window", default="1h", show_default=True, help="Window length: 90s, 15m, 1h, 2d ...")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
@_audit_output
@pass_app
def hot_files_cmd(app, min_changes, window, limit, clickhouse_url, fmt, as_json):
    """Hot files and loops: paths changed at least N times within a window."""
    _run(app, "hot-files", clickhouse_url, fmt, as_json, min_changes=min_changes,
         window_s=parse_duration_s(window), limit=limit)


@audit_group.command("decisions")
@click.option("--before", "before", default=None, help="Moment (default: now): RFC 3339, '2 hours ago' ...")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@_audit_output
@pass_app
def decisions_cmd(app, before, limit, clickhouse_url, fmt, as_json):
    """Decisions up to a moment, newest first, with the changes each one caused."""
    import time

    _run(app, "decisions", clickhouse_url, fmt, as_json,
         before=when_ns(app, before) if before else time.time_ns(), limit=limit)


@audit_group.command("reverted")
@click.option("--max-confidence", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Changes whose decision's confidence is below this count as low-confidence.")
@_audit_output
@pass_app
def reverted_cmd(app, max_confidence, clickhouse_url, fmt, as_json):
    """Low-confidence changes later reverted (previous content restored, or created file deleted)."""
    _run(app, "reverted", clickhouse_url, fmt, as_json, max_confidence=max_confidence)


@audit_group.command("agents")
@click.option("--since", default=None, help="From this moment (default: the beginning).")
@click.option("--until", default=None, help="Up to this moment (default: now and later).")
@_audit_output
@pass_app
def agents_cmd(app, since, until, clickhouse_url, fmt, as_json):
    """Activity per agent and role: events, decisions, changes, lines, files, sessions."""
    _run(app, "agents", clickhouse_url, fmt, as_json,
         since=when_ns(app, since) if since else None, until=when_ns(app, until) if until else None)


@audit_group.command("why")
@click.argument("path")
@_audit_output
@pass_app
def why_cmd(app, path, clickhouse_url, fmt, as_json):
    """Every change of PATH with the decision behind it (via caused_by)."""
    _run(app, "why", clickhouse_url, fmt, as_json, path=path)


@audit_group.command("sql")
@click.argument("name", required=False)
def audit_sql_cmd(name):
    """Print the SQL file of report NAME (or list the reports) to copy and adapt."""
    from ingest.audits import AUDITS

    if name is None:
        for audit in AUDITS.values():
            click.echo(f"{audit.name:10}  {audit.summary}  ({audit.path})")
        return
    if name not in AUDITS:
        raise LedgerError(f"unknown report {name!r}; reports: {', '.join(AUDITS)}")
    click.echo(AUDITS[name].sql(), nl=False)
