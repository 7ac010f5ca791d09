"""``ledger import``: bring existing history into the ledger."""

from __future__ import annotations

import click

from cli.common import emit_json, json_option, pass_app
from cli.progress import progress_bar


@click.group("import")
def import_group() -> None:
    """Import existing history as events.

    \b
    Examples:
      ledger import git ~/src/app
      ledger import git . --rev v2.0 --project app
      ledger import ledger /mnt/ann/ledger.db        # another ledger's events, with provenance
    """


@import_group.command("git")
@click.argument("repo", type=click.Path(exists=True, file_okay=False), default=".")
@click.option("--rev", default="HEAD", show_default=True,
              help="Commit, branch or tag whose first-parent history is imported.")
@click.option("--project", "project", default=None,
              help="Project id [default: the global --project, else the repository's directory name].")
@click.option("--skip-invalid-paths", is_flag=True,
              help="Import without paths that are not valid UTF-8 (listed in the summary) "
                   "instead of refusing the whole import.")
@click.option("--raw-blobs", is_flag=True,
              help="Record the committed blob bytes, ignoring gitattributes (by default the "
                   "tree is recorded as `git archive` exports it).")
@click.option("--batch-commits", type=click.IntRange(1, 100_000), default=1000, show_default=True,
              help="Commits per SQLite transaction (a commit is never split).")
@json_option
@pass_app
def import_git_cmd(app, repo: str, rev: str, project: str | None, skip_invalid_paths: bool,
                   raw_blobs: bool, batch_commits: int, as_json: bool) -> None:
    """Turn the first-parent history of the git repository REPO into events.

    Per commit: one decision (message as rationale, author as agent, committer time)
    and one file state change per changed path, linked to it by caused_by. Re-importing
    the same history adds nothing; importing a longer history adds only the new commits.

    What is recorded is the tree as `git archive` exports it, with the repository's
    attributes applied: export-ignore paths are left out, export-subst placeholders
    ($Format:%H$) are expanded for each commit, text/eol/ident/filter conversions and
    core.autocrlf are applied. So `ledger replay --at COMMIT` equals
    `git archive COMMIT | tar -x`. --raw-blobs records the committed blob bytes
    instead, ignoring attributes (what `git cat-file blob` shows).

    \b
    Examples:
      ledger import git ~/src/app
      ledger import git . --rev v2.0 --project app
      ledger import git ~/src/app --raw-blobs
      ledger --db /tmp/l.db import git ~/src/app --json
    """
    from nervous_system.gitimport import import_git, project_for_repository

    project = project_for_repository(app.ledger, app.tenant, repo, project or app.settings.project)
    with progress_bar("importing commits", unit="commits", enabled=not as_json) as update:
        summary = import_git(
            app.ledger, repo, tenant_id=app.tenant,
            project_id=project,
            rev=rev, batch_commits=batch_commits, raw_blobs=raw_blobs,
            skip_invalid_paths=skip_invalid_paths, progress=update,
        )
    from ledger.errors import StoreError
    from replay.snapshots import refresh

    try:  # replay snapshots: replay at any commit costs alike (a cache: replays rebuild it)
        refresh(app.ledger, app.tenant, project)
    except StoreError as exc:
        click.echo(f"warning: replay snapshots not saved ({exc}); the next replay makes them", err=True)
    if as_json:
        emit_json(summary.to_dict())
        return
    rate = summary.events_added / summary.seconds if summary.seconds else 0.0
    click.echo(
        f"Imported {summary.repo} ({summary.rev} = {summary.head[:12]}) into project "
        f"{summary.project_id!r}: {summary.commits:,} commits "
        f"({summary.commits_imported:,} new, {summary.commits_present:,} already present), "
        f"{summary.events_added:,} events added, {summary.events_present:,} already present, "
        f"{summary.new_content_bytes:,} bytes of new content in {summary.new_blobs:,} blobs, "
        f"{summary.seconds:.1f} s ({rate:,.0f} events/s)."
    )
    if summary.attributes == "applied":
        click.echo(
            f"git attributes applied ({'; '.join(summary.attribute_sources)}): "
            f"{summary.paths_from_archive:,} path states read through {summary.git_archive_runs:,} "
            "git archive runs. Pass --raw-blobs to record the committed bytes instead.")
    elif raw_blobs:
        click.echo("Recorded the committed blob bytes (--raw-blobs): gitattributes were not applied.")
    if summary.skipped_submodule_changes:
        click.echo(f"Skipped {summary.skipped_submodule_changes:,} submodule changes (like git archive).")
    for skipped in summary.skipped_paths:
        click.echo(f"skipped {skipped.path!s} in commit {skipped.commit[:12]}: {skipped.reason}", err=True)


@import_group.command("ledger")
@click.argument("other", type=click.Path(exists=True, dir_okay=False))
@json_option
@pass_app
def import_ledger_cmd(app, other: str, as_json: bool) -> None:
    """Import the events (of --tenant) and their content of another ledger file OTHER.

    Each new event keeps its id and bytes and records where it came from (shared_from:
    the other ledger's id and path), shown by `ledger show` and in `ledger log --json`.
    Events already here are left as they are; re-importing adds nothing.

    \b
    Examples:
      ledger import ledger /mnt/backup/ann-ledger.db
      ledger --tenant acme import ledger ../team-b/ledger.db --json
    """
    from cli.hub import _echo_shared
    from syncer.shared import import_ledger_local

    _echo_shared(import_ledger_local(app.ledger, other, tenant_id=app.tenant), as_json)
