"""Start-up stays light: the SDK and `ledger --help` load none of the servers' client
libraries nor the analytics stack (pandas comes with chdb), and `ledger --version` loads
nothing of the ledger at all. Measured in a fresh interpreter each time."""

from __future__ import annotations

import json
import os
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


def test_a_replay_process_loads_no_pydantic_protobuf_or_secret_detectors(tmp_path):
    """Reading needs none of the write path: ``ledger replay`` decodes no event body with
    pydantic, builds no write pipeline (redaction detectors) and loads no settings library;
    it still writes the exact tree. A secret file (stored by hash only) is reported
    without decoding events either (``schemas.wire``)."""
    from nervous_system import Recorder

    rec = Recorder(tmp_path / "l.db", project_id="p", agent_id="a")
    rec.file_change("src/app.py", b"print('hi')\n")
    rec.file_change("run.sh", b"#!/bin/sh\n", mode="executable")
    rec.file_change(".env", b"API_TOKEN=not-a-real-one\n")  # withheld: hash only
    rec.close()
    out = tmp_path / "out"
    probe = ("import sys, json\nfrom cli import cli\n"
             f"try:\n    cli(['--db', {str(tmp_path / 'l.db')!r}, 'replay', '--at', 'now', '--out', {str(out)!r}])\n"
             "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('pydantic', 'pydantic_core', 'pydantic_settings', 'google', 'detect_secrets') "
             "or m in ('ledger.redaction', 'ledger.detectors', 'schemas.models'))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert (out / "src" / "app.py").read_bytes() == b"print('hi')\n" and os.access(out / "run.sh", os.X_OK)
    assert not (out / ".env").exists() and ".env" in done.stdout + done.stderr  # reported as not restored
