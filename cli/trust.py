"""``ledger verify``: check the hash chain and its signed checkpoints (docs/trust.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cli.common import emit_json, json_option, pass_app


def _show(report, as_json: bool) -> None:
    """Print a ``VerifyReport``; exit status 1 when it found a problem."""
    if as_json:
        emit_json(report.to_dict())
    else:
        what = f"{report.events:,} events"
        if report.removed:
            what += f" and {report.removed:,} removed on purpose (their links kept)"
        key = f"key {report.key_fingerprint}" + ("" if report.key_pinned else " (not pinned: the key stored "
                                                  "with the checkpoints; pass --public-key)")
        if report.ok:
            click.echo(f"ok: {report.source} chain of ledger {report.ledger_id} verifies: {what} up to seq "
                       f"{report.last_seq}, head {report.head[:16]}; {report.checkpoints} signed checkpoint(s)"
                       + (f", last at seq {report.last_checkpoint_seq}, {key}" if report.checkpoints else ""))
        else:
            click.echo(f"FAILED: {report.source} chain of ledger {report.ledger_id}: {report.first}", err=True)
            for problem in report.problems[1:20]:
                click.echo(f"  then {problem}", err=True)
            if len(report.problems) > 20:
                click.echo(f"  ... and {len(report.problems) - 20} more", err=True)
    if not report.ok:
        sys.exit(1)


def _public_key(path: str | None) -> bytes | None:
    if path is None:
        return None
    from ledger import keys

    try:
        return keys.load_public(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"cannot read the public key {path}: {exc}", param_hint="--public-key") from exc


@click.command("verify")
@click.option("--source", type=click.Choice(["local", "hub"]), default="local", show_default=True,
              help="Check the local ledger, or what the hub holds of it.")
@click.option("--export", "export_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Sign a checkpoint now and write a proof (digests, chain, checkpoints, public key) to FILE.")
@click.option("--proof", "proof_path", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="Check a proof file instead of a ledger (needs --public-key; no ledger is opened).")
@click.option("--public-key", "public_key_path", type=click.Path(exists=True, dir_okay=False), metavar="KEY",
              help="The ledger's public key you trust (PEM or base64 raw) [default: the ledger's key file].")
@click.option("--show-key", is_flag=True, help="Print the ledger's public key (PEM) to give a verifier.")
@json_option
@pass_app
def verify_cmd(app, source: str, export_path: str | None, proof_path: str | None,
               public_key_path: str | None, show_key: bool, as_json: bool) -> None:
    """Check that the ledger's events were not modified, removed, inserted or reordered.

    Walks the hash chain (each event commits to the one before it) and checks every
    signed checkpoint with the ledger's Ed25519 public key; names the first event that
    is wrong and what is wrong with it. Exit status 1 when anything is.

    \b
    Examples:
      ledger verify
      ledger verify --json
      ledger verify --source hub                 # what the hub holds of this ledger
      ledger verify --show-key > ledger.pub      # give this to a verifier
      ledger verify --export proof.json          # a proof anyone can check offline
      ledger verify --proof proof.json --public-key ledger.pub
    """
    from ledger import verify

    public_key = _public_key(public_key_path)
    if proof_path is not None:
        if public_key is None:
            raise click.UsageError("--proof needs --public-key KEY (the key you trust for that ledger)")
        _show(verify.verify_proof(proof_path, public_key), as_json)
        return
    if show_key:
        from ledger import keys

        pem = keys.public_pem(keys.public_raw(keys.signing_key(app.ledger.path))).decode()
        if as_json:
            raw = keys.public_raw(keys.signing_key(app.ledger.path))
            emit_json({"ledger_id": app.ledger.ledger_id, "public_key_pem": pem, "fingerprint": keys.fingerprint(raw)})
        else:
            click.echo(pem, nl=False)
        return
    if export_path is not None:
        summary = verify.export_proof(app.ledger, export_path)
        if as_json:
            emit_json(summary)
        else:
            click.echo(f"wrote {summary['path']}: {summary['links']:,} links up to seq {summary['head_seq']}, "
                       f"{summary['checkpoints']} signed checkpoint(s), key {summary['key_fingerprint']}")
        return
    if source == "hub":
        from hub.verify import verify_hub

        _show(verify_hub(app.hub(), app.ledger, public_key=public_key), as_json)
        return
    _show(verify.verify_ledger(app.ledger, public_key=public_key), as_json)


@click.command("erase")
@click.option("--session", "session_id", metavar="S", help="Erase the texts of this session (one agent run).")
@click.option("--agent", "agent_id", metavar="A", help="Erase the texts of every session of this agent.")
@click.option("--seal", type=click.Choice(["on", "content", "off"]),
              help="Turn sealing of new events' texts (on), of texts and file content (content), or of nothing "
                   "(off) for this ledger (needed before erasure can work).")
@click.option("--keep-analytics", is_flag=True, help="Do not delete the analytics (ClickHouse) rows.")
@click.option("--local-only", is_flag=True,
              help="Do not contact the hub now (the hub's keys are destroyed by the next `ledger sync`).")
@json_option
@pass_app
def erase_cmd(app, session_id: str | None, agent_id: str | None, seal: str | None, keep_analytics: bool,
              local_only: bool, as_json: bool) -> None:
    """Forget what a session or an agent said, by destroying its encryption keys.

    With sealing on, the texts of every event (decisions, messages, signals, diffs) are
    stored encrypted with a key per session and agent; erasing destroys those keys, so
    the texts are unreadable in the local ledger, on the hub and in bundles, and read
    "[erased]". The analytics rows of the session or agent are deleted. The hash chain
    still verifies (it covers the encrypted bodies). The keys are destroyed on the hub
    too (when one is configured; else, or when it is unreachable, by the next sync).
    With --seal content, file contents are sealed too: replay then reports erased
    files in its unrestored list (see docs/trust.md).

    \b
    Examples:
      ledger erase --seal on                     # from now on, texts are erasable
      ledger erase --seal content                # texts and file content
      ledger erase --session 0193f0c2-...        # forget one agent run
      ledger erase --agent contractor-bot --json
      ledger erase --session S --local-only      # offline: the hub's keys go at the next sync
    """
    from ledger import erasure

    if seal is not None:
        app.ledger.set_sealing(seal != "off", content=seal == "content")
        if as_json:
            emit_json({"seal": seal})
        else:
            click.echo(f"sealing of new events' texts is {seal} for {app.ledger.path}")
        if not (session_id or agent_id):
            return
    if bool(session_id) == bool(agent_id):
        raise click.UsageError("name exactly one of --session S or --agent A")
    hub = None
    if not local_only:
        from hub.errors import HubNotConfigured

        try:
            hub = app.hub()
        except HubNotConfigured:
            hub = None
        except Exception as exc:  # noqa: BLE001 - unreachable: the local erasure goes on, the hub part waits
            hub = _Unreachable(app.tenant, exc)
    report = erasure.erase(app.ledger, tenant_id=app.tenant, session_id=session_id, agent_id=agent_id, hub=hub)
    url = app.settings.analytics_url
    if not keep_analytics and (not url.startswith("chdb://") or Path(url[len("chdb://"):]).exists()):
        from ingest.erase import delete_rows

        report.analytics_rows = delete_rows(url, tenant_id=app.tenant, session_id=session_id, agent_id=agent_id)
    what = f"session {session_id}" if session_id else f"agent {agent_id}"
    if report.unsealed:
        click.echo(f"warning: {report.unsealed:,} event(s) of {what} were recorded while sealing was off: their "
                   "texts stay readable (erasure destroys keys, and they have none); run `ledger erase --seal on` "
                   "so that what is recorded from now on can be erased", err=True)
    if as_json:
        emit_json(report.to_dict())
        return
    click.echo(f"erased {what}: {report.keys} key(s) destroyed, the texts of {report.events:,} event(s) are "
               "unreadable" + (f"; {report.analytics_rows:,} analytics row(s) deleted"
                               if report.analytics_rows is not None else "")
               + (f"; {report.hub_keys} key(s) destroyed on the hub" if report.hub_keys is not None else ""))
    if report.hub_error:
        click.echo(f"the hub part is pending ({report.hub_error}); `ledger sync` finishes it", err=True)


class _Unreachable:
    """A hub that could not be opened: erasing through it fails, so the hub part stays
    pending (``ledger.erasure_hub.push_keys`` retries it on the next sync)."""

    def __init__(self, tenant_id: str, exc: Exception) -> None:
        self.tenant_id, self._exc = tenant_id, exc

    def erase_seal_keys(self, **_kw):
        raise self._exc


@click.command("gc")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@json_option
@pass_app
def gc_cmd(app, dry_run: bool, as_json: bool) -> None:
    """Apply the retention policy: remove expired events, and record what was removed.

    The policy is the [retention] table of ledger.toml (per event kind, with per-project
    overrides; kinds not named are kept forever). Projects under a legal hold are
    skipped. Each removal is itself recorded (a retention_gc signal event) and the hash
    chain keeps the removed events' digests, so `ledger verify` still passes.

    \b
    Examples:
      ledger gc --dry-run
      ledger gc --json
      # ledger.toml:  [retention]  span = "30d"  message = "365d"
    """
    from ledger import retention

    policy = retention.Policy.from_config(app.settings.retention)
    report = retention.gc(app.ledger, tenant_id=app.tenant, policy=policy, dry_run=dry_run)
    if as_json:
        emit_json(report.to_dict())
        return
    if not policy:
        click.echo("no retention policy: every event is kept (set [retention] in ledger.toml)")
        return
    verb = "would remove" if dry_run else "removed"
    for project, kinds in report.removed.items():
        click.echo(f"{verb} from {app.tenant}/{project}: "
                   + ", ".join(f"{n:,} {kind}" for kind, n in sorted(kinds.items())))
    for project, holds in report.held.items():
        click.echo(f"kept {app.tenant}/{project}: under legal hold {', '.join(map(str, holds))}")
    if not report.removed:
        click.echo("nothing expired")


@click.group("hold")
def hold_group() -> None:
    """Legal holds: while one covers a project, retention (`ledger gc`) removes nothing there.

    \b
    Examples:
      ledger hold add --reason "matter 2026-114"            # the current project
      ledger hold add --tenant-wide --reason "audit Q4"
      ledger hold list --json
      ledger hold rm 3
    """


@hold_group.command("add")
@click.option("--reason", required=True, help="The matter or ticket the hold is for.")
@click.option("--tenant-wide", is_flag=True, help="Hold every project of the tenant.")
@json_option
@pass_app
def hold_add_cmd(app, reason: str, tenant_wide: bool, as_json: bool) -> None:
    """Place a legal hold on the project (or the whole tenant).

    \b
    Examples:
      ledger hold add --reason "matter 2026-114"
      ledger hold add --project web --reason "incident 88" --json
    """
    from ledger import retention

    project = None if tenant_wide else app.project()
    hold_id = retention.add_hold(app.ledger, tenant_id=app.tenant, project_id=project, reason=reason)
    if as_json:
        emit_json({"id": hold_id, "project_id": project or "", "reason": reason})
    else:
        click.echo(f"hold {hold_id} placed on {app.tenant}/{project or '*'}: {reason}")


@hold_group.command("rm")
@click.argument("hold_id", type=int)
@json_option
@pass_app
def hold_rm_cmd(app, hold_id: int, as_json: bool) -> None:
    """Lift a legal hold by its id (see `ledger hold list`).

    \b
    Examples:
      ledger hold rm 3
    """
    from ledger import retention

    if not retention.remove_hold(app.ledger, tenant_id=app.tenant, hold_id=hold_id):
        raise click.ClickException(f"no hold {hold_id} for tenant {app.tenant}: see `ledger hold list`")
    if as_json:
        emit_json({"removed": hold_id})
    else:
        click.echo(f"hold {hold_id} lifted")


@hold_group.command("list")
@json_option
@pass_app
def hold_list_cmd(app, as_json: bool) -> None:
    """List the tenant's legal holds.

    \b
    Examples:
      ledger hold list
      ledger hold list --json
    """
    from ledger import retention

    holds = retention.list_holds(app.ledger, tenant_id=app.tenant)
    if as_json:
        emit_json(holds)
        return
    if not holds:
        click.echo("no legal holds")
    for h in holds:
        click.echo(f"{h['id']}  {app.tenant}/{h['project_id'] or '*'}  {h['reason']}")
