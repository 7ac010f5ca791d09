"""Configuration: defaults < ``ledger.toml`` < ``LEDGER_*`` environment variables < arguments.

The file is the first of: ``$LEDGER_CONFIG``, ``./ledger.toml``, ``<user config dir>/ledger.toml``
(``~/.config/context-ledger/ledger.toml`` on Linux). Data lives in ``data_dir``, by default the
user's data directory (``~/.local/share/context-ledger`` on Linux, via platformdirs).

Example ``ledger.toml``::

    data_dir = "/srv/ledger"
    tenant = "acme"
    project = "webshop"
    clickhouse_url = "http://clickhouse:8123"
    fdb_cluster_file = "/etc/foundationdb/fdb.cluster"   # direct access (trusted team, gateway)
    hub_url = "https://hub.example.com:8470"             # laptops: the gateway ...
    # hub_token: better in LEDGER_HUB_TOKEN than in a file
    risk_protected_paths = ["src/auth/", "*.pem", "CODEOWNERS"]   # see docs/trust.md
    redact = true                                        # default; false stores text as given
    redact_allow = ["AKIAIOSFODNN7EXAMPLE"]              # values never redacted (regexes)
    secret_files_allow = [".env.example", "test/fixtures/*.pem"]

    [redact_patterns]                                    # extra secret patterns, by type
    acme-token = "acme_[0-9a-f]{32}"

Environment variables are ``LEDGER_`` + the setting's name in any case
(``LEDGER_DURABILITY=group``); lists and tables are JSON
(``LEDGER_REDACT_ALLOW='["AKIA..."]'``), booleans ``true/false/1/0/yes/no/on/off``.
Keys of ledger.toml that are not settings are ignored.

Loading is plain Python over ``tomllib`` (no pydantic): every ``ledger`` command, and
every agent hook that records, starts by loading the settings, and pydantic-settings
alone cost more start-up time than the whole ``ledger replay`` of a small repository
(issue "light and instant").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from ledger import risk as _risk
from ledger.errors import ConfigError

APP_NAME = "context-ledger"
ENV_PREFIX = "LEDGER_"


def config_file_path() -> Path | None:
    """The ledger.toml in effect, or None when there is none."""
    explicit = os.environ.get("LEDGER_CONFIG")
    if explicit:
        return Path(explicit)
    local = Path.cwd() / "ledger.toml"
    if local.is_file():
        return local
    import platformdirs

    user = Path(platformdirs.user_config_dir(APP_NAME)) / "ledger.toml"
    return user if user.is_file() else None


def _default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


# ---------------------------------------------------------------- value parsers
# Each takes a value from ledger.toml (already typed), from the environment (a string;
# JSON first for lists and tables, see _from_env) or from an argument, and returns the
# setting's value or raises ValueError saying what is expected.

_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off"}


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _path(value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"expected a path, got {value!r}")
    return Path(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def _positive(kind: type) -> Callable[[Any], Any]:
    expected = f"expected {'an integer' if kind is int else 'a number'} greater than 0, got"

    def parse(value: Any) -> Any:
        try:
            if isinstance(value, bool):
                raise ValueError
            number = kind(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise ValueError(f"{expected} {value!r}") from None
        if not number > 0 or (kind is int and isinstance(value, float) and value != number):
            raise ValueError(f"{expected} {value!r}")
        return number

    return parse


def _str_list(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {value!r}")
    return list(value)


def _str_dict(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"expected a table of strings, got {value!r}")
    return dict(value)


def _table(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"expected a table, got {value!r}")
    return dict(value)


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value

    return parse


#: Settings whose environment value is JSON (lists and tables).
_JSON_PARSERS = {_str_list, _str_dict, _table}


def _from_env(parse: Callable[[Any], Any], value: str) -> Any:
    """An environment string as the parser of its setting takes it: lists and tables are JSON."""
    if getattr(parse, "inner", parse) not in _JSON_PARSERS:
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"expected JSON, got {value!r} ({exc.msg})") from None


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def optional(value: Any) -> Any:
        return None if value is None else parse(value)

    optional.inner = parse
    return optional


def _setting(parse: Callable[[Any], Any], default: Any = None, factory: Callable[[], Any] | None = None):
    """A settings field with its parser (``dataclasses.field`` metadata)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"parse": parse})
    return field(default=default, metadata={"parse": parse})


