"""Resolving --at WHEN: times (local and with offsets), relative times, event ids, commits."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from ledger import Ledger, MomentNotFound
from nervous_system.gitimport import import_git
from replay import LocalHistory, resolve_moment
from replay.moments import _one_commit
from tests.git_fixtures import GitRepo


@pytest.fixture
def history(tmp_path, ledger_path):
    repo = GitRepo(tmp_path / "repo", start=1_700_000_000, step=3600)
    repo.write("a.txt", "1\n")
    c1 = repo.commit("one")
    repo.write("a.txt", "2\n")
    c2 = repo.commit("two")
    lg = Ledger(ledger_path)
    import_git(lg, repo.path, project_id="p")
    yield lg, repo, c1, c2
    lg.close()


@pytest.fixture
def berlin(monkeypatch):
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_iso_times(history, berlin):
    lg, *_ = history
    utc = resolve_moment(lg, "default", "p", "2024-06-01T12:00:00Z")
    assert utc.kind == "time" and utc.order == "time"
    assert utc.until_ns == int(dt.datetime(2024, 6, 1, 12, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    # naive = local time (Berlin is UTC+2 in June)
    local = resolve_moment(lg, "default", "p", "2024-06-01T14:00")
    assert local.until_ns == utc.until_ns
    offset = resolve_moment(lg, "default", "p", "2024-06-01 13:00:00+01:00")
    assert offset.until_ns == utc.until_ns
    nanos = resolve_moment(lg, "default", "p", "2024-06-01T12:00:00.123456789Z")
    assert nanos.until_ns == utc.until_ns + 123_456_789
    day = resolve_moment(lg, "default", "p", "2024-06-01")  # local midnight
    assert day.until_ns == utc.until_ns - 14 * 3600 * 10**9


def test_relative_times(history, berlin):
    lg, *_ = history
    now = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)
    two_hours = resolve_moment(lg, "default", "p", "2 hours ago", now=now)
    assert two_hours.until_ns == int((now - dt.timedelta(hours=2)).timestamp()) * 10**9
    yesterday = resolve_moment(lg, "default", "p", "yesterday 14:00", now=now)
    expected = dt.datetime(2026, 11, 20, 14, 0).astimezone()  # local (Berlin) 14:00
    assert yesterday.until_ns == int(expected.timestamp()) * 10**9


def test_commit_and_event_ids(history):
    lg, repo, c1, c2 = history
    m1 = resolve_moment(lg, "default", "p", c1[:7])
    assert (m1.kind, m1.commit, m1.order) == ("commit", c1, "seq")
    events = list(lg.events(commit=c1, order="seq"))
    assert (m1.since, m1.until) == (events[0].seq, events[-1].seq)
    assert resolve_moment(lg, "default", "p", c2.upper()).commit == c2
    ev = events[-1]
    by_id = resolve_moment(lg, "default", "p", ev.event_id)
    assert (by_id.kind, by_id.until, by_id.event_id) == ("event", ev.seq, ev.event_id)
    # the 18-character prefix `ledger log` prints
    assert resolve_moment(lg, "default", "p", ev.event_id[:18]).event_id == ev.event_id


def test_hex_matching_a_commit_wins_over_a_date(tmp_path, ledger_path):
    repo = GitRepo(tmp_path / "repo")
    found = None
    for i in range(400):  # find a commit whose hash starts with digits only
        repo.write("f.txt", f"{i}\n")
        c = repo.commit(f"c{i}")
        if c[:4].isdigit():
            found = c
            break
    assert found is not None
    with Ledger(ledger_path) as lg:
        import_git(lg, repo.path, project_id="p")
        m = resolve_moment(lg, "default", "p", found[:4])
    assert m.kind == "commit" and m.commit == found


def test_errors_say_what_was_tried(history):
    lg, repo, c1, c2 = history
    with pytest.raises(MomentNotFound, match="no recorded commit or event .* starts with 'deadbeefcafe'.*2024-01-01"):
        resolve_moment(lg, "default", "p", "deadbeefcafe")
    with pytest.raises(MomentNotFound, match="cannot understand"):
        resolve_moment(lg, "default", "p", "the day the music died")
    with pytest.raises(MomentNotFound, match="no event"):
        resolve_moment(lg, "default", "p", "01234567-89ab-7def-8123-456789abcdef")
    with pytest.raises(MomentNotFound, match="empty"):
        resolve_moment(lg, "default", "p", "  ")


def test_ambiguous_commit_prefix(tmp_path, ledger_path):
    repo = GitRepo(tmp_path / "repo")
    commits = []
    for i in range(40):
        repo.write("f.txt", f"{i}\n")
        commits.append(repo.commit(f"c{i}"))
    firsts = {}
    dup = next(c[:1] for c in commits if firsts.setdefault(c[0], c) != c)
    with Ledger(ledger_path) as lg:
        import_git(lg, repo.path, project_id="p")
        # WHEN needs 4+ hex digits; a shared 4-digit prefix needs ~300 commits, so the
        # lookup behind it is checked with a shared 1-digit prefix
        with pytest.raises(MomentNotFound, match="matches .* recorded commits"):
            _one_commit(LocalHistory(lg, "default", "p"), dup, dup)


def test_event_of_another_project(history, tmp_path):
    lg, repo, c1, c2 = history
    import_git(lg, repo.path, project_id="other")
    ev = next(lg.events(project_id="other"))
    with pytest.raises(MomentNotFound, match="--project other"):
        resolve_moment(lg, "default", "p", ev.event_id)
