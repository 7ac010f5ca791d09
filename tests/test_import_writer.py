"""The import's batch writer: batches appended on a second thread, in order, with the
contents of the batch in flight still readable and the writer thread's errors raised in
the caller (``nervous_system.gitimport.writer``)."""

from __future__ import annotations

import threading

import pytest

from ledger import Ledger, sha256_hex
from ledger.errors import StoreError
from nervous_system.gitimport.writer import BatchWriter
from schemas import Operation, StateChange, SwarmEvent, deterministic_event_id

T0 = 1_700_000_000_000_000_000


def change(n: int, path: str, data: bytes) -> SwarmEvent:
    return SwarmEvent(
        event_id=deterministic_event_id(T0 // 1_000_000 + n, "writer", str(n)), timestamp=T0 + n,
        tenant_id="default", project_id="p", agent_id="importer",
        state_change=StateChange(target_resource=path, operation=Operation.CREATE,
                                 new_state_hash=sha256_hex(data), file_mode="regular"),
    )


@pytest.fixture
def gated(monkeypatch):
    """``Ledger.append_prepared`` held until the test opens the gate (no timing involved)."""
    gate, entered = threading.Event(), threading.Event()
    real = Ledger.append_prepared

    def held(self, prepared):
        entered.set()
        assert gate.wait(30), "the test never opened the gate"
        return real(self, prepared)

    monkeypatch.setattr(Ledger, "append_prepared", held)
    return gate, entered


def test_batch_in_flight_stays_readable_and_flush_waits_for_it(ledger_path, gated):
    gate, entered = gated
    data = b"version one\n" * 20
    with Ledger(ledger_path) as lg, BatchWriter(lg, tenant_id="default", batch_commits=1) as writer:
        writer.keep(sha256_hex(data), data, "a.txt")
        writer.add_commit([change(1, "a.txt", data)])  # a full batch: handed to the writer thread
        assert entered.wait(30)
        assert lg.count() == 0 and not lg.has_blob(sha256_hex(data))  # not committed yet
        assert writer.content(sha256_hex(data)) == data  # ... but readable from the batch in flight
        gate.set()
        writer.flush()
        assert lg.count() == 1 and lg.get_blob(sha256_hex(data), tenant_id="default") == data
        assert writer.content(sha256_hex(data)) == data  # now from the ledger
        assert (writer.events_added, writer.new_blobs, writer.new_content_bytes) == (1, 1, len(data))


def test_batches_are_appended_in_the_order_they_were_made(ledger_path):
    with Ledger(ledger_path) as lg, BatchWriter(lg, tenant_id="default", batch_commits=2) as writer:
        for n in range(1, 12):
            data = f"file {n}\n".encode() * 10
            writer.keep(sha256_hex(data), data, f"f{n}.txt")
            writer.add_commit([change(n, f"f{n}.txt", data)])
        writer.flush()
        stored = [s.event.state_change.target_resource for s in lg.events(order="seq")]
    assert stored == [f"f{n}.txt" for n in range(1, 12)]


def test_an_error_of_the_writer_thread_is_raised_in_the_caller(ledger_path, monkeypatch):
    def broken(self, prepared):
        raise StoreError("disk full (simulated)")

    monkeypatch.setattr(Ledger, "append_prepared", broken)
    data = b"content\n" * 10
    with Ledger(ledger_path) as lg:
        writer = BatchWriter(lg, tenant_id="default", batch_commits=1)
        writer.keep(sha256_hex(data), data, "a.txt")
        writer.add_commit([change(1, "a.txt", data)])  # handed over: the error comes later
        with pytest.raises(StoreError, match="disk full"):
            writer.flush()
        writer.close()  # the error was reported once; closing is clean
        writer.close()
        assert lg.count() == 0


def test_stored_blobs_answers_for_many_digests_by_tenant(ledger_path):
    mine, theirs = b"mine\n" * 30, b"theirs\n" * 30
    with Ledger(ledger_path) as lg:
        lg.put_blobs({sha256_hex(mine): mine}, tenant_id="A")
        lg.put_blobs({sha256_hex(theirs): theirs}, tenant_id="B")
        many = [sha256_hex(mine), sha256_hex(theirs)] + [sha256_hex(str(i).encode()) for i in range(1200)]
        assert lg.stored_blobs(many, tenant_id="A") == {sha256_hex(mine)}
        assert lg.stored_blobs(many, tenant_id="B") == {sha256_hex(theirs)}
        assert lg.stored_blobs(many) == {sha256_hex(mine), sha256_hex(theirs)}
