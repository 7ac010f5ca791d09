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


# -- simulated link: the 5-second limit under a slow network ---------------------------------------
from tests.fdb_double import Link, TransactionSizeCapExceeded  # noqa: E402
from tests.hub_fixtures import requires_double  # noqa: E402

MB_PER_S = Link.bandwidth(1_000_000)  # 1e-6 s per byte both ways


@pytest.fixture
def mem_cluster(tmp_path):
    return fdb_double.make_cluster_file(tmp_path / "mem", backend="memory")


@pytest.fixture
def mem_db(mem_cluster):
    return fdb.open(mem_cluster)


def _fill(db, prefix: bytes, count: int, size: int) -> None:
    @fdb.transactional
    def fill(tr, first):
        for i in range(first, min(count, first + 8)):
            tr[prefix + b"%04d" % i] = b"x" * size

    for first in range(0, count, 8):
        fill(db, first)


def test_slow_link_read_ages_the_transaction_to_1007_and_on_error_retries(db, cluster):
    _fill(db, b"big/", 60, 100_000)  # 6 MB: 6 simulated seconds to read at 1 MB/s
    fdb_double.set_link(cluster, MB_PER_S)
    attempts = []

    @fdb.transactional
    def read_all(tr, speed_up_on=None):
        attempts.append(1)
        tr.options.set_retry_limit(2)
        if len(attempts) == speed_up_on:
            fdb_double.set_link(cluster, Link.bandwidth(10_000_000))
        return sum(len(kv.value) for kv in tr.get_range(b"big/", b"big0"))

    start = time.monotonic()
    with pytest.raises(fdb.FDBError) as e:
        read_all(db)
    assert code_of(e) == 1007 and len(attempts) == 3  # retried by on_error until the retry limit
    assert time.monotonic() - start < 3  # simulated time: nothing slept
    attempts.clear()
    assert read_all(db, speed_up_on=2) == 6_000_000 and len(attempts) == 2  # 0.6 s at 10 MB/s


def test_slow_link_big_commit_gets_1007_small_transaction_commits(db, cluster):
    db[b"r"] = b"z" * 100_000
    fdb_double.set_link(cluster, MB_PER_S)
    attempts = []

    @fdb.transactional
    def write(tr, count):
        attempts.append(1)
        tr.options.set_retry_limit(1)
        assert len(tr[b"r"]) == 100_000
        for i in range(count):
            tr[b"w/%03d" % i] = b"y" * 100_000

    with pytest.raises(fdb.FDBError) as e:
        write(db, 60)  # 0.1 s read + 6 MB upload: the read version is 6.1 s old at the resolver
    assert code_of(e) == 1007 and fdb.predicates.is_retryable(e.value) and len(attempts) == 2
    assert fdb_double.dump(cluster, b"w/") == []
    attempts.clear()
    write(db, 4)  # 100 KB down + 400 KB up: half a second
    assert len(fdb_double.dump(cluster, b"w/")) == 4 and len(attempts) == 1


def test_request_latencies_age_the_transaction(db, cluster):
    fdb_double.set_link(cluster, Link(read_latency_s=2.0))
    tr = db.create_transaction()
    for key in (b"a", b"b", b"c"):
        tr[key].wait()  # issued at ages 0, 2 and 4 s
    tr[b"mine"] = b"v"
    assert tr[b"mine"] == b"v"  # answered from the transaction's own writes: no round trip
    with pytest.raises(fdb.FDBError) as e:
        tr[b"d"].wait()  # issued at 6 s
    assert code_of(e) == 1007
    tr.on_error(e.value).wait()
    tr[b"d"].wait()  # new attempt, new read version, simulated time back to 0

    fdb_double.set_link(cluster, Link(commit_latency_s=5.5))
    tr = db.create_transaction()
    tr[b"k"] = b"v"
    with pytest.raises(fdb.FDBError) as e:
        tr.commit().wait()
    assert code_of(e) == 1007
    fdb_double.set_link(cluster, Link(commit_latency_s=4.5))
    tr = db.create_transaction()
    tr[b"k"] = b"v"
    tr.commit().wait()
    assert db[b"k"] == b"v"


def test_simulated_time_counts_toward_the_timeout_option(db, cluster):
    fdb_double.set_link(cluster, Link(read_latency_s=0.3))
    tr = db.create_transaction()
    tr.options.set_timeout(500)
    tr[b"a"].wait()
    tr[b"b"].wait()  # issued at 0.3 s
    with pytest.raises(fdb.FDBError) as e:
        tr[b"c"].wait()  # issued at 0.6 s: past the 500 ms timeout
    assert code_of(e) == 1031


