"""Blob storage: zstd full copies, skip-delta chains of a path's versions, old rows
readable, every read checked, tenancy and deletion rules kept (ledger.blobs)."""

from __future__ import annotations

import sqlite3
import zlib

import pytest

from ledger import BlobNotFound, Ledger, sha256_hex
from ledger import blobs as blobstore
from ledger.errors import StoreError
from nervous_system import Recorder


def version(i: int) -> bytes:
    """Version ``i`` of a ~20 KB source file: each version edits one line."""
    lines = [f"def function_{n}(x):\n    return x * {n} + {n % 7}\n".encode() for n in range(400)]
    for k in range(1, i + 1):
        lines[(k * 37) % 400] = f"def function_{(k * 37) % 400}(x):\n    return x - {k}\n".encode()
    return b"".join(lines)


def rows(path):
    with sqlite3.connect(path) as conn:
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT hash, encoding, base, chain_pos, length(data), size FROM blobs")}


@pytest.fixture
def forty_versions(ledger_path):
    with Ledger(ledger_path) as lg:
        rec = Recorder(lg, project_id="p", agent_id="a", tenant_id="A")
        for i in range(40):
            rec.file_change("src/app.py", version(i))
    return ledger_path


def test_versions_of_a_path_are_stored_as_bounded_skip_deltas(forty_versions):
    stored = rows(forty_versions)
    by_hash = {sha256_hex(version(i)): i for i in range(40)}
    assert len(stored) == 40
    for digest, (encoding, base, pos, length, size) in stored.items():
        i = by_hash[digest]
        assert pos == i % blobstore.CHAIN_LENGTH  # a new chain (full copy) every 16 versions
        if pos == 0:
            assert encoding == "zstd" and base is None
        else:  # against the version at pos with its lowest set bit cleared
            assert encoding == "zstd-delta"
            assert by_hash[base] == i - i % 16 + (pos & (pos - 1))
            assert length * 20 < size  # one edited line: a tiny delta
    full = sum(len(zlib.compress(version(i), 6)) for i in range(40))
    assert sum(r[3] for r in stored.values()) * 4 < full  # far smaller than compressed full copies


def test_every_version_reads_back_exactly_and_checked(forty_versions):
    blobstore._cache.items.clear()
    blobstore._cache.size = 0
    with Ledger(forty_versions) as lg:
        for i in reversed(range(40)):
            assert lg.get_blob(sha256_hex(version(i)), tenant_id="A") == version(i)


def test_a_damaged_delta_base_is_reported_not_returned(forty_versions):
    base = sha256_hex(version(16))  # a full copy: the base of versions 17, 18, 20, 24
    with sqlite3.connect(forty_versions) as conn:
        encoding, data = conn.execute("SELECT encoding, data FROM blobs WHERE hash = ?", (base,)).fetchone()
        assert encoding == "zstd"
        damaged = blobstore.codec.compress(version(16).replace(b"return x * 3", b"return x * 4"))
        conn.execute("UPDATE blobs SET data = ? WHERE hash = ?", (damaged, base))
    blobstore._cache.items.clear()
    blobstore._cache.size = 0
    with Ledger(forty_versions) as lg:
        with pytest.raises(StoreError, match=f"corrupt.*delta base {base}"):
            lg.get_blob(sha256_hex(version(23)))  # 23 -> 22 -> 20 -> 16
        with pytest.raises(StoreError, match="corrupt"):
            lg.get_blob(base)
        assert lg.get_blob(sha256_hex(version(15))) == version(15)  # the other chain is intact


