"""``ledger agent install|uninstall|status``, ``ledger hook AGENT`` and ``ledger serve``:
capturing real coding agents (docs/agents.md)."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import click

from cli.common import AppContext, emit_json, json_option, pass_app

AGENT_CHOICES = ["claude-code", "claude", "codex", "gemini", "cursor", "git"]


def _target(app: AppContext, root: str | None, port: int, *, register: bool = False):
    """Where hooks record: --project, else the project registered for this repository,
    else the repository's directory name. ``register``: record the project and its root
    in the ledger's project registry (install)."""
    from nervous_system.hooks.install import Target, repo_root
    from nervous_system.repo import repository_identity

    r = repo_root(Path(root or os.getcwd()))
    db = Path(app.settings.ledger_path).resolve()
    project = app.settings.project
    if project is None and db.exists():
        here = app.ledger.project_for_path(app.tenant, r)
        project = here.project_id if here is not None else None
    project = project or r.name
    if register:
        app.ledger.register_project(app.tenant, project, root=r, identity=repository_identity(r))
    return Target(root=r, db=db, tenant=app.tenant, project=project, port=port)


@click.group("agent")
def agent_group() -> None:
    """Wire coding agents' hooks to the ledger (Claude Code, Codex, Gemini CLI, Cursor, git).

    \b
    Examples:
      ledger agent install claude            # .claude/settings.json of this repository
      ledger agent install codex             # .codex/hooks.json + Codex trust
      ledger agent install gemini --otel     # hooks + telemetry to `ledger serve`
      ledger agent install git               # post-commit: link commits to sessions
      ledger agent status
      ledger agent uninstall claude
    """


@agent_group.command("install")
@click.argument("agent", type=click.Choice(AGENT_CHOICES))
@click.option("--root", type=click.Path(file_okay=False, exists=True), help="Repository [default: the one of the current directory].")
@click.option("--user", is_flag=True, help="Codex: user-level $CODEX_HOME/hooks.json instead of the project's.")
@click.option("--http", is_flag=True, help="Claude Code: HTTP hooks to the collector (no process per hook).")
@click.option("--otel", is_flag=True, help="Also point the agent's OpenTelemetry export at `ledger serve`.")
@click.option("--no-trust", is_flag=True, help="Codex: do not trust the hooks through `codex app-server`.")
@click.option("--codex-bin", help="Codex command for the trust step [default: `codex` on PATH].")
@click.option("--port", type=int, default=4318, show_default=True, help="Collector port.")
@json_option
@pass_app
def install_cmd(app: AppContext, agent: str, root: str | None, user: bool, http: bool, otel: bool, no_trust: bool,
                codex_bin: str | None, port: int, as_json: bool) -> None:
    """Install AGENT's hooks for this repository (merged into its settings; idempotent).

    The hooks record to this ledger (--db), tenant (--tenant) and project (--project,
    default: the project registered for this repository, else its directory name),
    written into the hook command; the project and its root are registered.

    \b
    Examples:
      ledger agent install claude
      ledger agent install claude --http --otel
      ledger --project web agent install codex --codex-bin "npx codex"
      ledger agent install gemini && GEMINI_CLI_TRUST_WORKSPACE=true gemini
    """
    from nervous_system.hooks.install import InstallError, install

    t = _target(app, root, port, register=True)
    try:
        rep = install(agent, t, user=user, http=http, otel=otel, trust=not no_trust, codex_bin=codex_bin)
    except InstallError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        emit_json({**rep.to_dict(), "root": str(t.root), "db": str(t.db), "tenant": t.tenant, "project": t.project})
        return
    verb = "installed" if rep.changed else "already installed"
    click.echo(f"{rep.agent}: {verb} in {', '.join(rep.files)}")
    click.echo(f"  records to {t.db} (tenant {t.tenant}, project {t.project}, root {t.root})")
    for note in rep.notes:
        click.echo(f"  note: {note}")


@agent_group.command("uninstall")
@click.argument("agent", type=click.Choice(AGENT_CHOICES))
@click.option("--root", type=click.Path(file_okay=False, exists=True))
@click.option("--user", is_flag=True, help="Codex: the user-level hooks file.")
@pass_app
def uninstall_cmd(app: AppContext, agent: str, root: str | None, user: bool) -> None:
    """Remove exactly what `ledger agent install AGENT` added.

    \b
    Examples:
      ledger agent uninstall claude
      ledger agent uninstall codex --user
    """
    from nervous_system.hooks.install import InstallError, uninstall

    t = _target(app, root, 4318)
    try:
        rep = uninstall(agent, t, user=user)
    except InstallError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{rep.agent}: {'removed from ' + ', '.join(rep.files) if rep.changed else 'nothing installed'}")


