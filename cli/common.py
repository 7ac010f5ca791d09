"""Shared CLI plumbing: the app context, error display, JSON and time output."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any, Iterator

import click

from schemas.errors import ContextLedgerError

if TYPE_CHECKING:  # imported when first used: `ledger --help` stays instant
    from ledger.config import Settings
    from ledger.store import Ledger


class AppContext:
    """What every command shares: settings and a lazily opened ledger."""

    def __init__(self, db_path: str | None = None, tenant: str | None = None, project: str | None = None):
        self._overrides = {"db_path": db_path, "tenant": tenant, "project": project}
        self._settings: "Settings | None" = None
        self._ledger: "Ledger | None" = None
        self._hub = None

    @property
    def settings(self) -> "Settings":
        if self._settings is None:
            from ledger.config import load_settings

            self._settings = load_settings(**self._overrides)
        return self._settings

    @property
    def ledger(self) -> "Ledger":
        """The local ledger (opened and migrated on first use)."""
        if self._ledger is None:
            from ledger.store import open_ledger

            self._ledger = open_ledger(self.settings)
        return self._ledger

    @property
    def tenant(self) -> str:
        return self.settings.tenant

    def hub(self, cluster_file: str | None = None, **options):
        """The tenant's hub client (``hub.open_hub``), opened on first use: ``cluster_file``
        when given, else the settings' (ledger.toml ``fdb_cluster_file`` or
        FDB_CLUSTER_FILE). ``options``: ``timeout_ms``, ``retry_limit``.
        Raises ``HubNotConfigured``/``HubUnavailable``."""
        if self._hub is None:
            from hub.client import open_hub

            self._hub = open_hub(self.tenant, cluster_file=cluster_file, settings=self.settings, **options)
        return self._hub

    def history(self, project: str | None = None):
        """The local ledger's ``History`` of ``project`` (default: ``project()``)."""
        from replay import LocalHistory

        return LocalHistory(self.ledger, self.tenant, project or self.project())

    def set_scope(self, **values: str | None) -> None:
        """Override ``tenant``/``project``/``db_path`` (options given after the
        subcommand: ``ledger log --project web``); settings are reloaded on next use."""
        for key, value in values.items():
            if value is not None:
                self._overrides[key] = value
                self._settings = None

    def project(self, *, recording: bool = False) -> str:
        """The project to act on (``Ledger.choose_project``: the configured one, else the
        one whose work tree holds the current directory, else the tenant's only one).
        ``recording``: a command that records may start the tenant's first project."""
        return self.ledger.choose_project(self.tenant, self.settings.project, first_may_be_new=recording)

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None


pass_app = click.make_pass_decorator(AppContext)


#: Optional dependencies -> the extra that installs them (pyproject.toml).
EXTRAS = {"chdb": "analytics", "clickhouse_connect": "analytics", "orjson": "analytics", "fdb": "hub",
          "playwright": "dev", "grpc": "grpc"}


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn library errors into one clear line on stderr and exit status 1; a missing
    optional dependency into the exact install command."""
    try:
        yield
    except ContextLedgerError as exc:
        raise click.ClickException(str(exc)) from exc
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root not in EXTRAS:
            raise
        extra = EXTRAS[root]
        raise click.ClickException(
            f"this command needs the {extra} extra (missing Python module {root!r}): "
            f"pip install 'context-ledger[{extra}]' (or 'context-ledger[all]')") from exc


def wants_json(args: list[str]) -> bool:
    """True when a command line asks for JSON output (``--json``, ``--format json|jsonl``)."""
    for i, arg in enumerate(args):
        if arg == "--json" or arg in ("--format=json", "--format=jsonl"):
            return True
        if arg == "--format" and i + 1 < len(args) and args[i + 1] in ("json", "jsonl"):
            return True
    return False


class JsonError(click.ClickException):
    """A ``ClickException`` shown as one JSON object on stderr (the command was asked for
    JSON): ``{"error": message, "hint": ..., "type": ..., "exit_code": n}``, same exit code."""

    def __init__(self, original: click.ClickException) -> None:
        super().__init__(original.format_message())
        self.exit_code = original.exit_code
        cause = original.__cause__
        self.kind = type(cause).__name__ if cause is not None else type(original).__name__
        self.hint = getattr(cause, "hint", None) or (
            "see --help" if isinstance(original, click.UsageError) else None)

    def show(self, file=None) -> None:
        payload = {"error": self.message, "hint": self.hint, "type": self.kind, "exit_code": self.exit_code}
        click.echo(json.dumps(payload, ensure_ascii=False), err=True)


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON (one document) on stdout."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def emit_jsonl(rows) -> None:
    """Print each item as one JSON line."""
    for row in rows:
        sys.stdout.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def format_local_time(ns: int) -> str:
    """Nanoseconds since the epoch as local ISO-8601 time to the second, with offset."""
    return dt.datetime.fromtimestamp(ns / 1e9).astimezone().isoformat(timespec="seconds")


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