def test_a_missing_or_looping_delta_base_is_reported_by_the_one_query_chain_read(forty_versions):
    """The chain is read in one recursive query (ledger.blobs._CHAIN_SQL): a base row that
    is gone, or a chain that points back at itself, is a StoreError naming the blob, never
    a wrong answer or an endless walk; the tenant check still covers the requested hash."""
    v23, v22, v20 = (sha256_hex(version(i)) for i in (23, 22, 20))  # 23 -> 22 -> 20 -> 16
    with sqlite3.connect(forty_versions) as conn:
        conn.execute("DELETE FROM blobs WHERE hash = ?", (v20,))
        conn.execute("UPDATE blobs SET base = hash WHERE hash = ?", (sha256_hex(version(25)),))
    blobstore._cache.items.clear()
    blobstore._cache.size = 0
    with Ledger(forty_versions) as lg:
        with pytest.raises(StoreError, match=f"blob {v23} is corrupt: its delta base {v20} is missing"):
            lg.get_blob(v23, tenant_id="A")
        with pytest.raises(StoreError, match="delta chain is broken"):
            lg.get_blob(sha256_hex(version(25)), tenant_id="A")
        with pytest.raises(BlobNotFound):
            lg.get_blob(v22, tenant_id="B")  # stored, but not B's content
        assert lg.get_blob(sha256_hex(version(15)), tenant_id="A") == version(15)


def test_rows_written_by_earlier_versions_stay_readable(ledger_path):
    old_zlib, old_raw = b"zlib content\n" * 50, b"tiny"
    with Ledger(ledger_path) as lg:
        with lg.write_transaction() as conn:
            for data, encoding, stored in ((old_zlib, "zlib", zlib.compress(old_zlib, 6)),
                                           (old_raw, "raw", old_raw)):
                conn.execute("INSERT INTO blobs (hash, size, encoding, data, stored_ns) VALUES (?, ?, ?, ?, 0)",
                             (sha256_hex(data), len(data), encoding, stored))
        assert lg.get_blob(sha256_hex(old_zlib)) == old_zlib
        assert lg.get_blob(sha256_hex(old_raw)) == old_raw
        # a new version of a path whose previous version is an old zlib row: a delta against it
        with lg.write_transaction() as conn:
            blobstore.put(conn, old_zlib + b"one more line\n", previous=sha256_hex(old_zlib))
    encoding, base, pos, _, _ = rows(ledger_path)[sha256_hex(old_zlib + b"one more line\n")]
    assert (encoding, base, pos) == ("zstd-delta", sha256_hex(old_zlib), 1)
    with Ledger(ledger_path) as lg:
        assert lg.get_blob(sha256_hex(old_zlib + b"one more line\n")) == old_zlib + b"one more line\n"


def test_a_delta_base_is_never_another_tenants_content_and_reads_check_the_requested_hash(ledger_path):
    with Ledger(ledger_path) as lg:
        Recorder(lg, project_id="p", agent_id="b", tenant_id="B").file_change("secret.py", version(1))
        a = Recorder(lg, project_id="p", agent_id="a", tenant_id="A")
        a.file_change("mine.py", version(0))
        a.file_change("mine.py", version(2))
        # A's change claiming B's content as its previous version: stored, but never against B's bytes
        from schemas import Operation, StateChange, SwarmEvent, new_event_id
        data = version(3)
        lg.append(SwarmEvent(event_id=new_event_id(), timestamp=1, tenant_id="A", project_id="q",
                             state_change=StateChange(target_resource="x.py", operation=Operation.MODIFY,
                                                      previous_state_hash=sha256_hex(version(1)),
                                                      new_state_hash=sha256_hex(data), file_mode="regular")),
                  {sha256_hex(data): data})
        stored = rows(ledger_path)
        assert stored[sha256_hex(version(2))][1] == sha256_hex(version(0))  # A's own chain
        assert stored[sha256_hex(version(3))][1] != sha256_hex(version(1))
        # B knows the hash of A's delta-encoded version: still absent for B
        with pytest.raises(BlobNotFound):
            lg.get_blob(sha256_hex(version(2)), tenant_id="B")
        assert lg.get_blob(sha256_hex(version(2)), tenant_id="A") == version(2)


