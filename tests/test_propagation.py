"""The trace follows the work: threads (with the helpers), asyncio tasks (natively) and
child processes (TRACEPARENT in the environment, picked up by configure())."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import nervous_system
from ledger import Ledger
from nervous_system import ContextThread, child_env, context_from_env, propagating, submit


@pytest.fixture
def inst(ledger_path):
    i = nervous_system.configure(ledger_path, project_id="swarm", agent_id="lead", otlp=False,
                                 set_global=False)
    yield i
    i.shutdown()


def _hex(span):
    ctx = span.get_span_context()
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def test_plain_thread_loses_the_span_helpers_keep_it(inst):
    rec, tracer = inst.recorder, inst.tracer("t")
    ids: dict[str, str] = {}
    with tracer.start_as_current_span("fan-out") as span:
        t = threading.Thread(target=lambda: ids.__setitem__("plain", rec.decision("plain thread")))
        t.start(); t.join()
        t = ContextThread(target=lambda: ids.__setitem__("ctx", rec.decision("context thread")))
        t.start(); t.join()
        t = threading.Thread(target=propagating(lambda: ids.__setitem__("wrapped", rec.decision("wrapped"))))
        t.start(); t.join()
        with ThreadPoolExecutor(2) as pool:
            ids["pool"] = submit(pool, rec.decision, "pooled").result()
    trace_id, span_id = _hex(span)
    lg = inst.ledger
    assert lg.get(ids["plain"]).event.trace_id == ""  # why the helpers exist (Python < 3.14)
    for key in ("ctx", "wrapped", "pool"):
        ev = lg.get(ids[key]).event
        assert (ev.trace_id, ev.span_id) == (trace_id, span_id), key


def test_asyncio_tasks_inherit_the_span(inst):
    rec, tracer = inst.recorder, inst.tracer("t")

    async def step(name: str) -> tuple[str, str]:
        await asyncio.sleep(0)
        with tracer.start_as_current_span(name) as s:
            await asyncio.sleep(0)
            return rec.decision(name), _hex(s)[1]

    async def main():
        with tracer.start_as_current_span("gather") as root:
            results = await asyncio.gather(*(asyncio.create_task(step(f"task-{i}")) for i in range(3)))
        return _hex(root), results

    (trace_id, root_span), results = asyncio.run(main())
    spans = {e.event.span_id: e.event for e in inst.ledger.events(kind="span")}
    for event_id, span_id in results:
        ev = inst.ledger.get(event_id).event
        assert (ev.trace_id, ev.span_id) == (trace_id, span_id)
        assert spans[span_id].span.parent_span_id == root_span


def test_child_env_carries_traceparent(inst):
    with inst.tracer("t").start_as_current_span("parent") as span:
        env = child_env({"PATH": "/bin", "TRACEPARENT": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"})
    trace_id, span_id = _hex(span)
    assert env["TRACEPARENT"].startswith(f"00-{trace_id}-{span_id}-")
    assert env["PATH"] == "/bin"
    # no active span: an inherited TRACEPARENT passes through unchanged
    inherited = {"TRACEPARENT": f"00-{trace_id}-{span_id}-01"}
    assert child_env(inherited)["TRACEPARENT"] == inherited["TRACEPARENT"]
    assert context_from_env({"TRACEPARENT": "garbage"}) is None
    assert context_from_env({}) is None


CHILD = """
import sys, nervous_system
inst = nervous_system.configure(sys.argv[1], project_id="swarm", agent_id="worker", otlp=False)
with inst.tracer("worker").start_as_current_span("child work"):
    print(inst.recorder.decision("child decided"), flush=True)
inst.shutdown()
"""


def test_child_process_joins_the_parent_trace(inst, python, ledger_path):
    with inst.tracer("t").start_as_current_span("spawn") as span:
        out = subprocess.run([python, "-c", CHILD, str(ledger_path)], env=child_env(),
                             capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    trace_id, span_id = _hex(span)
    lg = Ledger(ledger_path)
    decision = lg.get(out.stdout.strip()).event
    assert decision.trace_id == trace_id and decision.agent_id == "worker"
    child_span = next(e.event for e in lg.events(kind="span") if e.event.span.name == "child work")
    assert child_span.trace_id == trace_id
    assert child_span.span.parent_span_id == span_id
    assert decision.span_id == child_span.span_id
    lg.close()
