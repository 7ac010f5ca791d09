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

from ingest.errors import (AnalyticsBusy, AnalyticsError, AnalyticsUnavailable, QueryError, QueryLimitExceeded,
                           SqlRefused, WriteRefused)

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
    from ingest.sandbox import LIMIT_ERRORS

    code = _error_code(exc)
    if code == READONLY_ERROR_CODE:
        return WriteRefused(
            f"{what}: refused by ClickHouse ({_short(exc)}); `ledger sql` and `ledger audit` are "
            "read-only: use `ledger ingest` to load data"
        )
    if code == ACCESS_DENIED_ERROR_CODE:
        return SqlRefused(
            f"{what}: refused by ClickHouse ({_short(exc)}); `ledger sql` is read-only and reads only "
            "your tenant's rows of swarm_events: no files, URLs, other servers or tables"
        )
    if code in LIMIT_ERRORS:
        happened, setting = LIMIT_ERRORS[code]
        return QueryLimitExceeded(
            f"{what}: the query {happened} ({_short(exc)}); narrow it (WHERE, LIMIT, fewer columns) "
            f"or raise {setting} in ledger.toml (env LEDGER_{setting.upper()})"
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

    Use ``connect()`` to build one. ``engine`` is ``"chdb"`` or ``"server"``; ``url`` the DSN;
    ``tenant`` the tenant a read-only (sandboxed) handle is restricted to, else None.
    Methods convert driver errors to ``ingest.errors``. Close it (or use ``with``) to free
    the embedded engine for other processes.
    """

    def __init__(self, client, url: str, engine: str, lock: _DirLock | None = None, *,
                 tenant: str | None = None, cleanup: Path | None = None):
        self.client = client
        self.url = url
        self.engine = engine
        self.tenant = tenant
        self._lock = lock
        self._cleanup = cleanup
        #: result rows a stream may return (None: no limit beyond the engine's)
        self.max_result_rows: int | None = None

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None,
              settings: Mapping[str, Any] | None = None, what: str = "query"):
        """Run a query; returns clickhouse-connect's ``QueryResult`` (``.result_rows``,
        ``.column_names``, ``.column_types``). Raises ``QueryError``/``WriteRefused``."""
        try:
            return self.client.query(sql, parameters=dict(parameters or {}), settings=dict(settings or {}))
        except Exception as exc:  # noqa: BLE001 - driver boundary
            raise convert_error(exc, what) from exc

    @contextlib.contextmanager
    def stream(self, sql: str, parameters: Mapping[str, Any] | None = None,
               what: str = "query") -> Iterator[tuple[list[str], list[str], Iterator[tuple]]]:
        """Run a query and stream its result: yields ``(column names, type names, rows)``,
        rows an iterator of tuples read block by block (a large result is never held in
        memory at once). Errors, also those raised mid-stream (a limit), are
        ``ingest.errors``."""
        try:
            ctx = self.client.query_row_block_stream(sql, parameters=dict(parameters or {}))
            stream = ctx.__enter__()
        except Exception as exc:  # noqa: BLE001
            if "Streaming query is not supported" not in str(exc):
                raise convert_error(exc, what) from exc
            # chdb streams SELECTs only: DESCRIBE, SHOW, EXPLAIN results are small
            result = self.query(sql, parameters, what=what)
            yield (list(result.column_names), [t.name for t in result.column_types],
                   iter([tuple(r) for r in self._limited(result.result_rows, what)]))
            return
        limit = self.max_result_rows

        def rows() -> Iterator[tuple]:
            count = 0
            try:
                for block in stream:
                    count += len(block)
                    if limit is not None and count > limit:
                        self._limited(range(count), what)
                    for row in block:
                        yield tuple(row)
            except AnalyticsError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise convert_error(exc, what) from exc

        try:
            source = stream.source
            yield list(source.column_names), [t.name for t in source.column_types], rows()
        finally:
            with contextlib.suppress(Exception):
                ctx.__exit__(None, None, None)

    def _limited(self, rows: Sequence, what: str) -> Sequence:
        if self.max_result_rows is not None and len(rows) > self.max_result_rows:
            raise QueryLimitExceeded(
                f"{what}: the query returned more rows than allowed ({self.max_result_rows:,}); narrow it "
                "(WHERE, LIMIT) or raise sql_max_result_rows in ledger.toml (env LEDGER_SQL_MAX_RESULT_ROWS)")
        return rows

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
        if self._cleanup is not None:
            import shutil

            shutil.rmtree(self._cleanup, ignore_errors=True)
            self._cleanup = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "Analytics":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open_client(url: str, engine: str, settings: dict[str, Any], config_file: Path | None = None):
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
        options = {"chdb_options": {"config-file": str(config_file)}} if config_file else {}
        return clickhouse_connect.get_client(dsn=f"chdb://{path.resolve()}", settings=settings, **options)
    return clickhouse_connect.get_client(dsn=url, settings=settings, connect_timeout=10,
                                         send_receive_timeout=300)


def connect(url: str, *, readonly: bool = False, tenant: str | None = None, limits=None,
            migrate: bool = True, lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> Analytics:
    """Open the analytics database at ``url`` (``chdb:///dir`` or ``http(s)://``).

    ``migrate``: create/upgrade the schema first (``ingest.schema.migrate``; for a
    ``readonly`` handle only on chdb). ``readonly``: a sandboxed handle for ``tenant``
    (required) with ``limits`` (``ingest.sandbox.Limits``, default: its defaults), see
    ``ingest.sandbox``: on chdb the engine is (re)started with a reader configuration whose
    only user may SELECT the tenant's rows of ``swarm_events`` and nothing else, readonly,
    with the limits; on a server the session gets ``readonly = 2`` (pair it with the
    tenant's reader user, whose grants and row policy are the boundary there:
    infrastructure/clickhouse/), the limits and the tenant filter as settings. Raises
    ``AnalyticsUnavailable``, ``AnalyticsBusy`` (embedded database held by another process
    for ``lock_timeout_s`` seconds), ``AnalyticsSchemaError`` or ``SqlRefused`` (no tenant).
    """
    from ingest.sandbox import Limits, tenant_condition

    engine = engine_of(url)
    if readonly:
        tenant_condition(tenant)  # refuses a missing tenant
        limits = limits or Limits()
    lock = _DirLock(chdb_path(url), lock_timeout_s) if engine == "chdb" else None
    try:
        if readonly and engine == "chdb":
            analytics = _open_chdb_reader(url, tenant, limits, migrate)
        else:
            analytics = _open(url, engine)
            try:
                if migrate and not readonly:
                    from ingest.schema import migrate as run_migrations

                    run_migrations(analytics)
                _use_database(analytics)
                if readonly:
                    _restrict_server_session(analytics, tenant, limits)
            except BaseException:
                analytics.close()
                raise
        analytics._lock, lock = lock, None
        return analytics
    finally:
        if lock is not None:
            lock.release()


def _open(url: str, engine: str, config_file: Path | None = None) -> Analytics:
    """A handle without the directory lock (``connect`` holds it)."""
    try:
        client = _open_client(url, engine, {}, config_file)
    except AnalyticsUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - driver boundary
        raise AnalyticsUnavailable(
            f"cannot open the analytics database {url}: {_short(exc)}"
            + ("; is a ClickHouse server running there? (infrastructure/clickhouse/compose.yaml)"
               if engine == "server" else "")
        ) from exc
    return Analytics(client, url, engine)


def _open_chdb_reader(url: str, tenant: str, limits, migrate: bool) -> Analytics:
    """A sandboxed embedded reader: chdb (re)started with ``ingest.sandbox.reader_config``
    (chdb hosts one engine per process; closing every handle ends it). When the schema is
    missing or older than this code and ``migrate``, a writer engine applies the
    migrations first, then the reader starts again."""
    import shutil

    from ingest.sandbox import reader_config, reader_directory
    from ingest.schema import applied_versions, migrate as run_migrations, migrations

    newest = max(m.version for m in migrations())
    for attempt in range(2):
        directory = reader_directory()
        try:
            analytics = _open(url, "chdb", reader_config(directory, tenant, limits, DATABASE))
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        analytics._cleanup = directory
        analytics.tenant = tenant
        try:
            if migrate and attempt == 0 and newest not in applied_versions(analytics):
                analytics.close()
                with contextlib.closing(_open(url, "chdb")) as writer:
                    run_migrations(writer)
                continue
            _use_database(analytics)
            got = analytics.query("SELECT getSetting('readonly'), getSetting('max_result_rows')",
                                  what="check the reader session").result_rows[0]
            if int(got[0]) != 1 or int(got[1]) != limits.engine_result_rows:
                raise AnalyticsError(f"the embedded reader session did not take its limits ({got}); refusing to run")
            analytics.max_result_rows = int(limits.max_result_rows)
            return analytics
        except BaseException:
            analytics.close()
            raise
    raise AnalyticsError("the analytics schema could not be brought up to date")  # pragma: no cover


def _use_database(analytics: Analytics) -> None:
    exists = analytics.query("SELECT count() FROM system.databases WHERE name = {d:String}",
                             {"d": DATABASE}, what="look up the analytics database").result_rows[0][0]
    if exists:
        analytics.client.database = DATABASE


def _restrict_server_session(analytics: Analytics, tenant: str, limits) -> None:
    """A server session of ``ledger sql``: readonly=2 (clickhouse-connect sends settings
    itself), the limits and the tenant filter as settings sent with every query. The
    server's reader user (grants, profile constraints, row policy) is the boundary; a
    setting the server does not let this user change is left to its profile."""
    from ingest.sandbox import table_filters

    client = analytics.client
    current = analytics.query("SELECT getSetting('readonly')", what="read settings").result_rows[0][0]
    if int(current) == 0:
        client.set_client_setting("readonly", "2")
    wanted = {**limits.as_settings(), "additional_table_filters": table_filters(tenant, DATABASE)}
    for name, value in wanted.items():
        with contextlib.suppress(Exception):
            client.set_client_setting(name, str(value))
    analytics.tenant = tenant
    analytics.max_result_rows = int(limits.max_result_rows)


@contextlib.contextmanager
def connected(url: str, **kwargs) -> Iterator[Analytics]:
    """``with connected(url) as ch:`` — ``connect`` then ``close``."""
    analytics = connect(url, **kwargs)
    try:
        yield analytics
    finally:
        analytics.close()
