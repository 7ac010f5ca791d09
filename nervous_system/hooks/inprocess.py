"""The hook client's fallback when no collector answers: record in this process.

``python -I -m nervous_system.hooks.inprocess META_JSON < payload``. Same code as the
collector (``HookProcessor``), but cold: no snapshot in memory, so the work tree is
compared with the ledger's own state (every file is hashed). Exit status 0 when the
events are committed, 1 (with the error on stderr) otherwise.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    meta_d = json.loads(argv[0])
    payload = json.loads(sys.stdin.buffer.read() or b"{}")
    from ledger import Ledger
    from nervous_system.hooks.processor import HookMeta, HookProcessor

    ledger = Ledger(meta_d["db"])
    try:
        proc = HookProcessor(ledger)
        proc.handle(meta_d["agent"], payload, HookMeta.from_dict(meta_d))
    finally:
        ledger.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # noqa: BLE001 - the client records the failure
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
