"""Settings: defaults < ledger.toml < LEDGER_* environment < arguments, typed values,
and errors that name the bad setting, where it came from and what is expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.config import Settings, config_file_path, load_settings
from ledger.errors import ConfigError
from ledger.risk import DEFAULT_PROTECTED_PATHS


@pytest.fixture
def toml(tmp_path, monkeypatch):
    """Write a ledger.toml and point LEDGER_CONFIG at it."""
    path = tmp_path / "ledger.toml"
    monkeypatch.setenv("LEDGER_CONFIG", str(path))

    def write(text: str) -> Path:
        path.write_text(text)
        return path

    return write


def test_defaults_without_any_file_or_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("LEDGER_DATA_DIR")
    s = load_settings()
    assert (s.tenant, s.project, s.durability, s.redact, s.approvals_allow_self) == ("default", None, "full", True, False)
    # the user's data directory (platformdirs; XDG_DATA_HOME of the autouse fixture)
    assert s.data_dir == tmp_path / "home" / ".local" / "share" / "context-ledger"
    assert s.ledger_path == s.data_dir / "ledger.db"
    assert s.risk_protected_paths == list(DEFAULT_PROTECTED_PATHS)
    assert (s.sql_max_execution_time, s.sql_max_memory_usage, s.sql_max_result_rows) == (30.0, 2_000_000_000, 1_000_000)
    assert s.retention == {} and s.secret_files is None


def test_file_then_environment_then_arguments(toml, monkeypatch, tmp_path):
    toml('tenant = "from-file"\nproject = "web"\ndurability = "group"\nredact_allow = ["AKIA1"]\n'
         'db_path = "/srv/file.db"\n[retention]\nspan = "30d"\n[retention.projects.web]\nmessage = "365d"\n')
    s = load_settings()
    assert (s.tenant, s.project, s.durability, s.redact_allow) == ("from-file", "web", "group", ["AKIA1"])
    assert s.db_path == Path("/srv/file.db") and isinstance(s.db_path, Path)
    assert s.retention == {"span": "30d", "projects": {"web": {"message": "365d"}}}
    monkeypatch.setenv("LEDGER_TENANT", "from-env")
    monkeypatch.setenv("ledger_project", "api")  # names match in any case, as before
    s = load_settings()
    assert (s.tenant, s.project, s.durability) == ("from-env", "api", "group")
    s = load_settings(tenant="from-arg", project=None, db_path=str(tmp_path / "x.db"))
    assert (s.tenant, s.project, s.ledger_path) == ("from-arg", "api", tmp_path / "x.db")


def test_environment_values_are_parsed_by_type(monkeypatch):
    monkeypatch.setenv("LEDGER_REDACT", "off")
    monkeypatch.setenv("LEDGER_APPROVALS_ALLOW_SELF", "Yes")
    monkeypatch.setenv("LEDGER_RISK_PROTECTED_PATHS", '["src/auth/", "*.pem"]')
    monkeypatch.setenv("LEDGER_REDACT_PATTERNS", '{"acme": "acme_[0-9a-f]{32}"}')
    monkeypatch.setenv("LEDGER_SQL_MAX_EXECUTION_TIME", "2.5")
    monkeypatch.setenv("LEDGER_SQL_MAX_RESULT_ROWS", "10")
    s = load_settings()
    assert (s.redact, s.approvals_allow_self) == (False, True)
    assert s.risk_protected_paths == ["src/auth/", "*.pem"]
    assert s.redact_patterns == {"acme": "acme_[0-9a-f]{32}"}
    assert (s.sql_max_execution_time, s.sql_max_result_rows) == (2.5, 10)
    assert isinstance(s.sql_max_result_rows, int)


def test_keys_that_are_not_settings_are_ignored(toml):
    toml('tenant = "acme"\nsomething_else = 1\n[unrelated]\nx = 2\n')
    assert load_settings().tenant == "acme"
    with pytest.raises(TypeError, match="not settings: colour"):
        load_settings(colour="red")


@pytest.mark.parametrize("name, value, expected", [
    ("LEDGER_DURABILITY", "sometimes", "expected one of 'full', 'group'"),
    ("LEDGER_REDACT", "maybe", "expected a boolean"),
    ("LEDGER_SQL_MAX_RESULT_ROWS", "-3", "expected an integer greater than 0"),
    ("LEDGER_SQL_MAX_MEMORY_USAGE", "lots", "expected an integer greater than 0"),
    ("LEDGER_REDACT_ALLOW", "[unquoted]", "expected JSON"),
    ("LEDGER_RISK_CODE_PATTERNS", '["a list"]', "expected a table of strings"),
])
def test_bad_environment_values_name_the_variable(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"environment variable {name}: {expected}"):
        load_settings()


def test_bad_file_values_name_the_file_and_every_problem(toml):
    path = toml('durability = 3\nredact_allow = "one string"\ntenant = "ok"\n')
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert f"durability in config file {path}: expected one of" in message
    assert f"redact_allow in config file {path}: expected a list of strings" in message
    assert "tenant" not in message


def test_a_file_that_is_not_toml_says_so(toml):
    path = toml("tenant = \n")
    with pytest.raises(ConfigError, match=f"cannot read configuration {path}"):
        load_settings()


def test_which_file_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("LEDGER_CONFIG", str(tmp_path / "missing.toml"))
    assert load_settings().tenant == "default"  # named but absent: no file settings
    monkeypatch.delenv("LEDGER_CONFIG")
    monkeypatch.chdir(tmp_path)
    assert config_file_path() is None  # neither ./ledger.toml nor the user's config dir
    (tmp_path / "ledger.toml").write_text('tenant = "here"\n')
    assert config_file_path() == tmp_path / "ledger.toml" and load_settings().tenant == "here"
    user = tmp_path / "home" / ".config" / "context-ledger"  # XDG_CONFIG_HOME of the autouse fixture
    user.mkdir(parents=True)
    (user / "ledger.toml").write_text('tenant = "user"\n')
    (tmp_path / "ledger.toml").unlink()
    assert load_settings().tenant == "user"


def test_settings_are_plain_values():
    s = load_settings(tenant="t")
    assert isinstance(s, Settings) and s.analytics_url.startswith("chdb://")
    s.project = "changed"  # a plain object, as the pydantic one was
    assert s.project == "changed"
