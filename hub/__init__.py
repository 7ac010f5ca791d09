"""The team hub on FoundationDB: connection, layout, versionstamped log, indexes, blobs.

Importing this package does not load the FoundationDB client library; ``hub.hub``
does (through the official ``fdb`` bindings).
"""
