"""replay.overlap: files are written on a second thread, in order, with bounded memory;
a failed write stops the replay and is raised in the caller."""

from __future__ import annotations

import threading

import pytest

from replay.overlap import BackgroundWriter


def test_items_are_written_in_order_on_another_thread():
    seen, threads = [], set()

    def write(item):
        seen.append(item)
        threads.add(threading.get_ident())

    with BackgroundWriter(write) as writer:
        for n in range(500):
            writer.put(n, 10)
    assert seen == list(range(500))
    assert threads and threading.get_ident() not in threads


def test_put_waits_while_the_budget_is_used():
    release = threading.Event()
    started = threading.Event()

    def write(item):
        started.set()
        release.wait(10)

    writer = BackgroundWriter(write, budget=100)
    writer.put("first", 60)  # taken by the writer, which now blocks
    assert started.wait(10)
    writer.put("second", 60)  # 120 bytes pending > 100: the next put must wait
    blocked = threading.Thread(target=writer.put, args=("third", 1))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive(), "put did not wait for the writer while over budget"
    release.set()
    blocked.join(10)
    assert not blocked.is_alive()
    writer.finish()


def test_a_failed_write_is_raised_and_stops_the_writing():
    written = []

    def write(item):
        if item == 3:
            raise OSError(28, "No space left on device")
        written.append(item)

    with pytest.raises(OSError, match="No space left"):
        with BackgroundWriter(write) as writer:
            for n in range(1000):
                writer.put(n, 1)
    assert written == [0, 1, 2]


def test_leaving_with_an_error_drops_what_waits():
    started, gate = threading.Event(), threading.Event()
    written = []

    def write(item):
        started.set()
        gate.wait(10)
        written.append(item)

    def release_once_aborting(writer):
        # abort() marks the writer closed and drops the queue in one critical section:
        # only then may the write in progress end (no sleep, whatever the machine's load)
        with writer._cond:
            assert writer._cond.wait_for(lambda: writer._closed, timeout=10)
        gate.set()

    with pytest.raises(RuntimeError, match="read failed"):
        with BackgroundWriter(write) as writer:
            for n in range(5):
                writer.put(n, 1)
            assert started.wait(10)  # item 0 is being written; 1-4 wait
            threading.Thread(target=release_once_aborting, args=(writer,)).start()
            raise RuntimeError("read failed")
    assert written == [0]
