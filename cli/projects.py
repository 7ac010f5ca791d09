"""``ledger projects``: list, add, rename and remove the projects of the local ledger."""

from __future__ import annotations

import sys

import click

from cli.common import emit_json, format_local_time, json_option, pass_app
from schemas.timestamps import format_timestamp_ns


@click.group("projects", invoke_without_command=True)
@json_option
@pass_app
@click.pass_context
def projects_group(ctx, app, as_json: bool) -> None:
    """List the projects of the local ledger: events, time range and work tree.

    A command run inside a project's work tree acts on that project; elsewhere, pass
    --project (or set LEDGER_PROJECT) when the tenant has several.

    \b
    Examples:
      ledger projects
      ledger projects --json
      ledger projects add web --root ~/src/web
      ledger projects rename wbe web
      ledger projects rm scratch --yes
    """
    if ctx.invoked_subcommand is not None:
        return
    counts = {(p.tenant_id, p.project_id): p for p in app.ledger.projects()}
    infos = app.ledger.project_infos()
    rows = []
    for info in infos:
        summary = counts.get((info.tenant_id, info.project_id))
        rows.append({
            "tenant_id": info.tenant_id, "project_id": info.project_id, "root": info.root,
            "identity": info.identity, "events": summary.events if summary else 0,
            "first": format_timestamp_ns(summary.first_ns) if summary else None,
            "last": format_timestamp_ns(summary.last_ns) if summary else None,
        })
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("No projects yet: `ledger import git REPO`, `ledger agent install AGENT`, or record "
                   "with the SDK.", err=True)
        return
    for info, row in zip(infos, rows):
        summary = counts.get((info.tenant_id, info.project_id))
        span = (f"{format_local_time(summary.first_ns)} .. {format_local_time(summary.last_ns)}"
                if summary else "no events")
        click.echo(f"{row['tenant_id']}/{row['project_id']}  {row['events']:,} events  {span}"
                   + (f"  {row['root']}" if row["root"] else ""))


@projects_group.command("add")
@click.argument("name")
@click.option("--root", type=click.Path(exists=True, file_okay=False),
              help="The project's work tree: commands run inside it pick this project.")
@json_option
@pass_app
def add_cmd(app, name: str, root: str | None, as_json: bool) -> None:
    """Start project NAME (optionally with its work tree), so that recording into it is
    not mistaken for a typo.

    \b
    Examples:
      ledger projects add web
      ledger projects add web --root .
    """
    info = app.ledger.register_project(app.tenant, name, root=root)
    if as_json:
        emit_json(info.__dict__)
    else:
        click.echo(f"project {info.tenant_id}/{info.project_id}" + (f" at {info.root}" if info.root else ""))


@projects_group.command("rename")
@click.argument("old")
@click.argument("new")
@json_option
@pass_app
def rename_cmd(app, old: str, new: str, as_json: bool) -> None:
    """Rename project OLD to NEW (only before its events were synced to the hub).

    \b
    Examples:
      ledger projects rename wbe web
    """
    count = app.ledger.rename_project(app.tenant, old, new)
    if as_json:
        emit_json({"tenant_id": app.tenant, "old": old, "new": new, "events": count})
    else:
        click.echo(f"renamed {app.tenant}/{old} to {new} ({count:,} events)")


@projects_group.command("rm")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_app
def rm_cmd(app, name: str, yes: bool, as_json: bool) -> None:
    """Delete project NAME and its events from this ledger (the hub keeps what was synced).

    \b
    Examples:
      ledger projects rm scratch --yes
    """
    if not yes:
        if as_json or not sys.stdin.isatty():
            raise click.UsageError(f"removing project {name!r} deletes its events: pass --yes to confirm")
        click.confirm(f"Delete project {app.tenant}/{name} and all its events from {app.ledger.path}?",
                      abort=True)
    count = app.ledger.remove_project(app.tenant, name)
    if as_json:
        emit_json({"tenant_id": app.tenant, "project_id": name, "events_deleted": count})
    else:
        click.echo(f"removed {app.tenant}/{name} ({count:,} events)")
