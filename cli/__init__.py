"""The ``ledger`` command line: a thin layer over the library.

Commands are loaded lazily (click's LazyGroup pattern) so ``ledger log`` does not pay
for importing ClickHouse or FoundationDB. Each command module makes about one library
call; errors of the library are shown as one clear line with exit status 1.
"""

from __future__ import annotations

import importlib
import importlib.util

import click

from cli.common import AppContext, JsonError, cli_errors, wants_json

#: command name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "log": "cli.core:log_cmd",
    "show": "cli.core:show_cmd",
    "projects": "cli.projects:projects_group",
    "import": "cli.importing:import_group",
    "replay": "cli.replaying:replay_cmd",
    "diff": "cli.replaying:diff_cmd",
    "restore": "cli.replaying:restore_cmd",
    "demo": "cli.demo:demo_cmd",
    "record": "cli.capture:record_cmd",
    "exec": "cli.capture:exec_cmd",
    "sync": "cli.sync:sync_group",
    "syncer": "cli.sync:syncer_group",
    "hub": "cli.hub:hub_group",
    "bundle": "cli.hub:bundle_group",
    "ingest": "cli.analytics:ingest_cmd",
    "sql": "cli.analytics:sql_cmd",
    "audit": "cli.analytics:audit_group",
    "approve": "cli.approvals:approve_cmd",
    "reject": "cli.approvals:reject_cmd",
    "agent": "cli.agents:agent_group",
    "hook": "cli.agents:hook_cmd",
    "serve": "cli.agents:serve_cmd",
    "blame": "cli.blaming:blame_cmd",
    "ui": "cli.ui:ui_cmd",
    "verify": "cli.trust:verify_cmd",
    "erase": "cli.trust:erase_cmd",
    "gc": "cli.trust:gc_cmd",
    "hold": "cli.trust:hold_group",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        for name, target in COMMANDS.items():
            if importlib.util.find_spec(target.split(":")[0]) is not None:
                names.add(name)
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attr = COMMANDS[cmd_name].split(":")
            if importlib.util.find_spec(module_name) is None:
                return None
            return with_scope_options(getattr(importlib.import_module(module_name), attr))
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["ledger.argv"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            with cli_errors():
                return super().invoke(ctx)
        except click.ClickException as exc:
            if wants_json(ctx.meta.get("ledger.argv", [])):
                raise JsonError(exc) from exc.__cause__
            raise


def _set_scope(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.find_object(AppContext).set_scope(**{param.name.removeprefix("scope_"): value})


_SCOPE_HELP = {"project": "Project id (as the global --project).", "tenant": "Tenant id (as the global --tenant)."}


def with_scope_options(cmd: click.Command) -> click.Command:
    """Accept ``--project``/``--tenant`` after the subcommand too (``ledger log --project
    web``), unless the command has an option of that name itself. Idempotent."""
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            with_scope_options(sub)
        return cmd
    names = {p.name for p in cmd.params}
    for name, help_text in _SCOPE_HELP.items():
        if name not in names and f"scope_{name}" not in names:
            cmd.params.append(click.Option([f"--{name}", f"scope_{name}"], expose_value=False,
                                           callback=_set_scope, is_eager=True, help=help_text))
    return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db_path", type=click.Path(dir_okay=False), envvar="LEDGER_DB_PATH",
              help="SQLite ledger file [default: <data dir>/ledger.db; env LEDGER_DB_PATH].")
@click.option("--tenant", envvar="LEDGER_TENANT", help="Tenant id [default: 'default'; env LEDGER_TENANT].")
@click.option("--project", envvar="LEDGER_PROJECT",
              help="Project id [default: the only project in the ledger; env LEDGER_PROJECT].")
@click.version_option(package_name="context-ledger")
@click.pass_context
def cli(ctx: click.Context, db_path: str | None, tenant: str | None, project: str | None) -> None:
    """Context Ledger: a flight recorder for AI agents that change codebases.

    \b
    Examples:
      ledger demo                               # the main job, on a temporary ledger
      ledger import git ~/src/app               # turn git history into events
      ledger log --limit 20                     # newest events
      ledger replay --at "2 hours ago" --out /tmp/app-then
      ledger replay --at 3f2a9c1 --out /tmp/at-commit
      ledger sql "SELECT agent_id, count() FROM swarm_events GROUP BY agent_id"
    """
    ctx.obj = AppContext(db_path=db_path, tenant=tenant, project=project)
    ctx.call_on_close(ctx.obj.close)


def main() -> None:  # pragma: no cover - console entry
    cli()
