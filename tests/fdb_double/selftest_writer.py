"""Subprocess workload used by tests/test_fdb_double.py (run via ``-m tests.fdb_double.run``).

argv: CLUSTER_FILE COUNT WIDTH.  Runs COUNT sequential transactions; transaction ``i``
writes WIDTH keys ("batch", i, j), one versionstamped log entry and ("last",) = i, then
prints ``i`` (flushed) once its commit has returned.
"""

import sys

import fdb


def main() -> None:
    cluster, count, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    fdb.api_version(730)
    db = fdb.open(cluster)

    @fdb.transactional
    def write(tr, i):
        space = fdb.directory.create_or_open(tr, ("selftest",))
        for j in range(width):
            tr[space.pack(("batch", i, j))] = b"x" * 100
        tr.set_versionstamped_key(space.pack_with_versionstamp(("log", fdb.tuple.Versionstamp())),
                                  fdb.tuple.pack((i,)))
        tr[space.pack(("last",))] = fdb.tuple.pack((i,))

    for i in range(count):
        write(db, i)
        print(i, flush=True)


if __name__ == "__main__":
    main()