@dataclass
class Settings:
    """Every setting, with its environment variable (``LEDGER_`` + upper-case name).
    Build one with ``load_settings``; types are as annotated (paths are ``Path``)."""

    data_dir: Path = _setting(_path, factory=_default_data_dir)
    #: SQLite file of the local ledger; default ``<data_dir>/ledger.db``.
    db_path: Path | None = _setting(_optional(_path))
    tenant: str = _setting(_str, "default")
    #: Default project; when unset, commands use the only project in the ledger.
    project: str | None = _setting(_optional(_str))
    #: ``full``: every record call is fsynced before it returns (durable on return).
    #: ``group``: commits are batched; see nervous_system docs for the window.
    durability: str = _setting(_choice("full", "group"), "full")
    #: ClickHouse: a ``chdb://`` path (embedded) or ``http(s)://`` server URL.
    clickhouse_url: str | None = _setting(_optional(_str))
    #: FoundationDB cluster file for the hub; also read from FDB_CLUSTER_FILE.
    fdb_cluster_file: Path | None = _setting(_optional(_path))
    #: The team hub's gateway (``https://hub.example:8470``) and this laptop's token for it;
    #: when set, laptops reach the hub through it (no cluster file, no FoundationDB client).
    hub_url: str | None = _setting(_optional(_str))
    hub_token: str | None = _setting(_optional(_str))
    #: Limits of every ``ledger sql`` / ``ledger audit`` query (ClickHouse settings
    #: max_execution_time in seconds, max_memory_usage in bytes, max_result_rows; see
    #: docs/analytics.md).
    sql_max_execution_time: float = _setting(_positive(float), 30.0)
    sql_max_memory_usage: int = _setting(_positive(int), 2_000_000_000)
    sql_max_result_rows: int = _setting(_positive(int), 1_000_000)
    #: Risk tags of file changes (``ledger.risk``; docs/trust.md): gitignore patterns of
    #: protected, CI, infrastructure and code paths (each list replaces its default),
    #: regexes of dangerous added code lines (name -> regex), whether deletes are risky.
    #: Env: JSON, e.g. LEDGER_RISK_PROTECTED_PATHS='["src/auth/", "*.pem"]'.
    risk_protected_paths: list[str] = _setting(_str_list, factory=lambda: list(_risk.DEFAULT_PROTECTED_PATHS))
    risk_ci_paths: list[str] = _setting(_str_list, factory=lambda: list(_risk.DEFAULT_CI_PATHS))
    risk_infra_paths: list[str] = _setting(_str_list, factory=lambda: list(_risk.DEFAULT_INFRA_PATHS))
    risk_code_paths: list[str] = _setting(_str_list, factory=lambda: list(_risk.DEFAULT_CODE_PATHS))
    risk_code_patterns: dict[str, str] = _setting(_str_dict, factory=lambda: dict(_risk.DEFAULT_CODE_PATTERNS))
    risk_tag_deletes: bool = _setting(_bool, True)
    #: Whether an agent's approval of its own change counts (``ledger.approvals``).
    approvals_allow_self: bool = _setting(_bool, False)
    #: Redaction before storage (issue 15; ``ledger.redaction``, ``ledger.secret_files``):
    #: secrets in text fields become ``[REDACTED:type]`` and secret files are recorded by
    #: hash without content. On by default; ``redact = false`` turns both off for the
    #: ledgers this process opens (see docs/trust.md, "Redaction").
    redact: bool = _setting(_bool, True)
    #: Extra secret patterns ``{type: regex}`` (group 1 is the secret if there is a group).
    redact_patterns: dict[str, str] = _setting(_str_dict, factory=dict)
    #: Regexes of values never redacted (full match), e.g. a known test key.
    redact_allow: list[str] = _setting(_str_list, factory=list)
    #: Secret-file patterns (fnmatch; file names, or paths when they hold a "/"); unset:
    #: ``ledger.secret_files.DEFAULT_PATTERNS`` (.env*, *.pem, *.key, id_rsa*, ...).
    secret_files: list[str] | None = _setting(_optional(_str_list))
    #: Secret-file paths whose content IS stored; unset: ``DEFAULT_ALLOW`` (.env.example, ...).
    secret_files_allow: list[str] | None = _setting(_optional(_str_list))
    #: Retention per event kind and project (``ledger.retention``; ``[retention]`` in
    #: ledger.toml): ``{"span": "30d", "projects": {"web": {"message": "365d"}}}``.
    retention: dict = _setting(_table, factory=dict)

    @property
    def ledger_path(self) -> Path:
        """Path of the SQLite ledger file."""
        return self.db_path or (self.data_dir / "ledger.db")

    @property
    def cluster_file(self) -> Path | None:
        """The FoundationDB cluster file: setting, else FDB_CLUSTER_FILE, else None."""
        if self.fdb_cluster_file:
            return self.fdb_cluster_file
        env = os.environ.get("FDB_CLUSTER_FILE")
        return Path(env) if env else None

    @property
    def analytics_url(self) -> str:
        """ClickHouse DSN: the setting, else embedded chdb under ``<data_dir>/analytics``."""
        return self.clickhouse_url or f"chdb://{(self.data_dir / 'analytics').resolve()}"


def _read_toml(path: Path) -> dict:
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:  # LEDGER_CONFIG naming no file: no file settings (as before)
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc}") from exc


def load_settings(**overrides: Any) -> Settings:
    """Load settings: defaults < ``ledger.toml`` < ``LEDGER_*`` environment variables <
    ``overrides`` (keyword arguments named as the settings; None values are ignored).

    Raises ``ConfigError`` naming each bad setting, where its value came from (the
    config file, the environment variable, an argument) and what is expected;
    ``TypeError`` for an override that is not a setting.
    """
    names = {f.name: f for f in fields(Settings)}
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise TypeError(f"not settings: {', '.join(unknown)}")
    raw: dict[str, tuple[Any, str, bool]] = {}  # name -> (value, where it came from, from env)
    path = config_file_path()
    if path is not None:
        for key, value in _read_toml(path).items():
            if key in names:
                raw[key] = (value, f"{key} in config file {path}", False)
    env = {k.upper(): (k, v) for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}
    for name in names:
        if (ENV_PREFIX + name.upper()) in env:
            var, value = env[ENV_PREFIX + name.upper()]
            raw[name] = (value, f"environment variable {var}", True)
    for name, value in overrides.items():
        if value is not None:
            raw[name] = (value, f"argument {name}", False)
    values, problems = {}, []
    for name, (value, where, from_env) in raw.items():
        parse = names[name].metadata["parse"]
        try:
            values[name] = parse(_from_env(parse, value) if from_env else value)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))
    return Settings(**values)
