"""Install the pinned OpenTelemetry JS SDK test client (`npm ci` on package-lock.json)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAMP = HERE / "node_modules" / ".lock-stamp"


def ensure_installed() -> None:
    """Run `npm ci` unless node_modules matches the lock. Raises RuntimeError when
    node/npm are missing or npm fails."""
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            raise RuntimeError(f"the OpenTelemetry JS test client needs {tool}")
    want = hashlib.sha256((HERE / "package-lock.json").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    p = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=HERE, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise RuntimeError(f"npm ci failed in {HERE}: {p.stdout[-2000:]}{p.stderr[-2000:]}")
    STAMP.write_text(want)


if __name__ == "__main__":
    ensure_installed()
