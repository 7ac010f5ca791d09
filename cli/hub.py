"""``ledger hub`` (the gateway and its tokens) and ``ledger bundle`` (offline transfer)."""

from __future__ import annotations

import datetime as dt
import re

import click

from cli.common import emit_json, format_local_time, json_option, pass_app

_required_cluster_file = click.option(
    "--cluster-file", type=click.Path(dir_okay=False), default=None,
    help="FoundationDB cluster file of the hub [default: ledger.toml fdb_cluster_file, else $FDB_CLUSTER_FILE].")


def _db(app, cluster_file):
    from hub.client import direct_database, resolve_cluster_file

    return direct_database(resolve_cluster_file(cluster_file, app.settings))


def parse_expiry(text: str | None, now: dt.datetime | None = None) -> int | None:
    """Nanoseconds since the epoch of ``--expires``: a duration (``90m``, ``12h``, ``30d``,
    ``52w``) from now, or an ISO-8601 date/time; None when not given."""
    if not text:
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    m = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        when = now + dt.timedelta(**{unit: int(m.group(1))})
    else:
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise click.BadParameter("give a duration (90m, 12h, 30d, 52w) or an ISO date", param_hint="--expires") \
                from exc
        when = when if when.tzinfo else when.astimezone()
    return int(when.timestamp() * 1e9)


@click.group("hub")
def hub_group() -> None:
    """Run the team hub's gateway and manage its tokens (on a machine with the cluster file).

    Laptops then use the gateway with a token instead of a cluster file
    (LEDGER_HUB_URL, LEDGER_HUB_TOKEN).

    \b
    Examples:
      ledger hub serve --cluster-file /etc/foundationdb/fdb.cluster --host 0.0.0.0
      ledger hub token create --tenant acme --scope write
      LEDGER_HUB_URL=https://hub.example.com:8470 LEDGER_HUB_TOKEN=clh_... ledger sync
    """


@hub_group.command("serve")
@_required_cluster_file
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--port", type=click.IntRange(1, 65535), default=8470, show_default=True)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM) to serve HTTPS.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option("--rate-limit", type=click.FloatRange(0), default=50.0, show_default=True,
              help="Requests per second per token, per gateway process (0: unlimited).")
@click.option("--burst", type=click.IntRange(1), default=200, show_default=True, help="Requests a token may burst.")
@pass_app
def serve_cmd(app, cluster_file, host, port, tls_cert, tls_key, rate_limit, burst) -> None:
    """Serve the hub to laptops over HTTP(S): tokens decide the tenant and the scope.

    Stateless (tokens and data live in FoundationDB): run several behind a load balancer.
    Refusals are logged as JSON lines (logger hub.gateway).

    \b
    Examples:
      ledger hub serve --cluster-file /etc/foundationdb/fdb.cluster
      ledger hub serve --host 0.0.0.0 --port 443 --tls-cert cert.pem --tls-key key.pem
    """
    from hub.client import resolve_cluster_file

    try:
        from hub.gateway import serve
    except ImportError as exc:
        raise click.ClickException(f"the gateway needs the team-side extra: pip install 'context-ledger[hub]' ({exc})")
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    serve(resolve_cluster_file(cluster_file, app.settings), host=host, port=port, tls_cert=tls_cert,
          tls_key=tls_key, rate=rate_limit, burst=burst)


@hub_group.group("token")
def token_group() -> None:
    """Create, list and revoke gateway tokens (stored hashed in FoundationDB).

    \b
    Examples:
      ledger hub token create --tenant acme --scope write --expires 90d --label "ann's laptop"
      ledger hub token list --tenant acme
      ledger hub token revoke 3f9a0c12b7de
    """


def _token_dict(info) -> dict:
    return info.to_dict()


@token_group.command("create")
@_required_cluster_file
@click.option("--tenant", "tenant", required=True, help="The tenant the token acts for.")
@click.option("--scope", type=click.Choice(["write", "read", "admin"]), required=True,
              help="write: a laptop syncs; read: replay, log, ingest; admin: both.")
@click.option("--expires", help="Duration (90m, 12h, 30d, 52w) or ISO date after which it is refused.")
@click.option("--label", default="", help="A note for `token list` (whose laptop, what for).")
@json_option
@pass_app
def token_create_cmd(app, cluster_file, tenant, scope, expires, label, as_json) -> None:
    """Create a token; it is printed once (the last word of the output) and stored hashed.

    \b
    Examples:
      ledger hub token create --tenant acme --scope write --label "ann's laptop"
      ledger hub token create --tenant acme --scope read --expires 30d --json
    """
    from hub.tokens import create_token

    text, info = create_token(_db(app, cluster_file), tenant, scope, expires_ns=parse_expiry(expires),
                              label=label)
    if as_json:
        emit_json({**_token_dict(info), "token": text})
        return
    until = f", expires {format_local_time(info.expires_ns)}" if info.expires_ns else ""
    click.echo(f"Token {info.id} for tenant {info.tenant!r}, scope {info.scope}{until}. "
               f"It is shown once; give it to its user as LEDGER_HUB_TOKEN:")
    click.echo(text)