def test_real_sleep_knob_sleeps_instead_of_simulating(db, cluster):
    fdb_double.set_link(cluster, Link(read_latency_s=0.2, real_sleep=True))
    tr = db.create_transaction()
    start = time.monotonic()
    tr[b"a"].wait()
    assert time.monotonic() - start >= 0.19
    fdb_double.set_link(cluster, None)
    assert fdb_double.get_link(cluster) == Link()
    start = time.monotonic()
    db.create_transaction()[b"a"].wait()
    assert time.monotonic() - start < 0.15


def test_simulated_link_context_manager_restores(cluster):
    with fdb_double.simulated_link(cluster, MB_PER_S):
        assert fdb_double.get_link(cluster) == MB_PER_S
    assert fdb_double.get_link(cluster) == Link()


# -- next_write_no_write_conflict_range and versionstamped keys' conflict ranges ---------------------
def _conflicts_with_reader_of_hot(db, writer) -> bool:
    """t1 reads b"hot" and writes elsewhere; t2 = writer(tr) commits first; does t1 get 1020?"""
    db[b"hot"] = b"0"
    t1 = db.create_transaction()
    t1[b"hot"].wait()
    t1[b"other"] = b"t1"
    t2 = db.create_transaction()
    writer(t2)
    t2.commit().wait()
    try:
        t1.commit().wait()
        return False
    except fdb.FDBError as e:
        assert e.code == 1020
        return True


HOT_WRITES = {
    "set": lambda tr: tr.set(b"hot", b"x"),
    "clear": lambda tr: tr.clear(b"hot"),
    "clear_range": lambda tr: tr.clear_range(b"hot", b"hou"),
    "atomic": lambda tr: tr.add(b"hot", struct.pack("<q", 1)),
    "versionstamped_value": lambda tr: tr.set_versionstamped_value(
        b"hot", fdb.tuple.pack_with_versionstamp((Versionstamp(),))),
}


@pytest.mark.parametrize("write", sorted(HOT_WRITES))
def test_next_write_no_write_conflict_range_suppresses_that_write(db, write):
    assert _conflicts_with_reader_of_hot(db, HOT_WRITES[write])

    def suppressed(tr):
        tr.options.set_next_write_no_write_conflict_range()
        HOT_WRITES[write](tr)

    assert not _conflicts_with_reader_of_hot(db, suppressed)


def test_next_write_option_is_consumed_by_the_next_write_of_any_kind(db):
    log = fdb.Subspace(("log",))

    def versionstamped_key_then_hot(tr):
        tr.options.set_next_write_no_write_conflict_range()
        tr.set_versionstamped_key(log.pack_with_versionstamp((Versionstamp(),)), b"e")  # consumes it
        tr[b"hot"] = b"t2"  # an ordinary write again

    assert _conflicts_with_reader_of_hot(db, versionstamped_key_then_hot)

    def noop_clear_then_hot(tr):
        tr.options.set_next_write_no_write_conflict_range()
        tr.clear(b"k" * 10_001)  # no such key can exist: a no-op, but it still consumes the option
        tr[b"hot"] = b"t2"

    assert _conflicts_with_reader_of_hot(db, noop_clear_then_hot)


def test_versionstamped_key_conflicts_only_on_its_final_key(db):
    log = fdb.Subspace(("log",))
    far_future = log.pack((Versionstamp(b"\xfe" + b"\x00" * 9),))  # where no stamp of today lands
    for reader, conflicts in (((far_future, log.range().stop), False), ((log.range().start, log.range().stop), True)):
        t1 = db.create_transaction()
        list(t1.get_range(*reader))
        t1[b"other"] = b"t1"
        t2 = db.create_transaction()
        t2.options.set_next_write_no_write_conflict_range()  # cannot remove the proxy's conflict range
        t2.set_versionstamped_key(log.pack_with_versionstamp((Versionstamp(),)), b"e")
        t2.commit().wait()
        if conflicts:
            with pytest.raises(fdb.FDBError) as e:
                t1.commit().wait()
            assert code_of(e) == 1020
        else:
            t1.commit().wait()


