"""Replay snapshots (replay.snapshots, ledger.snapshots): replay from the nearest
snapshot gives exactly the tree and conflicts of replaying every change, at every
moment (by event and by time), incrementally built, bounded, rebuilt when damaged."""

from __future__ import annotations

import random
import sqlite3

import pytest

from ledger import Ledger, sha256_hex
from replay import LocalHistory, build_tree, replay_from
from replay import snapshots
from replay.moments import Moment
from schemas import StateChange, SwarmEvent, new_event_id

T0 = 1_800_000_000_000_000_000
SPACING = 7


@pytest.fixture(autouse=True)
def small_spacing(monkeypatch):
    monkeypatch.setattr(snapshots, "MIN_SPACING", SPACING)


def change(path, data, op, prev="", t=0, mode="regular", previous_path=""):
    return SwarmEvent(event_id=new_event_id(), timestamp=T0 + t, tenant_id="acme", project_id="web",
                      state_change=StateChange(target_resource=path, operation=op, previous_state_hash=prev,
                                               previous_resource=previous_path,
                                               new_state_hash=sha256_hex(data) if data is not None else "",
                                               file_mode=mode if data is not None else "unspecified"))


def random_history(lg: Ledger, n: int, seed: int, *, shuffle_time: bool) -> None:
    """``n`` file changes: creates (some over existing paths: conflicts), modifies
    (some with a wrong previous hash), deletes, renames, mode flips, a file where a
    directory is and back; event times in order, or not."""
    rnd = random.Random(seed)
    names = ["a", "b", "d/x", "d/y", "d/e/z", "d", "e", "f/g"]
    state: dict[str, str] = {}
    for i in range(n):
        t = i * 1000 + (rnd.randrange(-5000, 5000) if shuffle_time else 0)
        data = f"{i} {rnd.random()}\n".encode() * rnd.randrange(1, 4)
        path = rnd.choice(names)
        roll = rnd.random()
        if path in state and roll < 0.2:
            ev = change(path, None, "delete", prev=state.pop(path), t=t)
            data = None
        elif path in state and roll < 0.35:
            target = rnd.choice([p for p in names if p != path])
            prev = state.pop(path)
            ev = change(target, data, "rename", prev=prev, t=t, previous_path=path)
            state[target] = sha256_hex(data)
        elif path in state and roll < 0.9:
            prev = state[path] if rnd.random() < 0.9 else sha256_hex(b"not it")
            ev = change(path, data, "modify", prev=prev, t=t, mode=rnd.choice(["regular", "executable"]))
            state[path] = sha256_hex(data)
        else:
            ev = change(path, data, "create", t=t)
            state[path] = sha256_hex(data)
        lg.append(ev, {sha256_hex(data): data} if data is not None else None)


def reference(lg, moment):
    return build_tree(LocalHistory(lg, "acme", "web").changes(moment))


@pytest.mark.parametrize("shuffle_time", [False, True])
def test_every_moment_from_snapshots_equals_replaying_every_change(ledger_path, shuffle_time):
    with Ledger(ledger_path) as lg:
        random_history(lg, 120, seed=7 + shuffle_time, shuffle_time=shuffle_time)
        history = LocalHistory(lg, "acme", "web")
        seqs = [r.order for r in lg.changes("acme", "web", order="seq")]
        conflicts_seen = 0
        for seq in reversed(seqs):  # latest first: the first replay builds every snapshot
            moment = Moment("event", "x", 0, until=seq, since=seq)
            start, rows = history.plan(moment)
            rows = list(rows)
            assert len(rows) < max(SPACING, len(start.tree)) or start.seq == 0 and len(rows) < SPACING
            tree, conflicts = snapshots.tree_of(history, moment)
            ref_tree, ref_conflicts = reference(lg, moment)
            assert tree == ref_tree
            assert conflicts == ref_conflicts
            conflicts_seen += len(conflicts)
        assert conflicts_seen > 0  # the history exercises conflicts carried by snapshots
        assert len(lg.snapshots("acme", "web")) >= 120 // 16
        used = 0
        for i in range(0, 125_000, 997):  # moments in time, between and on events
            moment = Moment("time", "t", T0 + i, until_ns=T0 + i)
            start, _ = history.plan(moment)
            used += start.seq > 0
            assert snapshots.tree_of(history, moment) == reference(lg, moment)
        if not shuffle_time:
            assert used > 50  # an in-order history starts time replays from snapshots
        else:  # out of time order: snapshots whose prefix is not time-ordered are never used
            assert all(not s.time_ordered for s in lg.snapshots("acme", "web")[2:])


