"""Documented FoundationDB limits the double enforces.

Source: "Known Limitations" (apple.github.io/foundationdb/known-limitations.html) and
CLIENT_KNOBS in ``fdbclient/ClientKnobs.cpp``: KEY_SIZE_LIMIT 1e4, SYSTEM_KEY_SIZE_LIMIT
3e4, VALUE_SIZE_LIMIT 1e5, TRANSACTION_SIZE_LIMIT 1e7; MAX_READ/WRITE_TRANSACTION_LIFE_VERSIONS
5e6 (5 seconds at 1e6 versions per second).
"""

KEY_SIZE_LIMIT = 10_000            # key_too_large (2102)
SYSTEM_KEY_SIZE_LIMIT = 30_000     # keys starting with \xff
VALUE_SIZE_LIMIT = 100_000         # value_too_large (2103)
TRANSACTION_SIZE_LIMIT = 10_000_000  # transaction_too_large (2101), checked at commit
MAX_TRANSACTION_LIFE_VERSIONS = 5_000_000  # transaction_too_old (1007)

# Per-element overheads in FoundationDB's transaction size (``VectorRef<T>::expectedSize()``
# adds ``sizeof(T)`` per element; 7.3 client on a 64-bit platform): MutationRef = uint8 type +
# two StringRefs (16 each) + Optional<uint32_t> checksum + Optional<uint16_t> index + bool
# -> 56 bytes; KeyRangeRef = two StringRefs -> 32 bytes.  Also what the RYW layer adds to
# getApproximateSize() (``sizeof(MutationRef)``, ``sizeof(KeyRangeRef)``).
MUTATION_REF_BYTES = 56
KEY_RANGE_REF_BYTES = 32

MAX_NORMAL_KEY = b"\xff"            # end of the user keyspace
MAX_SYSTEM_KEY = b"\xff\xff"        # end of the system keyspace (access_system_keys)

DEFAULT_BACKOFF = 0.01              # CLIENT_KNOBS->DEFAULT_BACKOFF
BACKOFF_GROWTH_RATE = 2.0           # CLIENT_KNOBS->BACKOFF_GROWTH_RATE
DEFAULT_MAX_BACKOFF = 1.0           # CLIENT_KNOBS->DEFAULT_MAX_BACKOFF
FUTURE_VERSION_RETRY_DELAY = 0.01   # CLIENT_KNOBS->FUTURE_VERSION_RETRY_DELAY


def max_key_size(key: bytes) -> int:
    """Largest legal size for ``key`` (system keys get the larger limit)."""
    return SYSTEM_KEY_SIZE_LIMIT if key.startswith(b"\xff") else KEY_SIZE_LIMIT
