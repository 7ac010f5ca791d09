"""``ledger replay`` and ``ledger diff``: the codebase as it was at a moment."""

from __future__ import annotations

import click

from cli.common import emit_json, json_option, pass_app
from cli.progress import progress_bar

#: Where replay can read history from. Adding a source = one value here and one
#: branch in ``open_source``.
SOURCES = ("local", "hub")


def source_option(fn):
    """``--source`` plus the hub's ``--as-of-version`` (kept in ``ctx.meta``)."""
    fn = click.option(
        "--as-of-version", "hub_as_of", metavar="V", expose_value=False,
        callback=lambda ctx, _p, v: ctx.meta.__setitem__("hub_as_of", v),
        help="With --source hub: replay what the hub knew at versionstamp V (20 or 24 hex digits).",
    )(fn)
    return click.option(
        "--source", type=click.Choice(SOURCES), default="local", show_default=True,
        help="Read history from the local ledger, or from the team hub (FoundationDB; "
             "FDB_CLUSTER_FILE or ledger.toml fdb_cluster_file).",
    )(fn)

_WHEN_HELP = (
    "An ISO-8601 time (local time unless it ends in Z or an offset), a relative time "
    "('2 hours ago'), an event id or unique prefix, or a recorded git commit hash."
)


def open_history(app, source: str):
    """The ``replay.history.History`` named by ``--source`` (the hub's as of
    ``--as-of-version`` when given)."""
    if source == "local":
        from replay import LocalHistory

        return LocalHistory(app.ledger, app.tenant, app.project())
    if source == "hub":
        from replay.hub import open_hub_history

        return open_hub_history(app.hub(), app.settings.project,
                                as_of=click.get_current_context().meta.get("hub_as_of"))
    raise click.BadParameter(f"unknown source {source!r}", param_hint="--source")


@click.command("replay")
@click.option("--at", "when", required=True, metavar="WHEN", help=_WHEN_HELP)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=True, dir_okay=True),
              help="Directory to write the files into (created; must be empty unless --force).")
@click.option("--strict", is_flag=True,
              help="Fail (exit 1, write nothing) if any change conflicts with the state it applies to.")
@click.option("--force", is_flag=True, help="Replace the contents of a non-empty --out directory.")
@source_option
@json_option
@pass_app
def replay_cmd(app, when: str, out_dir: str, strict: bool, force: bool, source: str, as_json: bool) -> None:
    """Restore the project's files exactly as they were at WHEN into --out.

    A time replays every change with timestamp <= WHEN in event-time order; an event
    id or commit replays everything recorded up to and including it (recording order),
    which matches `git archive <commit>`. Bytes, executable bits and symlinks are exact.
    The tree is written to a temporary directory and renamed into place: a failed
    replay leaves nothing half-written. See docs/replay.md.

    \b
    Examples:
      ledger replay --at 3f2a9c1 --out /tmp/at-commit
      ledger replay --at "2 hours ago" --out /tmp/then
      ledger replay --at 2026-11-21T14:05 --out /tmp/then --force --strict
      ledger replay --at 0190a3b4-c5d6-7abc --out /tmp/after-event --json
    """
    from replay import ledger_output_policy, replay_from

    src = open_history(app, source)
    moment = src.resolve(when, require_events=True)
    policy = ledger_output_policy(app.settings.ledger_path, app.settings.data_dir)
    with progress_bar("writing files", unit="entries", enabled=not as_json) as update:
        report = replay_from(src, moment, out_dir, force=force, strict=strict, progress=update,
                             policy=policy)
    if as_json:
        emit_json({"source": src.name, "tenant": src.tenant, "project": src.project,
                   "moment": moment.to_dict(), **report.to_dict()})
        return
    click.echo(f"Replayed project {src.project!r} at {moment.describe()} into {report.out_dir}")
    click.echo(
        f"  {report.files:,} files ({report.executables:,} executable), {report.symlinks:,} symlinks, "
        f"{report.directories:,} directories, {report.bytes:,} bytes from {report.changes:,} changes "
        f"in {report.seconds:.2f} s"
    )
    if report.conflicts:
        click.secho(f"  {len(report.conflicts):,} conflicts (applied anyway; --strict refuses):",
                    fg="yellow", err=True)
        for c in report.conflicts[:20]:
            click.echo(f"    {c}", err=True)
        if len(report.conflicts) > 20:
            click.echo(f"    ... {len(report.conflicts) - 20:,} more (see --json)", err=True)
    _show_unrestored(report.unrestored)