# -- size accounting: 2101, commit_size, get_approximate_size -----------------------------------------
def _ranges_of(total: int, tag: bytes) -> list:
    """Disjoint, non-adjacent conflict ranges whose FDB size (32 + begin + end each) sums to ``total``."""
    out, i = [], 0
    while total:
        cost = min(total, 20_000)
        if 0 < total - cost < 40:  # keep the last range big enough to exist
            cost -= 40
        key_len = (cost - 32 - 1) // 2
        begin = tag + b"%04d" % i
        begin += b"a" * (key_len - len(begin))
        end = begin + b"\x00" * (cost - 32 - 2 * key_len)
        assert 32 + len(begin) + len(end) == cost and begin < end
        out.append((begin, end))
        total, i = total - cost, i + 1
    return out


@pytest.mark.parametrize("kind", ["read", "write"])
def test_2101_counts_conflict_ranges_with_fdb_overheads(mem_db, mem_cluster, kind):
    value = b"v" * 99_000
    mutations = 100 * (56 + len(b"big000") + len(value))  # sizeof(MutationRef) + key + value: 9,906,200

    def attempt(conflict_bytes):
        tr = mem_db.create_transaction()
        for i in range(100):
            tr.options.set_next_write_no_write_conflict_range()  # only the ranges below count
            tr[b"big%03d" % i] = value
        for b, e in _ranges_of(conflict_bytes, b"rc"):
            (tr.add_read_conflict_range if kind == "read" else tr.add_write_conflict_range)(b, e)
        tr.commit().wait()

    with pytest.raises(fdb.FDBError) as e:
        attempt(10_000_000 - mutations + 1)  # one byte over
    assert code_of(e) == 2101
    assert mem_db[b"big000"] == None  # noqa: E711
    attempt(0)  # the same mutations alone fit
    attempt(10_000_000 - mutations)  # exactly at the limit: fits (the check is "greater than")
    stats = fdb_double.transaction_stats(mem_cluster)
    assert stats.max_attempted_bytes == 10_000_001 and stats.max_committed_bytes == 10_000_000
    assert stats.commits == 2 and stats.attempts == 3


def test_size_limit_option_uses_the_same_count(db):
    tr = db.create_transaction()
    tr.options.set_size_limit(1_000)
    tr[b"k"] = b"x" * 900  # 56 + 1 + 900 + write conflict range 32 + 1 + 2 = 992
    tr.commit().wait()
    tr = db.create_transaction()
    tr.options.set_size_limit(1_000)
    tr[b"k"] = b"x" * 909  # 1,001
    with pytest.raises(fdb.FDBError) as e:
        tr.commit().wait()
    assert code_of(e) == 2101


def test_commit_size_and_approximate_size_follow_fdb(db, cluster):
    log = fdb.Subspace(("log",))
    db[b"r1"] = b"abc"
    fdb_double.reset_transaction_stats(cluster)
    tr = db.create_transaction()
    vs_key = log.pack_with_versionstamp((Versionstamp(),))
    approx, size = 0, 0
    for _ in range(2):  # the same read twice: the estimate counts it twice, the commit once
        tr[b"r1"].wait()
        approx += 32 + 2 * 2 + 1
    size += 32 + 2 * 2 + 1
    tr[b"k1"] = b"v" * 10
    approx += 56 + 2 + 10 + 32 + 2 * 2 + 1
    size += 56 + 2 + 10 + 32 + 2 * 2 + 1
    tr.add(b"k3", struct.pack("<q", 1))
    approx += 56 + 2 + 8 + 32 + 5
    size += 56 + 2 + 8 + 32 + 5
    tr.clear(b"k4")  # a single-key clear: RYW counts sizeof(KeyRangeRef) for it; the mutation is a ClearRange
    approx += (2 * 2 + 1) + 32 + 32 + 5
    size += 56 + 2 * 2 + 1 + 32 + 5
    tr.clear_range(b"x", b"y")
    approx += 56 + 2 + 32 + 2
    size += 56 + 2 + 32 + 2
    tr.set_versionstamped_key(vs_key, b"e")  # no client-side write conflict range
    approx += 56 + len(vs_key) + 1
    size += 56 + len(vs_key) + 1
    tr.options.set_next_write_no_write_conflict_range()
    tr[b"quiet"] = b"q"
    approx += 56 + 5 + 1
    size += 56 + 5 + 1
    tr.add_write_conflict_range(b"w", b"wz")
    approx += 32 + 1 + 2
    size += 32 + 1 + 2
    assert tr.get_approximate_size().wait() == approx
    tr.commit().wait()
    stats = fdb_double.transaction_stats(cluster)
    assert (stats.commits, stats.attempts, stats.max_committed_bytes, stats.max_attempted_bytes) == (1, 1, size, size)