@agent_group.command("status")
@click.option("--root", type=click.Path(file_okay=False, exists=True))
@json_option
@pass_app
def status_cmd(app: AppContext, root: str | None, as_json: bool) -> None:
    """What is installed where, the last event seen per agent, the collector, hook failures.

    \b
    Examples:
      ledger agent status
      ledger agent status --json
    """
    from nervous_system.hooks.install import last_events, status

    t = _target(app, root, 4318)
    info = status(t.root, t.db)
    info["last_events"] = last_events(app.ledger, info["installed"]) if t.db.exists() else {}
    if as_json:
        emit_json(info)
        return
    if not info["installed"]:
        click.echo(f"no agent hooks installed for {t.db}")
    for item in info["installed"]:
        last = info["last_events"].get(item["agent"])
        seen = (f"last event {_when(last['time_ns'])} ({last['kind']}, session {last['session_id'] or '-'})"
                if last else "no event yet")
        flag = "" if item["present"] else "  [MISSING: config changed or removed]"
        click.echo(f"{item['agent']:<12} {item['root']}  -> project {item['project']} ({item['tenant']}){flag}")
        click.echo(f"{'':<12} {', '.join(item['files'])}; {seen}")
    col = info["collector"]
    if col:
        click.echo(f"collector: pid {col['pid']} on {col['host']}:{col['port']} "
                   f"({'running' if col.get('running') else 'not running'})")
    else:
        click.echo("collector: not running (the first hook starts it)")
    if info["spooled"]:
        click.echo(f"spooled hooks waiting for the collector: {info['spooled']}")
    click.echo(f"hook failures: {info['failures']}")
    for f in info["recent_failures"]:
        click.echo(f"  {_when(f.get('time_ns', 0))} {f.get('agent')} {f.get('event') or ''} "
                   f"[{f.get('stage')}] {f.get('error')}")


def _when(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.command("hook")
@click.argument("agent", type=click.Choice(AGENT_CHOICES))
@click.option("--root", type=click.Path(file_okay=False), help="Repository [default: the one of the current directory].")
@click.option("--port", type=int, default=4318, show_default=True)
@pass_app
def hook_cmd(app: AppContext, agent: str, root: str | None, port: int) -> None:
    """Record one hook of AGENT (its JSON on stdin); always exits 0 and prints nothing.

    `ledger agent install` writes a faster form of this command into the agent's
    configuration (bash builtins, or the stdlib-only client under `python -S -I`);
    this one is for hand-written hook configs.

    \b
    Examples:
      echo '{"hook_event_name":"Stop","session_id":"s1"}' | ledger hook claude
      ledger --project web hook codex < payload.json
    """
    from nervous_system.hooks import client
    from nervous_system.hooks.agents import canonical

    try:
        t = _target(app, root, port)
        argv = [canonical(agent), "--db", str(t.db), "--tenant", t.tenant, "--project", t.project,
                "--root", str(t.root), "--port", str(port)]
    except Exception as exc:  # noqa: BLE001 - never fail the agent
        client.record_failure(client.hooks_dir(str(app.settings.ledger_path)), agent, "ledger hook", repr(exc))
        sys.exit(0)
    try:
        client.run(argv)
    except BaseException as exc:  # noqa: BLE001 - never fail the agent
        client.record_failure(client.hooks_dir(argv[2]), agent, "ledger hook", repr(exc))
    sys.exit(0)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", type=int, default=4318, show_default=True, help="OTLP/HTTP and hook port (0: any free port).")
@click.option("--idle-timeout", type=float, default=0, show_default=True, help="Exit after this many idle seconds (0: never).")
@pass_app
def serve_cmd(app: AppContext, host: str, port: int, idle_timeout: float) -> None:
    """Run the local collector: OTLP/HTTP (/v1/traces, /v1/logs, /v1/metrics) and agent hooks.

    \b
    Examples:
      ledger serve                                   # 127.0.0.1:4318
      OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 my-agent
    """
    try:
        from nervous_system.hooks.collector import serve
    except ImportError as exc:  # pragma: no cover - base dependencies
        raise click.ClickException(f"ledger serve needs starlette and uvicorn ({exc}): pip install context-ledger") from exc

    def ready(bound: int) -> None:
        click.echo(f"collector listening on http://{host}:{bound} (ledger {app.settings.ledger_path})", err=True)

    code = serve(app.settings.ledger_path, host=host, port=port, idle_timeout=idle_timeout, tenant=app.tenant,
                 project=app.settings.project or "", ready=ready)
    sys.exit(code)