def _show_unrestored(unrestored) -> None:
    """Warn about files a replay or restore could not write (content withheld)."""
    if not unrestored:
        return
    from replay.views import printable

    click.secho(f"  {len(unrestored):,} file(s) not restored: their content was withheld when recorded "
                "(secret files keep only their hash; see docs/trust.md):", fg="yellow", err=True)
    for u in unrestored[:50]:
        click.echo(f"    {printable(u.path)} ({u.reason})", err=True)
    if len(unrestored) > 50:
        click.echo(f"    ... {len(unrestored) - 50:,} more (see --json)", err=True)


@click.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--stat", is_flag=True, help="Only list changed paths with line counts.")
@source_option
@json_option
@pass_app
def diff_cmd(app, a: str, b: str, stat: bool, source: str, as_json: bool) -> None:
    """Show what changed in the project's files from moment A to moment B.

    A and B take the same forms as `replay --at` (times, event ids, commits).
    Renames show as a removal plus an addition.

    \b
    Examples:
      ledger diff 3f2a9c1 8e0b7d2
      ledger diff "yesterday 09:00" now --stat
      ledger diff 2026-11-20 2026-11-21 --json
    """
    from replay import diff_from

    src = open_history(app, source)
    result = diff_from(src, src.resolve(a), src.resolve(b))
    if as_json:
        data = result.to_dict()
        if stat:
            for p in data["paths"]:
                p.pop("patch", None)
        emit_json({"source": src.name, "tenant": src.tenant, "project": src.project, **data})
        return
    if not result.paths:
        click.echo(f"No differences between {result.a_label} and {result.b_label}.")
        return
    if stat:
        width = min(60, max(len(p.path) for p in result.paths))
        for p in result.paths:
            detail = {
                "added": "added", "removed": "removed", "mode_changed": f"mode {p.old_mode} -> {p.new_mode}",
            }.get(p.status, "modified")
            counts = "binary" if p.binary else f"+{p.lines_added} -{p.lines_removed}"
            if p.withheld:
                counts = f"content withheld ({p.withheld})"
            if p.status == "mode_changed":
                counts = ""
            click.echo(f" {p.path:<{width}} | {detail:<8} {counts}".rstrip())
    else:
        for p in result.paths:
            if p.old_mode and p.new_mode and p.old_mode != p.new_mode:
                mode = f"{p.old_mode} -> {p.new_mode}"
            else:
                mode = p.new_mode or p.old_mode
            click.secho(f"{p.status} {p.path} ({mode})", bold=True)
            if p.withheld:
                click.echo(f"Content withheld ({p.withheld}): recorded by hash only")
            elif p.binary:
                click.echo("Binary content differs")
            elif p.patch:
                click.echo(p.patch, nl=False)
    d = result.to_dict()
    click.echo(
        f"{len(result.paths):,} paths changed: {d['added']} added, {d['removed']} removed, "
        f"{d['modified']} modified, {d['mode_changed']} mode changed; "
        f"+{d['lines_added']} -{d['lines_removed']} lines ({result.a_label} -> {result.b_label})"
    )


@click.command("restore")
@click.option("--at", "when", required=True, metavar="WHEN", help=_WHEN_HELP)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--force", is_flag=True,
              help="Also overwrite changes the ledger has not seen (they are recorded first).")
