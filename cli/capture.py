"""``ledger record`` (JSON Lines on stdin) and ``ledger exec`` (record a command's
file changes). Both are thin wrappers over ``nervous_system``."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import click

from cli.common import AppContext, emit_json, json_option, pass_app


@click.command("record")
@click.option("--agent-id", default="", help="agent_id for lines that have none.")
@click.option("--session-id", default="", help="session_id for lines that have none.")
@click.option("--batch-size", type=click.IntRange(min=0), default=0, show_default=True,
              help="Commit every N lines (0: the whole input is one transaction).")
@click.option("--dry-run", is_flag=True, help="Validate every line; write nothing.")
@click.option("--input", "input_file", type=click.File("rb"), default="-",
              help="Read from this file instead of stdin.")
@json_option
@pass_app
def record_cmd(app: AppContext, agent_id: str, session_id: str, batch_size: int, dry_run: bool,
               input_file, as_json: bool) -> None:
    """Record events given as JSON Lines on stdin (any language can write them).

    Each line is one event in the JSON form of SwarmEvent. event_id, timestamp,
    tenant_id and project_id default to a new UUIDv7, now, --tenant and --project.
    A file state change may carry its bytes beside it as "content" (UTF-8 text) or
    "content_base64"; hashes, size, operation, previous state and diff are then filled
    in. A bad line is reported with its number and NOTHING from its batch is written.

    \b
    Examples:
      echo '{"agent_id":"bot","decision":{"rationale":"retry","confidence_score":0.6}}' \\
        | ledger --project web record
      echo '{"state_change":{"target_resource":"a.txt"},"content":"hi\\n"}' \\
        | ledger --project web record --agent-id bot --json
    """
    from nervous_system.jsonl import Defaults, record_jsonl

    defaults = Defaults(tenant_id=app.tenant, project_id=_record_project(app),
                        agent_id=agent_id, session_id=session_id)
    result = record_jsonl(app.ledger, input_file, defaults, batch_size=batch_size, dry_run=dry_run)
    if as_json:
        emit_json(result.to_dict())
    else:
        verb = "validated" if dry_run else "recorded"
        count = len(result.event_ids) if dry_run else result.inserted
        extra = f", {result.duplicates} already present" if result.duplicates else ""
        click.echo(f"{verb} {count} event(s){extra}", err=True)


def _record_project(app: AppContext) -> str | None:
    """The default project of `ledger record` lines: the chosen project (a mistyped
    --project is an error), or None when none can be chosen (then each line must name its
    own project)."""
    from ledger.errors import AmbiguousProject, ProjectNotFound

    try:
        return app.project(recording=True)
    except AmbiguousProject:
        return None
    except ProjectNotFound:
        if app.settings.project is not None:
            raise
        return None


def _register_root(app: AppContext, project: str, root: Path) -> None:
    """Record the work tree's root for the project (the project registry), unless the
    project has a root already or the tree lies in another project's."""
    from nervous_system.repo import repository_identity

    info = app.ledger.project_info(app.tenant, project)
    if (info is None or not info.root) and app.ledger.project_for_path(app.tenant, root) is None:
        app.ledger.register_project(app.tenant, project, root=root, identity=repository_identity(root))


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--root", type=click.Path(file_okay=False, exists=True), default=None,
              help="Work tree to watch [default: the repository root of the current directory, "
                   "else the current directory].")
@click.option("--agent-id", default=None, help="Agent the changes are attributed to [default: exec:<argv0>].")
@click.option("--role", "agent_role", default="other", show_default=True,
              type=click.Choice(["architect", "coder", "reviewer", "operator", "other"]))
@click.option("--exclude", "excludes", multiple=True,
              help="Glob of paths not to record (repeatable; 'build/' = a directory).")
@click.option("--no-baseline", is_flag=True,
              help="Do not first record differences between the ledger and the work tree.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stderr.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_app
def exec_cmd(app: AppContext, root: str | None, agent_id: str | None, agent_role: str,
             excludes: tuple[str, ...], no_baseline: bool, as_json: bool, command: tuple[str, ...]) -> None:
    """Run COMMAND and record every file change it makes under the work tree.

    Changes made by any program (shell commands included) are recorded as state
    changes attributed to the command, caused by a decision describing it, inside a
    span whose TRACEPARENT the command inherits. Exits with the command's exit code.
    The command runs in the current directory; the work tree is the repository root
    (or --root) and paths are relative to it. .gitignore'd files and .git/ are never
    recorded; names that are not valid UTF-8 or too long/deep are reported and skipped.
    The project is --project, else the configured one, else the root directory's name.

    \b
    Examples:
      ledger --project web exec -- sh -c 'sed -i s/foo/bar/ src/*.py && mv a b'
      ledger exec --root ~/src/app --exclude 'node_modules/' -- npx some-agent
    """
    import nervous_system
    from cli.progress import progress_bar
    from nervous_system.exec import run_and_record
    from nervous_system.worktree import find_root, project_for_root

    root_path = Path(root).resolve() if root else find_root(os.getcwd())
    project = app.settings.project or project_for_root(app.ledger, app.tenant, root_path)
    _register_root(app, project, root_path)
    argv = list(command)
    inst = nervous_system.configure(
        app.ledger, project_id=project, tenant_id=app.tenant,
        agent_id=agent_id or f"exec:{os.path.basename(argv[0])}", agent_role=agent_role,
        set_global=False,
    )
    bars = contextlib.ExitStack()  # a bar while a first large snapshot hashes, gone before the command runs
    shown: list = []

    def progress(done: int, total: int) -> None:
        if not shown:
            shown.append(bars.enter_context(progress_bar("hashing the work tree", unit="files",
                                                          enabled=not as_json)))
        shown[0](done, total)
        if done >= total:
            bars.close()

    try:
        result = run_and_record(argv, recorder=inst.recorder, tracer=inst.tracer("ledger.exec"),
                                root=root_path, cwd=os.getcwd(), excludes=excludes,
                                baseline=not no_baseline, progress=progress)
    finally:
        bars.close()
        inst.shutdown()
    for item in result.unrecorded if not as_json else ():
        click.echo(f"ledger: not recorded: {item['path']}: {item['reason']}", err=True)
    summary = result.summary()
    if as_json:
        click.echo(json.dumps(summary, indent=2), err=True)
    else:
        counts = ", ".join(f"{n} {op}" for op, n in sorted(summary["counts"].items())) or "no changes"
        click.echo(f"ledger: `{' '.join(argv)}` exited {result.exit_code}; recorded {counts} "
                   f"(trace {result.trace_id})", err=True)
    sys.stdout.flush()
    click.get_current_context().exit(result.exit_code)
