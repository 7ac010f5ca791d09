"""Size limits of recorded content, in bytes (no imports: the hook path reads them)."""

#: Largest file content (one version of one file) the ledger records, in bytes: 100 MiB,
#: GitHub's hard per-file limit, so any file a hosted repository holds fits. A file change
#: carries its content whole through the write path (hashing, compression, one SQLite
#: BLOB, which SQLite caps at 1,000,000,000 bytes by default), so memory is bounded by a
#: small multiple of this. Larger content is refused before it is read whole
#: (``ContentTooLarge``); work-tree snapshots skip such files and say so.
MAX_CONTENT_BYTES = 100 * 1024 * 1024

#: Largest serialized event accepted by the local ledger, in bytes (32 MiB).
#: File contents never count: they live in the blob store. The hub has its own,
#: smaller per-transaction limit (FoundationDB: 10,000,000 bytes per transaction).
MAX_EVENT_BYTES = 32 * 1024 * 1024
