"""Reaching FoundationDB: the cluster file, the API version, opening the database, and
turning driver errors into hub errors.

Everything here goes through the official bindings (``fdb.api_version``, ``fdb.open``,
``@fdb.transactional``). Importing this module imports ``fdb`` but does not load the
client library (libfdb_c); selecting the API version does.
"""

from __future__ import annotations

import os

import fdb

from hub.errors import HubError, HubUnavailable

#: FoundationDB API version this code is written against (7.3 semantics; the bindings
#: shipped as ``foundationdb`` 7.3+ support it).
API_VERSION = 730
#: Default per-transaction timeout (ms) and retry limit: an unreachable cluster surfaces
#: as ``HubUnavailable`` instead of hanging (FDB options ``timeout`` / ``retry_limit``).
DEFAULT_TIMEOUT_MS = 15_000
DEFAULT_RETRY_LIMIT = 50

#: Error codes that mean "cannot reach / overloaded / try later" rather than "refused".
_UNAVAILABLE_CODES = {1004, 1007, 1009, 1020, 1021, 1025, 1026, 1031, 1037, 1038, 1039, 1042,
                      1051, 1078, 1213, 1515, 2008}


def select_api_version() -> int:
    """Select ``API_VERSION`` in the bindings unless a version is already selected;
    returns the version in effect. Raises ``HubUnavailable`` if the FoundationDB client
    library (libfdb_c) cannot be loaded (see docs/hub.md for installing it)."""
    if fdb.is_api_version_selected():
        return fdb.get_api_version()
    try:
        fdb.api_version(API_VERSION)
    except Exception as exc:  # the bindings raise a bare Exception when libfdb_c is missing
        raise HubUnavailable(
            f"cannot load the FoundationDB client library: {exc}; install the FoundationDB "
            "client package for your OS (see docs/hub.md, 'Installing the client library')"
        ) from exc
    return API_VERSION


def open_database(cluster_file: str | os.PathLike, *, timeout_ms: int = DEFAULT_TIMEOUT_MS,
                  retry_limit: int = DEFAULT_RETRY_LIMIT):
    """Open the cluster named by ``cluster_file`` (``fdb.open``), with a per-transaction
    timeout (ms) and retry limit so a dead cluster gives ``HubUnavailable``, not a hang.

    The bindings cache one ``Database`` per cluster file in a process, and these are
    database options: the last call's ``timeout_ms``/``retry_limit`` apply to every
    ``Hub`` of that cluster in the process (each product process opens the hub once).
    """
    select_api_version()
    try:
        db = fdb.open(str(cluster_file))
        db.options.set_transaction_timeout(int(timeout_ms))
        db.options.set_transaction_retry_limit(int(retry_limit))
    except fdb.FDBError as exc:
        raise HubUnavailable(f"cannot open FoundationDB cluster {cluster_file}: {exc}") from exc
    return db


def transactional(fn):
    """``@fdb.transactional``, applied on first call: the bindings refuse to decorate
    before ``fdb.api_version`` is selected, and importing this module must not load
    the client library (``open_database`` selects the version)."""
    wrapped = None

    def call(*args, **kwargs):
        nonlocal wrapped
        if wrapped is None:
            select_api_version()
            wrapped = fdb.transactional(fn)
        return wrapped(*args, **kwargs)

    call.__name__ = fn.__name__
    call.__doc__ = fn.__doc__
    return call


def converted(what: str):
    """Decorator: turn ``fdb.FDBError`` into ``HubUnavailable`` (retryable / time-outs) or
    ``HubError``, the cause chained."""

    def wrap(fn):
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except fdb.FDBError as exc:
                raise convert_fdb_error(exc, what) from exc

        inner.__name__ = fn.__name__
        inner.__doc__ = fn.__doc__
        return inner

    return wrap


def convert_fdb_error(exc: "fdb.FDBError", what: str) -> Exception:
    """The hub error for a FoundationDB error: ``HubUnavailable`` for transient ones
    (timeouts, conflicts beyond the retry limit, unknown results), else ``HubError``."""
    code = getattr(exc, "code", None)
    desc = getattr(exc, "description", b"") or b""
    desc = desc.decode(errors="replace") if isinstance(desc, bytes) else str(desc)
    if code in _UNAVAILABLE_CODES:
        return HubUnavailable(f"hub {what} failed: {desc} (FoundationDB error {code}); "
                              "events stay in the local outbox and are sent on the next try")
    return HubError(f"hub {what} failed: {desc} (FoundationDB error {code})")
