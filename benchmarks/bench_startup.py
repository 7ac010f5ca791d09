"""Start-up and install size, as ratios against baselines measured in the same run.

Rows (issue "light and instant"):

* ``ledger --version`` (the console script, a fresh process) vs a bare ``python -c pass`` of the
  same interpreter and virtual environment
  (target <= 4x);
* ``ledger --help`` and ``python -c "import nervous_system"`` vs the same baseline;
* the base install: a fresh virtual environment with ``pip install .`` (no extras), its
  size on disk in MB (target <= 100 MB), next to an empty venv.

Each timing is the median of ``--runs`` runs (wall time of the whole process).

    .venv/bin/python benchmarks/bench_startup.py            # timings + install size
    .venv/bin/python benchmarks/bench_startup.py --no-install
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._bytecode import compile_project  # noqa: E402


def wall(cmd: list[str], runs: int, env: dict | None = None) -> float:
    """Median wall time (seconds) of running ``cmd`` to completion ``runs`` times."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def du_mb(path: Path) -> float:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.lstat(p).st_size
    return total / 1e6


def install_size(python: str) -> tuple[float, float]:
    """(MB of an empty venv, MB of a venv after `pip install .` of this project)."""
    with tempfile.TemporaryDirectory() as tmp:
        empty, base = Path(tmp) / "empty", Path(tmp) / "base"
        for venv in (empty, base):
            subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(base / "bin" / "pip"), "install", "-q", str(ROOT)], check=True,
                       stdout=subprocess.DEVNULL)
        return du_mb(empty), du_mb(base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--no-install", action="store_true", help="skip the (slow) base install row")
    args = ap.parse_args()
    compile_project()  # as an installed copy has (see benchmarks/_bytecode.py)
    ledger = shutil.which("ledger", path=str(Path(sys.executable).parent)) or "ledger"
    # the baseline is the interpreter `ledger` runs on, in the same environment: `python3` on
    # PATH may be a wrapper (a pyenv shim is a bash script costing ~100 ms) or load another
    # site-packages, either of which would flatter or distort every ratio
    python3 = sys.executable
    env = {**os.environ, "LEDGER_DATA_DIR": tempfile.mkdtemp(prefix="bench-startup-")}

    base = wall([python3, "-c", "pass"], args.runs)
    rows = [
        ("ledger --version", wall([ledger, "--version"], args.runs, env), 4.0),
        ("ledger --help", wall([ledger, "--help"], args.runs, env), None),
        ("python -c 'import nervous_system'", wall([sys.executable, "-c", "import nervous_system"],
                                                   args.runs, env), None),
    ]
    print(f"baseline: python -c pass (same venv)      {base * 1000:8.1f} ms  (median of {args.runs})")
    for name, seconds, target in rows:
        goal = f"  (target <= {target:.0f}x)" if target else ""
        print(f"{name:<42} {seconds * 1000:8.1f} ms  {seconds / base:6.2f}x{goal}")
    if not args.no_install:
        empty, full = install_size(python3)
        print(f"base install (fresh venv + pip install .): {full:8.1f} MB  "
              f"(empty venv {empty:.1f} MB; target <= 100 MB)")


if __name__ == "__main__":
    main()
