"""Store-and-forward sync of the local ledger to the team hub.

Public API::

    from hub import open_hub
    from syncer import Syncer
    hub = open_hub("acme", cluster_file="/etc/foundationdb/fdb.cluster")   # a hub.protocol.HubClient
    report = Syncer(ledger, hub).sync_once()        # one pass: every pending event, in batches

The syncer is written against ``hub.protocol.HubClient`` only; importing this package
does not load the FoundationDB client library.
"""

from syncer.errors import *  # noqa: F401,F403
from syncer.errors import __all__ as _errors


def __getattr__(name):  # lazy: keep `import syncer` light
    if name in ("Syncer", "SyncReport"):
        from syncer import syncer

        return getattr(syncer, name)
    raise AttributeError(name)


__all__ = ["Syncer", "SyncReport", *_errors]
