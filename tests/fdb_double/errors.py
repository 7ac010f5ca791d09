"""FoundationDB error codes, messages and predicates used by the double.

Sources (FoundationDB upstream):
- codes/messages: ``flow/include/flow/error_definitions.h``;
- predicates: ``fdb_error_predicate`` in ``bindings/c/fdb_c.cpp``;
- what ``on_error`` retries: ``Transaction::onError`` in ``fdbclient/NativeAPI.actor.cpp``
  (backoff retry) and ``ReadYourWritesTransaction::onError`` (retry limit,
  ``transaction_cancelled`` after a non-retryable error).
"""

from __future__ import annotations

# -- codes the double raises ------------------------------------------------------------
TRANSACTION_TOO_OLD = 1007
FUTURE_VERSION = 1009
NOT_COMMITTED = 1020
COMMIT_UNKNOWN_RESULT = 1021
TRANSACTION_CANCELLED = 1025
TRANSACTION_TIMED_OUT = 1031
ACCESSED_UNREADABLE = 1036
PROCESS_BEHIND = 1037
DATABASE_LOCKED = 1038
CLUSTER_VERSION_CHANGED = 1039
COMMIT_PROXY_MEMORY_LIMIT_EXCEEDED = 1042
BATCH_TRANSACTION_THROTTLED = 1051
GRV_PROXY_MEMORY_LIMIT_EXCEEDED = 1078
OPERATION_CANCELLED = 1101
FUTURE_RELEASED = 1102
TAG_THROTTLED = 1213
NO_CLUSTER_FILE_FOUND = 1515
CLIENT_INVALID_OPERATION = 2000
KEY_OUTSIDE_LEGAL_RANGE = 2004
INVERTED_RANGE = 2005
INVALID_OPTION_VALUE = 2006
INVALID_OPTION = 2007
NETWORK_NOT_SETUP = 2008
NETWORK_ALREADY_SETUP = 2009
READ_VERSION_ALREADY_SET = 2010
USED_DURING_COMMIT = 2017
INVALID_MUTATION_TYPE = 2018
TRANSACTION_INVALID_VERSION = 2020
NO_COMMIT_VERSION = 2021
NETWORK_CANNOT_BE_RESTARTED = 2025
TRANSACTION_TOO_LARGE = 2101
KEY_TOO_LARGE = 2102
VALUE_TOO_LARGE = 2103
CONNECTION_STRING_INVALID = 2104
UNSUPPORTED_OPERATION = 2108
API_VERSION_NOT_SUPPORTED = 2203
EXACT_MODE_WITHOUT_LIMITS = 2210
INTERNAL_ERROR = 4100

MESSAGES: dict[int, str] = {
    0: "Success",
    1000: "Operation failed",
    1004: "Operation timed out",
    1007: "Transaction is too old to perform reads or be committed",
    1009: "Request for future version",
    1020: "Transaction not committed due to conflict with another transaction",
    1021: "Transaction may or may not have committed",
    1025: "Operation aborted because the transaction was cancelled",
    1026: "Network connection failed",
    1031: "Operation aborted because the transaction timed out",
    1036: "Read or wrote an unreadable key",
    1037: "Storage process does not have recent mutations",
    1038: "Database is locked",
    1039: "The protocol version of the cluster has changed",
    1042: "CommitProxy commit memory limit exceeded",
    1051: "Batch GRV request rate limit exceeded",
    1078: "GetReadVersion proxy memory limit exceeded",
    1101: "Asynchronous operation cancelled",
    1102: "Future has been released",
    1213: "Transaction tag is being throttled",
    1515: "No cluster file found in current directory or default location",
    2000: "Invalid API call",
    2004: "Key outside legal range",
    2005: "Range begin key larger than end key",
    2006: "Option set with an invalid value",
    2007: "Option not valid in this context",
    2008: "Action not possible before the network is configured",
    2009: "Network can be configured only once",
    2010: "Transaction already has a read version set",
    2017: "Operation issued while a commit was outstanding",
    2018: "Unrecognized atomic mutation type",
    2020: "Transaction does not have a valid commit version",
    2021: "Transaction is read-only and therefore does not have a commit version",
    2025: "Network can only be started once",
    2101: "Transaction exceeds byte limit",
    2102: "Key length exceeds limit",
    2103: "Value length exceeds limit",
    2104: "Connection string invalid",
    2108: "Operation is not supported",
    2203: "API version not supported",
    2210: "EXACT streaming mode requires limits, but none were given",
    4000: "An unknown error occurred",
    4100: "An internal error occurred",
}


