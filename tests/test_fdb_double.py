"""Tests of the FoundationDB double (tests/fdb_double) through the official bindings."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import threading
import time

import pytest

from tests import fdb_double
from tests.fdb_double import Fault, clock

fdb_double.install()
import fdb  # noqa: E402

fdb.api_version(730)

from fdb.tuple import Versionstamp  # noqa: E402


def code_of(excinfo) -> int:
    return excinfo.value.code


@pytest.fixture(params=["memory", "sqlite"])
def cluster(request, tmp_path):
    return fdb_double.make_cluster_file(tmp_path, backend=request.param)


@pytest.fixture
def sqlite_cluster(tmp_path):
    return fdb_double.make_cluster_file(tmp_path, backend="sqlite")


@pytest.fixture
def db(cluster):
    return fdb.open(cluster)


@pytest.fixture(autouse=True)
def _reset_clock():
    yield
    clock.reset()


# -- layers --------------------------------------------------------------------------------
def test_install_is_idempotent_and_real_impl_runs():
    fdb_double.install()
    import fdb.impl
    from tests.fdb_double.capi import CAPI
    assert fdb.impl._capi is CAPI and fdb_double.is_installed()
    assert fdb.Transaction is fdb.impl.Transaction and fdb.impl.__file__.endswith("fdb/impl.py")
    assert not fdb_double.should_use_real_cluster()


def test_directory_and_tuple_layers_work(db):
    @fdb.transactional
    def setup(tr):
        a = fdb.directory.create_or_open(tr, ("context-ledger", "t1", "p1"))
        b = fdb.directory.create_or_open(tr, ("context-ledger", "t2", "p1"))
        tr[a.pack(("k", 1))] = b"a"
        tr[b.pack(("k", 1))] = b"b"
        return a, b

    a, b = setup(db)
    assert a.key() != b.key() and not a.key().startswith(b.key()) and not b.key().startswith(a.key())
    again = fdb.directory.open(db, ("context-ledger", "t1", "p1"))
    assert again.key() == a.key()
    assert fdb.directory.list(db, ("context-ledger",)) == ["t1", "t2"]
    assert sorted(fdb.directory.list(db, ("context-ledger", "t1"))) == ["p1"]
    rows = db.get_range_startswith(a.key())
    assert [(a.unpack(kv.key), kv.value) for kv in rows] == [(("k", 1), b"a")]
    assert fdb.tuple.unpack(fdb.tuple.pack(("x", 1, b"\x00", None))) == ("x", 1, b"\x00", None)
    with pytest.raises(ValueError):
        fdb.directory.create(db, ("context-ledger", "t1", "p1"))  # already exists


# -- read your writes, ranges, selectors -------------------------------------------------------
def test_read_your_writes(db):
    db[b"k1"] = b"old"
    db[b"k3"] = b"x"
    tr = db.create_transaction()
    assert tr[b"k1"] == b"old"
    tr[b"k1"] = b"new"
    tr[b"k2"] = b"two"
    tr.add(b"ctr", struct.pack("<q", 5))
    tr.add(b"ctr", struct.pack("<q", 2))
    del tr[b"k3"]
    assert tr[b"k1"] == b"new" and tr.snapshot[b"k1"] == b"new"
    assert struct.unpack("<q", tr[b"ctr"].value)[0] == 7
    assert [kv.key for kv in tr.get_range(b"k", b"l")] == [b"k1", b"k2"]
    tr.clear_range(b"k", b"k2")
    assert tr[b"k1"] == None  # noqa: E711 (Value future compares by value)
    assert db[b"k1"] == b"old"  # not visible outside before commit
    tr.commit().wait()
    assert db[b"k1"] == None and db[b"k2"] == b"two" and db[b"k3"] == None  # noqa: E711


def test_range_reads_limits_reverse_selectors_and_streaming(db):
    @fdb.transactional
    def fill(tr):
        for i in range(300):
            tr[b"r%03d" % i] = b"v" * 50

    fill(db)
    tr = db.create_transaction()
    everything = list(tr.get_range(b"r", b"s"))  # iterator mode: several batches
    assert [kv.key for kv in everything] == [b"r%03d" % i for i in range(300)]
    assert [kv.key for kv in tr.get_range(b"r", b"s", limit=3, reverse=True)] == [b"r299", b"r298", b"r297"]
    KS = fdb.KeySelector
    assert tr.get_key(KS.first_greater_than(b"r010")) == b"r011"
    assert tr.get_key(KS.last_less_than(b"r010")) == b"r009"
    assert tr.get_key(KS.last_less_or_equal(b"r010")) == b"r010"
    assert tr.get_key(KS.first_greater_or_equal(b"r0105")) == b"r011"
    assert tr.get_key(KS.first_greater_or_equal(b"r010") + 5) == b"r015"
    assert tr.get_key(KS.last_less_than(b"r")) == b""
    assert tr.get_key(KS.first_greater_than(b"r299")) == b"\xff"
    sel = [kv.key for kv in tr.get_range(KS.first_greater_than(b"r005"), KS.first_greater_or_equal(b"r008"))]
    assert sel == [b"r006", b"r007"]
    exact = tr.get_range(b"r", b"s", limit=7, streaming_mode=fdb.StreamingMode.exact)
    assert len(list(exact)) == 7
    with pytest.raises(fdb.FDBError) as e:
        list(tr.get_range(b"r", b"s", streaming_mode=fdb.StreamingMode.exact))
    assert code_of(e) == 2210
    with pytest.raises(fdb.FDBError) as e:
        tr[b"\xff/x"].wait()
    assert code_of(e) == 2004  # key_outside_legal_range without read_system_keys


# -- conflicts ---------------------------------------------------------------------------------
def _conflict_case(db, read):
    db[b"hot"] = b"0"
    t1 = db.create_transaction()
    read(t1)
    t1[b"other"] = b"t1"
    t2 = db.create_transaction()
    t2[b"hot"] = b"t2"
    t2.commit().wait()
    t1.commit().wait()


def test_reads_see_a_stable_snapshot(db):
    db[b"s1"] = b"v1"
    t1 = db.create_transaction()
    assert t1[b"s1"] == b"v1"
    @fdb.transactional
    def change(tr):
        tr[b"s1"] = b"v2"
        tr[b"s2"] = b"new"
    change(db)
    assert t1[b"s1"] == b"v1" and [kv.key for kv in t1.get_range(b"s", b"t")] == [b"s1"]
    assert db[b"s1"] == b"v2"


def test_serializable_read_conflicts_with_later_write(db):
    with pytest.raises(fdb.FDBError) as e:
        _conflict_case(db, lambda tr: tr[b"hot"].wait())
    assert code_of(e) == 1020
    assert db[b"other"] == None  # noqa: E711


def test_snapshot_read_does_not_conflict(db):
    _conflict_case(db, lambda tr: tr.snapshot[b"hot"].wait())
    assert db[b"other"] == b"t1"


def test_explicit_conflict_ranges_and_range_read_conflicts(db):
    with pytest.raises(fdb.FDBError) as e:
        _conflict_case(db, lambda tr: (tr.get_read_version().wait(), tr.add_read_conflict_key(b"hot")))
    assert code_of(e) == 1020
    # without any read, the read version is taken at commit -- after t2: no conflict (upstream too)
    _conflict_case(db, lambda tr: tr.add_read_conflict_key(b"hot"))
    with pytest.raises(fdb.FDBError):
        _conflict_case(db, lambda tr: list(tr.get_range(b"a", b"z")))
    # a limited range read only conflicts up to the last key it returned
    db[b"a1"] = b"x"
    _conflict_case(db, lambda tr: list(tr.get_range(b"a", b"z", limit=1)))


def test_atomic_ops_do_not_conflict_and_apply_at_commit(db):
    t1, t2 = db.create_transaction(), db.create_transaction()
    for tr in (t1, t2):
        tr.get_read_version().wait()
        tr.add(b"n", struct.pack("<q", 1))
        tr.max(b"m", struct.pack("<q", 7 if tr is t1 else 3))
        tr.byte_max(b"b", b"abc" if tr is t1 else b"abd")
    t1.commit().wait()
    t2.commit().wait()
    assert struct.unpack("<q", db[b"n"])[0] == 2
    assert struct.unpack("<q", db[b"m"])[0] == 7
    assert db[b"b"] == b"abd"


# -- versionstamps -------------------------------------------------------------------------------
def test_versionstamped_key_and_value(db):
    sub = fdb.Subspace(("log",))
    stamps = []
    for payload in (b"one", b"two"):
        tr = db.create_transaction()
        vs = tr.get_versionstamp()
        key = sub.pack_with_versionstamp((Versionstamp(), 7))
        pos = struct.unpack("<I", key[-4:])[0]  # 4-byte little-endian offset (API >= 520)
        assert key[pos:pos + 10] == b"\xff" * 10
        tr.set_versionstamped_key(key, payload)
        tr.set_versionstamped_value(b"latest", fdb.tuple.pack_with_versionstamp((Versionstamp(),)))
        with pytest.raises(fdb.FDBError) as e:
            tr[b"latest"].wait()
        assert code_of(e) == 1036  # accessed_unreadable
        tr.commit().wait()
        stamp = vs.wait()
        assert len(stamp) == 10
        assert stamp == struct.pack(">QH", tr.get_committed_version(), 0)
        stamps.append(stamp)
    assert stamps[0] < stamps[1]
    rows = list(db.get_range_startswith(sub.key()))
    assert [kv.value for kv in rows] == [b"one", b"two"]
    assert [sub.unpack(kv.key) for kv in rows] == [(Versionstamp(s), 7) for s in stamps]
    assert fdb.tuple.unpack(db[b"latest"]) == (Versionstamp(stamps[1]),)


def test_versionstamp_future_rules(db):
    tr = db.create_transaction()
    vs = tr.get_versionstamp()
    tr.get(b"anything").wait()
    tr.commit().wait()
    with pytest.raises(fdb.FDBError) as e:
        vs.wait()
    assert code_of(e) == 2021  # read-only: no commit version
    tr = db.create_transaction()
    tr[b"k"] = b"v"
    tr.commit().wait()
    with pytest.raises(fdb.FDBError) as e:
        tr.get_versionstamp().wait()
    assert code_of(e) == 2017  # must be requested before commit


# -- limits -------------------------------------------------------------------------------------
def test_key_and_value_size_limits_are_deferred_errors(db):
    tr = db.create_transaction()
    tr[b"k" * 10_001] = b"v"  # no error yet: set() is void in the C API
    with pytest.raises(fdb.FDBError) as e:
        tr.commit().wait()
    assert code_of(e) == 2102
    tr = db.create_transaction()
    tr[b"k" * 10_000] = b"v" * 100_000  # exactly at both limits: fine
    tr.commit().wait()
    tr = db.create_transaction()
    tr[b"k"] = b"v" * 100_001
    with pytest.raises(fdb.FDBError) as e:
        tr[b"other"].wait()  # surfaces at the next read
    assert code_of(e) == 2103


def test_transaction_size_limit(db):
    tr = db.create_transaction()
    for i in range(101):
        tr[b"big%03d" % i] = b"v" * 99_000
    with pytest.raises(fdb.FDBError) as e:
        tr.commit().wait()
    assert code_of(e) == 2101
    assert not fdb.predicates.is_retryable(e.value)
    assert db[b"big000"] == None  # noqa: E711


def test_transaction_too_old_after_five_seconds(db):
    db[b"k"] = b"v"
    tr = db.create_transaction()
    tr[b"k"].wait()
    clock.advance(4.9)
    tr[b"k2"].wait()  # still within 5 s
    clock.advance(0.2)
    with pytest.raises(fdb.FDBError) as e:
        tr[b"k3"].wait()
    assert code_of(e) == 1007
    tr.on_error(e.value).wait()  # retryable: resets with a new read version
    assert tr[b"k"] == b"v"


def test_timeout_option_and_on_error(db):
    tr = db.create_transaction()
    tr.options.set_timeout(100)
    tr[b"k"].wait()
    clock.advance(0.2)
    with pytest.raises(fdb.FDBError) as e:
        tr[b"k"].wait()
    assert code_of(e) == 1031
    timed_out = e.value
    with pytest.raises(fdb.FDBError) as e2:
        tr.on_error(timed_out).wait()  # 1031 is not retried by on_error
    assert code_of(e2) == 1031
    tr.reset()
    assert tr[b"k"] == None  # noqa: E711  (usable again after reset)


def test_database_transaction_timeout_applies_to_transactional(db, cluster):
    db.options.set_transaction_timeout(100)
    watchdog = threading.Timer(5, fdb_double.clear_faults, args=(cluster,))  # fail, never hang
    watchdog.start()
    try:
        fdb_double.set_faults(cluster, Fault.unreachable_cluster())
        start = time.monotonic()
        with pytest.raises(fdb.FDBError) as e:
            db[b"k"] = b"v"
        assert code_of(e) == 1031 and 0.09 < time.monotonic() - start < 2
    finally:
        watchdog.cancel()
        fdb_double.clear_faults(cluster)
        db.options.set_transaction_timeout(0)


# -- retry loop and predicates ------------------------------------------------------------------
def test_predicates_match_upstream():
    p = fdb.predicates
    assert p.is_retryable(fdb.FDBError(1020)) and p.is_retryable_not_committed(fdb.FDBError(1020))
    assert p.is_maybe_committed(fdb.FDBError(1021)) and not p.is_retryable_not_committed(fdb.FDBError(1021))
    assert p.is_retryable(fdb.FDBError(1007))
    assert not p.is_retryable(fdb.FDBError(1031)) and not p.is_retryable(fdb.FDBError(2101))
    assert "conflict" in str(fdb.FDBError(1020))


def test_transactional_retries_injected_conflicts(db, cluster):
    calls = []

    @fdb.transactional
    def bump(tr):
        calls.append(1)
        tr.add(b"ctr", struct.pack("<q", 1))

    with fdb_double.faults(cluster, Fault.not_committed(count=2)):
        bump(db)
        assert [(f.seen, f.fired) for f in fdb_double.fault_stats(cluster)] == [(3, 2)]
    assert len(calls) == 3
    assert struct.unpack("<q", db[b"ctr"])[0] == 1


def test_retry_limit_stops_the_loop(db, cluster):
    db.options.set_transaction_retry_limit(2)
    try:
        with fdb_double.faults(cluster, Fault.not_committed(count=None)):
            with pytest.raises(fdb.FDBError) as e:
                db[b"k"] = b"v"
        assert code_of(e) == 1020
        assert db[b"k"] == None  # noqa: E711
    finally:
        db.options.set_transaction_retry_limit(-1)


@pytest.mark.parametrize("applied", [True, False])
def test_commit_unknown_result_both_variants(db, cluster, applied):
    log = fdb.Subspace(("log",))

    @fdb.transactional
    def append(tr):
        tr.set_versionstamped_key(log.pack_with_versionstamp((Versionstamp(),)), b"event")

    with fdb_double.faults(cluster, Fault.commit_unknown_result(applied=applied)):
        append(db)  # @transactional retries the 1021 blindly
    events = list(db.get_range_startswith(log.key()))
    assert len(events) == (2 if applied else 1)  # applied + retried = the classic duplicate


def test_commit_unknown_result_surfaces_to_caller(db, cluster):
    with fdb_double.faults(cluster, Fault.commit_unknown_result(applied=True)):
        tr = db.create_transaction()
        vs = tr.get_versionstamp()
        tr[b"k"] = b"v"
        with pytest.raises(fdb.FDBError) as e:
            tr.commit().wait()
        assert code_of(e) == 1021
        with pytest.raises(fdb.FDBError) as e2:
            vs.wait()
        assert code_of(e2) == 2020
    assert db[b"k"] == b"v"


def test_injected_read_faults_and_timeouts(db, cluster):
    db[b"k"] = b"v"
    with fdb_double.faults(cluster, Fault.too_old(on="read")):
        calls = []

        @fdb.transactional
        def read(tr):
            calls.append(1)
            return tr[b"k"].value

        assert read(db) == b"v" and len(calls) == 2
    with fdb_double.faults(cluster, Fault.timed_out(on="commit")):
        with pytest.raises(fdb.FDBError) as e:
            db[b"k"] = b"w"
        assert code_of(e) == 1031  # @transactional does not retry timeouts
    assert db[b"k"] == b"v"
    with fdb_double.faults(cluster, Fault(code=1020, key_prefix=b"only/")):
        db[b"elsewhere"] = b"x"  # untargeted key: no fault
        assert fdb_double.fault_stats(cluster)[0].fired == 0


def test_unreachable_cluster_hangs_until_it_comes_back(db, cluster):
    fdb_double.set_faults(cluster, Fault.unreachable_cluster())
    threading.Timer(0.3, fdb_double.clear_faults, args=(cluster,)).start()
    start = time.monotonic()
    db[b"k"] = b"v"  # no timeout: blocks like a dead cluster, then succeeds
    assert time.monotonic() - start >= 0.25
    assert db[b"k"] == b"v"


def test_probabilistic_faults_are_deterministic(tmp_path):
    def run(name):
        cf = fdb_double.make_cluster_file(tmp_path, name=name, backend="memory")
        database = fdb.open(cf)
        fdb_double.set_faults(cf, Fault(code=1020, count=None, probability=0.5), seed=42)
        outcome = []
        for i in range(20):
            tr = database.create_transaction()
            tr[b"k%d" % i] = b"v"
            try:
                tr.commit().wait()
                outcome.append(True)
            except fdb.FDBError:
                outcome.append(False)
        return outcome

    first, second = run("a.cluster"), run("b.cluster")
    assert first == second and 0 < first.count(False) < 20


# -- cross-process -----------------------------------------------------------------------------
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([REPO_ROOT, os.environ.get("PYTHONPATH", "")])}


def _writer(cluster_file, count, width):
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fdb_double.run", "tests.fdb_double.selftest_writer",
         cluster_file, str(count), str(width)],
        stdout=subprocess.PIPE, text=True, env=_env())


def _batches(cluster_file):
    space = fdb.directory.open(fdb.open(cluster_file), ("selftest",))
    batches: dict = {}
    for k, _v in fdb_double.dump(cluster_file, prefix=space.key()):
        t = space.unpack(k)
        if t[0] == "batch":
            batches.setdefault(t[1], set()).add(t[2])
    logs = [fdb.tuple.unpack(v)[0] for k, v in fdb_double.dump(cluster_file, prefix=space.pack(("log",)))]
    return space, batches, logs


def test_subprocess_commits_are_visible_and_faults_reach_it(sqlite_cluster):
    fdb_double.set_faults(sqlite_cluster, Fault.not_committed(count=1))
    proc = _writer(sqlite_cluster, 3, 5)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out.split() == ["0", "1", "2"]
    space, batches, logs = _batches(sqlite_cluster)
    assert batches == {i: set(range(5)) for i in range(3)}
    assert logs == [0, 1, 2]  # versionstamp order == commit order
    assert fdb_double.fault_stats(sqlite_cluster)[0].fired == 1  # fired inside the child
    db = fdb.open(sqlite_cluster)
    assert fdb.tuple.unpack(db[space.pack(("last",))]) == (2,)
    # the runner's MODULE:FUNC form (how `cli:cli` is run)
    entry = subprocess.run([sys.executable, "-m", "tests.fdb_double.run", "tests.fdb_double.selftest_writer:main",
                            sqlite_cluster, "1", "1"], capture_output=True, text=True, timeout=30, env=_env())
    assert entry.returncode == 0, entry.stderr
    assert fdb.tuple.unpack(db[space.pack(("last",))]) == (0,)


def test_sigkill_mid_run_leaves_store_consistent(sqlite_cluster):
    width = 40
    proc = _writer(sqlite_cluster, 100_000, width)
    acknowledged = []
    for line in proc.stdout:
        acknowledged.append(int(line))
        if len(acknowledged) >= 25:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    _space, batches, logs = _batches(sqlite_cluster)
    committed = sorted(batches)
    assert set(acknowledged) <= set(committed)            # acknowledged commits are durable
    assert committed == list(range(len(committed)))        # sequential writer: a prefix
    assert all(cols == set(range(width)) for cols in batches.values())  # no partial commit
    assert logs == committed                                # one log entry per commit
    # the store is still usable by others (no stale lock left behind)
    db = fdb.open(sqlite_cluster)
    db[b"after"] = b"ok"
    assert db[b"after"] == b"ok"


def test_unemulated_c_functions_fail_loudly():
    """A C function the double does not emulate raises instead of pretending to work."""
    import fdb.impl

    from tests.fdb_double.capi import NotEmulated

    with pytest.raises(NotEmulated, match="fdb_database_open_tenant is not emulated"):
        fdb.impl._capi.fdb_database_open_tenant(None, b"t", 1, None)
