"""``ledger blame``: who changed each line of a file, when, and why."""

from __future__ import annotations

import click

from cli.common import emit_json, format_local_time, json_option, pass_app
from cli.replaying import open_history, source_option


@click.command("blame")
@click.argument("path")
@click.option("--at", "when", default="now", show_default=True, metavar="WHEN",
              help="The moment to blame the file at (a time, event id or recorded commit).")
@source_option
@json_option
@pass_app
def blame_cmd(app, path: str, when: str, source: str, as_json: bool) -> None:
    """For each line of PATH at WHEN: the change that last wrote it, its agent,
    session, time, related commit and the first line of the decision behind it.

    Like `git blame`, across renames and through changes made by shell commands
    (`ledger exec`); on an imported git history each line's commit is the one
    `git blame --first-parent` names. Lines that share a change are shown under one
    header: event id, commit, agent, session, local time, and the decision's rationale.

    \b
    Examples:
      ledger blame src/parser.py
      ledger blame src/parser.py --at "2 hours ago"
      ledger blame src/parser.py --at 3f2a9c1 --json
    """
    from replay.blame import blame

    history = open_history(app, source)
    result = blame(history, path.removeprefix("./") or path, history.resolve(when))
    if as_json:
        emit_json([line.to_dict() for line in result.lines])
        return
    from replay.views import printable
    from schemas import parse_timestamp_ns

    width = len(str(len(result.lines)))
    previous = None
    for line in result.lines:
        if line.event_id != previous:
            previous = line.event_id
            commit = line.commit[:10] if line.commit else "-"
            renamed = f"  (as {line.path})" if line.path != result.path else ""
            click.echo(click.style(
                f"{line.event_id}  {commit}  {line.agent_id or '-'}  session {line.session_id[:18] or '-'}  "
                f"{format_local_time(parse_timestamp_ns(line.time))}{renamed}", bold=True)
                + (f"  {line.rationale}" if line.rationale else ""))
        click.echo(f"{line.line:>{width}}  {printable(line.content)}")
