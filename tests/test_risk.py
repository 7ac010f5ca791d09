"""Risk tags of file changes (ledger.risk): each tag kind with its reason, the
configuration (ledger.toml, LEDGER_RISK_*), content from blobs or the diff, and no tag on
harmless changes."""

from __future__ import annotations

import json
import time

import pytest

from ledger import Ledger, sha256_hex
from ledger.config import load_settings
from ledger.errors import ConfigError
from ledger.risk import TAGS, RiskRules
from nervous_system import Recorder
from schemas import SwarmEvent, new_event_id


@pytest.fixture
def rec(ledger_path):
    with Recorder(ledger_path, project_id="web", agent_id="coder", tenant_id="acme", link_spans=False) as r:
        yield r


def tags_of(rec: Recorder, event_id: str, rules: RiskRules | None = None) -> list[tuple[str, str]]:
    event = rec.ledger.get(event_id).event
    read = lambda d: rec.ledger.get_blob(d, tenant_id="acme")  # noqa: E731
    return [(t.tag, t.reason) for t in (rules or RiskRules()).tags(event, read)]


def only(tags) -> list[str]:
    return [t for t, _ in tags]


# ------------------------------------------------------------------ each tag kind
def test_protected_path_default_and_its_reason(rec):
    tags = tags_of(rec, rec.file_change("deploy/prod.pem", b"-----BEGIN CERTIFICATE-----\n"))
    assert tags == [("protected-path", "deploy/prod.pem matches protected path pattern '*.pem'")]
    assert only(tags_of(rec, rec.file_change("CODEOWNERS", b"* @team\n"))) == ["protected-path"]


def test_delete_is_tagged(rec):
    rec.file_change("notes.txt", b"x\n")
    assert tags_of(rec, rec.file_change("notes.txt", None)) == [("delete", "deletes notes.txt")]


def test_executable_bit_set_cleared_and_new_executable(rec):
    rec.file_change("tool", b"echo hi\n")
    set_bit = tags_of(rec, rec.file_change("tool", b"echo hi\n", mode="executable"))
    assert set_bit == [("executable", "sets the executable bit of tool (regular -> executable)")]
    cleared = tags_of(rec, rec.file_change("tool", b"echo hi\n", mode="regular"))
    assert cleared == [("executable", "clears the executable bit of tool (executable -> regular)")]
    created = tags_of(rec, rec.file_change("bin/run", b"echo run\n", mode="executable"))
    assert created == [("executable", "creates bin/run as an executable file")]


@pytest.mark.parametrize("path", [
    ".github/workflows/ci.yml", ".gitlab-ci.yml", "Jenkinsfile", ".circleci/config.yml",
    "azure-pipelines.yml", ".github/actions/setup/action.yml"])
def test_ci_files(rec, path):
    tags = tags_of(rec, rec.file_change(path, b"steps: []\n"))
    assert only(tags) == ["ci"] and "CI pipeline file" in tags[0][1] and path in tags[0][1]


@pytest.mark.parametrize("path", [
    "Dockerfile", "services/api/Dockerfile", "infra/main.tf", "infra/prod.tfvars",
    "docker-compose.yml", "k8s/deploy.yaml", "charts/app/Chart.yaml"])
def test_infrastructure_files_by_path(rec, path):
    tags = tags_of(rec, rec.file_change(path, b"x = 1\n"))
    assert only(tags) == ["infrastructure"] and "infrastructure file" in tags[0][1]


def test_kubernetes_manifest_found_by_content_anywhere(rec):
    manifest = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
    tags = tags_of(rec, rec.file_change("deploy/web.yaml", manifest))
    assert tags == [("infrastructure", "deploy/web.yaml is a Kubernetes manifest (top-level apiVersion and kind)")]


@pytest.mark.parametrize("line, name", [
    ("result = eval(user_input)", "eval"),
    ("exec(code, {})", "exec"),
    ("subprocess.run(cmd, shell=True)", "shell=True"),
    ("os.system('rm -rf ' + path)", "os.system"),
    ("const { exec } = require('child_process')", "child_process"),
    ("const f = new Function('a', body)", "new Function"),
    ("data = pickle.loads(blob)", "pickle.loads"),
    ("mod = __import__(name)", "__import__"),
])
def test_dangerous_code_added_lines(rec, line, name):
    rec.file_change("src/app.py", b"import os\n\ndef main():\n    pass\n")
    new = f"import os\n\ndef main():\n    {line}\n".encode()
    tags = tags_of(rec, rec.file_change("src/app.py", new))
    assert tags == [("dangerous-code", f"src/app.py line 4 adds {name}: {line}")]


