"""The ingestor's fast path: lean ledger reads, generated converters, the wire form.

Each shortcut must give exactly what the straightforward path gives: the same RFC 3339
text, the same rows, the same JSON as ``SwarmEvent.to_json()``, the same stored rows as
a plain ``client.insert`` of every column.
"""

from __future__ import annotations

import json
import random

from ingest.client import connect
from ingest.ingestor import Ingestor
from ingest.rows import COLUMNS, format_ts, local_position, local_rows, row_from_body
from ingest.sources import LocalSource
from ingest.wire import WireFormat
from ledger import Ledger
from schemas import AgentDecision, StateChange, SwarmEvent, format_timestamp_ns, new_event_id
from tests.analytics_helpers import SEC, T0, analytics_url
from tests.test_ingest import sdk_scenario


def _reference_rfc3339(ns: int) -> str:
    """An independent formatter (datetime.strftime) to check the fast one against."""
    import datetime as dt

    seconds, nanos = divmod(ns, SEC)
    base = (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds)).strftime(
        "%Y-%m-%dT%H:%M:%S")
    if nanos == 0:
        return base + "Z"
    digits = 3 if nanos % 1_000_000 == 0 else 6 if nanos % 1000 == 0 else 9
    return f"{base}.{str(nanos).rjust(9, '0')[:digits]}Z"


def test_format_ts_matches_an_independent_formatter():
    rng = random.Random(5)
    cases = [(0, 0), (-1, 0), (-1, 999_999_999), (T0 // SEC, 0), (T0 // SEC, 1), (T0 // SEC, 120_000_000),
             (T0 // SEC, 123_456_000), (T0 // SEC, 999_999_999), (951_782_400, 0),  # 2000-02-29
             (253_402_300_799, 0),  # 9999-12-31T23:59:59
             (5, -1), (5, 1_500_000_000)]  # out-of-range nanos are normalised like the ns form
    for _ in range(20_000):
        cases.append((rng.randrange(-10**10, 10**11),
                      rng.choice([0, rng.randrange(10**9), rng.randrange(1000) * 10**6, rng.randrange(10**6) * 1000])))
    for seconds, nanos in cases:
        expected = _reference_rfc3339(seconds * SEC + nanos)
        assert format_ts(seconds, nanos) == expected == format_timestamp_ns(seconds * SEC + nanos), (seconds, nanos)


def test_event_rows_is_the_lean_read_path(ledger_path):
    with Ledger(ledger_path) as lg:
        sdk_scenario(lg)
        stored = list(lg.events(order="seq"))
        assert lg.event_rows(0, 10**6) == [(s.seq, s.body, s.hub_versionstamp, s.recorded_ns, s.event_id)
                                           for s in stored]
        assert lg.event_rows(0, 10**6, tenant_id="acme") == lg.event_rows(0, 10**6)
        assert lg.event_rows(0, 10**6, tenant_id="other") == []
        assert [r[0] for r in lg.event_rows(stored[2].seq, 3)] == [s.seq for s in stored[3:6]]
        assert lg.event_rows(stored[-1].seq, 10) == []


def test_local_rows_equal_row_from_body_and_the_event_json_for_every_kind(ledger_path):
    with Ledger(ledger_path) as lg:
        sdk_scenario(lg)
        lg.mark_synced([(1, b"\x01" * 10)])  # a row with a hub versionstamp
        stored = list(lg.events(order="seq"))
        rows, refused = local_rows(lg.event_rows(0, 10**6), "local:x")
    assert refused == []
    assert {s.kind for s in stored} == {"decision", "state_change", "message", "signal", "span"}
    assert len(rows) == len(stored)
    for s, row in zip(stored, rows):
        assert row == row_from_body(s.body, source="local", stream="local:x", position=local_position(s.seq),
                                    local_seq=s.seq, hub_versionstamp=s.hub_versionstamp,
                                    recorded_ns=s.recorded_ns)
        r = dict(zip(COLUMNS, row))
        assert json.loads(r["event_json"]) == json.loads(s.event.to_json())
        assert (r["event_id"], r["time"], r["event_type"], r["local_seq"]) == (s.event_id, s.time_ns, s.kind, s.seq)
        assert r["hub_versionstamp"] == (s.hub_versionstamp.hex() if s.hub_versionstamp else "")
    span = dict(zip(COLUMNS, rows[-1]))
    assert span["span_kind"] == "client" and span["span_end"] - span["span_start"] == 5


def _decisions_only(lg: Ledger, n: int) -> None:
    lg.append_many([SwarmEvent(event_id=new_event_id(T0 // 10**6 + i), timestamp=T0 + i * SEC, tenant_id="acme",
                               project_id="web", agent_id="a", agent_role="coder",
                               decision=AgentDecision(rationale=f"d{i}", confidence_score=0.0))
                    for i in range(n)])


def _stored(ch) -> list[tuple]:
    cols = ", ".join(COLUMNS)
    return [tuple(r) for r in ch.query(f"SELECT {cols} FROM analytics.swarm_events ORDER BY event_id").result_rows]


def test_wire_form_stores_the_same_rows_as_a_plain_insert_of_every_column(ledger_path, isolated_state):
    with Ledger(ledger_path) as lg:
        _decisions_only(lg, 30)  # first batch: only decisions, so most columns are all-default
        sdk_scenario(lg)          # then every kind
        lg.append_many([SwarmEvent(event_id=new_event_id(), timestamp=T0, tenant_id="acme", project_id="web",
                                   state_change=StateChange(target_resource="a.txt", operation="delete",
                                                            previous_state_hash="0" * 64))])
        source = LocalSource(lg, tenant="acme")
        with connect(analytics_url(isolated_state)) as ch:
            wire = WireFormat(ch)
            first = source.read(source.stream, None, 30).rows
            names, data = wire.encode(first)
            # left out: all-default columns without a DEFAULT expression; kept: the rest and Floats
            assert "rationale" in names and "confidence" in names and "memory_usage_mb" in names
            assert not {"target_path", "message_recipients", "span_start", "trace_id"} & set(names)
            assert "ingested_at" not in names
            assert all(len(col) == 30 for col in data.columns) and len(data.type_names) == len(names)

            stats = Ingestor(ch, source, batch_size=30).run()
            assert stats.inserted == len(lg.event_rows(0, 10**6))
            via_ingestor = _stored(ch)
            ch.command("TRUNCATE TABLE analytics.swarm_events")
            rows = source.read(source.stream, None, 10**6).rows
            ch.client.insert("swarm_events", rows, column_names=list(COLUMNS), database="analytics")
            via_plain_insert = _stored(ch)
            types = dict(ch.query("SELECT name, type FROM system.columns WHERE database = 'analytics' "
                                  "AND table = 'swarm_events'").result_rows)
    assert via_ingestor == via_plain_insert
    assert len(via_ingestor) == len(rows)
    assert types["agent_role"] == "LowCardinality(String)"  # sent as String, stored as the table says