def test_adjacent_conflict_ranges_are_coalesced_in_the_commit_size(db, cluster):
    fdb_double.reset_transaction_stats(cluster)
    tr = db.create_transaction()
    tr.options.set_next_write_no_write_conflict_range()
    tr[b"k"] = b"v"
    tr.add_read_conflict_range(b"a", b"c")
    tr.add_read_conflict_range(b"b", b"d")  # overlaps: one range [a, d) is sent
    tr.add_read_conflict_range(b"d", b"e")  # adjacent: still one range [a, e)
    tr.commit().wait()
    assert fdb_double.transaction_stats(cluster).max_committed_bytes == (56 + 1 + 1) + (32 + 1 + 1)


# -- observer and cap -----------------------------------------------------------------------------------
def test_size_cap_fails_loudly_is_not_retried_and_is_counted(db, cluster):
    fdb_double.set_size_cap(cluster, 1_000)
    calls = []

    @fdb.transactional
    def write(tr, n):
        calls.append(1)
        tr[b"c"] = b"x" * n

    write(db, 500)  # 56 + 1 + 500 + 35 = 592
    with pytest.raises(TransactionSizeCapExceeded, match=r"1,092 bytes .*size cap of 1,000 bytes") as e:
        write(db, 1_000)  # 1,092
    assert (e.value.size, e.value.cap, e.value.breakdown.write_conflicts) == (1_092, 1_000, 35)
    assert len(calls) == 2 and db[b"c"] == b"x" * 500
    stats = fdb_double.transaction_stats(cluster)
    assert (stats.attempts, stats.commits, stats.max_attempted_bytes, stats.max_committed_bytes,
            stats.over_cap) == (2, 1, 1_092, 592, 1)
    fdb_double.reset_transaction_stats(cluster)
    assert fdb_double.transaction_stats(cluster) == fdb_double.TransactionStats()
    fdb_double.set_size_cap(cluster, None)
    write(db, 1_000)
    assert fdb_double.transaction_stats(cluster).max_committed_bytes == 1_092


def test_observer_counts_failed_attempts(db, cluster):
    fdb_double.reset_transaction_stats(cluster)
    with fdb_double.faults(cluster, Fault.not_committed(count=2)):
        db[b"k"] = b"v"  # two injected 1020s, then applied
    stats = fdb_double.transaction_stats(cluster)
    assert (stats.attempts, stats.commits) == (3, 1)
    assert stats.max_attempted_bytes == stats.max_committed_bytes == 56 + 1 + 1 + 32 + 3


def test_observer_and_cap_reach_subprocesses(sqlite_cluster):
    proc = _writer(sqlite_cluster, 3, 5)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out.split() == ["0", "1", "2"]
    stats = fdb_double.transaction_stats(sqlite_cluster)
    assert stats.commits == stats.attempts == 3 and stats.max_committed_bytes > 5 * (56 + 100)
    fdb_double.set_size_cap(sqlite_cluster, 200)
    child = subprocess.run([sys.executable, "-m", "tests.fdb_double.run", "tests.fdb_double.selftest_writer",
                            sqlite_cluster, "1", "5"], capture_output=True, text=True, timeout=30, env=_env())
    assert child.returncode != 0 and "TransactionSizeCapExceeded" in child.stderr
    assert "exceeds the test's size cap of 200 bytes" in child.stderr
    assert fdb_double.transaction_stats(sqlite_cluster).over_cap == 1


@requires_double
def test_hub_fixture_knobs(fdb_knobs, cluster_file):
    db = fdb.open(cluster_file)
    fdb_knobs.reset_stats()
    db[b"a"] = b"b"
    fdb_knobs.assert_max_transaction_bytes(100)
    with pytest.raises(AssertionError, match="was attempted"):
        fdb_knobs.assert_max_transaction_bytes(50)
    fdb_knobs.set_link(bytes_per_second=1_000)  # 1 KB/s
    tr = db.create_transaction()
    tr[b"x"] = b"y" * 6_000  # six seconds of upload
    with pytest.raises(fdb.FDBError) as e:
        tr.commit().wait()
    assert code_of(e) == 1007
    fdb_knobs.clear_link()
    fdb_knobs.set_size_cap(1_000)
    with pytest.raises(TransactionSizeCapExceeded):
        db[b"x"] = b"y" * 6_000
    assert fdb_knobs.stats().over_cap == 1