def test_shell_eval_in_a_script(rec):
    tags = tags_of(rec, rec.file_change("scripts/deploy.sh", b"#!/bin/sh\nset -e\neval \"$CMD\"\n"))
    assert only(tags) == ["dangerous-code"] and "line 3 adds shell eval" in tags[0][1]


def test_several_tags_on_one_change_in_fixed_order(rec):
    rec.file_change("ci.py", b"print(1)\n")
    event_id = rec.file_change("ci.py", b"print(1)\neval(x)\n", mode="executable")
    assert only(tags_of(rec, event_id, RiskRules(protected_paths=("ci.py",)))) == [
        "protected-path", "executable", "dangerous-code"]
    assert TAGS.index("protected-path") < TAGS.index("executable") < TAGS.index("dangerous-code")


# ------------------------------------------------------------------ no false tags
def test_harmless_changes_get_no_tag(rec):
    harmless = [
        ("README.md", b"Use eval() with care; never exec(user input).\n", None),  # not code
        ("src/model.py", b"model.eval()\nvalue = ast.literal_eval(text)\n", None),  # methods, literal_eval
        ("web/match.js", b"const m = /a+/.exec(s);\n", None),  # RegExp.prototype.exec
        ("src/util.py", b"# never call eval(x) here\n// exec(y)\nx = 1\n", None),  # comments
        ("src/proc.py", b"def system(args):\n    return proc.popen(args)\n", None),  # a definition, a method
        ("config/app.yaml", b"kind: settings\nname: web\n", None),  # YAML, not a manifest
        ("docs/Dockerfile.md", b"How we build the image\n", None),
        ("src/app.py", b"def main():\n    return 1\n", None),
        ("src/app.py", b"def main():\n    return 2\n", None),  # modify, same mode
        ("src/tool.sh", b"echo ok\n", "regular"),
    ]
    for path, content, mode in harmless:
        assert tags_of(rec, rec.file_change(path, content, mode=mode)) == [], path
    renamed = rec.file_change("src/app2.py", None, previous_path="src/app.py")
    assert tags_of(rec, renamed) == []
    # a dangerous line that was already there is not *added* by a later edit
    rec.file_change("src/legacy.py", b"eval(x)\ny = 1\n")
    assert tags_of(rec, rec.file_change("src/legacy.py", b"eval(x)\ny = 2\n")) == []


def test_other_payloads_and_non_file_targets_get_no_tag(rec):
    assert tags_of(rec, rec.decision("eval( everything )")) == []
    assert tags_of(rec, rec.message("rm -rf / with shell=True")) == []
    env = SwarmEvent(event_id=new_event_id(), timestamp=time.time_ns(), tenant_id="acme", project_id="web",
                     state_change={"target_type": "env_var", "target_resource": "PATH", "operation": "delete"})
    assert RiskRules().tags(env) == []


# ------------------------------------------------------------------ content sources
def _change(path: str, new: bytes, *, old: bytes | None = None, patch: str = "") -> SwarmEvent:
    return SwarmEvent(
        event_id=new_event_id(), timestamp=time.time_ns(), tenant_id="acme", project_id="web",
        state_change={"target_resource": path, "operation": "modify" if old is not None else "create",
                      "previous_state_hash": sha256_hex(old) if old is not None else "",
                      "new_state_hash": sha256_hex(new), "file_mode": "regular",
                      "previous_file_mode": "regular" if old is not None else "unspecified",
                      "diff_patch": patch})


def test_without_content_the_diff_is_used_and_without_either_nothing_is_guessed():
    new, old = b"a = 1\nb = eval(c)\n", b"a = 1\n"
    patch = "--- a/x.py\n+++ b/x.py\n@@ -1 +1,2 @@\n a = 1\n+b = eval(c)\n"
    rules = RiskRules()
    event = _change("x.py", new, old=old, patch=patch)
    assert [t.reason for t in rules.tags(event)] == ["x.py line 2 adds eval: b = eval(c)"]  # from the diff
    blobs = {sha256_hex(new): new, sha256_hex(old): old}
    assert [t.reason for t in rules.tags(event, blobs.__getitem__)] == ["x.py line 2 adds eval: b = eval(c)"]
    bare = _change("x.py", new, old=old)
    assert rules.tags(bare) == [] and rules.tags(bare, lambda d: (_ for _ in ()).throw(KeyError(d))) == []


