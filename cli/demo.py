"""``ledger demo``: the main job end to end on a temporary ledger."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import click

from cli.common import emit_json, json_option
from cli.progress import progress_bar


@click.command("demo")
@click.option("--repo", type=click.Path(exists=True, file_okay=False),
              help="Git repository to import [default: the one containing the current directory].")
@click.option("--sdk", "use_sdk", is_flag=True, help="Record a scripted agent session instead of a git history.")
@click.option("--keep", "keep", type=click.Path(file_okay=False),
              help="Work in this new directory and keep it (ledger, replays, git archives).")
@json_option
def demo_cmd(repo: str | None, use_sdk: bool, keep: str | None, as_json: bool) -> None:
    """Import a real history into a temporary ledger, replay it at several moments and
    check every replay against the truth, byte for byte and mode for mode.

    Nothing outside the temporary directory is touched; your own ledger is not used.
    Exit status 1 if any replay differs from the truth.

    \b
    Examples:
      ledger demo                       # this repository's history (or an SDK session)
      ledger demo --repo ~/src/app      # another repository
      ledger demo --sdk --keep /tmp/d   # scripted agent session, keep the files
    """
    from cli.demo_job import find_repository, run_demo

    source = None if use_sdk else (Path(repo) if repo else find_repository(Path.cwd()))
    if keep:
        workdir = Path(keep)
        if workdir.exists() and any(workdir.iterdir()):
            raise click.UsageError(f"--keep {keep} exists and is not empty: pick a new directory")
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="ledger-demo-"))
    say = (lambda m: None) if as_json else (lambda m: click.echo(f"· {m}", err=True))
    try:
        with progress_bar("importing commits", enabled=not as_json) as update:
            report = run_demo(workdir, source, progress=say, import_progress=update)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_summary(report, kept=bool(keep))
    if not report.ok:
        raise SystemExit(1)


def _print_summary(report, kept: bool) -> None:
    click.echo("")
    click.echo(f"Context Ledger demo — {report.source}")
    if report.commits:
        rate = report.events / report.import_seconds if report.import_seconds else 0
        click.echo(f"  imported {report.commits} commits as {report.events} events "
                   f"in {report.import_seconds:.2f}s ({rate:,.0f} events/s) into project {report.project!r}")
    else:
        click.echo(f"  recorded {report.events} events into project {report.project!r}")
    click.echo("  replays checked against the truth:")
    for check in report.checks:
        mark = "ok  " if check.ok else "FAIL"
        click.echo(f"    {mark} {check.moment:<48} {check.files:>5} files  {check.seconds * 1000:7.1f} ms")
        for problem in check.differences[:5]:
            click.echo(f"         {problem}")
        if check.conflicts:
            click.echo(f"         {check.conflicts} conflicts")
    if report.recent:
        click.echo("  newest events:")
        for line in report.recent:
            click.echo(f"    {line}")
    verdict = "every replay matched exactly" if report.ok else "SOME REPLAYS DIFFERED"
    click.echo(f"  result: {verdict}" + (f"; files kept in {report.workdir}" if kept else ""))
