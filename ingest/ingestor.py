"""The exactly-once ingestor: source streams -> ``analytics.swarm_events``.

How "exactly once" holds (docs/analytics.md has the long form). Writes are keyed by an
idempotency key, the event id, and the checkpoint lives in ClickHouse next to the data:

1. For each stream the checkpoint is ``max(position)`` in ``analytics.ingest_checkpoints``
   for (consumer, stream). Every event at or before it is in ``swarm_events``: a
   checkpoint row is written only after its batch's INSERT returned.
2. Only the batch in flight at a crash can be partly present (an INSERT spanning months
   writes one part per partition, and parts commit one by one). So on start the ingestor
   asks which event ids of the stream beyond the checkpoint are already in
   ``swarm_events`` and leaves those out while it re-reads them: nothing twice, nothing lost.
3. Each INSERT carries ``insert_deduplication_token`` = hash(consumer, stream, first and
   last position, count), so a retried INSERT after a lost reply (server mode) is a
   no-op (``non_replicated_deduplication_window``).
4. ``ReplacingMergeTree`` on a key that is a function of ``event_id`` is the last net: a
   copy written by some other path collapses on merge (``FINAL`` shows it at once).

So after a crash at any point and a restart, ``count()`` and ``uniqExact(event_id)``
both equal the number of events in the source. One ingestor per (consumer, stream) at a
time: the embedded engine's lock enforces it for chdb; on a server, run one.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable, Union

from ingest.client import Analytics, ColumnData, connected, engine_of
from ingest.errors import AnalyticsBusy, IngestError
from ingest.rows import COLUMNS, RefusedRow
from ingest.sources import LocalSource, Source, SourceBatch
from ingest.wire import WireFormat
from ledger.faults import crash_point

#: Rows per INSERT: ClickHouse wants big, infrequent inserts (thousands of rows).
DEFAULT_BATCH_SIZE = 10_000
#: Most monthly partitions (``PARTITION BY toYYYYMM(time)``) one INSERT may touch: a batch
#: of a sparse, long history (12 years of commits in 10,000 events) is split into INSERTs
#: of at most this many months each, well under ClickHouse's max_partitions_per_insert_block
#: (100); a dense batch (the usual case: a few months) stays one INSERT.
MAX_PARTITIONS_PER_INSERT = 50
#: Refused rows listed in ``IngestStats.refused_rows`` (all are in analytics.ingest_refused).
MAX_LISTED_REFUSED = 100
_REFUSED_COLUMNS = ("consumer", "stream", "position", "event_id", "reason")
_REFUSED_TYPES = ("String",) * 5
#: Seconds between polls of the source in ``--follow`` mode.
DEFAULT_POLL_INTERVAL_S = 1.0
_CHECKPOINT_COLUMNS = ("consumer", "stream", "position", "events")
#: Types the checkpoint row is sent as (``consumer`` is LowCardinality(String) in the table).
_CHECKPOINT_TYPES = ("String", "String", "String", "UInt64")
_EVENT_ID = COLUMNS.index("event_id")
_POSITION = COLUMNS.index("source_position")
_TIME = COLUMNS.index("time")
_DAY_NS = 86_400 * 1_000_000_000
_MONTHS: dict[int, int] = {}


def _month(ns: int) -> int:
    """Months since 1970-01 of a time in ns (the partition ``toYYYYMM(time)`` as a count)."""
    day = ns // _DAY_NS
    month = _MONTHS.get(day)
    if month is None:
        import datetime as dt

        d = dt.date(1970, 1, 1) + dt.timedelta(days=day)
        month = _MONTHS[day] = (d.year - 1970) * 12 + d.month - 1
    return month


def partition_chunks(rows: list[tuple], max_partitions: int = MAX_PARTITIONS_PER_INSERT) -> list[list[tuple]]:
    """``rows`` split into INSERTs that touch at most ``max_partitions`` months each
    (one chunk, ``rows`` itself, when the batch spans fewer months)."""
    if not rows:
        return []
    times = [r[_TIME] for r in rows]
    if _month(max(times)) - _month(min(times)) < max_partitions:
        return [rows]
    by_month: dict[int, list[tuple]] = {}
    for row, ns in zip(rows, times):
        by_month.setdefault(_month(ns), []).append(row)
    months = sorted(by_month)
    return [[r for m in months[i:i + max_partitions] for r in by_month[m]]
            for i in range(0, len(months), max_partitions)]


@dataclass
class StreamProgress:
    """Where one stream stands: checkpoint position and counts of this run."""

    stream: str
    position: str | None = None
    inserted: int = 0
    skipped_present: int = 0


@dataclass
class IngestStats:
    """Totals of a run: events ``read`` from the source, rows ``inserted``, events
    ``skipped_present`` (already in ClickHouse from an interrupted run), ``refused``
    stored events that cannot be loaded (skipped; the first ``MAX_LISTED_REFUSED`` in
    ``refused_rows``, all in ``analytics.ingest_refused``), ``batches``, ``inserts``
    (INSERT statements: a batch spanning many months is split, see
    ``MAX_PARTITIONS_PER_INSERT``), ``seconds`` (wall time), per-stream progress."""

    read: int = 0
    inserted: int = 0
    skipped_present: int = 0
    refused: int = 0
    batches: int = 0
    inserts: int = 0
    seconds: float = 0.0
    streams: dict[str, StreamProgress] = field(default_factory=dict)
    refused_rows: list[RefusedRow] = field(default_factory=list)

    def add(self, other: "IngestStats") -> None:
        """Add the counts of another run (``follow``)."""
        for name in ("read", "inserted", "skipped_present", "refused", "batches", "inserts"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.streams.update(other.streams)
        self.refused_rows.extend(other.refused_rows[:MAX_LISTED_REFUSED - len(self.refused_rows)])

    def as_dict(self) -> dict:
        d = asdict(self)
        d["events_per_second"] = round(self.read / self.seconds, 1) if self.seconds else None
        return d


ProgressCallback = Callable[[str, int, int | None], None]


def _token(consumer: str, stream: str, first: str, last: str, count: int) -> str:
    return hashlib.sha256(f"{consumer}\x00{stream}\x00{first}\x00{last}\x00{count}".encode()).hexdigest()


class Ingestor:
    """Ingest ``source`` into the analytics database ``target``.

    ``target``: an open ``Analytics`` (kept open) or a URL (opened for each catch-up and
    closed while idle in ``follow``, so an embedded database is free for ``ledger sql``
    between polls). ``batch_size``: events per INSERT. ``consumer``: checkpoint name, so
    independent ingestors can feed separate copies. ``progress(stream, events_done,
    backlog_or_None)`` is called after each batch.
    """

    def __init__(self, target: Union[Analytics, str], source: Source, *,
                 batch_size: int = DEFAULT_BATCH_SIZE, consumer: str = "default",
                 progress: ProgressCallback | None = None) -> None:
        if batch_size < 1:
            raise IngestError("batch size must be at least 1")
        self.target = target
        self.source = source
        self.batch_size = batch_size
        self.consumer = consumer
        self.progress = progress
        self.positions: dict[str, str | None] = {}

    # ------------------------------------------------------------------ checkpoint
    def _streams(self, stream: str) -> list[str]:
        aliases = getattr(self.source, "aliases", None)
        return [stream, *(aliases(stream) if aliases else ())]

    def checkpoint(self, ch: Analytics, stream: str) -> str | None:
        """The committed position of ``stream`` (None: nothing ingested yet); the source's
        ``aliases`` of the stream (older names of the same log) count too."""
        rows = ch.query(
            "SELECT max(position), count() FROM analytics.ingest_checkpoints "
            "WHERE consumer = {c:String} AND stream IN {s:Array(String)}",
            {"c": self.consumer, "s": self._streams(stream)}, what="read the ingest checkpoint").result_rows
        return rows[0][0] if rows[0][1] else None

    def _present_after(self, ch: Analytics, stream: str, position: str | None) -> set[str]:
        rows = ch.query(
            "SELECT event_id FROM analytics.swarm_events "
            "WHERE source_stream IN {s:Array(String)} AND source_position > {p:String}",
            {"s": self._streams(stream), "p": position or ""},
            what="check the events after the checkpoint").result_rows
        return {r[0] for r in rows}

    # ------------------------------------------------------------------ ingest
    def _read(self, stream: str, position: str | None, wire: WireFormat) -> tuple[SourceBatch, list]:
        """The next batch after ``position`` and its INSERTs: ``(rows, wire form)`` per
        chunk of at most ``MAX_PARTITIONS_PER_INSERT`` months."""
        batch = self.source.read(stream, position, self.batch_size)
        return batch, [(rows, wire.encode(rows)) for rows in partition_chunks(batch.rows)]

    def _ingest_stream(self, ch: Analytics, stream: str, stats: IngestStats,
                       stop: threading.Event | None) -> None:
        position = self.checkpoint(ch, stream)
        present = self._present_after(ch, stream, position)
        prog = stats.streams.setdefault(stream, StreamProgress(stream, position))
        backlog = self.source.backlog(stream, position)
        done = 0
        # Read + convert + encode (ingest.wire) the next batch in a helper thread while
        # this one is inserted: the INSERT spends most of its time in ClickHouse's C++
        # code, which runs without the GIL (chdb and the HTTP client both release it).
        wire = WireFormat(ch)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-read") as pool:
            pending = pool.submit(self._read, stream, position, wire)
            while not (stop is not None and stop.is_set()):
                batch, chunks = pending.result()
                if batch.last_position is None:
                    break
                pending = pool.submit(self._read, stream, batch.last_position, wire)
                if present:
                    kept = []
                    for rows, encoded in chunks:
                        left = [r for r in rows if r[_EVENT_ID] not in present]
                        if left:
                            kept.append((left, encoded if len(left) == len(rows) else wire.encode(left)))
                    present.difference_update(r[_EVENT_ID] for r in batch.rows)
                    skipped = len(batch.rows) - sum(len(rows) for rows, _ in kept)
                    stats.skipped_present += skipped
                    prog.skipped_present += skipped
                    chunks = kept
                inserted = 0
                for rows, (names, data) in chunks:
                    positions = [r[_POSITION] for r in rows]
                    ch.insert("swarm_events", data, names, what=f"insert events of {stream}", settings={
                        "insert_deduplication_token": _token(self.consumer, stream, min(positions),
                                                             max(positions), len(rows)),
                    })
                    inserted += len(rows)
                    stats.inserts += 1
                    crash_point("ingest.after_insert")
                if batch.refused:
                    self._record_refused(ch, batch.refused, stats)
                crash_point("ingest.before_checkpoint")
                checkpoint = ColumnData([(self.consumer,), (stream,), (batch.last_position,),
                                         (len(batch.rows) + len(batch.refused),)], _CHECKPOINT_TYPES)
                ch.insert("ingest_checkpoints", checkpoint, _CHECKPOINT_COLUMNS, what="write the ingest checkpoint")
                crash_point("ingest.after_checkpoint")
                position = batch.last_position
                self.positions[stream] = position
                prog.position = position
                prog.inserted += inserted
                read = len(batch.rows) + len(batch.refused)
                stats.read += read
                stats.inserted += inserted
                stats.batches += 1
                done += read
                if self.progress is not None:
                    self.progress(stream, done, backlog)
            pending.cancel()
        self.positions[stream] = position

    def _record_refused(self, ch: Analytics, refused: list[RefusedRow], stats: IngestStats) -> None:
        columns = [tuple(self.consumer for _ in refused), tuple(r.stream for r in refused),
                   tuple(r.position for r in refused), tuple(r.event_id for r in refused),
                   tuple(r.reason for r in refused)]
        ch.insert("ingest_refused", ColumnData(columns, _REFUSED_TYPES), _REFUSED_COLUMNS,
                  what="record the refused stored events")
        stats.refused += len(refused)
        stats.refused_rows.extend(refused[:MAX_LISTED_REFUSED - len(stats.refused_rows)])

    def run(self, stop: threading.Event | None = None) -> IngestStats:
        """Catch up every stream of the source once; returns ``IngestStats``.

        Raises ``IngestError``/``AnalyticsError``/``SourceError``; whatever was committed
        stays committed and a re-run resumes from the checkpoint.
        """
        if isinstance(self.target, str):
            with connected(self.target) as ch:
                return self.run_on(ch, stop)
        return self.run_on(self.target, stop)

    def run_on(self, ch: Analytics, stop: threading.Event | None = None) -> IngestStats:
        """``run`` on an open database ``ch`` (left open)."""
        started = time.perf_counter()
        stats = IngestStats()
        for stream in self.source.streams():
            self._ingest_stream(ch, stream, stats, stop)
        stats.seconds = time.perf_counter() - started
        return stats

    def _has_news(self) -> bool:
        for stream in self.source.streams():
            if stream not in self.positions:
                return True
            if self.source.read(stream, self.positions[stream], 1).last_position is not None:
                return True
        return False

    def follow(self, *, poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
               stop: threading.Event | None = None,
               on_round: Callable[[IngestStats], None] | None = None) -> IngestStats:
        """Ingest, then keep polling the source every ``poll_interval_s`` seconds until
        ``stop`` is set (or KeyboardInterrupt). Between polls the analytics database is
        closed when ``target`` is a URL. Returns the totals; ``on_round(stats)`` after
        each round that ingested something."""
        stop = stop or threading.Event()
        total = IngestStats()
        started = time.perf_counter()
        try:
            first = True
            while not stop.is_set():
                if first or self._has_news():
                    try:
                        stats = self.run(stop)
                    except AnalyticsBusy:
                        # `ledger sql` holds the embedded database: try again next poll
                        stop.wait(poll_interval_s)
                        continue
                    total.add(stats)
                    if on_round is not None and (stats.read or first):
                        on_round(stats)
                    first = False
                stop.wait(poll_interval_s)
        except KeyboardInterrupt:
            pass
        total.seconds = time.perf_counter() - started
        return total


def catch_up(url: str, ledger, tenant: str, *, batch_size: int = DEFAULT_BATCH_SIZE) -> IngestStats | None:
    """Bring the analytics database at ``url`` up to date with ``tenant``'s events in the
    local ``ledger`` (incremental: from the checkpoint; quick when nothing is new), as
    ``ledger sql`` and ``ledger audit`` do before answering. An embedded database is
    always fed from the local ledger; a server only when it already holds this ledger's
    stream (a server fed from the hub is kept current by its own ingestor, and one
    database must not get the same events from two streams). Returns the stats, or None
    when this database is not fed from this ledger."""
    source = LocalSource(ledger, tenant=tenant)
    ingestor = Ingestor(url, source, batch_size=batch_size)
    if engine_of(url) == "server":
        with connected(url) as ch:
            if ingestor.checkpoint(ch, source.stream) is None:
                return None
            return ingestor.run_on(ch)
    return ingestor.run()
