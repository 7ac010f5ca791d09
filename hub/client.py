"""Choosing and opening a tenant's ``HubClient`` from settings (no ``fdb`` import here).

``open_hub`` is the one place the product builds a hub client: the CLI
(``cli.common.AppContext.hub``), the syncer daemon's process entry and scripts use it.
Laptops go through the gateway (``hub_url`` + ``hub_token``: ``hub.http_client``);
direct FoundationDB access (a cluster file: ``hub.connection``) is for the gateway
itself and for a single trusted team.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from hub.errors import HubNotConfigured, HubUnavailable
from hub.protocol import HubClient

NO_HUB_MESSAGE = ("no hub configured: set FDB_CLUSTER_FILE or pass --cluster-file (direct FoundationDB "
                  "access, for a trusted team), or set LEDGER_HUB_URL and LEDGER_HUB_TOKEN (the team's gateway)")


def resolve_cluster_file(explicit: str | os.PathLike | None, settings=None) -> Path:
    """The cluster file to use: ``explicit``, else ``settings.cluster_file`` (ledger.toml
    ``fdb_cluster_file`` or FDB_CLUSTER_FILE). Raises ``HubNotConfigured`` when none is set
    and ``HubUnavailable`` when the file does not exist."""
    path = Path(explicit) if explicit else (settings.cluster_file if settings is not None else None)
    if path is None:
        env = os.environ.get("FDB_CLUSTER_FILE")
        path = Path(env) if env else None
    if path is None:
        raise HubNotConfigured(NO_HUB_MESSAGE)
    if not path.is_file():
        raise HubUnavailable(
            f"FoundationDB cluster file {path} does not exist: copy the cluster's fdb.cluster "
            "there, or point FDB_CLUSTER_FILE / --cluster-file at it"
        )
    return path


@dataclass(frozen=True)
class HubTarget:
    """Where the hub is: a gateway ``url`` with its ``token``, or a ``cluster_file``."""

    cluster_file: Path | None = None
    url: str | None = None
    token: str | None = None


def hub_target(settings=None, cluster_file: str | os.PathLike | None = None, *, url: str | None = None,
               token: str | None = None) -> HubTarget:
    """The hub to use: an explicit ``cluster_file``, else a gateway ``url`` (argument or
    ``settings.hub_url``, token from ``token`` or ``settings.hub_token``), else the
    settings' cluster file. Raises ``HubNotConfigured`` / ``HubUnavailable``."""
    if cluster_file is None:
        url = url or (settings.hub_url if settings is not None else None)
        if url:
            return HubTarget(url=url, token=token or (settings.hub_token if settings is not None else None))
    return HubTarget(cluster_file=resolve_cluster_file(cluster_file, settings))


def open_hub(tenant_id: str, *, cluster_file: str | os.PathLike | None = None, settings=None,
             url: str | None = None, token: str | None = None, **options) -> HubClient:
    """The ``HubClient`` of ``tenant_id`` at ``hub_target(settings, cluster_file, url=,
    token=)``: the gateway's ``HttpHub`` (the token must be of ``tenant_id``), or a
    ``Hub`` on FoundationDB (``options``: ``timeout_ms``, ``retry_limit``).
    Raises ``HubNotConfigured``, ``HubUnavailable``, ``HubAuthError``, ``TenantMismatch``."""
    target = hub_target(settings, cluster_file, url=url, token=token)
    if target.url:
        from hub.http_client import HttpHub

        return HttpHub(target.url, target.token or "", tenant_id)
    db = direct_database(target.cluster_file, **options)
    from hub.hub import Hub

    return Hub(db, tenant_id)


def direct_database(cluster_file, **options):
    """``hub.connection.open_database``, with a clear error when the FoundationDB
    bindings (the ``[hub]`` extra) are not installed."""
    try:
        from hub.connection import open_database
    except ImportError as exc:
        raise HubUnavailable(
            "direct FoundationDB access needs the team-side extra: pip install 'context-ledger[hub]' "
            "(and the FoundationDB client library, docs/hub.md); laptops use the gateway instead "
            "(LEDGER_HUB_URL, LEDGER_HUB_TOKEN)") from exc
    return open_database(cluster_file, **options)


#: Seconds a start-up probe of the hub may take.
PROBE_TIMEOUT_MS = 5_000


def probe_hub(tenant_id: str, *, cluster_file: str | os.PathLike | None = None, settings=None,
              url: str | None = None, token: str | None = None) -> None:
    """Check that the hub can work at all before a daemon relies on it: the client
    library loads, the cluster file exists, the cluster or gateway answers within
    ``PROBE_TIMEOUT_MS`` and the token is accepted (one cheap read: the tenant's
    projects). Raises ``HubNotConfigured``, ``HubUnavailable`` or ``HubAuthError`` with
    what to do next."""
    target = hub_target(settings, cluster_file, url=url, token=token)
    options = {} if target.url else {"timeout_ms": PROBE_TIMEOUT_MS, "retry_limit": 3}
    client = open_hub(tenant_id, cluster_file=target.cluster_file, url=target.url, token=target.token, **options)
    client.projects()