def test_binary_content_is_not_scanned():
    data = b"\x00\x01eval(x)\n"
    event = _change("lib.py", data)
    assert RiskRules().tags(event, {sha256_hex(data): data}.__getitem__) == []


def test_tags_are_deterministic(rec):
    event_id = rec.file_change(".github/workflows/x.yml", b"on: push\n", mode="executable")
    assert tags_of(rec, event_id) == tags_of(rec, event_id) == tags_of(rec, event_id, RiskRules())


# ------------------------------------------------------------------ configuration
def test_settings_from_ledger_toml_replace_the_defaults(tmp_path, monkeypatch, rec):
    config = tmp_path / "ledger.toml"
    config.write_text(
        'risk_protected_paths = ["src/auth/", "!src/auth/README.md"]\n'
        "risk_tag_deletes = false\n"
        'risk_ci_paths = []\n'
        '[risk_code_patterns]\n"yaml.load" = "\\\\byaml\\\\.load\\\\("\n')
    monkeypatch.setenv("LEDGER_CONFIG", str(config))
    rules = RiskRules.from_settings(load_settings())
    a = rec.file_change("src/auth/login.py", b"ok = 1\n")
    b = rec.file_change("src/auth/README.md", b"docs\n")
    c = rec.file_change(".github/workflows/ci.yml", b"on: push\n")
    d = rec.file_change("src/load.py", b"import yaml\nyaml.load(f)\neval(x)\n")
    rec.file_change("gone.txt", b"x\n")
    e = rec.file_change("gone.txt", None)
    assert tags_of(rec, a, rules) == [("protected-path", "src/auth/login.py matches protected path pattern 'src/auth/'")]
    assert tags_of(rec, b, rules) == []  # negated pattern
    assert tags_of(rec, c, rules) == []  # CI list emptied
    assert tags_of(rec, d, rules) == [("dangerous-code", "src/load.py line 2 adds yaml.load: yaml.load(f)")]
    assert tags_of(rec, e, rules) == []  # deletes not tagged
    assert only(tags_of(rec, e)) == ["delete"]  # the defaults still do


def test_settings_from_the_environment(monkeypatch, rec):
    monkeypatch.setenv("LEDGER_RISK_PROTECTED_PATHS", json.dumps(["payments/"]))
    rules = RiskRules.from_settings(load_settings())
    assert only(tags_of(rec, rec.file_change("payments/charge.go", b"package p\n"), rules)) == ["protected-path"]
    assert tags_of(rec, rec.file_change("x.pem", b"k\n"), rules) == []  # the default list was replaced


def test_a_bad_pattern_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match=r"risk_code_patterns\['broken'\]"):
        RiskRules(code_patterns={"broken": "eval(("})


def test_ledger_show_and_log_show_the_tags(rec, ledger_path):
    from click.testing import CliRunner

    from cli import cli

    rec.file_change("src/app.py", b"x = 1\n")
    risky = rec.file_change("Dockerfile", b"FROM python:3.11\n")
    runner = CliRunner()
    base = ["--db", str(ledger_path), "--tenant", "acme"]
    shown = runner.invoke(cli, [*base, "show", risky])
    assert shown.exit_code == 0, shown.output
    assert "risk" in shown.output and "Dockerfile is an infrastructure file (pattern 'Dockerfile')" in shown.output
    as_json = json.loads(runner.invoke(cli, [*base, "show", risky, "--json"]).output)
    assert as_json["risk"] == [{"tag": "infrastructure",
                                "reason": "Dockerfile is an infrastructure file (pattern 'Dockerfile')"}]
    log = runner.invoke(cli, [*base, "log"]).output
    assert "create Dockerfile  [risk: infrastructure]" in log and "create src/app.py\n" in log
    rows = json.loads(runner.invoke(cli, [*base, "log", "--json"]).output)
    assert {r["state_change"]["target_resource"]: [t["tag"] for t in r["risk"]] for r in rows} == {
        "Dockerfile": ["infrastructure"], "src/app.py": []}


def test_the_rules_need_only_the_ledger(ledger_path):
    # the module is part of the base install: nothing heavy at import
    import subprocess
    import sys

    code = ("import sys, ledger.risk; heavy = [m for m in ('chdb', 'clickhouse_connect', 'fdb', 'pathspec') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    with Ledger(ledger_path):
        pass
