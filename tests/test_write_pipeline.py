"""One write step: every producer's events go through the ledger's policy pipeline
(``ledger.policies``) — the SDK (both durabilities), JSON Lines, git import, ``exec`` and
span capture — and a policy can neither change an event's identity nor be skipped."""

from __future__ import annotations

import io
import json
import sys

import pytest
from opentelemetry.sdk.trace import TracerProvider

from ledger import Ledger
from ledger.policies import Pipeline
from nervous_system import InvalidRecord, LedgerSpanProcessor, Recorder
from nervous_system.exec import run_and_record
from nervous_system.gitimport import import_git
from nervous_system.jsonl import Defaults, record_jsonl
from tests.git_fixtures import GitRepo

MARK = "policy-was-here"


class Stamp:
    """Marks every event it sees: decisions get a memory id, messages a suffix, signals a
    detail, file changes an input in ``is_reversible=False``, spans an attribute."""

    name = "stamp"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def apply(self, event, blobs):
        self.seen.append(event.kind)
        payload = event.payload
        if event.kind == "decision":
            payload = payload.model_copy(update={"memory_ids": [*payload.memory_ids, MARK]})
        elif event.kind == "message":
            payload = payload.model_copy(update={"content": payload.content + MARK})
        elif event.kind == "signal":
            payload = payload.model_copy(update={"detail": MARK})
        elif event.kind == "state_change":
            payload = payload.model_copy(update={"is_reversible": False})
        else:
            payload = payload.model_copy(update={"attributes": {**payload.attributes, MARK: True}})
        return event.model_copy(update={event.kind: payload}), blobs


def stamped(event) -> bool:
    p = event.payload
    return {
        "decision": lambda: MARK in p.memory_ids,
        "message": lambda: p.content.endswith(MARK),
        "signal": lambda: p.detail == MARK,
        "state_change": lambda: p.is_reversible is False,
        "span": lambda: p.attributes.get(MARK) is True,
    }[event.kind]()


def all_stored_are_stamped(path) -> list[str]:
    with Ledger(path) as lg:
        events = [s.event for s in lg.events(order="seq")]
    assert events, "nothing was recorded"
    assert all(stamped(e) for e in events), [e.kind for e in events if not stamped(e)]
    return [e.kind for e in events]


@pytest.mark.parametrize("durability", ["full", "group"])
def test_sdk_events_go_through_the_pipeline(ledger_path, durability):
    stamp = Stamp()
    lg = Ledger(ledger_path, durability=durability, policies=[stamp])
    rec = Recorder(lg, project_id="p", agent_id="a")
    rec.decision("why")
    rec.file_change("a.txt", b"one\n")
    rec.file_change("b.txt", None, previous_path="a.txt")
    rec.message("hello")
    rec.signal("ok")
    lg.close()
    kinds = all_stored_are_stamped(ledger_path)
    assert kinds == ["decision", "state_change", "state_change", "message", "signal"]
    assert stamp.seen == kinds


def test_jsonl_and_span_capture_go_through_the_pipeline(ledger_path):
    lg = Ledger(ledger_path, policies=[Stamp()])
    lines = [
        {"agent_id": "bot", "decision": {"rationale": "r"}},
        {"state_change": {"target_resource": "x.txt"}, "content": "x\n"},
        {"message": {"content": "m"}},
    ]
    record_jsonl(lg, io.BytesIO("\n".join(json.dumps(x) for x in lines).encode()),
                 Defaults(project_id="p"))
    provider = TracerProvider()
    provider.add_span_processor(LedgerSpanProcessor(lg, project_id="p"))
    with provider.get_tracer("t").start_as_current_span("tool call"):
        pass
    provider.shutdown()
    lg.close()
    assert all_stored_are_stamped(ledger_path) == ["decision", "state_change", "message", "span"]


def test_git_import_and_exec_go_through_the_pipeline(ledger_path, tmp_path):
    repo = GitRepo(tmp_path / "repo")
    repo.write("a.txt", "1\n")
    repo.commit("first")
    repo.write("a.txt", "2\n")
    repo.commit("second")
    lg = Ledger(ledger_path, policies=[Stamp()])
    summary = import_git(lg, repo.path, project_id="p")
    assert summary.events_added == 4
    rec = Recorder(lg, project_id="p", agent_id="exec")
    provider = TracerProvider()
    run_and_record([sys.executable, "-c", "open('b.txt','w').write('b')"], recorder=rec,
                   tracer=provider.get_tracer("t"), root=repo.path)
    lg.close()
    kinds = all_stored_are_stamped(ledger_path)
    assert kinds.count("state_change") >= 3 and "signal" in kinds


class Renumber:
    name = "renumber"

    def apply(self, event, blobs):
        return event.model_copy(update={"project_id": "elsewhere"}), blobs


def test_a_policy_cannot_change_identity_and_nothing_is_written(ledger_path):
    lg = Ledger(ledger_path, policies=[Renumber()])
    with pytest.raises(InvalidRecord, match="renumber.*identity"):
        Recorder(lg, project_id="p", agent_id="a").decision("x")
    with pytest.raises(InvalidRecord, match="line 1: write policy .renumber. changed the identity"):
        record_jsonl(lg, io.BytesIO(b'{"message": {"content": "m"}}'), Defaults(project_id="p"))
    assert lg.count() == 0
    lg.close()


def test_a_pipeline_refuses_objects_that_are_not_policies():
    with pytest.raises(TypeError, match="not a WritePolicy"):
        Pipeline([object()])
