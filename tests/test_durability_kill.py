"""``kill -9`` right after a record call returns, a span ends, or (group commit) a
flush returns loses nothing. Real subprocesses, real SIGKILL, real SQLite."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from ledger import Ledger

pytestmark = pytest.mark.slow  # crash rounds: CI runs them; `-m 'not slow'` skips

CHILD = r"""
import sys, time
import nervous_system
from ledger import Ledger

path, durability, mode = sys.argv[1:4]
lg = Ledger(path, durability=durability)
inst = nervous_system.configure(lg, project_id="crash", agent_id="victim", otlp=False, set_global=False)
rec, tracer = inst.recorder, inst.tracer("victim")
i = 0
while True:
    i += 1
    if mode == "record":
        line = rec.decision(f"decision {i}")
    elif mode == "span":
        with tracer.start_as_current_span(f"step {i}") as span:
            pass
        line = format(span.get_span_context().span_id, "016x")
    elif mode == "group-flush":
        ids = [rec.decision(f"decision {i}.{k}") for k in range(25)]
        with tracer.start_as_current_span(f"step {i}") as span:
            pass
        rec.flush()
        line = " ".join(ids + [format(span.get_span_context().span_id, "016x")])
    print(line, flush=True)
"""


def _run_and_kill(python, ledger_path, durability, mode, lines_wanted):
    proc = subprocess.Popen([python, "-c", CHILD, str(ledger_path), durability, mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got = []
    try:
        while len(got) < lines_wanted:
            line = proc.stdout.readline()
            if not line:
                pytest.fail(f"child died: {proc.stderr.read()}")
            got.append(line.split())
        os.kill(proc.pid, signal.SIGKILL)  # immediately after the call returned
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # anything the child printed before dying also returned, so must be stored too
    got.extend(line.split() for line in proc.stdout.read().splitlines() if line.strip())
    return [x for line in got for x in line]


def test_record_call_survives_kill9(python, ledger_path):
    ids = _run_and_kill(python, ledger_path, "full", "record", 40)
    lg = Ledger(ledger_path)
    for event_id in ids:
        assert lg.get(event_id).event.decision is not None


def test_ended_span_survives_kill9(python, ledger_path):
    span_ids = _run_and_kill(python, ledger_path, "full", "span", 40)
    lg = Ledger(ledger_path)
    stored = {e.event.span_id for e in lg.events(kind="span")}
    assert set(span_ids) <= stored


def test_group_commit_after_flush_survives_kill9(python, ledger_path):
    items = _run_and_kill(python, ledger_path, "group", "group-flush", 10)
    lg = Ledger(ledger_path)
    stored_ids = {e.event_id for e in lg.events()}
    stored_spans = {e.event.span_id for e in lg.events(kind="span")}
    for item in items:
        assert item in stored_ids or item in stored_spans, item
    assert len(items) >= 10 * 26
