"""Store-and-forward sync of the local ledger to the team hub (FoundationDB).

Public API::

    from syncer import Hub, connect, Syncer
    hub = connect(cluster_file, tenant_id)          # or Hub(fdb.open(cluster_file), tenant_id)
    report = Syncer(ledger, hub).sync_once()        # one pass: every pending event, in batches
    for rec in hub.read_log("webshop", after_versionstamp=None, limit=1000):
        print(rec.versionstamp.hex(), rec.event.kind)

Importing this package does not load the FoundationDB client library; ``hub.hub``
does (through the official ``fdb`` bindings).
"""

from syncer.errors import *  # noqa: F401,F403
from syncer.errors import __all__ as _errors


def __getattr__(name):  # lazy: keep `import syncer` free of the fdb import
    if name in ("Hub", "HubRecord", "WriteOutcome", "connect", "open_database"):
        from hub import hub

        return getattr(hub, name)
    if name in ("Syncer", "SyncReport"):
        from syncer import syncer

        return getattr(syncer, name)
    raise AttributeError(name)


__all__ = ["Hub", "HubRecord", "WriteOutcome", "connect", "open_database", "Syncer", "SyncReport", *_errors]
