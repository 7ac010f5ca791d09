"""``ledger sync`` (one pass, ``status``) and ``ledger syncer`` (the daemon)."""

from __future__ import annotations

import os

import click

from cli.common import emit_json, format_local_time, json_option, pass_app

cluster_file_option = click.option(
    "--cluster-file", type=click.Path(dir_okay=False), default=None,
    help="FoundationDB cluster file of the hub (direct access) [default: the gateway at hub_url / "
         "$LEDGER_HUB_URL if set, else ledger.toml fdb_cluster_file, else $FDB_CLUSTER_FILE].",
)


def _target(app, cluster_file):
    """Keyword arguments naming the hub for the daemon: the gateway (``hub_url``,
    ``hub_token``) or a resolved ``cluster_file``."""
    from hub.client import hub_target

    target = hub_target(app.settings, cluster_file)
    if target.url:
        return {"hub_url": target.url, "hub_token": target.token}
    return {"cluster_file": target.cluster_file}


def _hub_description(app) -> str | None:
    """Where this ledger syncs to (a gateway URL or a cluster file), or None when no hub
    is configured."""
    from hub.errors import HubNotConfigured, HubUnavailable

    try:
        target = _target(app, None)
    except HubNotConfigured:
        return None
    except HubUnavailable as exc:  # configured, but the cluster file is missing
        return f"unusable: {exc}"
    return target.get("hub_url") or str(target.get("cluster_file"))


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


@click.group("sync", invoke_without_command=True)
@cluster_file_option
@click.option("--batch-bytes", type=click.IntRange(10_000, 5_000_000), default=None,
              help="Bytes per event transaction [default: 500,000].")
@json_option
@click.pass_context
def sync_group(ctx: click.Context, cluster_file: str | None, batch_bytes: int | None, as_json: bool) -> None:
    """Send every pending event of the local ledger to the hub, once (then exit).

    Events go in recording order, in batches, each checked against its idempotency key
    on the hub: running it twice, or after a crash, never duplicates anything. Events
    of other tenants and events too large for the hub are refused and listed by
    `ledger sync status`.

    \b
    Examples:
      ledger sync --cluster-file /etc/foundationdb/fdb.cluster
      FDB_CLUSTER_FILE=~/fdb.cluster ledger --tenant acme sync --json
      ledger sync status
    """
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.obj
    from syncer.syncer import DEFAULT_BATCH_BYTES, Syncer

    syncer = Syncer(app.ledger, app.hub(cluster_file), batch_bytes=batch_bytes or DEFAULT_BATCH_BYTES)
    pending = app.ledger.outbox_status()["pending"]
    from cli.progress import progress_bar

    with progress_bar("syncing", unit="events", enabled=not as_json) as update:
        report = syncer.sync_once(
            progress=lambda r: update(r.sent + r.already_on_hub + r.refused, pending))
    if as_json:
        emit_json(report.to_dict())
        return
    click.echo(
        f"Sent {report.sent:,} events ({report.bytes:,} bytes) and {report.blobs:,} blobs "
        f"({report.blob_bytes:,} bytes) in {report.batches:,} transactions, {report.seconds:.2f} s; "
        f"{report.already_on_hub:,} were already on the hub."
    )
    if report.refused:
        click.secho(f"{report.refused:,} events refused (see `ledger sync status`):", fg="yellow", err=True)
        for r in report.refusals[:5]:
            click.echo(f"  seq {r['seq']}: {r['error']}", err=True)


@sync_group.command("status")
@json_option
@pass_app
def sync_status_cmd(app, as_json: bool) -> None:
    """Show the outbox: pending events, oldest pending age, last success, last error.

    Reads only the local ledger (works offline). Exit status 0 even when unhealthy;
    check "healthy" in --json output.

    \b
    Examples:
      ledger sync status
      ledger sync status --json | jq .pending
    """
    from syncer.daemon import daemon_status
    from syncer.status import sync_status

    st = sync_status(app.ledger, hub=_hub_description(app))
    daemon = daemon_status(app.ledger.path)
    if as_json:
        emit_json({**st.to_dict(), "daemon": daemon})
        return
    click.echo(f"Ledger:          {st.ledger} (id {st.ledger_id})")
    click.echo(f"Hub:             {st.hub or 'no hub configured (set LEDGER_HUB_URL and LEDGER_HUB_TOKEN, or FDB_CLUSTER_FILE)'}")
    click.echo(f"Health:          {'healthy' if st.healthy else 'UNHEALTHY: ' + st.problem}")
    click.echo(f"Synced:          {st.synced:,} events")
    click.echo(f"Pending:         {st.pending:,} events (oldest recorded {_age(st.oldest_pending_age_s)} ago)")
    click.echo(f"Refused:         {st.refused:,} events")
    click.echo("Last success:    " + (format_local_time(st.last_success_ns) if st.last_success_ns else "never"))
    if st.last_error:
        click.echo(f"Last error:      {format_local_time(st.last_error_ns)}: {st.last_error}")
    else:
        click.echo("Last error:      none")
    click.echo("Syncer daemon:   " + (f"running (pid {daemon['pid']})" if daemon["running"] else "not running"))
    for r in st.refused_events:
        click.secho(f"  refused seq {r['seq']} ({r['event_id']}): {r['error']}", fg="yellow")


