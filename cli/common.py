"""Shared CLI plumbing: the app context, error display, JSON and time output."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from typing import Any, Iterator

import click

from ledger.config import Settings, load_settings
from ledger.store import Ledger, open_ledger
from schemas.errors import ContextLedgerError


class AppContext:
    """What every command shares: settings and a lazily opened ledger."""

    def __init__(self, db_path: str | None = None, tenant: str | None = None, project: str | None = None):
        self._overrides = {"db_path": db_path, "tenant": tenant, "project": project}
        self._settings: Settings | None = None
        self._ledger: Ledger | None = None
        self._hub = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(**self._overrides)
        return self._settings

    @property
    def ledger(self) -> Ledger:
        """The local ledger (opened and migrated on first use)."""
        if self._ledger is None:
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

    def project(self) -> str:
        """The project to act on (the configured one, else the only one in the ledger)."""
        return self.ledger.resolve_project(self.tenant, self.settings.project)

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None


pass_app = click.make_pass_decorator(AppContext)


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Turn library errors into one clear line on stderr and exit status 1."""
    try:
        yield
    except ContextLedgerError as exc:
        raise click.ClickException(str(exc)) from exc


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