@json_option
@pass_app
def restore_cmd(app, when: str, paths: tuple[str, ...], dry_run: bool, force: bool, as_json: bool) -> None:
    """Rewind the project's files in place, in its work tree, to WHEN.

    Only paths the project records are touched (never .git, ignored or untracked files);
    PATHS narrow it to files or directories. Changes the ledger has not seen are never
    overwritten silently: the restore is refused, listing them, unless --force (which
    records them first). The restore is itself recorded, so it can be undone with
    `ledger restore --at DECISION^` (the moment just before its decision).

    \b
    Examples:
      ledger restore --at "20 minutes ago" --dry-run
      ledger restore --at HEAD~3
      ledger restore --at 0193f0c2 src/parser.py
      ledger restore --at 0193f0c2^             # just before that event
    """
    from replay.restore import apply_restore, plan_restore

    project = app.project()
    root = _work_tree_root(app, project)
    moment = app.history(project).resolve(when, require_events=True)
    plan = plan_restore(app.ledger, app.tenant, project, root, moment, _relative(root, paths))
    if dry_run or (not plan.writes and not plan.deletes):
        if as_json:
            emit_json({**plan.to_dict(), "dry_run": dry_run, "decision_id": None})
        else:
            _show_plan(plan, dry_run)
        return
    decision = apply_restore(app.ledger, plan, force=force)
    if as_json:
        emit_json({**plan.to_dict(), "dry_run": False, "decision_id": decision})
        return
    _show_plan(plan, False)
    click.echo(f"Restored {len(plan.writes):,} path(s), deleted {len(plan.deletes):,} in {plan.root} "
               f"to {moment.describe()}.\nUndo with: ledger restore --at {decision}^")


def _work_tree_root(app, project: str):
    """The project's work tree: its registered root, else the repository (or directory)
    the command runs in, which is then registered for the project."""
    import os
    from pathlib import Path

    from nervous_system.repo import repository_identity, repository_root

    info = app.ledger.project_info(app.tenant, project)
    if info is not None and info.root:
        return Path(info.root)
    root = repository_root(os.getcwd()) or Path(os.path.realpath(os.getcwd()))
    app.ledger.register_project(app.tenant, project, root=root, identity=repository_identity(root))
    click.echo(f"project {project!r}: work tree {root} (registered)", err=True)
    return root


def _relative(root, paths: tuple[str, ...]) -> list[str] | None:
    """PATHS (relative to the current directory) as project paths; refuses paths outside the work tree."""
    import os

    out = []
    for p in paths:
        rel = os.path.relpath(os.path.abspath(p), root)
        if rel == ".":
            return None
        if rel.startswith(".." + os.sep) or rel == ".." or os.path.isabs(rel):
            raise click.BadParameter(f"{p} is outside the project's work tree {root}", param_hint="PATHS")
        out.append(rel.replace(os.sep, "/"))
    return out or None


def _show_plan(plan, dry_run: bool) -> None:
    from replay.views import printable

    verb = "would " if dry_run else ""
    for path, (_, mode) in sorted(plan.writes.items()):
        action = "create" if plan.on_disk.get(path) is None else "update"
        click.echo(f"{verb}{action} {printable(path)}" + (f" ({mode})" if mode != "regular" else ""))
    for path in sorted(plan.deletes):
        click.echo(f"{verb}delete {printable(path)}")
    if plan.unseen:
        click.secho(f"{len(plan.unseen)} path(s) have changes the ledger has not seen"
                    + (" (--force records them, then restores over them):" if dry_run else ":"),
                    fg="yellow", err=True)
        for u in plan.unseen[:50]:
            click.echo(f"  {printable(u.path)}", err=True)
    _show_unrestored(plan.unrestored)
    if not plan.writes and not plan.deletes:
        click.echo(f"Nothing to restore: {plan.root} already matches {plan.moment.describe()} "
                   f"({plan.unchanged:,} paths).")