@click.group("syncer")
def syncer_group() -> None:
    """Run the syncer as a daemon: one per ledger, forwarding events while online.

    \b
    Examples:
      ledger syncer start --cluster-file ~/fdb.cluster
      ledger syncer status
      ledger syncer stop
      ledger syncer run            # in the foreground (systemd, launchd, a terminal)
    """


@syncer_group.command("run")
@cluster_file_option
@click.option("--interval", type=click.FloatRange(0.05, 3600), default=5.0, show_default=True,
              help="Seconds between passes when the outbox is empty.")
@pass_app
def syncer_run_cmd(app, cluster_file: str | None, interval: float) -> None:
    """Run the syncer in the foreground until SIGTERM or Ctrl-C (finishes the current batch).

    Logs to stderr and to <ledger>.syncer.log (rotated). This is what the systemd unit
    and the launchd agent in infrastructure/ run.

    \b
    Examples:
      ledger syncer run
      ledger syncer run --interval 1 --cluster-file /etc/foundationdb/fdb.cluster
    """
    from syncer.daemon import run

    target = _target(app, cluster_file)
    if target.get("hub_token"):
        os.environ["LEDGER_HUB_TOKEN"] = target.pop("hub_token")
    target.pop("hub_token", None)
    run(app.settings.ledger_path, app.tenant, interval=interval, to_stderr=True, **target)


@syncer_group.command("start")
@cluster_file_option
@click.option("--interval", type=click.FloatRange(0.05, 3600), default=5.0, show_default=True,
              help="Seconds between passes when the outbox is empty.")
@pass_app
def syncer_start_cmd(app, cluster_file: str | None, interval: float) -> None:
    """Start the syncer in the background (one per ledger).

    \b
    Examples:
      ledger syncer start
      ledger syncer start --interval 10
    """
    from hub.client import probe_hub
    from syncer.daemon import DaemonPaths, start

    target = _target(app, cluster_file)
    probe_hub(app.tenant, settings=app.settings, cluster_file=target.get("cluster_file"),
              url=target.get("hub_url"), token=target.get("hub_token"))  # fail now, not in the background
    pid = start(app.settings.ledger_path, app.tenant, interval=interval, **target)
    click.echo(f"Syncer started (pid {pid}); log: {DaemonPaths.for_ledger(app.settings.ledger_path).log}")


@syncer_group.command("stop")
@click.option("--timeout", type=click.FloatRange(0.1, 3600), default=30.0, show_default=True,
              help="Seconds to wait for the current batch to finish.")
@pass_app
def syncer_stop_cmd(app, timeout: float) -> None:
    """Stop the background syncer gracefully (it finishes its current batch).

    \b
    Examples:
      ledger syncer stop
      ledger syncer stop --timeout 60
    """
    from syncer.daemon import stop

    pid = stop(app.settings.ledger_path, wait_s=timeout)
    click.echo(f"Syncer stopped (pid {pid}).")


@syncer_group.command("status")
@json_option
@pass_app
def syncer_status_cmd(app, as_json: bool) -> None:
    """Is the background syncer running? Plus the outbox status (see `ledger sync status`).

    \b
    Examples:
      ledger syncer status
      ledger syncer status --json
    """
    from syncer.daemon import daemon_status
    from syncer.status import sync_status

    daemon = daemon_status(app.settings.ledger_path)
    st = sync_status(app.ledger, hub=_hub_description(app))
    if as_json:
        emit_json({**daemon, "outbox": st.to_dict()})
        return
    click.echo(f"Health: {'healthy' if st.healthy else 'UNHEALTHY: ' + st.problem}")
    if daemon["running"]:
        click.echo(f"Syncer running (pid {daemon['pid']}); log: {daemon['log']}")
    else:
        click.echo(f"Syncer not running; log: {daemon['log']}")
    click.echo(f"Pending {st.pending:,}, refused {st.refused:,}, synced {st.synced:,}; last success "
               + (format_local_time(st.last_success_ns) if st.last_success_ns else "never")
               + (f"; last error: {st.last_error}" if st.last_error and not st.healthy else ""))
