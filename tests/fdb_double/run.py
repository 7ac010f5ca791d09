"""Run a program with the FoundationDB double installed (for subprocess tests).

Usage::

    python -m tests.fdb_double.run MODULE [ARGS...]          # runpy, as ``python -m MODULE``
    python -m tests.fdb_double.run PACKAGE.MODULE:FUNC [ARGS...]  # call a console entry, e.g. cli:cli

``sys.argv`` becomes ``[MODULE or FUNC, *ARGS]``.  The program finds the store through the
cluster file it is given (argument or ``$FDB_CLUSTER_FILE``); fault plans are read from the
store, so faults set by the parent apply here too.
"""

from __future__ import annotations

import importlib
import runpy
import sys

from .install import install


def main(argv: list) -> object:
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    install()
    target, args = argv[0], argv[1:]
    if ":" in target:
        module_name, _, attr = target.partition(":")
        func = getattr(importlib.import_module(module_name), attr)
        sys.argv = [attr, *args]
        return func()
    sys.argv = [target, *args]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
