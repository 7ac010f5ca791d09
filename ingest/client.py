"""One ClickHouse client for two engines: embedded chdb or a ClickHouse server.

``connect(url)`` returns an ``Analytics`` handle around a clickhouse-connect client:

* ``chdb:///abs/dir`` (the default, ``<data dir>/analytics``): ClickHouse embedded in this
  process through chdb. chdb hosts one engine per process and its data directory serves
  ONE process at a time, so the handle takes an exclusive lock file (``<dir>.lock``,
  ``fcntl.flock``) and waits up to ``lock_timeout_s`` seconds for it; a busy directory
  raises ``AnalyticsBusy`` naming the process that holds it. The lock is released when the
  handle closes (and by the kernel if the process dies, even by ``kill -9``).
* ``http(s)://user:password@host:8123``: a ClickHouse server (see
  infrastructure/clickhouse/). Any number of processes.

Every table lives in the ClickHouse database ``analytics`` (``DATABASE``); the handle's
default database is ``analytics``, so SQL can say ``swarm_events``.
Driver errors become ``ingest.errors`` exceptions with the cause chained.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Any, Iterator, Mapping, NamedTuple, Sequence
from urllib.parse import urlparse

from ingest.errors import AnalyticsBusy, AnalyticsError, AnalyticsUnavailable, QueryError, WriteRefused

#: The ClickHouse database holding every analytics table.
DATABASE = "analytics"
#: ClickHouse error code READONLY (src/Common/ErrorCodes.cpp): a write in readonly mode.
READONLY_ERROR_CODE = 164
#: ClickHouse error code ACCESS_DENIED.
ACCESS_DENIED_ERROR_CODE = 497
#: Seconds to wait for another process to release an embedded (chdb) database.
DEFAULT_LOCK_TIMEOUT_S = 10.0


def engine_of(url: str) -> str:
    """``"chdb"`` for a ``chdb:`` DSN, ``"server"`` for ``http(s)://``; raises ``AnalyticsError``."""
    scheme = urlparse(url).scheme.lower()
    if scheme == "chdb":
        return "chdb"
    if scheme in ("http", "https"):
        return "server"
    raise AnalyticsError(
        f"unsupported ClickHouse URL {url!r}: use chdb:///absolute/dir (embedded) or "
        "http(s)://host:8123 (a ClickHouse server)"
    )


def chdb_path(url: str) -> Path:
    """The data directory of a ``chdb:///abs/dir`` DSN."""
    parsed = urlparse(url)
    path = parsed.path if not parsed.netloc else f"/{parsed.netloc}{parsed.path}"
    if not path or path in ("/memory", "/:memory:"):
        raise AnalyticsError(f"{url!r}: the analytics database needs a directory (chdb:///abs/dir)")
    return Path(path)


def _error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    text = str(exc)
    idx = text.find("Code: ")
    if idx >= 0:
        digits = "".join(ch for ch in text[idx + 6: idx + 12] if ch.isdigit())
        return int(digits) if digits else None
    return None


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    idx = text.find("DB::Exception: ")
    if idx >= 0:
        text = text[idx + len("DB::Exception: "):]
    return text.split("\n")[0][:600]


def convert_error(exc: BaseException, what: str) -> AnalyticsError:
    """Map a clickhouse-connect/chdb exception to an ``ingest.errors`` exception."""
    code = _error_code(exc)
    if code in (READONLY_ERROR_CODE, ACCESS_DENIED_ERROR_CODE):
        return WriteRefused(
            f"{what}: refused by ClickHouse ({_short(exc)}); `ledger sql` and `ledger audit` are "
            "read-only: use `ledger ingest` to load data"
        )
    from clickhouse_connect.driver.exceptions import OperationalError

    if isinstance(exc, OperationalError):
        return AnalyticsUnavailable(f"{what}: ClickHouse is unreachable ({_short(exc)}); check the server URL")
    return QueryError(f"{what} failed: {_short(exc)}")