def test_deleting_a_base_keeps_its_dependents_readable(forty_versions):
    base = sha256_hex(version(0))
    with Ledger(forty_versions) as lg:
        with lg.write_transaction() as conn:
            assert blobstore.delete(conn, base)
        blobstore._cache.items.clear()
        blobstore._cache.size = 0
        assert not lg.has_blob(base)
        for i in range(1, 40):
            assert lg.get_blob(sha256_hex(version(i))) == version(i)
    assert all(r[1] != base for r in rows(forty_versions).values())


def test_a_version_after_a_tiny_or_empty_one_is_a_full_copy(ledger_path):
    with Ledger(ledger_path) as lg:
        rec = Recorder(lg, project_id="p", agent_id="a", tenant_id="A")
        for data in (b"", b"tiny", version(1), b"x", version(2)):
            rec.file_change("f.py", data)
        for data in (b"", b"tiny", version(1), b"x", version(2)):
            assert lg.get_blob(sha256_hex(data)) == data
    stored = rows(ledger_path)
    assert stored[sha256_hex(version(1))][:2] == ("zstd", None)
    assert stored[sha256_hex(version(2))][:2] == ("zstd", None)


def test_an_import_whose_content_piles_up_still_stores_versions_as_deltas(tmp_path, ledger_path, monkeypatch):
    """git/git holds ~100 MB of new content per 1,000 commits: the import appends its
    whole commits early rather than storing their contents ahead as full copies."""
    from nervous_system.gitimport import import_git, writer
    from replay import replay_local, resolve_moment, verify
    from tests.git_fixtures import assert_same_tree
    from tests.git_history import fast_history

    commits = fast_history(tmp_path / "repo", 200, seed=2, files=20)

    def encodings(path):
        with sqlite3.connect(path) as conn:
            return dict(conn.execute("SELECT encoding, count(*) FROM blobs GROUP BY encoding").fetchall())

    with Ledger(tmp_path / "unlimited.db") as lg:
        import_git(lg, tmp_path / "repo", project_id="p")
    monkeypatch.setattr(writer, "SPILL_BLOB_BYTES", 20_000)  # more than any one commit's content
    with Ledger(ledger_path) as lg:
        summary = import_git(lg, tmp_path / "repo", project_id="p")
        assert summary.new_blobs == sum(encodings(ledger_path).values())
        assert encodings(ledger_path) == encodings(tmp_path / "unlimited.db")
        assert encodings(ledger_path)["zstd-delta"] > 5 * encodings(ledger_path)["zstd"]
        replay_local(lg, "default", "p", resolve_moment(lg, "default", "p", commits[-1]), tmp_path / "out")
    assert_same_tree(tmp_path / "out", verify.git_archive_to(tmp_path / "repo", commits[-1], tmp_path / "git"))


def test_a_widened_cache_gives_its_memory_back():
    """``widen_cache`` (a bulk import's delta bases stay decoded): the largest limit asked
    for by the writers still running applies, and the last one to finish trims the cache
    back to ``CACHE_BYTES``."""
    cache = blobstore._Cache(1000)
    restore_big = cache.widen(5000)
    restore_small = cache.widen(3000)
    assert cache.limit == 5000
    for n in range(40):  # 4,000 bytes: over the base limit, within the widened one
        cache.put(f"{n:064x}", bytes([n]) * 100)
    assert cache.size == 4000
    restore_big()
    assert cache.limit == 3000 and cache.size == 3000  # oldest dropped first
    assert cache.get(f"{0:064x}") is None and cache.get(f"{39:064x}") == bytes([39]) * 100
    restore_small()
    restore_small()  # twice is harmless
    assert cache.limit == 1000 and cache.size == 1000
    first, second = cache.widen(4000), cache.widen(4000)  # two writers asking for the same
    first()
    first()  # a second call gives back nothing more: the other writer keeps its limit
    assert cache.limit == 4000
    second()
    assert cache.limit == 1000