@token_group.command("list")
@_required_cluster_file
@click.option("--tenant", "tenant", help="Only this tenant's tokens.")
@json_option
@pass_app
def token_list_cmd(app, cluster_file, tenant, as_json) -> None:
    """List tokens: id, tenant, scope, created, expiry, revocation (never secrets).

    \b
    Examples:
      ledger hub token list
      ledger hub token list --tenant acme --json
    """
    from hub.tokens import list_tokens

    infos = list_tokens(_db(app, cluster_file), tenant)
    if as_json:
        emit_json([_token_dict(i) for i in infos])
        return
    if not infos:
        click.echo("No tokens. Create one with `ledger hub token create --tenant T --scope write`.", err=True)
    for i in infos:
        state = ("revoked " + format_local_time(i.revoked_ns)) if i.revoked_ns else \
            ("expires " + format_local_time(i.expires_ns) if i.expires_ns else "no expiry")
        click.echo(f"{i.id}  {i.tenant:<20}  {i.scope:<5}  created {format_local_time(i.created_ns)}  {state}  {i.label}")


@token_group.command("revoke")
@_required_cluster_file
@click.argument("token_or_id")
@json_option
@pass_app
def token_revoke_cmd(app, cluster_file, token_or_id, as_json) -> None:
    """Revoke a token (its text or its id): refused by every gateway from the next request.

    \b
    Examples:
      ledger hub token revoke 3f9a0c12b7de
      ledger hub token revoke "$LEDGER_HUB_TOKEN" --json
    """
    from hub.tokens import revoke_token

    info = revoke_token(_db(app, cluster_file), token_or_id)
    if as_json:
        emit_json(_token_dict(info))
        return
    click.echo(f"Token {info.id} (tenant {info.tenant!r}, scope {info.scope}) revoked.")


@click.group("bundle")
def bundle_group() -> None:
    """Carry events to the hub without a network: a signed, self-verifying file (USB, file drop).

    \b
    Examples:
      ledger bundle export --since "2026-11-01" /media/usb/laptop-ann.clb     # offline laptop
      ledger --tenant acme bundle import /media/usb/laptop-ann.clb            # at the hub
      ledger bundle import --expect-key 3f9a0c12b7de4411 laptop-ann.clb
    """


@bundle_group.command("export")
@click.option("--since", help="Only events from this moment on (a time: ISO-8601 or '2 days ago').")
@click.option("--all-tenants", is_flag=True, help="Every tenant in the ledger, not only the current one.")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@pass_app
def bundle_export_cmd(app, since, all_tenants, file, as_json) -> None:
    """Write the ledger's events and their content to FILE, signed with the ledger's key.

    The key is <ledger file>.bundle-key (created on first export); its fingerprint is
    printed, to give `ledger bundle import --expect-key`.

    \b
    Examples:
      ledger bundle export /media/usb/ann.clb
      ledger bundle export --since "2 days ago" --json /media/usb/ann.clb
    """
    from replay.moments import time_of
    from syncer.bundles import export_bundle

    since_ns = time_of(since) if since else None
    report = export_bundle(app.ledger, file, since_ns=since_ns, tenant_id=None if all_tenants else app.tenant)
    if as_json:
        emit_json(report.to_dict())
        return
    click.echo(f"Wrote {report.events:,} events and {report.blobs:,} blobs to {file}; "
               f"signed by key {report.key_fingerprint}.")


@bundle_group.command("import")
@click.option("--cluster-file", type=click.Path(dir_okay=False), default=None,
              help="FoundationDB cluster file [default: the gateway at hub_url if set, else the configured one].")
@click.option("--expect-key", help="Refuse the bundle unless signed by this key fingerprint.")
@click.option("--local", "into_local", is_flag=True,
              help="Import into this laptop's ledger instead of the hub; each new event records "
                   "where it came from (shared_from, shown by `ledger show`).")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@json_option
@pass_app
def bundle_import_cmd(app, cluster_file, expect_key, into_local, file, as_json) -> None:
    """Verify FILE completely, then write its events to the hub exactly once (re-importing
    writes nothing twice). An altered bundle is refused before anything is written.
    With --local the events go into the local ledger instead, marked shared_from the
    bundle (its file, ledger id and key), and sync to the hub from here like any.

    \b
    Examples:
      ledger --tenant acme bundle import --cluster-file /etc/foundationdb/fdb.cluster ann.clb
      ledger bundle import --expect-key 3f9a0c12b7de4411 ann.clb
      ledger bundle import --local --expect-key 3f9a0c12b7de4411 ann.clb   # another team's knowledge
    """
    if into_local:
        from syncer.shared import import_bundle_local

        _echo_shared(import_bundle_local(app.ledger, file, tenant_id=app.tenant, expect_key=expect_key), as_json)
        return
    from syncer.bundles import import_bundle

    report = import_bundle(app.hub(cluster_file), file, expect_key=expect_key)
    if as_json:
        emit_json(report.to_dict())
        return
    click.echo(f"Bundle {file} (key {report.key_fingerprint}) verified: {report.written:,} events written, "
               f"{report.already_on_hub:,} already on the hub, {report.other_tenant:,} of other tenants skipped.")
    if report.conflicts:
        click.secho(f"{len(report.conflicts)} events conflict with different content on the hub (not written): "
                    + ", ".join(report.conflicts[:5]), fg="yellow", err=True)


def _echo_shared(report, as_json: bool) -> None:
    """Print a ``syncer.shared.SharedImport``."""
    if as_json:
        emit_json(report.to_dict())
        return
    click.echo(f"Imported from {report.source}: {report.written:,} events written, {report.already_here:,} "
               f"already here, {report.other_tenant:,} of other tenants skipped"
               + (f", {report.missing_content:,} without content skipped" if report.missing_content else "") + ".")
    for item in report.refused[:5]:
        click.secho(f"refused {item['event_id']}: {item['reason']}", fg="yellow", err=True)
    if len(report.refused) > 5:
        click.secho(f"... and {len(report.refused) - 5} more refused", fg="yellow", err=True)
