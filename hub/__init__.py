"""The team hub on FoundationDB: connection, layout, versionstamped log, indexes, blobs.

Modules: ``protocol`` (the ``HubClient`` protocol, shapes and limits: what laptops, the
ingestor and replay may ask), ``errors``, ``client`` (``open_hub``: a client from
settings), ``connection`` (cluster file, API version, opening, driver errors),
``layout`` (directories and subspaces), ``log`` (events, idempotency keys, indexes),
``blobs`` (chunked content), ``hub`` (``Hub``: the direct FoundationDB client).

Importing this package, ``hub.protocol``, ``hub.errors`` or ``hub.client`` does not
import ``fdb``; the other modules do (through the official bindings).
"""


from hub.client import open_hub
from hub.protocol import HubClient

__all__ = ["open_hub", "HubClient"]
