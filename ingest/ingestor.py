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

from ingest.client import Analytics, ColumnData, connect
from ingest.errors import AnalyticsBusy, AnalyticsError, IngestError
from ingest.rows import COLUMNS
from ingest.sources import Source, SourceBatch
from ingest.wire import WireFormat

#: Rows per INSERT: ClickHouse wants big, infrequent inserts (thousands of rows).
DEFAULT_BATCH_SIZE = 10_000
#: Seconds between polls of the source in ``--follow`` mode.
DEFAULT_POLL_INTERVAL_S = 1.0
_CHECKPOINT_COLUMNS = ("consumer", "stream", "position", "events")
#: Types the checkpoint row is sent as (``consumer`` is LowCardinality(String) in the table).
_CHECKPOINT_TYPES = ("String", "String", "String", "UInt64")
_EVENT_ID = COLUMNS.index("event_id")
_POSITION = COLUMNS.index("source_position")


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
    ``skipped_present`` (already in ClickHouse from an interrupted run), ``batches``,
    ``seconds`` (wall time), per-stream progress."""

    read: int = 0
    inserted: int = 0
    skipped_present: int = 0
    batches: int = 0
    seconds: float = 0.0
    streams: dict[str, StreamProgress] = field(default_factory=dict)

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
    def checkpoint(self, ch: Analytics, stream: str) -> str | None:
        """The committed position of ``stream`` (None: nothing ingested yet)."""
        rows = ch.query(
            "SELECT max(position), count() FROM analytics.ingest_checkpoints "
            "WHERE consumer = {c:String} AND stream = {s:String}",
            {"c": self.consumer, "s": stream}, what="read the ingest checkpoint").result_rows
        return rows[0][0] if rows[0][1] else None

    def _present_after(self, ch: Analytics, stream: str, position: str | None) -> set[str]:
        rows = ch.query(
            "SELECT event_id FROM analytics.swarm_events "
            "WHERE source_stream = {s:String} AND source_position > {p:String}",
            {"s": stream, "p": position or ""}, what="check the events after the checkpoint").result_rows
        return {r[0] for r in rows}

    # ------------------------------------------------------------------ ingest
    def _read(self, stream: str, position: str | None, wire: WireFormat) -> tuple[SourceBatch, tuple | None]:
        """The next batch after ``position`` and its wire form (None when empty)."""
        batch = self.source.read(stream, position, self.batch_size)
        return batch, wire.encode(batch.rows) if batch.rows else None

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
                batch, encoded = pending.result()
                if not batch.rows:
                    break
                pending = pool.submit(self._read, stream, batch.last_position, wire)
                rows = batch.rows
                if present:
                    rows = [r for r in batch.rows if r[_EVENT_ID] not in present]
                    present.difference_update(r[_EVENT_ID] for r in batch.rows)
                    skipped = len(batch.rows) - len(rows)
                    stats.skipped_present += skipped
                    prog.skipped_present += skipped
                    if skipped and rows:
                        encoded = wire.encode(rows)
                if rows:
                    first = rows[0][_POSITION]
                    names, data = encoded
                    ch.insert("swarm_events", data, names, what=f"insert events of {stream}", settings={
                        "insert_deduplication_token": _token(self.consumer, stream, first,
                                                             batch.last_position, len(rows)),
                    })
                checkpoint = ColumnData([(self.consumer,), (stream,), (batch.last_position,), (len(batch.rows),)],
                                        _CHECKPOINT_TYPES)
                ch.insert("ingest_checkpoints", checkpoint, _CHECKPOINT_COLUMNS, what="write the ingest checkpoint")
                position = batch.last_position
                self.positions[stream] = position
                prog.position = position
                prog.inserted += len(rows)
                stats.read += len(batch.rows)
                stats.inserted += len(rows)
                stats.batches += 1
                done += len(batch.rows)
                if self.progress is not None:
                    self.progress(stream, done, backlog)
            pending.cancel()
        self.positions[stream] = position

    def run(self, stop: threading.Event | None = None) -> IngestStats:
        """Catch up every stream of the source once; returns ``IngestStats``.

        Raises ``IngestError``/``AnalyticsError``/``SourceError``; whatever was committed
        stays committed and a re-run resumes from the checkpoint.
        """
        started = time.perf_counter()
        stats = IngestStats()
        owned = isinstance(self.target, str)
        ch = connect(self.target) if owned else self.target
        try:
            for stream in self.source.streams():
                self._ingest_stream(ch, stream, stats, stop)
        except AnalyticsError:
            raise
        finally:
            if owned:
                ch.close()
        stats.seconds = time.perf_counter() - started
        return stats

    def _has_news(self) -> bool:
        for stream in self.source.streams():
            if stream not in self.positions:
                return True
            if self.source.read(stream, self.positions[stream], 1).rows:
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
                    total.read += stats.read
                    total.inserted += stats.inserted
                    total.skipped_present += stats.skipped_present
                    total.batches += stats.batches
                    total.streams.update(stats.streams)
                    if on_round is not None and (stats.read or first):
                        on_round(stats)
                    first = False
                stop.wait(poll_interval_s)
        except KeyboardInterrupt:
            pass
        total.seconds = time.perf_counter() - started
        return total
