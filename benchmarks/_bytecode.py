"""Compile the project's modules to bytecode before timing start-up, as ``pip install``
does for a regular install: a process started with ``PYTHONDONTWRITEBYTECODE=1`` (set on
some machines, CI among them) otherwise recompiles every module of an editable checkout
on every start, which no installed user pays."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cli", "ledger", "replay", "schemas", "nervous_system", "syncer", "ingest", "hub")


def compile_project(python: str = sys.executable) -> None:
    """``python -m compileall -q`` over the project's packages (writes ``__pycache__``)."""
    subprocess.run([python, "-m", "compileall", "-q", *(str(ROOT / p) for p in PACKAGES)],
                   check=True, stdout=subprocess.DEVNULL)
