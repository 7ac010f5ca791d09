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
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from ledger import risk as _risk
from ledger.errors import ConfigError

APP_NAME = "context-ledger"


def config_file_path() -> Path | None:
    """The ledger.toml in effect, or None when there is none."""
    explicit = os.environ.get("LEDGER_CONFIG")
    if explicit:
        return Path(explicit)
    local = Path.cwd() / "ledger.toml"
    if local.is_file():
        return local
    user = Path(platformdirs.user_config_dir(APP_NAME)) / "ledger.toml"
    return user if user.is_file() else None


class Settings(BaseSettings):
    """Every setting, with its environment variable (``LEDGER_`` + upper-case name)."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)))
    #: SQLite file of the local ledger; default ``<data_dir>/ledger.db``.
    db_path: Path | None = None
    tenant: str = "default"
    #: Default project; when unset, commands use the only project in the ledger.
    project: str | None = None
    #: ``full``: every record call is fsynced before it returns (durable on return).
    #: ``group``: commits are batched; see nervous_system docs for the window.
    durability: Literal["full", "group"] = "full"
    #: ClickHouse: a ``chdb://`` path (embedded) or ``http(s)://`` server URL.
    clickhouse_url: str | None = None
    #: FoundationDB cluster file for the hub; also read from FDB_CLUSTER_FILE.
    fdb_cluster_file: Path | None = None
    #: The team hub's gateway (``https://hub.example:8470``) and this laptop's token for it;
    #: when set, laptops reach the hub through it (no cluster file, no FoundationDB client).
    hub_url: str | None = None
    hub_token: str | None = None
    #: Limits of every ``ledger sql`` / ``ledger audit`` query (ClickHouse settings
    #: max_execution_time, max_memory_usage, max_result_rows; see docs/analytics.md).
    sql_max_execution_time: float = Field(default=30.0, gt=0)
    sql_max_memory_usage: int = Field(default=2_000_000_000, gt=0)
    sql_max_result_rows: int = Field(default=1_000_000, gt=0)
    #: Risk tags of file changes (``ledger.risk``; docs/trust.md): gitignore patterns of
    #: protected, CI, infrastructure and code paths (each list replaces its default),
    #: regexes of dangerous added code lines (name -> regex), whether deletes are risky.
    #: Env: JSON, e.g. LEDGER_RISK_PROTECTED_PATHS='["src/auth/", "*.pem"]'.
    risk_protected_paths: list[str] = Field(default_factory=lambda: list(_risk.DEFAULT_PROTECTED_PATHS))
    risk_ci_paths: list[str] = Field(default_factory=lambda: list(_risk.DEFAULT_CI_PATHS))
    risk_infra_paths: list[str] = Field(default_factory=lambda: list(_risk.DEFAULT_INFRA_PATHS))
    risk_code_paths: list[str] = Field(default_factory=lambda: list(_risk.DEFAULT_CODE_PATHS))
    risk_code_patterns: dict[str, str] = Field(default_factory=lambda: dict(_risk.DEFAULT_CODE_PATTERNS))
    risk_tag_deletes: bool = True
    #: Whether an agent's approval of its own change counts (``ledger.approvals``).
    approvals_allow_self: bool = False
    #: Redaction before storage (issue 15; ``ledger.redaction``, ``ledger.secret_files``):
    #: secrets in text fields become ``[REDACTED:type]`` and secret files are recorded by
    #: hash without content. On by default; ``redact = false`` turns both off for the
    #: ledgers this process opens (see docs/trust.md, "Redaction").
    redact: bool = True
    #: Extra secret patterns ``{type: regex}`` (group 1 is the secret if there is a group).
    redact_patterns: dict[str, str] = Field(default_factory=dict)
    #: Regexes of values never redacted (full match), e.g. a known test key.
    redact_allow: list[str] = Field(default_factory=list)
    #: Secret-file patterns (fnmatch; file names, or paths when they hold a "/"); unset:
    #: ``ledger.secret_files.DEFAULT_PATTERNS`` (.env*, *.pem, *.key, id_rsa*, ...).
    secret_files: list[str] | None = None
    #: Secret-file paths whose content IS stored; unset: ``DEFAULT_ALLOW`` (.env.example, ...).
    secret_files_allow: list[str] | None = None
    #: Retention per event kind and project (``ledger.retention``; ``[retention]`` in
    #: ledger.toml): ``{"span": "30d", "projects": {"web": {"message": "365d"}}}``.
    retention: dict = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

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


def load_settings(**overrides: Any) -> Settings:
    """Load settings, applying ``overrides`` (None values are ignored).

    Raises ``ConfigError`` naming the bad setting and the file it came from.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        where = config_file_path()
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        source = f" (config file {where})" if where else ""
        raise ConfigError(f"invalid configuration{source}: {problems}") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read configuration {config_file_path()}: {exc}") from exc
