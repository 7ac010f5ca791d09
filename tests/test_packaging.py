"""Packaging: a non-editable install (``pipx install .``, ``uv tool install .``) carries
every file the packages read at run time, not only the Python modules."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

from tests.conftest import REPO_ROOT

PACKAGES = ("schemas", "ledger", "nervous_system", "replay", "syncer", "hub", "ingest", "cli", "ui")


def test_the_wheel_holds_every_tracked_package_file(tmp_path):
    """Build the wheel as pip does for a non-editable install; every file git tracks under
    a package (hook.sh, the UI's static files, SQL migrations, the .proto) is in it. Built
    from a copy of the tracked files, so no build/ directory of the checkout is reused or left."""
    tracked = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files"], capture_output=True,
                             text=True, check=True).stdout.split()
    src = tmp_path / "src"
    for path in tracked:
        if (REPO_ROOT / path).is_file():
            (src / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / path, src / path)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    [wheel] = (tmp_path / "dist").glob("context_ledger-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    tracked = [path for path in tracked if path.split("/", 1)[0] in PACKAGES]
    data = [path for path in tracked if not path.endswith(".py") and not path.endswith(".pyi")
            and "/__pycache__/" not in path]
    assert "nervous_system/hooks/hook.sh" in data  # the case that once went missing
    missing = [path for path in data if path not in inside]
    assert missing == []
