"""Benchmark the syncer against the FoundationDB double (or a real cluster).

Prints, from one run:
  1. syncer events/s (local ledger -> hub, batched) vs a raw ``fdb`` loop writing the same
     keys and values (log, ids, time index) at the same batch size -- the syncer's overhead
     (reading the outbox, idempotency reads, decoding, marking rows synced);
  2. syncer batched vs one event per transaction.

Usage:  python benchmarks/bench_sync.py [--events N] [--batch B] [--quick]
With FDB_CLUSTER_FILE set to a real cluster, it runs against that cluster (tenant
"bench-<random>", removed afterwards).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import fdb_double  # noqa: E402

REAL = fdb_double.should_use_real_cluster()
if not REAL:
    fdb_double.install()

import fdb  # noqa: E402

from ledger import Ledger  # noqa: E402
from nervous_system.recorder import Recorder  # noqa: E402
from hub.connection import open_database  # noqa: E402
from hub.hub import Hub  # noqa: E402
from hub.layout import ROOT  # noqa: E402
from syncer.syncer import Syncer  # noqa: E402


def make_ledger(path: Path, tenant: str, n: int) -> Ledger:
    lg = Ledger(path, durability="normal")
    rec = Recorder(lg, project_id="bench", agent_id="coder", tenant_id=tenant)
    for i in range(n):
        if i % 2:
            rec.decision(f"step {i}: " + "because " * 20, confidence=0.5)
        else:
            rec.message(f"message {i}: " + "text " * 40)
    return lg


def syncer_rate(cluster: str, tenant: str, lg: Ledger, batch: int) -> tuple[float, int]:
    hub = Hub(open_database(cluster), tenant)
    t0 = time.perf_counter()
    report = Syncer(lg, hub, batch_events=batch, batch_bytes=5_000_000, record_status=False).sync_once()
    dt = time.perf_counter() - t0
    return report.sent / dt, report.batches


def raw_rate(cluster: str, tenant: str, bodies: list[tuple[str, int, bytes]], batch: int) -> float:
    """The same mutations the syncer makes for these events, with no reads and no ledger."""
    db = open_database(cluster)
    d = fdb.directory.create_or_open(db, (ROOT, tenant, "raw"))
    log, ids, tix = d["log"], d["ids"], d["time"]

    @fdb.transactional
    def write(tr, chunk):
        for uv, (event_id, time_ns, body) in enumerate(chunk):
            vs = fdb.tuple.Versionstamp(user_version=uv)
            tr.set_versionstamped_key(log.pack_with_versionstamp((vs, 0)), body)
            tr.set_versionstamped_value(ids.pack((event_id,)), fdb.tuple.pack_with_versionstamp((vs,)))
            tr.set_versionstamped_key(tix.pack_with_versionstamp((time_ns, vs)), b"")
        return tr.get_versionstamp()

    t0 = time.perf_counter()
    for i in range(0, len(bodies), batch):
        write(db, bodies[i : i + batch]).wait()
    return len(bodies) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="1,000 events")
    args = ap.parse_args()
    n = 1000 if args.quick else args.events
    single_n = max(100, n // 10)
    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    cluster = os.environ["FDB_CLUSTER_FILE"] if REAL else fdb_double.make_cluster_file(tmp, backend="memory")
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    print(f"backend: {'real cluster ' + cluster if REAL else 'FoundationDB double (memory store)'}; "
          f"{n:,} events, batch {args.batch}")

    lg = make_ledger(tmp / "a.db", tenant, n)
    bodies = [(e.event_id, e.time_ns, e.body) for e in lg.events(order="seq")]
    avg = sum(len(b) for _, _, b in bodies) / len(bodies)
    raw = raw_rate(cluster, tenant, bodies, args.batch)
    batched, batches = syncer_rate(cluster, tenant, lg, args.batch)
    print(f"event size: {avg:.0f} bytes serialized")
    print(f"raw fdb loop, batch {args.batch}:        {raw:10,.0f} events/s")
    print(f"syncer, batch {args.batch}:              {batched:10,.0f} events/s  ({batches} transactions)")
    print(f"  syncer / raw:                  {batched / raw:10.2f}x")

    lg1 = make_ledger(tmp / "b.db", tenant, single_n)
    single, _ = syncer_rate(cluster, tenant, lg1, 1)
    raw1 = raw_rate(cluster, tenant, bodies[:single_n], 1)
    print(f"raw fdb loop, 1 per transaction: {raw1:10,.0f} events/s  ({single_n:,} events)")
    print(f"syncer, 1 event per transaction: {single:10,.0f} events/s  ({single_n:,} events)")
    print(f"  batched / one-per-transaction: {batched / single:10.2f}x")
    if REAL:
        fdb.directory.remove_if_exists(open_database(cluster), (ROOT, tenant))


if __name__ == "__main__":
    main()
