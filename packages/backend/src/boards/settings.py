"""Settings for every role of the service, read from ``BOARDS_*`` environment variables.

One loader is used everywhere (the API app, the worker module, the CLI):
:func:`load_settings_or_exit`. A bad value prints ONE line on stderr naming the variable and what
is allowed, then exits with code 2, without a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

from pydantic import BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "BOARDS_"
EXIT_BAD_SETTING = 2

LogLevel = Literal["critical", "error", "warning", "info", "debug"]

_DB_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")
_REDIS_SCHEMES = ("redis", "rediss")

#: What each setting allows, as printed when a value is rejected.
RULES: dict[str, str] = {
    "database_url": (
        "must be a SQLAlchemy URL with scheme sqlite, postgresql, postgres or postgresql+psycopg "
        "(e.g. postgresql://user:pass@host:5432/db)"
    ),
    "data_dir": "must be a directory path",
    "redis_url": "must be a redis:// or rediss:// URL (e.g. redis://redis:6379/0)",
    "api_host": "must be a host name or IP address to listen on (e.g. 0.0.0.0)",
    "api_port": "must be an integer from 1 to 65535",
    "log_level": "must be one of critical, error, warning, info, debug",
    "migrate_on_start": "must be a boolean (true/false, 1/0, yes/no, on/off)",
    "worker_processes": "must be an integer >= 1",
    "worker_threads": "must be an integer >= 1",
    "worker_shutdown_timeout": "must be a number of seconds > 0 and <= 600",
    "job_time_limit": "must be a number of seconds > 0 and <= 86400",
    "job_max_retries": "must be an integer >= 0",
    "job_retry_min_backoff": "must be a number of seconds > 0 and <= 3600",
    "job_retry_max_backoff": (
        "must be a number of seconds > 0 and <= 86400, not less than BOARDS_JOB_RETRY_MIN_BACKOFF"
    ),
    "run_dir": "must be a directory path",
    "api_max_body_bytes": "must be an integer number of bytes from 1024 to 104857600",
    "job_lease": "must be a number of seconds from 3 to 3600",
    "job_max_deliveries": "must be an integer from 1 to 100",
    "reconcile_interval": "must be a number of seconds > 0 and <= 300",
    "reconcile_queued_after": "must be a number of seconds from 8 to 3600",
    "broker_heartbeat_timeout": "must be a number of seconds from 2 to 600",
    "worker_metrics_port": "must be an integer from 0 (off) to 65535",
    "alembic_ini": "must be the path of the alembic.ini file",
}


def default_alembic_ini() -> Path:
    """``packages/backend/alembic.ini`` for a source checkout (editable install).

    ``src/boards/settings.py`` -> parents[2] is the package root. The image sets
    ``BOARDS_ALEMBIC_INI=/app/alembic.ini``.
    """
    return Path(__file__).resolve().parents[2] / "alembic.ini"


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class Settings(BaseSettings):
    """All settings; field ``x`` is read from ``BOARDS_X``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        case_sensitive=False,
        extra="ignore",
        validate_default=True,
    )

    data_dir: Path = Path("./data")
    database_url: Annotated[str | None, BeforeValidator(_strip)] = None
    redis_url: Annotated[str | None, BeforeValidator(_strip)] = None
    api_host: Annotated[str, BeforeValidator(_strip)] = "0.0.0.0"  # noqa: S104 (a server)
    api_port: int = Field(default=8800, ge=1, le=65535)
    log_level: Annotated[LogLevel, BeforeValidator(_lower)] = "info"
    migrate_on_start: bool = True
    worker_processes: int = Field(default=1, ge=1)
    worker_threads: int = Field(default=50, ge=1)
    worker_shutdown_timeout: float = Field(default=5.0, gt=0, le=600)
    job_time_limit: float = Field(default=30.0, gt=0, le=86400)
    job_max_retries: int = Field(default=3, ge=0)
    job_retry_min_backoff: float = Field(default=1.0, gt=0, le=3600)
    job_retry_max_backoff: float = Field(default=30.0, gt=0, le=86400)
    run_dir: Path = Path("/tmp/boards")  # noqa: S108 (per-container scratch dir)
    # Delivery guarantees (docs/operations.md, "What a 202 guarantees").
    api_max_body_bytes: int = Field(default=1_048_576, ge=1024, le=104_857_600)
    job_lease: float = Field(default=15.0, ge=3, le=3600)
    job_max_deliveries: int = Field(default=5, ge=1, le=100)
    reconcile_interval: float = Field(default=5.0, gt=0, le=300)
    # At least the API's worst-case enqueue (Redis connect 2 s + reply 5 s): a job the API is
    # still sending, or about to delete after a failed send, is never taken for a lost one.
    reconcile_queued_after: float = Field(default=10.0, ge=8, le=3600)
    broker_heartbeat_timeout: float = Field(default=10.0, ge=2, le=600)
    worker_metrics_port: int = Field(default=9191, ge=0, le=65535)
    alembic_ini: Path = Field(default_factory=default_alembic_ini)

    @field_validator("api_host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        if not value or any(ch.isspace() for ch in value) or "/" in value:
            raise ValueError("bad host")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return normalise_database_url(value)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in _REDIS_SCHEMES or not rest:
            raise ValueError("bad redis url")
        return value

    # -- derived values ------------------------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        """The database URL to connect to: the configured one or the SQLite file in data_dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir.expanduser().resolve() / 'boards.db').as_posix()}"

    @property
    def database_backend(self) -> str:
        return "sqlite" if self.effective_database_url.startswith("sqlite") else "postgresql"


def normalise_database_url(value: str) -> str:
    """Check the scheme and make every PostgreSQL URL use the psycopg (v3) driver."""
    scheme, sep, rest = value.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DB_SCHEMES:
        raise ValueError("bad database url")
    if scheme == "sqlite":
        return f"sqlite://{rest}"
    if not rest:
        raise ValueError("bad database url")
    return f"postgresql+psycopg://{rest}"


def mask_password(url: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host`` (for messages and logs)."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


class SettingsError(Exception):
    """A setting has a value that is not allowed."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.variable = ENV_PREFIX + field.upper()
        self.value = value
        self.rule = rule
        super().__init__(self.line())

    def line(self) -> str:
        value = self.value
        if isinstance(value, str) and self.field.endswith("_url"):
            value = mask_password(value)
        shown = "" if value is None else f"={value!r}"
        return f"invalid setting {self.variable}{shown}: {self.rule}"


def _raw_value(field: str, fallback: object) -> object:
    wanted = (ENV_PREFIX + field).upper()
    for key, value in os.environ.items():
        if key.upper() == wanted:
            return value
    return fallback


def load_settings(*, require_redis: bool = False, **overrides: Any) -> Settings:
    """Read the settings from the environment (``overrides`` win); raise :class:`SettingsError`."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = error.get("loc") or ("?",)
        field = str(loc[0])
        raise SettingsError(
            field, _raw_value(field, error.get("input")), RULES.get(field, error["msg"])
        ) from None
    if settings.job_retry_max_backoff < settings.job_retry_min_backoff:
        raise SettingsError(
            "job_retry_max_backoff",
            _raw_value("job_retry_max_backoff", settings.job_retry_max_backoff),
            RULES["job_retry_max_backoff"],
        )
    if require_redis and not settings.redis_url:
        raise SettingsError(
            "redis_url", None, "is required by the worker and " + RULES["redis_url"]
        )
    return settings


def exit_bad_setting(error: SettingsError) -> NoReturn:
    """Print the one line for ``error`` and exit with code 2."""
    sys.stderr.write(f"boards: {error.line()}\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_BAD_SETTING)


def load_settings_or_exit(*, require_redis: bool = False) -> Settings:
    """The loader every entry point uses: settings, or one line on stderr and exit code 2."""
    try:
        return load_settings(require_redis=require_redis)
    except SettingsError as error:
        exit_bad_setting(error)