def test_snapshots_follow_the_spacing_rule_and_are_built_incrementally(ledger_path, monkeypatch):
    with Ledger(ledger_path) as lg:
        random_history(lg, 60, seed=3, shuffle_time=False)
        assert snapshots.refresh(lg, "acme", "web") > 0
        infos = lg.snapshots("acme", "web")
        previous_changes, previous_entries = 0, 0
        for info in infos:
            assert info.changes - previous_changes == max(SPACING, previous_entries)
            previous_changes, previous_entries = info.changes, info.entries
        random_history(lg, 30, seed=4, shuffle_time=False)
        read = []
        real = lg.changes
        monkeypatch.setattr(lg, "changes", lambda *a, **kw: (read.append(kw.get("after_seq")), real(*a, **kw))[1])
        assert snapshots.refresh(lg, "acme", "web") > 0
        assert read[0] == infos[-1].seq  # resumed from the last snapshot, not from the start


def test_a_damaged_or_lost_snapshot_is_never_used_and_is_rebuilt(ledger_path, tmp_path):
    with Ledger(ledger_path) as lg:
        random_history(lg, 80, seed=11, shuffle_time=False)
        history = LocalHistory(lg, "acme", "web")
        snapshots.refresh(lg, "acme", "web")
        infos = lg.snapshots("acme", "web")
        last = infos[-1]
        with sqlite3.connect(ledger_path) as conn:  # a snapshot that decodes but lies
            from ledger.snapshots import encode_tree
            from ledger import codec
            snap = lg.load_snapshot(last)
            tree = dict(snap.tree)
            tree["planted.txt"] = ("0" * 64, "regular")
            tree.pop(next(iter(snap.tree)))
            conn.execute("UPDATE replay_snapshots SET data = ? WHERE seq = ?",
                         (codec.compress(encode_tree(tree, [])), last.seq))
            conn.execute("DELETE FROM replay_snapshots WHERE seq = ?", (infos[1].seq,))
        assert lg.load_snapshot(last) is None  # checksum
        moment = history.resolve(lg.changes("acme", "web", order="seq").__next__().event_id)
        end = Moment("event", "end", 0, until=lg.max_seq(), since=lg.max_seq())
        report = replay_from(history, end, tmp_path / "out")
        assert report.tree == reference(lg, end)[0]
        assert "planted.txt" not in report.tree
        assert lg.load_snapshot(lg.snapshots("acme", "web")[-1]) is not None  # rebuilt by that replay
        assert infos[1].seq not in [i.seq for i in lg.snapshots("acme", "web")]
        between = Moment("event", "x", 0, until=infos[1].seq + 1, since=infos[1].seq + 1)
        assert snapshots.tree_of(history, between) == reference(lg, between)
        assert [i.seq for i in lg.snapshots("acme", "web")] == [i.seq for i in infos]  # rebuilt too
        assert snapshots.tree_of(history, moment) == reference(lg, moment)


def test_dropping_every_snapshot_changes_no_replay(ledger_path):
    with Ledger(ledger_path) as lg:
        random_history(lg, 50, seed=5, shuffle_time=False)
        history = LocalHistory(lg, "acme", "web")
        end = Moment("event", "end", 0, until=lg.max_seq(), since=lg.max_seq())
        with_snapshots = snapshots.tree_of(history, end)
        assert lg.drop_snapshots("acme", "web") > 0
        monkey_free = snapshots.plan(lg, "acme", "web", end, min_spacing=10**9)[0]
        assert monkey_free.seq == 0
        assert snapshots.tree_of(history, end) == with_snapshots == reference(lg, end)


def test_snapshots_of_removed_or_thinned_history_are_never_used(ledger_path):
    """Events removed since a snapshot was saved (retention, ``projects rm`` then a new
    project of the same name) make it unusable: replay equals replaying the events."""
    with Ledger(ledger_path) as lg:
        random_history(lg, 60, seed=8, shuffle_time=False)
        history = LocalHistory(lg, "acme", "web")
        snapshots.refresh(lg, "acme", "web")
        old = lg.snapshots("acme", "web")
        assert old
        lg.remove_project("acme", "web")
        random_history(lg, 20, seed=9, shuffle_time=False)  # a new project "web": fewer changes
        end = Moment("event", "end", 0, until=lg.max_seq(), since=lg.max_seq())
        assert all(lg.load_snapshot(s) is None for s in old)
        assert snapshots.tree_of(history, end) == reference(lg, end)
        snapshots.refresh(lg, "acme", "web")
        new = lg.snapshots("acme", "web")
        assert new and all(s.seq > old[-1].seq for s in new)  # the stale ones were dropped, new ones made
        first = new[0]
        with lg.write_transaction() as conn:  # retention removes an early change
            conn.execute("DELETE FROM events WHERE seq = (SELECT min(seq) FROM events WHERE project_id = 'web' "
                         "AND kind = 'state_change' AND seq > ?)", (old[-1].seq,))
        assert lg.load_snapshot(first) is None
        assert snapshots.tree_of(history, end) == reference(lg, end)
