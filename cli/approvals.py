"""``ledger approve``, ``ledger reject`` and ``ledger audit unapproved``: votes on risky
changes, read and written on the local ledger (no analytics extra needed).

Thin: each command makes one call into ``ledger.approvals`` and prints the result.
"""

from __future__ import annotations

import click

from cli.common import emit_json, format_local_time, json_option, pass_app


def _default_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name known (containers without passwd entry)
        return ""


_voter_options = [
    click.option("--user", "user_id", envvar="LEDGER_USER", default=None,
                 help="Who votes [default: the OS user name; env LEDGER_USER]."),
    click.option("--agent", "agent_id", default="", help="The voting agent's id, when an agent votes."),
]


def _with_voter(fn):
    for option in reversed(_voter_options):
        fn = option(fn)
    return fn


def _vote(app, verdict: str, event_ref: str, reason: str, user_id: str | None, agent_id: str,
          as_json: bool) -> None:
    from ledger.approvals import coverage_of, record_vote
    from replay.views import summary_line

    vote, target = record_vote(app.ledger, event_ref, verdict, tenant_id=app.tenant, reason=reason or "",
                               user_id=_default_user() if user_id is None else user_id, agent_id=agent_id)
    state = coverage_of(app.ledger, target, allow_self=app.settings.approvals_allow_self) \
        if target.kind == "state_change" else None
    if as_json:
        emit_json({"vote_id": vote.event_id, "verdict": verdict, "target": target.event_id,
                   "target_kind": target.kind, "user_id": vote.user_id, "agent_id": vote.agent_id,
                   "reason": reason or "", "status": state.status if state else None})
        return
    who = "/".join(p for p in (vote.user_id, vote.agent_id) if p) or "(anonymous)"
    done = "Approved" if verdict == "approve" else "Rejected"
    scope = " and the changes it caused" if target.kind == "decision" else ""
    click.echo(f"{done} {target.kind} {target.event_id}{scope} ({summary_line(target)}) as {who}; "
               f"vote {vote.event_id}.")
    if state is not None and state.status != ("approved" if verdict == "approve" else "rejected"):
        click.echo(f"note: the change is still {state.status} (see `ledger show {target.event_id[:18]}`).",
                   err=True)


@click.command("approve")
@click.argument("event_ref", metavar="EVENT")
@click.option("--reason", default="", help="Why it is fine (recorded as the vote's rationale).")
@_with_voter
@json_option
@pass_app
def approve_cmd(app, event_ref, reason, user_id, agent_id, as_json) -> None:
    """Approve a file change, or a decision and every change it caused (caused_by).

    EVENT is an event id or a unique prefix (as `ledger show` takes it). The vote is an
    event (a decision naming EVENT) recorded in the local ledger, synced to the hub and
    ingested like every event. A later rejection, by anyone, wins over this approval; an
    agent's approval of its own change does not count (docs/trust.md).

    \b
    Examples:
      ledger approve 0190a3b4-c5d6-7abc --reason "workflow only adds a lint job"
      ledger approve 0190a3b4-c5d6-7abc --user alice --json
      ledger audit unapproved            # what is still waiting
    """
    _vote(app, "approve", event_ref, reason, user_id, agent_id, as_json)


@click.command("reject")
@click.argument("event_ref", metavar="EVENT")
@click.option("--reason", required=True, help="What is wrong (required; the vote's rationale).")
@_with_voter
@json_option
@pass_app
def reject_cmd(app, event_ref, reason, user_id, agent_id, as_json) -> None:
    """Reject a file change, or a decision and every change it caused (caused_by).

    EVENT as for `ledger approve`. A rejection wins over earlier approvals and stays
    until the same voter approves again; rejected risky changes are listed by
    `ledger audit unapproved`.

    \b
    Examples:
      ledger reject 0190a3b4-c5d6-7abc --reason "pipes curl into sh in CI"
      ledger reject 0190a3b4-c5d6-7abc --reason "deletes the migrations" --json
    """
    _vote(app, "reject", event_ref, reason, user_id, agent_id, as_json)


@click.command("unapproved")
@click.option("--since", metavar="WHEN", help="Only changes at or after WHEN (time, event id or commit).")
@click.option("--exit-code", is_flag=True, help="Exit with status 1 when a change is listed (for CI gates).")
@json_option
@pass_app
def unapproved_cmd(app, since, exit_code, as_json) -> None:
    """Risky file changes that no approval covers, oldest first, with their risk tags.

    Runs on the local ledger (no analytics extra, no ingest). A change is risky when
    it touches a protected path, deletes a file, changes the executable bit, edits CI
    or infrastructure files, or adds eval/exec/shell=True-like code (ledger.toml
    risk_* settings; docs/trust.md). It is covered when approved (directly, or through
    its decision) and no later rejection overrides that. --project limits to one
    project (default: every project of --tenant).

    \b
    Examples:
      ledger audit unapproved
      ledger audit unapproved --since "1 week ago" --json
      ledger audit unapproved --exit-code || echo "risky changes need review"
    """
    from cli.analytics import when_ns
    from ledger.approvals import audit_unapproved
    from ledger.risk import RiskRules
    from replay.views import printable

    settings = app.settings
    found = audit_unapproved(app.ledger, tenant_id=app.tenant, rules=RiskRules.from_settings(settings),
                             project_id=settings.project, since_ns=when_ns(app, since) if since else None,
                             allow_self=settings.approvals_allow_self)
    if as_json:
        emit_json([c.to_dict() for c in found])
    elif not found:
        click.echo("No risky change is waiting for approval.")
    else:
        for c in found:
            click.echo(f"{format_local_time(c.time_ns)}  {c.event_id}  {c.coverage.status:<10}  "
                       f"{c.operation:<6}  {printable(c.path)}  ({printable(c.agent_id or '-')})")
            for tag in c.tags:
                click.echo(f"    {tag.tag}: {printable(tag.reason)}")
            for v in c.coverage.deciding:
                click.echo(f"    rejected by {printable(v.voter)}: {printable(v.reason)}")
        click.echo(f"{len(found)} risky change{'s' if len(found) != 1 else ''} not approved "
                   "(`ledger approve EVENT` / `ledger reject EVENT --reason R`).", err=True)
    if exit_code and found:
        raise SystemExit(1)