def message(code: int) -> bytes:
    """``fdb_get_error(code)``: the upstream message as bytes (the C API returns ``const char*``)."""
    return MESSAGES.get(code, "UNKNOWN_ERROR").encode()


# -- predicates (fdb_c.cpp fdb_error_predicate) -----------------------------------------
PREDICATE_RETRYABLE = 50000
PREDICATE_MAYBE_COMMITTED = 50001
PREDICATE_RETRYABLE_NOT_COMMITTED = 50002

MAYBE_COMMITTED = frozenset({COMMIT_UNKNOWN_RESULT, CLUSTER_VERSION_CHANGED})
RETRYABLE_NOT_COMMITTED = frozenset({
    NOT_COMMITTED, TRANSACTION_TOO_OLD, FUTURE_VERSION, DATABASE_LOCKED,
    GRV_PROXY_MEMORY_LIMIT_EXCEEDED, COMMIT_PROXY_MEMORY_LIMIT_EXCEEDED,
    BATCH_TRANSACTION_THROTTLED, PROCESS_BEHIND, TAG_THROTTLED,
    2131,  # unknown_tenant
})


def error_predicate(predicate: int, code: int) -> bool:
    """Return the upstream ``fdb_error_predicate(predicate, code)`` answer."""
    if predicate == PREDICATE_RETRYABLE:
        return code in MAYBE_COMMITTED or code in RETRYABLE_NOT_COMMITTED
    if predicate == PREDICATE_MAYBE_COMMITTED:
        return code in MAYBE_COMMITTED
    if predicate == PREDICATE_RETRYABLE_NOT_COMMITTED:
        return code in RETRYABLE_NOT_COMMITTED
    return False


# -- on_error classification (NativeAPI Transaction::onError) ---------------------------
# Errors retried after the exponential backoff (DEFAULT_BACKOFF 0.01 s, growth 2x,
# capped by max_retry_delay, default DEFAULT_MAX_BACKOFF 1 s; multiplied by random01).
ON_ERROR_BACKOFF = frozenset({
    NOT_COMMITTED, COMMIT_UNKNOWN_RESULT, DATABASE_LOCKED,
    COMMIT_PROXY_MEMORY_LIMIT_EXCEEDED, GRV_PROXY_MEMORY_LIMIT_EXCEEDED,
    PROCESS_BEHIND, BATCH_TRANSACTION_THROTTLED, TAG_THROTTLED,
    1079,  # blob_granule_request_failed
})
# Errors retried after FUTURE_VERSION_RETRY_DELAY (0.01 s, capped by max_retry_delay).
ON_ERROR_SHORT_DELAY = frozenset({TRANSACTION_TOO_OLD, FUTURE_VERSION})
# Everything else -- notably transaction_timed_out (1031), the size limits (2101-2103) and
# transaction_cancelled (1025) -- is rethrown by on_error, which also cancels the
# transaction (API >= 610) until reset().


class FDBErr(Exception):
    """Internal error carrier inside the double; becomes ``fdb.FDBError(code)`` in the bindings."""

    def __init__(self, code: int):
        super().__init__(code, MESSAGES.get(code, "UNKNOWN_ERROR"))
        self.code = code
