"""Write-path benchmark: the SDK against raw SQLite and a bare fsync loop, measured in
the same run on the same disk.

    python benchmarks/bench_write_path.py            # ~1 minute
    python benchmarks/bench_write_path.py --quick    # a few seconds
    python benchmarks/bench_write_path.py --dir /mnt/ssd   # choose the disk

Prints:
1. ``Recorder.decision()`` events/s in ``group`` durability against ``sqlite3.executemany``
   of the same rows into the same schema with the same PRAGMAs (WAL,
   ``synchronous=FULL``), one commit per 1000 rows — target >= 50%. Measured twice:
   with the default 10 ms window (a stricter durability than the raw loop's: groups are
   as many writes as arrive in 10 ms, so about 3x more commits at these rates) and with
   the same durability as the raw loop (``group_window_s=1``: every group is 1000
   writes, ``group_max_events``). For reference, the same raw rows written with
   multi-row ``INSERT ... VALUES (...), (...)`` statements (the statement form group
   commit uses) are shown too; the ratios are against ``executemany``;
2. per-event commits/s in ``full`` durability (one fsynced commit per record call)
   against a bare ``write`` + ``fsync`` loop on the same disk;
3. the span processor's overhead: spans/s of the same workload with no processor and
   with ``LedgerSpanProcessor`` (group and full durability);
4. redaction's overhead (``ledger.redaction``, on by default): events/s in group
   durability with the default pipeline and with none (``policies=()``), for short
   decisions, messages holding 4 KB of tool output (source code) and messages holding a
   secret (the detect-secrets path), and the per-event cost in microseconds.
6. sealing's cost (``ledger.erasure``, off by default): ``Recorder.decision()`` with
   sealing off and on, group and normal durability (best of 3 alternating runs).
5. the hash chain's cost (``ledger.chain``: body digest, link, head read, checkpoints):
   ``Recorder.decision()`` in group and normal durability with the chain as shipped
   against the same code with the chain steps stubbed out (best of 3 alternating runs).
Parts 1-3 run with the default pipeline (redaction on), as users get it.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402

from ledger import Ledger  # noqa: E402
from ledger.rows import INSERT_SQL, event_row, insert_rows_sql  # noqa: E402
from nervous_system import LedgerSpanProcessor, Recorder  # noqa: E402
from schemas import AgentDecision, SwarmEvent, new_event_id  # noqa: E402


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def raw_rows(n: int) -> list[tuple]:
    rows = []
    for i in range(n):
        ev = SwarmEvent(event_id=new_event_id(), timestamp=time.time_ns(), tenant_id="default",
                        project_id="bench", agent_id="a", session_id="s",
                        decision=AgentDecision(rationale=f"decision {i}", confidence_score=0.5))
        rows.append(event_row(ev, ev.to_bytes(), time.time_ns()))
    return rows


def bench_raw_multirow(path: Path, n: int, batch: int, per_statement: int = 256) -> float:
    """Reference only: the same rows, multi-row INSERT statements, same PRAGMAs."""
    Ledger(path).close()
    rows = raw_rows(n)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    start = time.perf_counter()
    for i in range(0, n, batch):
        conn.execute("BEGIN IMMEDIATE")
        group = rows[i:i + batch]
        for j in range(0, len(group), per_statement):
            chunk = group[j:j + per_statement]
            conn.execute(insert_rows_sql(len(chunk)), [v for row in chunk for v in row])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return rate(n, elapsed)


def bench_raw_executemany(path: Path, n: int, batch: int) -> float:
    Ledger(path).close()  # same schema
    rows = raw_rows(n)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    start = time.perf_counter()
    for i in range(0, n, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT_SQL, rows[i:i + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return rate(n, elapsed)


def bench_record(path: Path, n: int, durability: str, seal: bool = False, **group) -> tuple[float, Ledger]:
    lg = Ledger(path, durability=durability, **group)
    if seal:
        lg.set_sealing(True)
    # link_spans=False: measure the write path itself; span links are measured in part 3
    rec = Recorder(lg, project_id="bench", agent_id="a", session_id="s", link_spans=False)
    for i in range(50):  # warm up
        rec.decision("warm-up")
    lg.flush()
    start = time.perf_counter()
    for i in range(n):
        rec.decision(f"decision {i}", confidence=0.5)
    lg.flush()
    elapsed = time.perf_counter() - start
    return rate(n, elapsed), lg


class _NoChain:
    """Stubs out the hash chain's steps (digest, head read, link, checkpoints) for part 4."""

    def __enter__(self):
        import ledger.rows as rows
        from ledger import chain, checkpoints

        fixed = b"\0" * 32

        class _Digest:
            def __init__(self, _body):
                pass

            def digest(self):
                return fixed

        self.saved = (rows._sha256, chain.head, chain.link, checkpoints.due,
                      Ledger._seal_rows, Ledger._sealed_rows)
        rows._sha256 = _Digest
        chain.head = lambda conn, ledger_id: (0, fixed)
        chain.link = lambda prev, d: fixed
        checkpoints.due = lambda a, b, interval=None: False
        Ledger._seal_rows = lambda self, conn, r: (list(r), 0)
        Ledger._sealed_rows = lambda self, conn, mark, r, inserted: None
        return self

    def __exit__(self, *exc):
        import ledger.rows as rows
        from ledger import chain, checkpoints

        (rows._sha256, chain.head, chain.link, checkpoints.due,
         Ledger._seal_rows, Ledger._sealed_rows) = self.saved


