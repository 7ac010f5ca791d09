"""Choosing and opening a tenant's ``HubClient`` from settings (no ``fdb`` import here).

``open_hub`` is the one place the product builds a hub client: the CLI
(``cli.common.AppContext.hub``), the syncer daemon's process entry and scripts use it.
Today it opens FoundationDB directly from a cluster file (``hub.connection``).
"""

from __future__ import annotations

import os
from pathlib import Path

from hub.errors import HubNotConfigured, HubUnavailable
from hub.protocol import HubClient

NO_HUB_MESSAGE = "no hub configured: set FDB_CLUSTER_FILE or pass --cluster-file"


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


def open_hub(tenant_id: str, *, cluster_file: str | os.PathLike | None = None, settings=None,
             **options) -> HubClient:
    """The ``HubClient`` of ``tenant_id``: FoundationDB opened from ``cluster_file``, else
    the settings' cluster file (``fdb_cluster_file`` / FDB_CLUSTER_FILE). ``options``:
    ``timeout_ms``, ``retry_limit`` (``hub.connection.open_database``).
    Raises ``HubNotConfigured`` (nothing configured) / ``HubUnavailable``."""
    from hub.connection import open_database
    from hub.hub import Hub

    path = resolve_cluster_file(cluster_file, settings)
    return Hub(open_database(path, **options), tenant_id)
