"""Start-up stays light: the SDK and `ledger --help` load none of the servers' client
libraries nor the analytics stack (pandas comes with chdb), and `ledger --version` loads
nothing of the ledger at all. Measured in a fresh interpreter each time."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pandas", "pyarrow", "chdb", "clickhouse_connect", "fdb", "grpc", "numpy")


def loaded(code: str) -> list[str]:
    probe = (f"{code}\nimport sys, json\n"
             f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}"
             " or m in ('pydantic', 'sqlite_utils', 'opentelemetry.sdk', 'ledger.store'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_sdk_loads_no_heavy_dependency():
    mods = loaded("import nervous_system\nfrom nervous_system import Recorder, configure, InvalidRecord")
    assert not [m for m in mods if m.split(".")[0] in HEAVY], mods
    assert "sqlite_utils" not in mods  # only needed when a migration runs


def test_recording_an_event_loads_no_heavy_dependency(tmp_path):
    from ledger import Ledger

    Ledger(tmp_path / "l.db").close()  # created and migrated (the migrations use sqlite_utils)
    mods = loaded(f"from nervous_system import Recorder\n"
                  f"Recorder({str(tmp_path / 'l.db')!r}, project_id='p', agent_id='a').decision('x')")
    assert not [m for m in mods if m.split(".")[0] in HEAVY] and "sqlite_utils" not in mods, mods


def test_ledger_help_and_version_are_light():
    help_mods = loaded("from cli import cli\ntry:\n    cli(['--help'])\nexcept SystemExit:\n    pass")
    assert not [m for m in help_mods if m.split(".")[0] in HEAVY], help_mods
    assert "ledger.store" not in help_mods and "pydantic" not in help_mods
    version_mods = loaded("from cli import cli\ntry:\n    cli(['--version'])\nexcept SystemExit:\n    pass")
    assert version_mods == [], version_mods


def test_the_probe_would_see_a_heavy_import():
    assert "pandas" in loaded("import sqlite_utils")  # chdb installs pandas; sqlite_utils imports it


def test_the_secret_detector_is_imported_only_when_a_text_needs_a_scan(tmp_path):
    """Redaction is on by default, but detect-secrets (and the requests library it pulls
    in) loads only when the prefilter says a text may hold a secret."""
    from ledger import Ledger

    Ledger(tmp_path / "l.db").close()
    probe = ("import sys, json\nfrom nervous_system import Recorder\n"
             f"rec = Recorder({str(tmp_path / 'l.db')!r}, project_id='p', agent_id='a')\n"
             "rec.decision('refactor the parser', input_trigger='tests fail')\n"
             "rec.message('12 files changed, 3 insertions')\n"
             "before = sorted(m for m in sys.modules if m.split('.')[0] in ('detect_secrets', 'requests'))\n"
             "rec.message('export API_TOKEN=' + 'x1' * 12)\n"
             "after = sorted(m for m in sys.modules if m.split('.')[0] == 'detect_secrets')\n"
             "print(json.dumps([before, bool(after)]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    before, after = json.loads(out.stdout.strip().splitlines()[-1])
    assert before == [] and after is True
