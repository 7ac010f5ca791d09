"""The read side of the ``Ledger``: events by id, prefix and filters, file state
changes for replay, the path-state projection, projects and commits, blobs.

A mixin of ``ledger.store.Ledger`` (it uses the ledger's per-thread connection and its
SQLite error conversion); read methods never take the write lock.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from ledger import blobs as blobstore
from ledger import owners
from ledger.errors import BlobNotFound, EventNotFound
from ledger.records import ChangeRow, PathState, ProjectSummary, StoredEvent
from ledger.rows import EVENT_COLUMNS, row_to_stored
from schemas.errors import SchemaError

#: Shortest event id prefix looked up (hex digits, like git's abbreviations).
MIN_PREFIX = 4
#: Values bound in one ``IN (...)`` list (SQLite allows 32,766 parameters since 3.32).
_IN_CHUNK = 500


class LedgerReads:
    """Queries of the local ledger (see ``ledger.store.Ledger``)."""

    def get_blob(self, digest: str, *, tenant_id: str | None = None) -> bytes:
        """Content by SHA-256 hex; with ``tenant_id``, only content that tenant stored
        (``ledger.owners``: another tenant's content is absent). Raises ``BlobNotFound``;
        ``StoreError`` if corrupt."""
        with self._converted("read blob"):
            conn = self._conn()
            try:
                return blobstore.get(conn, digest, owner=tenant_id)
            except BlobNotFound:
                data = self._sealed_blob(conn, digest, tenant_id)
                if data is None:
                    raise
                return data

    def _sealed_blob(self, conn, digest: str, tenant_id: str | None) -> bytes | None:
        """Content ``digest`` opened from a sealed copy (``ledger.sealed_content``), or None."""
        if not conn.execute("SELECT 1 FROM meta WHERE key = 'seal_text'").fetchone():
            return None  # sealing was never turned on here: no sealed copy to look for
        from ledger import sealed_content

        values = self._withheld_reasons(conn, digest, tenant_id)
        return sealed_content.opened(values, digest, lambda address: blobstore.get(conn, address))

    def has_blob(self, digest: str, *, tenant_id: str | None = None) -> bool:
        """True if content with that SHA-256 hex is stored (with ``tenant_id``: by that tenant)."""
        with self._converted("read blob"):
            conn = self._conn()
            if tenant_id is not None:
                return owners.owns(conn, tenant_id, digest) and blobstore.exists(conn, digest)
            return blobstore.exists(conn, digest)

    def stored_blobs(self, digests: Iterable[str], *, tenant_id: str | None = None) -> set[str]:
        """The ``digests`` (SHA-256 hex) whose content is stored (with ``tenant_id``: by
        that tenant), as a set: ``has_blob`` for many at once, one query per
        ``_IN_CHUNK`` digests."""
        digests = list(dict.fromkeys(digests))
        found: set[str] = set()
        with self._converted("read blob"):
            conn = self._conn()
            for i in range(0, len(digests), _IN_CHUNK):
                chunk = digests[i:i + _IN_CHUNK]
                marks = ", ".join("?" * len(chunk))
                if tenant_id is None:
                    rows = conn.execute(f"SELECT hash FROM blobs WHERE hash IN ({marks})", chunk)
                else:
                    rows = conn.execute(
                        "SELECT o.hash FROM blob_owners o JOIN blobs b ON b.hash = o.hash "
                        f"WHERE o.tenant_id = ? AND o.hash IN ({marks})", (tenant_id, *chunk))
                found.update(row[0] for row in rows)
        return found

    def _path_state(self, conn, tenant_id: str, project_id: str, path: str) -> PathState | None:
        row = conn.execute(
            "SELECT hash, mode FROM path_state WHERE tenant_id=? AND project_id=? AND path=?",
            (tenant_id, project_id, path),
        ).fetchone()
        return PathState(path=path, hash=row[0], mode=row[1]) if row else None

    def path_state(self, tenant_id: str, project_id: str, path: str) -> PathState | None:
        """The current (last recorded) content hash and mode of ``path``, or None."""
        with self._converted("read"):
            return self._path_state(self._conn(), tenant_id, project_id, path)

    def current_tree(self, tenant_id: str, project_id: str) -> dict[str, PathState]:
        """Every path of the recording-order projection: ``{path: PathState}``."""
        with self._converted("read"):
            rows = self._conn().execute(
                "SELECT path, hash, mode FROM path_state WHERE tenant_id=? AND project_id=?",
                (tenant_id, project_id),
            )
            return {r[0]: PathState(path=r[0], hash=r[1], mode=r[2]) for r in rows}

    def get(self, event_id: str, *, tenant_id: str | None = None) -> StoredEvent:
        """The event with that id, or a unique id prefix (``MIN_PREFIX``+ characters).

        With ``tenant_id``, an event of another tenant is treated as absent (tenant
        isolation: callers acting for a tenant never read, nor learn of, another's events).
        Raises ``EventNotFound`` (also when a prefix matches several events).
        """
        found = self.find_events(event_id, tenant_id=tenant_id, limit=2)
        if len(found) > 1:
            raise EventNotFound(f"event id prefix {event_id!r} is ambiguous: give more characters")
        if not found:
            raise EventNotFound(f"no event {event_id!r} in {self.path} (see `ledger log`)")
        return found[0]

    def find_events(self, prefix: str, *, tenant_id: str | None = None, project_id: str | None = None,
                    limit: int = 2) -> list[StoredEvent]:
        """Up to ``limit`` events whose id equals ``prefix`` or starts with it (a prefix
        needs ``MIN_PREFIX`` characters), in id order, optionally of one tenant/project
        only (others' events are absent). Raises ``StoreError``."""
        params: list = [prefix]
        scope = ""
        if tenant_id is not None:
            scope += " AND tenant_id = ?"
            params.append(tenant_id)
        if project_id is not None:
            scope += " AND project_id = ?"
            params.append(project_id)
        with self._converted("read"):
            conn = self._conn()
            row = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = ?{scope}",
                               params).fetchone()
            if row is not None:
                return [row_to_stored(row)]
            if len(prefix) < MIN_PREFIX:
                return []
            # '+': without ANALYZE statistics SQLite prefers the (tenant, project) equality
            # of events_kind over the id range and walks the whole project (0.15 s on
            # git/git for every `replay --at <commit>`, which is first tried as an id)
            rows = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id >= ? AND event_id < ?"
                f"{scope.replace(' tenant_id', ' +tenant_id').replace(' project_id', ' +project_id')} "
                f"ORDER BY event_id LIMIT {int(limit)}",
                [prefix, prefix + "\uffff", *params[1:]],
            ).fetchall()
        return [row_to_stored(r) for r in rows]

    def votes(self, tenant_id: str, target_ids: list[str] | None = None) -> list[StoredEvent]:
        """The tenant's votes (decisions with ``SwarmEvent.vote``), in event time order
        (ties by seq): on the events ``target_ids`` when given, else every vote. Uses the
        partial index ``events_vote_target`` (migration m009). Raises ``StoreError``."""
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = ? AND vote_target IS NOT NULL"
        params: list = [tenant_id]
        if target_ids is not None:
            if not target_ids:
                return []
            sql += f" AND vote_target IN ({', '.join('?' * len(target_ids))})"
            params.extend(target_ids)
        with self._converted("query"):
            rows = self._conn().execute(sql + " ORDER BY time_ns, seq", params).fetchall()
        return [row_to_stored(r) for r in rows]

    def first_time_ns(self, tenant_id: str, project_id: str) -> int | None:
        """The earliest event time (ns) of a project, or None when it has no events."""
        with self._converted("query"):
            return self._conn().execute(
                "SELECT min(time_ns) FROM events WHERE tenant_id = ? AND project_id = ?",
                (tenant_id, project_id)).fetchone()[0]

    def events(
        self,
        *,
        tenant_id: str | None = None,
        project_id: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        path: str | None = None,
        agent_id: str | None = None,
        kind: str | None = None,
        commit: str | None = None,
        session_id: str | None = None,
        trace_id: str | None = None,
        caused_by: str | None = None,
        after_seq: int | None = None,
        until_seq: int | None = None,
        limit: int | None = None,
        order: str = "time",
        descending: bool = False,
    ) -> Iterator[StoredEvent]:
        """Query events; every filter is optional and they combine with AND.

        Times are int nanoseconds since the epoch (``since_ns`` inclusive, ``until_ns``
        inclusive). ``path`` matches a state change's path or its rename source, or
        everything under it when it ends with '/'. ``commit`` matches a commit-hash prefix.
        ``order``: ``"time"`` (event time, then seq) or ``"seq"`` (recording order).
        """
        where, params = [], []

        def add(clause: str, *values) -> None:
            where.append(clause)
            params.extend(values)

        indexed_path = path is not None and None not in (tenant_id, project_id)
        if indexed_path:  # each side by its own index (events_path, m016's events_previous_path)
            if path.endswith("/"):  # a directory: the range [path, path with its last byte + 1)
                side = "{0} >= ? AND {0} < ?"
                values: tuple = (path, path[:-1] + chr(ord(path[-1]) + 1))
            else:
                side, values = "{0} = ?", (path,)
            add(f"seq IN (SELECT seq FROM events WHERE tenant_id = ? AND project_id = ? AND "
                f"{side.format('target_path')} UNION ALL SELECT seq FROM events WHERE tenant_id = ? AND "
                f"project_id = ? AND {side.format('previous_path')} AND previous_path != '')",
                tenant_id, project_id, *values, tenant_id, project_id, *values)
        elif path is not None:
            if path.endswith("/"):
                add("(substr(target_path, 1, ?) = ? OR substr(previous_path, 1, ?) = ?)",
                    len(path), path, len(path), path)
            else:
                add("(target_path = ? OR previous_path = ?)", path, path)
        if commit is not None:
            add("commit_hash >= ? AND commit_hash < ?", commit, commit + "g")
        # With a commit prefix (a range), SQLite without ANALYZE statistics prefers the
        # (tenant, project) equality of events_kind and walks the whole project for each
        # lookup (quadratic in a re-import); '+' leaves it only events_commit to use.
        # The same for a path (its own subquery uses the indexes).
        scope = "+" if commit is not None or indexed_path else ""
        for clause, value in (
            (f"{scope}tenant_id = ?", tenant_id), (f"{scope}project_id = ?", project_id), ("time_ns >= ?", since_ns),
            ("time_ns <= ?", until_ns), ("agent_id = ?", agent_id), ("kind = ?", kind),
            ("session_id = ?", session_id), ("trace_id = ?", trace_id), ("caused_by = ?", caused_by),
            ("seq > ?", after_seq), ("seq <= ?", until_seq),
        ):
            if value is not None:
                add(clause, value)
        if caused_by:  # lets SQLite use the partial indexes (migration m006)
            add("caused_by != ''")
        if trace_id:
            add("trace_id != ''")
        direction = "DESC" if descending else "ASC"
        # With a selective filter, sort its few rows ('+' keeps SQLite from walking the
        # whole project in time order through events_time just to avoid a sort).
        sort = "+" if any(v is not None for v in (caused_by, trace_id, session_id, path, commit)) else ""
        order_by = (f"{sort}time_ns {direction}, {sort}seq {direction}" if order == "time"
                    else f"{sort}seq {direction}")
        sql = f"SELECT {EVENT_COLUMNS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order_by}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._converted("query"):
            cursor = self._conn().execute(sql, params)
            while True:
                rows = cursor.fetchmany(1000)
                if not rows:
                    break
                for row in rows:
                    yield row_to_stored(row)

    def changes(
        self,
        tenant_id: str,
        project_id: str,
        *,
        until_ns: int | None = None,
        until_seq: int | None = None,
        order: str = "time",
        after_seq: int | None = None,
        since_ns: int | None = None,
        limit: int | None = None,
    ) -> Iterator[ChangeRow]:
        """File state changes of a project reduced to replay's needs, in ``order``:
        ``"time"`` (event time, ties by seq) or ``"seq"`` (recording order).

        ``until_ns``/``until_seq`` are inclusive cut-offs; ``after_seq`` (exclusive) and
        ``since_ns`` (inclusive) lower bounds (resuming from a replay snapshot);
        ``limit``: at most this many rows.
        """
        where = ["tenant_id = ?", "project_id = ?", "kind = 'state_change'", "target_type = 'file'"]
        params: list = [tenant_id, project_id]
        for clause, value in (("time_ns <= ?", until_ns), ("seq <= ?", until_seq),
                              ("seq > ?", after_seq), ("time_ns >= ?", since_ns)):
            if value is not None:
                where.append(clause)
                params.append(value)
        order_by = "time_ns, seq" if order == "time" else "seq"
        sql = (
            "SELECT event_id, time_ns, seq, operation, target_path, previous_path, prev_hash, "
            "new_hash, file_mode, prev_mode, commit_hash FROM events WHERE "
            + " AND ".join(where)
            + f" ORDER BY {order_by}"
            + (f" LIMIT {int(limit)}" if limit is not None else "")
        )
        with self._converted("query"):
            cursor = self._conn().execute(sql, params)
            while True:
                rows = cursor.fetchmany(2000)
                if not rows:
                    break
                for r in rows:
                    yield ChangeRow(
                        event_id=r[0], time_ns=r[1], order=r[2], operation=r[3], path=r[4],
                        previous_path=r[5] or "", previous_hash=r[6] or "", new_hash=r[7] or "",
                        mode=r[8] or "", previous_mode=r[9] or "", commit_hash=r[10] or "",
                    )

    def content_withheld(self, tenant_id: str, project_id: str, digest: str) -> str | None:
        """Why content ``digest`` is not stored: the ``content_withheld`` reason of a file
        change of the project that names it (e.g. "secret-file", ``ledger.secret_files``),
        or None when no change withheld it. Reads the project's changes of that hash
        (rare: asked only when a content is missing)."""
        with self._converted("query"):
            found = self._withheld_reasons(self._conn(), digest, tenant_id, project_id)
        if not found:
            return None
        from ledger.sealed_content import reason

        return reason(found[0])

    @staticmethod
    def _withheld_reasons(conn, digest: str, tenant_id: str | None = None,
                          project_id: str | None = None) -> list[str]:
        """The ``content_withheld`` values of the file changes naming content ``digest``
        (of the tenant, and project, when given), in recording order; unreadable bodies
        are skipped. Reads only changes of that hash (asked when a content is missing)."""
        sql = "SELECT body FROM events WHERE kind = 'state_change' AND new_hash = ?"
        params: list = [digest]
        for column, value in (("tenant_id", tenant_id), ("project_id", project_id)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        found = []
        from schemas.wire import state_change_withheld  # one field, no protobuf/pydantic import

        for (body,) in conn.execute(sql + " ORDER BY seq", params):
            try:
                withheld = state_change_withheld(bytes(body))
            except SchemaError:
                continue
            if withheld:
                found.append(withheld)
        return found

    def projects(self) -> list[ProjectSummary]:
        """Every tenant/project in the ledger with its event count and time range."""
        with self._converted("query"):
            rows = self._conn().execute(
                "SELECT tenant_id, project_id, count(*), min(time_ns), max(time_ns) "
                "FROM events GROUP BY tenant_id, project_id ORDER BY tenant_id, project_id"
            ).fetchall()
        return [ProjectSummary(*r) for r in rows]

    def resolve_project(self, tenant_id: str, project_id: str | None) -> str:
        """The project to use (``Ledger.choose_project``: the requested one, else the one
        whose work tree holds the current directory, else the tenant's only one).
        Raises ``ProjectNotFound`` or ``AmbiguousProject`` (listing the choices)."""
        return self.choose_project(tenant_id, project_id)

    def commits(self, tenant_id: str, project_id: str, prefix: str) -> list[tuple[str, int, int]]:
        """Commits recorded in events whose hash starts with ``prefix``:
        ``[(commit_hash, last_seq, last_time_ns)]`` (one row per distinct commit). Uses
        the commit index (``+`` keeps SQLite from walking the project, see ``events``)."""
        with self._converted("query"):
            return [
                tuple(r)
                for r in self._conn().execute(
                    "SELECT commit_hash, max(seq), max(time_ns) FROM events "
                    "WHERE +tenant_id=? AND +project_id=? AND commit_hash >= ? AND commit_hash < ? "
                    "GROUP BY commit_hash",
                    (tenant_id, project_id, prefix, prefix + "g"),
                )
            ]

    def count(self, **filters) -> int:
        """Number of events matching the same filters as ``events`` (tenant_id, project_id, kind)."""
        where, params = [], []
        for col in ("tenant_id", "project_id", "kind", "agent_id"):
            if filters.get(col) is not None:
                where.append(f"{col} = ?")
                params.append(filters[col])
        sql = "SELECT count(*) FROM events" + (" WHERE " + " AND ".join(where) if where else "")
        with self._converted("query"):
            return self._conn().execute(sql, params).fetchone()[0]

    def max_seq(self) -> int:
        """Highest local sequence number (0 when empty)."""
        with self._converted("query"):
            return self._conn().execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]

    def event_rows(self, after_seq: int = 0, limit: int = 10_000, *,
                   tenant_id: str | None = None) -> list[tuple[int, bytes, bytes | None, int, str]]:
        """The lean read path for bulk consumers (the analytics ingestor): up to ``limit``
        events with ``seq > after_seq`` in recording order (only ``tenant_id``'s when
        given), as plain tuples ``(seq, body, hub_versionstamp or None, recorded_ns,
        event_id)`` — ``body`` the stored protobuf bytes, ``recorded_ns`` int nanoseconds,
        ``event_id`` the row's id column (a consumer can check it against the body's). No
        ``StoredEvent`` objects are built (several times cheaper per event than
        ``events()``). Raises ``StoreError``.
        """
        tenant_clause, args = ("AND tenant_id = ? ", (tenant_id,)) if tenant_id is not None else ("", ())
        with self._converted("query"):
            return self._conn().execute(
                # NOT INDEXED: walk seq (the primary key) and filter; the tenant index would
                # sort every later row of the tenant for each batch
                "SELECT seq, body, hub_versionstamp, recorded_ns, event_id FROM events NOT INDEXED "
                f"WHERE seq > ? {tenant_clause}ORDER BY seq LIMIT ?",
                (after_seq, *args, int(limit)),
            ).fetchall()