class _DirLock:
    """Exclusive ``flock`` on ``<dir>.lock`` while an embedded database is open."""

    def __init__(self, directory: Path, timeout_s: float):
        self.path = directory.with_name(directory.name + ".lock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(timeout_s, 0.0)
        delay = 0.01
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self._holder()
                    os.close(self._fd)
                    raise AnalyticsBusy(
                        f"the embedded analytics database {directory} is in use by another process"
                        f"{holder} (chdb serves one process at a time, e.g. a running "
                        "`ledger ingest --follow` between its polls); wait and retry, stop that "
                        "process, or run a ClickHouse server (LEDGER_CLICKHOUSE_URL=http://host:8123, "
                        "see docs/analytics.md)"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def _holder(self) -> str:
        with contextlib.suppress(OSError, ValueError):
            pid = int(os.pread(self._fd, 32, 0).decode().strip())
            return f" (pid {pid})"
        return ""

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = -1


class ColumnData(NamedTuple):
    """Column-oriented INSERT data: ``columns`` (one sequence of values per column) and
    ``type_names``, the ClickHouse type each column is sent as (ClickHouse converts
    Native-format columns to the table's types, e.g. ``String`` -> ``LowCardinality(String)``)."""

    columns: Sequence[Sequence[Any]]
    type_names: Sequence[str]


class Analytics:
    """An open analytics database: a clickhouse-connect client plus its engine kind.

    Use ``connect()`` to build one. ``engine`` is ``"chdb"`` or ``"server"``; ``url`` the DSN.
    Methods convert driver errors to ``ingest.errors``. Close it (or use ``with``) to free
    the embedded engine for other processes.
    """

    def __init__(self, client, url: str, engine: str, lock: _DirLock | None = None):
        self.client = client
        self.url = url
        self.engine = engine
        self._lock = lock

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None,
              settings: Mapping[str, Any] | None = None, what: str = "query"):
        """Run a query; returns clickhouse-connect's ``QueryResult`` (``.result_rows``,
        ``.column_names``, ``.column_types``). Raises ``QueryError``/``WriteRefused``."""
        try:
            return self.client.query(sql, parameters=dict(parameters or {}), settings=dict(settings or {}))
        except Exception as exc:  # noqa: BLE001 - driver boundary
            raise convert_error(exc, what) from exc

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None, what: str = "command") -> Any:
        """Run a statement without a result set (DDL). Raises ``QueryError``."""
        try:
            return self.client.command(sql, parameters=dict(parameters or {}) or None)
        except Exception as exc:  # noqa: BLE001
            raise convert_error(exc, what) from exc

    def insert(self, table: str, rows: "Sequence[Sequence[Any]] | ColumnData", column_names: Sequence[str],
               settings: Mapping[str, Any] | None = None, what: str = "insert") -> None:
        """Insert into ``analytics.<table>`` in one INSERT. ``rows``: row tuples, or a
        ``ColumnData`` (one sequence per column plus the ClickHouse type to send each as:
        column-oriented, and clickhouse-connect skips its ``DESCRIBE TABLE``).
        Raises ``QueryError``."""
        try:
            if isinstance(rows, ColumnData):
                self.client.insert(table, rows.columns, column_names=list(column_names), database=DATABASE,
                                   settings=dict(settings or {}), column_oriented=True,
                                   column_type_names=list(rows.type_names))
            else:
                self.client.insert(table, rows, column_names=list(column_names), database=DATABASE,
                                   settings=dict(settings or {}))
        except Exception as exc:  # noqa: BLE001
            raise convert_error(exc, what) from exc

    def close(self) -> None:
        """Close the client and release the embedded database (safe to call twice)."""
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Analytics":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open_client(url: str, engine: str, settings: dict[str, Any]):
    try:
        import clickhouse_connect
        if engine == "chdb":
            import chdb  # noqa: F401 - clickhouse-connect's chdb: DSN needs it
    except ImportError as exc:
        raise AnalyticsUnavailable(
            f"analytics needs the analytics extra (missing Python module {exc.name!r}): "
            "pip install 'context-ledger[analytics]' (or 'context-ledger[all]')") from exc

    if engine == "chdb":
        path = chdb_path(url)
        path.mkdir(parents=True, exist_ok=True)
        return clickhouse_connect.get_client(dsn=f"chdb://{path.resolve()}", settings=settings)
    return clickhouse_connect.get_client(dsn=url, settings=settings, connect_timeout=10,
                                         send_receive_timeout=300)


def connect(url: str, *, readonly: bool = False, migrate: bool = True,
            lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> Analytics:
    """Open the analytics database at ``url`` (``chdb:///dir`` or ``http(s)://``).

    ``migrate``: create/upgrade the schema first (``ingest.schema.migrate``; for a
    ``readonly`` handle only on chdb, before the session turns read-only). ``readonly``: every query of the session runs with ClickHouse's
    ``readonly`` setting, so the ENGINE refuses writes, DDL and setting changes
    (``readonly=1`` on chdb; ``readonly=2`` on a server, where clickhouse-connect itself
    sends settings; pair it with the read-only ``ledger_reader`` user of
    infrastructure/clickhouse/users.d/ledger.xml). Raises ``AnalyticsUnavailable``,
    ``AnalyticsBusy`` (embedded database held by another process for ``lock_timeout_s``
    seconds) or ``AnalyticsSchemaError``.
    """
    engine = engine_of(url)
    lock = _DirLock(chdb_path(url), lock_timeout_s) if engine == "chdb" else None
    try:
        try:
            client = _open_client(url, engine, {})
        except AnalyticsUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - driver boundary
            raise AnalyticsUnavailable(
                f"cannot open the analytics database {url}: {_short(exc)}"
                + ("; is a ClickHouse server running there? (infrastructure/clickhouse/compose.yaml)"
                   if engine == "server" else "")
            ) from exc
        analytics = Analytics(client, url, engine, lock)
        lock = None
        try:
            if migrate and (not readonly or engine == "chdb"):
                from ingest.schema import migrate as run_migrations

                run_migrations(analytics)
            _use_database(analytics, readonly)
        except BaseException:
            analytics.close()
            raise
        return analytics
    finally:
        if lock is not None:
            lock.release()


def _use_database(analytics: Analytics, readonly: bool) -> None:
    client = analytics.client
    exists = analytics.query("SELECT count() FROM system.databases WHERE name = {d:String}",
                             {"d": DATABASE}, what="look up the analytics database").result_rows[0][0]
    if exists:
        client.database = DATABASE
    if readonly:
        current = analytics.query("SELECT getSetting('readonly')", what="read settings").result_rows[0][0]
        if int(current) == 0:
            client.set_client_setting("readonly", "1" if analytics.engine == "chdb" else "2")


@contextlib.contextmanager
def connected(url: str, **kwargs) -> Iterator[Analytics]:
    """``with connected(url) as ch:`` — ``connect`` then ``close``."""
    analytics = connect(url, **kwargs)
    try:
        yield analytics
    finally:
        analytics.close()
