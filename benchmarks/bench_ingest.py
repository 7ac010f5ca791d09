"""Benchmark the ClickHouse ingestor and the audit reports (embedded chdb by default).

One run prints:
1. ingest throughput (events/s) of `Ingestor` reading a local ledger of --ingest-events
   events, against a raw clickhouse-connect `client.insert` of the SAME prepared rows in
   the same batch size (the ceiling: no reading, no conversion); target ratio >= 70%.
   Also against a raw insert of those rows already in the ingestor's wire form
   (`ingest.wire`: column-oriented, typed, all-default columns left out), the strictest
   ceiling. --rounds rounds alternate the three (the ratio is the median of the
   per-round ratios, each from back-to-back runs). The per-event cost of each step of
   the ingestor alone (SQLite read, protobuf -> row + JSON, wire encoding, INSERT) is
   printed too.
2. query latency of each `ledger audit` report on --events rows (default 1,000,000): the
   ingested rows are multiplied inside ClickHouse (new event ids, shifted times) up to
   that size, then each report runs --repeat times (median and best, ms).

    python benchmarks/bench_ingest.py                 # 100k ingest, 1M-row audits
    python benchmarks/bench_ingest.py --quick         # 20k ingest, 100k-row audits
    python benchmarks/bench_ingest.py --clickhouse http://localhost:8123
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.audits import AUDITS, audit_parameters  # noqa: E402
from ingest.client import connect  # noqa: E402
from ingest.ingestor import Ingestor  # noqa: E402
from ingest.readonly import execute_readonly  # noqa: E402
from ingest.rows import COLUMNS, local_position, local_rows  # noqa: E402
from ingest.sources import LocalSource  # noqa: E402
from ingest.wire import WireFormat  # noqa: E402
from ledger import Ledger, sha256_hex  # noqa: E402
from schemas import AgentDecision, StateChange, SwarmEvent, new_event_id  # noqa: E402

T0 = 1_767_225_600_000_000_000
SEC = 1_000_000_000


def build_ledger(path: Path, n: int) -> None:
    rng = random.Random(7)
    events, blobs = [], {}
    decision = None
    with Ledger(path, durability="normal") as lg:
        for i in range(n):
            ts = T0 + i * 20 * SEC
            agent = f"agent-{i % 12}"
            role = ["architect", "coder", "reviewer"][i % 3]
            if i % 5 == 0:
                decision = new_event_id(ts // 1_000_000)
                events.append(SwarmEvent(event_id=decision, timestamp=ts, tenant_id="acme", project_id="web",
                                         agent_id=agent, agent_role=role, session_id=f"s{i // 500}",
                                         decision=AgentDecision(rationale=f"decision {i}: refactor module",
                                                                confidence_score=round(rng.random(), 3))))
            else:
                path_ = f"src/module{rng.randrange(2000)}.py"
                data = f"content {rng.randrange(50)}\n".encode()
                blobs[sha256_hex(data)] = data
                events.append(SwarmEvent(event_id=new_event_id(ts // 1_000_000), timestamp=ts, tenant_id="acme",
                                         project_id="web", agent_id=agent, agent_role=role, caused_by=decision,
                                         session_id=f"s{i // 500}", state_change=StateChange(
                                             target_resource=path_, operation="modify",
                                             previous_state_hash=sha256_hex(b"x"), new_state_hash=sha256_hex(data),
                                             file_mode="regular", lines_added=1, lines_removed=1,
                                             diff_patch=f"--- a/{path_}\n+++ b/{path_}\n-x\n+content\n")))
            if len(events) >= 5000:
                lg.append_many(events, blobs)
                events, blobs = [], {}
        if events:
            lg.append_many(events, blobs)


def truncate(ch) -> None:
    ch.command("TRUNCATE TABLE analytics.swarm_events")
    ch.command("TRUNCATE TABLE analytics.ingest_checkpoints")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ingest-events", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=1_000_000, help="rows for the audit latency part")
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each audit report")
    ap.add_argument("--rounds", type=int, default=3, help="alternating ingest/raw insert rounds")
    ap.add_argument("--quick", action="store_true", help="20k ingest events, 100k audit rows")
    ap.add_argument("--clickhouse", help="server URL (default: embedded chdb in a temp dir)")
    args = ap.parse_args()
    if args.quick:
        args.ingest_events, args.events = 20_000, 100_000
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        ledger_path = work / "ledger.db"
        t = time.perf_counter()
        build_ledger(ledger_path, args.ingest_events)
        print(f"built a ledger of {args.ingest_events:,} events in {time.perf_counter() - t:.1f}s")
        url = args.clickhouse or f"chdb://{work / 'analytics'}"
        with connect(url) as ch, Ledger(ledger_path) as lg:
            engine = ch.engine
            source = LocalSource(lg, tenant="acme")
            n, bs = args.ingest_events, args.batch_size
            # The prepared rows: exactly what the ingestor builds (ledger -> rows), in memory.
            rows = [r for i in range(0, n, bs) for r in source.read(
                source.stream, local_position(i) if i else None, bs).rows]
            assert len(rows) == n
            # ...and the same rows in the ingestor's wire form (ingest.wire), prepared too.
            wire = WireFormat(ch)
            wired = [wire.encode(rows[i:i + bs]) for i in range(0, n, bs)]
            # Rounds alternate the three measurements so that each ratio compares runs made
            # back to back (the machine's load drifts); round 1 alone is the plain
            # "ingest, then raw insert" measurement.
            ingest_t, raw_t, wire_t = [], [], []
            for r in range(args.rounds):
                # 1a. the ingestor, end to end (read + convert + encode + INSERT + checkpoint)
                truncate(ch)
                t = time.perf_counter()
                stats = Ingestor(ch, source, batch_size=bs).run()
                ingest_t.append(time.perf_counter() - t)
                assert stats.inserted == n
                # 1b. raw clickhouse-connect insert of the same prepared rows (the baseline)
                truncate(ch)
                t = time.perf_counter()
                for i in range(0, n, bs):
                    ch.client.insert("swarm_events", rows[i:i + bs], column_names=list(COLUMNS),
                                     database="analytics")
                raw_t.append(time.perf_counter() - t)
                # 1c. raw insert of the same rows already in the ingestor's wire form (strict:
                # no reading, no conversion, no encoding; the INSERT exactly as the ingestor sends it)
                truncate(ch)
                t = time.perf_counter()
                for names, data in wired:
                    ch.client.insert("swarm_events", data.columns, column_names=names, database="analytics",
                                     column_oriented=True, column_type_names=list(data.type_names))
                wire_t.append(time.perf_counter() - t)
                print(f"  round {r + 1}: ingest {n / ingest_t[-1]:9,.0f} ev/s   raw insert {n / raw_t[-1]:9,.0f} rows/s"
                      f"   raw wire-form insert {n / wire_t[-1]:9,.0f} rows/s   ratios {raw_t[-1] / ingest_t[-1]:4.0%}"
                      f" / {wire_t[-1] / ingest_t[-1]:4.0%}")
            # split of the ingestor's work, each step alone, in batches like the ingestor
            t = time.perf_counter()
            records = [lg.event_rows(i, bs, tenant_id="acme") for i in range(0, n, bs)]
            read_s = time.perf_counter() - t
            t = time.perf_counter()
            converted = [local_rows(rec, source.stream, tenant="acme")[0] for rec in records]
            convert_s = time.perf_counter() - t
            t = time.perf_counter()
            for batch in converted:
                wire.encode(batch)
            encode_s = time.perf_counter() - t
            ingest_s, raw_s, wire_s = (statistics.median(x) for x in (ingest_t, raw_t, wire_t))
            ratio = statistics.median(r / i for r, i in zip(raw_t, ingest_t))
            ratio_wire = statistics.median(w / i for w, i in zip(wire_t, ingest_t))
            us = 1e6 / n
            print(f"\nengine: {engine}; batch size {bs:,}; median of {args.rounds} rounds")
            print(f"ingest (Ingestor, ledger -> ClickHouse): {n / ingest_s:12,.0f} events/s")
            print(f"raw clickhouse-connect insert of rows:   {n / raw_s:12,.0f} rows/s")
            print(f"ratio ingest / raw insert:                {ratio:11.0%}  (target >= 70%)")
            print(f"raw insert of the rows in wire form:     {n / wire_s:12,.0f} rows/s"
                  f"  (column-oriented, typed, all-default columns left out)")
            print(f"ratio ingest / raw wire-form insert:      {ratio_wire:11.0%}")
            print(f"  per event: ingest {ingest_s * us:.1f} us; its steps alone: SQLite read {read_s * us:.1f} us"
                  f" + protobuf->row+JSON {convert_s * us:.1f} us + wire encoding {encode_s * us:.1f} us"
                  f" + INSERT {wire_s * us:.1f} us = {(read_s + convert_s + encode_s + wire_s) * us:.1f} us"
                  f" serial (the ingestor reads the next batch while ClickHouse inserts one);"
                  f" raw row insert {raw_s * us:.1f} us")
            # 2. audit latency on args.events rows
            copies = max(1, -(-args.events // n))
            t = time.perf_counter()
            for k in range(1, copies):
                ch.command(
                    "INSERT INTO analytics.swarm_events SELECT * REPLACE ("
                    f"concat(substring(event_id, 1, 30), leftPad(toString({k}), 6, '0')) AS event_id, "
                    f"if(caused_by = '', '', concat(substring(caused_by, 1, 30), leftPad(toString({k}), 6, '0'))) "
                    f"AS caused_by, time + toIntervalSecond({k * n * 20}) AS time, "
                    f"'bench-copy-{k}' AS source_stream) "
                    "FROM (SELECT * FROM analytics.swarm_events WHERE source_stream = {s:String})", {"s": source.stream})
            total = ch.query("SELECT count() FROM analytics.swarm_events").result_rows[0][0]
            print(f"\naudit latency on {total:,} rows (loaded in {time.perf_counter() - t:.1f}s), "
                  f"{args.repeat} runs each:")
            ch.command("OPTIMIZE TABLE analytics.swarm_events FINAL")
            mid = T0 + (total // 2) * 20 * SEC
            params = {
                "hot-files": {"min_changes": 3, "window_s": 3600},
                "decisions": {"before": mid},
                "reverted": {"max_confidence": 0.3},
                "agents": {},
                "why": {"path": "src/module42.py"},
            }
            for name, audit in AUDITS.items():
                values = audit_parameters(name, "acme", **params[name])
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    result = execute_readonly(ch, audit.sql(), values)
                    times.append(time.perf_counter() - t)
                print(f"  {name:10} median {statistics.median(times) * 1000:8.1f} ms   best "
                      f"{min(times) * 1000:8.1f} ms   ({len(result.rows):,} rows)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