def bench_chain(d: Path, n: int, durability: str) -> tuple[float, float]:
    """Best-of-3 events/s with and without the hash chain, alternating runs."""
    with_chain, without = [], []
    for k in range(3):
        r, lg = bench_record(d / f"chain-{durability}-{k}.db", n, durability)
        lg.close()
        with_chain.append(r)
        with _NoChain():
            r, lg = bench_record(d / f"nochain-{durability}-{k}.db", n, durability)
            lg.close()
        without.append(r)
    return max(with_chain), max(without)


def bench_fsync_loop(directory: Path, n: int) -> float:
    path = directory / "fsync.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    payload = b"x" * 200
    start = time.perf_counter()
    for _ in range(n):
        os.write(fd, payload)
        os.fsync(fd)
    elapsed = time.perf_counter() - start
    os.close(fd)
    return rate(n, elapsed)


def span_workload(provider: TracerProvider, n: int) -> float:
    tracer = provider.get_tracer("bench.agent", "1.0")
    start = time.perf_counter()
    for i in range(n // 2):
        with tracer.start_as_current_span("invoke_agent bench", attributes={"gen_ai.agent.name": "bench"}):
            with tracer.start_as_current_span("chat model", attributes={
                    "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": i,
                    "gen_ai.usage.output_tokens": 7}) as s:
                s.add_event("chunk", {"n": i})
    return rate(2 * (n // 2), time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small counts (a few seconds)")
    ap.add_argument("--dir", type=Path, default=None, help="directory on the disk to measure")
    args = ap.parse_args()
    n_bulk = 5_000 if args.quick else 50_000
    n_commit = 200 if args.quick else 2_000
    n_spans = 2_000 if args.quick else 20_000

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        d = Path(tmp)
        print(f"disk: {d}  (python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version})")

        raw = bench_raw_executemany(d / "raw.db", n_bulk, 1000)
        multirow = bench_raw_multirow(d / "multirow.db", n_bulk, 1000)
        group, lg = bench_record(d / "group.db", n_bulk, "group")
        commits = lg._group.groups_committed
        lg.close()
        same, lg = bench_record(d / "group-same.db", n_bulk, "group", group_window_s=1.0)
        same_commits = lg._group.groups_committed
        lg.close()
        print("\n1. record() in group durability vs raw sqlite3.executemany (same schema, WAL, synchronous=FULL)")
        print(f"   raw executemany, 1000 rows/commit : {raw:12,.0f} events/s")
        print(f"   raw multi-row INSERT (reference)  : {multirow:12,.0f} events/s  "
              f"(256 rows/statement, 1000 rows/commit)")
        print(f"   Recorder.decision(), group mode   : {group:12,.0f} events/s  "
              f"(default 10 ms window: {commits} group commits for {n_bulk + 50:,} events)")
        print(f"   ratio                             : {group / raw:12.1%}  (target >= 50%)")
        print(f"   same, raw loop's durability       : {same:12,.0f} events/s  "
              f"(group_window_s=1: {same_commits} group commits of <= 1000 writes)")
        print(f"   ratio                             : {same / raw:12.1%}  (target >= 50%)")

        fsync = bench_fsync_loop(d, n_commit)
        full, lg = bench_record(d / "full.db", n_commit, "full")
        lg.close()
        print("\n2. per-event durable commits (full durability) vs bare write+fsync loop, same disk")
        print(f"   write(200 B) + fsync loop         : {fsync:12,.0f} ops/s")
        print(f"   Recorder.decision(), full mode    : {full:12,.0f} events/s")
        print(f"   ratio                             : {full / fsync:12.1%}")

        bare = TracerProvider()
        base = span_workload(bare, n_spans)
        results = {}
        for durability, count in (("group", n_spans), ("full", max(n_commit, 200))):
            lg = Ledger(d / f"spans-{durability}.db", durability=durability)
            provider = TracerProvider()
            provider.add_span_processor(LedgerSpanProcessor(lg, project_id="bench"))
            base_n = span_workload(TracerProvider(), count)
            results[durability] = (span_workload(provider, count), base_n)
            provider.shutdown()
            lg.close()
        print("\n3. span processor overhead (same span workload, 2 spans per iteration)")
        print(f"   no processor                      : {base:12,.0f} spans/s  ({1e6 / base:7.1f} us/span)")
        for durability, (with_p, base_n) in results.items():
            extra = 1e6 / with_p - 1e6 / base_n
            print(f"   LedgerSpanProcessor, {durability:5} mode  : {with_p:12,.0f} spans/s  "
                  f"({1e6 / with_p:7.1f} us/span, +{extra:.1f} us/span, {with_p / base_n:.1%} of no-processor rate)")

        bench_redaction(d, 1_000 if args.quick else 10_000)

        print("\n5. hash chain cost (digest + link + head read + checkpoints), best of 3 alternating runs")
        for durability, count in (("group", n_bulk), ("normal", n_commit * 5)):
            on, off = bench_chain(d, count, durability)
            print(f"   {durability:6} mode, chain off / on     : {off:10,.0f} / {on:10,.0f} events/s  "
                  f"({1e6 / on - 1e6 / off:+.1f} us/event, {on / off:.1%} of the rate without it)")

        print("\n6. sealing cost (AES-GCM per text, key per session/agent), best of 3 alternating runs")
        for durability, count in (("group", n_bulk), ("normal", n_commit * 5)):
            off, on = bench_sealing(d, count, durability)
            print(f"   {durability:6} mode, sealing off / on   : {off:10,.0f} / {on:10,.0f} events/s  "
                  f"({1e6 / on - 1e6 / off:+.1f} us/event, {on / off:.1%} of the rate without it)")


def bench_sealing(d: Path, n: int, durability: str) -> tuple[float, float]:
    """Part 6: best-of-3 events/s with sealing off and on (``ledger.erasure``), alternating."""
    on, off = [], []
    for k in range(3):
        for seal, out in ((False, off), (True, on)):
            r, lg = bench_record(d / f"seal-{seal}-{durability}-{k}.db", n, durability, seal=seal)
            lg.close()
            out.append(r)
    return max(off), max(on)


def bench_redaction(d: Path, n: int) -> None:
    """Part 4: the same workloads with the default pipeline (redaction on) and none."""
    source = (Path(__file__).resolve().parent.parent / "ledger" / "store.py").read_text()[:4096]
    fake = "ghp_" + "0aB1cD2eF3gH4iJ5kL6mN7oP8qR9sT0uV1wX"  # FAKE token, built here
    workloads = {
        "short decision": lambda rec, i: rec.decision(f"decision {i}: retry the flaky step", confidence=0.5),
        "4 KB tool output": lambda rec, i: rec.message(f"call {i}\n{source}"),
        "message with a secret": lambda rec, i: rec.message(f"call {i}: export GH_TOKEN={fake}"),
    }
    print("\n4. redaction overhead (group durability; default pipeline vs policies=())")
    for name, work in workloads.items():
        rates = {}
        for label, policies in (("on", None), ("off", ())):
            lg = Ledger(d / f"redact-{name[:5]}-{label}.db", durability="group", policies=policies)
            rec = Recorder(lg, project_id="bench", agent_id="a", session_id="s", link_spans=False)
            for i in range(20):
                work(rec, i)  # warm up (imports detect-secrets when a text needs it)
            lg.flush()
            start = time.perf_counter()
            for i in range(n):
                work(rec, i)
            lg.flush()
            rates[label] = rate(n, time.perf_counter() - start)
            lg.close()
        extra = 1e6 / rates["on"] - 1e6 / rates["off"]
        print(f"   {name:22}: on {rates['on']:9,.0f}/s  off {rates['off']:9,.0f}/s  "
              f"({rates['on'] / rates['off']:6.1%} of off, {extra:+8.1f} us/event)")


if __name__ == "__main__":
    main()
