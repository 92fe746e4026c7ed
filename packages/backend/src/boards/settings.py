"""Settings for every role of the service, read from ``BOARDS_*`` environment variables.

One loader is used everywhere (the API app, the worker module, the CLI):
:func:`load_settings_or_exit`. A bad value prints ONE line on stderr naming the variable and what
is allowed, then exits with code 2, without a traceback. What is allowed is read off the field
itself (:func:`rule`): its type and bounds, or, where a validator decides, its ``rule``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, get_args, get_origin

import annotated_types
from pydantic import BeforeValidator, Field, ValidationError, field_validator
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from boards import defaults, exits
from boards.redact import mask_url, scrub

ENV_PREFIX = "BOARDS_"
EXIT_BAD_SETTING = exits.USAGE

LogLevel = Literal["critical", "error", "warning", "info", "debug"]

_DB_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")
_REDIS_SCHEMES = ("redis", "rediss")


def default_alembic_ini() -> Path:
    """``packages/backend/alembic.ini`` for a source checkout (editable install).

    ``src/boards/settings.py`` -> parents[2] is the package root. The image sets
    ``BOARDS_ALEMBIC_INI=/app/alembic.ini``.
    """
    return Path(__file__).resolve().parents[2] / "alembic.ini"


#: Units a number setting is read in (said in its rule).
_SECONDS: JsonDict = {"unit": "seconds"}
_BYTES: JsonDict = {"unit": "bytes"}
_DIRECTORY: JsonDict = {"rule": "must be a directory path"}


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

    data_dir: Path = Field(Path("./data"), json_schema_extra=_DIRECTORY)
    database_url: Annotated[str | None, BeforeValidator(_strip)] = Field(
        None,
        json_schema_extra={
            "rule": "must be a SQLAlchemy URL with scheme sqlite, postgresql, postgres or "
            "postgresql+psycopg (e.g. postgresql://user:pass@host:5432/db)"
        },
    )
    redis_url: Annotated[str | None, BeforeValidator(_strip)] = Field(
        None,
        json_schema_extra={"rule": "must be a redis:// or rediss:// URL (redis://redis:6379/0)"},
    )
    api_host: Annotated[str, BeforeValidator(_strip)] = Field(
        defaults.API_HOST,
        json_schema_extra={"rule": "must be a host name or IP address to listen on (0.0.0.0)"},
    )
    api_port: int = Field(defaults.API_PORT, ge=1, le=65535)
    log_level: Annotated[LogLevel, BeforeValidator(_lower)] = "info"
    migrate_on_start: bool = True
    worker_processes: int = Field(1, ge=1)
    worker_threads: int = Field(50, ge=1)
    worker_shutdown_timeout: float = Field(5.0, gt=0, le=600, json_schema_extra=_SECONDS)
    job_time_limit: float = Field(30.0, gt=0, le=86400, json_schema_extra=_SECONDS)
    job_max_retries: int = Field(3, ge=0)
    job_retry_min_backoff: float = Field(1.0, gt=0, le=3600, json_schema_extra=_SECONDS)
    job_retry_max_backoff: float = Field(30.0, gt=0, le=86400, json_schema_extra=_SECONDS)
    run_dir: Path = Field(Path(defaults.RUN_DIR), json_schema_extra=_DIRECTORY)
    alembic_ini: Path = Field(
        default_factory=default_alembic_ini,
        json_schema_extra={"rule": "must be the path of the alembic.ini file"},
    )
    # Delivery guarantees (docs/operations.md, "What a 202 guarantees").
    api_max_body_bytes: int = Field(1_048_576, ge=1024, le=104_857_600, json_schema_extra=_BYTES)
    # How long a client may take (docs/operations.md, "HTTP limits and malformed requests").
    api_header_timeout: float = Field(10.0, gt=0, le=300, json_schema_extra=_SECONDS)
    api_body_timeout: float = Field(30.0, gt=0, le=3600, json_schema_extra=_SECONDS)
    api_keep_alive_timeout: int = Field(5, ge=1, le=300, json_schema_extra=_SECONDS)
    api_max_connections: int = Field(1000, ge=1, le=100_000)
    job_lease: float = Field(15.0, ge=3, le=3600, json_schema_extra=_SECONDS)
    job_max_deliveries: int = Field(5, ge=1, le=100)
    reconcile_interval: float = Field(5.0, gt=0, le=300, json_schema_extra=_SECONDS)
    # At least the API's worst-case enqueue (Redis connect 2 s + reply 5 s): a job the API is
    # still sending, or about to delete after a failed send, is never taken for a lost one.
    reconcile_queued_after: float = Field(10.0, ge=8, le=3600, json_schema_extra=_SECONDS)
    broker_heartbeat_timeout: float = Field(
        defaults.BROKER_HEARTBEAT_TIMEOUT, ge=2, le=600, json_schema_extra=_SECONDS
    )
    # Finished jobs older than this are deleted (docs/operations.md, "How long jobs are kept"):
    # a week by default; at least a minute, so a client's retry still finds its job; at most
    # ten years, the way to keep them all.
    job_retention: float = Field(604_800, ge=60, le=315_360_000, json_schema_extra=_SECONDS)
    worker_metrics_port: int = Field(9191, ge=0, le=65535)
    database_pool_size: int = Field(defaults.DATABASE_POOL_SIZE, ge=1, le=500)
    # PostgreSQL's statement_timeout for the API's and the worker's sessions (lock waits count).
    database_statement_timeout: float = Field(5.0, ge=0.1, le=3600, json_schema_extra=_SECONDS)
    # Read by the API only (load_settings(api=True)): a worker never needs the file mounted.
    api_tokens_file: Path | None = Field(
        None,
        json_schema_extra={
            "rule": "must be the path of a readable file of API tokens, one per line "
            "(a token of 16+ characters of A-Z a-z 0-9 -._~+/, or sha256:<64 hex>)"
        },
    )

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


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def _range(info: FieldInfo) -> str:
    """`` from 1 to 65535``, `` > 0 and <= 600``, `` >= 1`` or nothing, from the field's bounds."""
    bounds = {
        name: getattr(item, name)
        for item in info.metadata
        for name, _ in _BOUNDS
        if isinstance(item, getattr(annotated_types, name.capitalize()))
    }
    if {"ge", "le"} == set(bounds):
        return f" from {_number(bounds['ge'])} to {_number(bounds['le'])}"
    parts = [f"{op} {_number(bounds[name])}" for name, op in _BOUNDS if name in bounds]
    return " " + " and ".join(parts) if parts else ""


def rule(field: str) -> str:
    """What ``field`` allows, in words, read off its declaration (one place for each limit)."""
    info = Settings.model_fields[field]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "rule" in extra:
        return str(extra["rule"])
    annotation = info.annotation
    if get_origin(annotation) is Literal:
        return "must be one of " + ", ".join(str(choice) for choice in get_args(annotation))
    if annotation is bool:
        return "must be a boolean (true/false, 1/0, yes/no, on/off)"
    unit = f" of {extra['unit']}" if "unit" in extra else ""
    kind = "an integer" if annotation is int else "a number"
    return f"must be {kind}{unit}{_range(info)}"


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
        if isinstance(value, str):
            value = mask_url(value) if self.field.endswith("_url") else scrub(value)
        shown = "" if value is None else f"={value!r}"
        return f"invalid setting {self.variable}{shown}: {self.rule}"


def _raw_value(field: str, fallback: object) -> object:
    wanted = (ENV_PREFIX + field).upper()
    for key, value in os.environ.items():
        if key.upper() == wanted:
            return value
    return fallback


def load_settings(*, require_redis: bool = False, api: bool = False, **overrides: Any) -> Settings:
    """Read the settings from the environment (``overrides`` win); raise :class:`SettingsError`.
    ``api``: also check what only the API reads (the token file)."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = error.get("loc") or ("?",)
        field = str(loc[0])
        known = field in Settings.model_fields
        raise SettingsError(
            field, _raw_value(field, error.get("input")), rule(field) if known else error["msg"]
        ) from None
    if settings.job_retry_max_backoff < settings.job_retry_min_backoff:
        raise SettingsError(
            "job_retry_max_backoff",
            _raw_value("job_retry_max_backoff", settings.job_retry_max_backoff),
            rule("job_retry_max_backoff") + ", not less than BOARDS_JOB_RETRY_MIN_BACKOFF",
        )
    if require_redis and not settings.redis_url:
        raise SettingsError("redis_url", None, "is required by the worker and " + rule("redis_url"))
    if api and settings.api_tokens_file is not None:
        from boards.tokens import TokenFileError, read_tokens

        try:
            read_tokens(settings.api_tokens_file)
        except TokenFileError as exc:
            raise bad_tokens_file(settings.api_tokens_file, exc) from None
    return settings


def bad_tokens_file(path: Path, reason: object) -> SettingsError:
    """The error for an unusable token file: why (never its contents), then the rule."""
    return SettingsError("api_tokens_file", str(path), f"{reason}; " + rule("api_tokens_file"))


def exit_bad_setting(error: SettingsError) -> NoReturn:
    """Print the one line for ``error`` and exit with code 2."""
    sys.stderr.write(f"boards: {error.line()}\n")
    sys.stderr.flush()
    raise SystemExit(EXIT_BAD_SETTING)


def load_settings_or_exit(*, require_redis: bool = False, api: bool = False) -> Settings:
    """The loader every entry point uses: settings, or one line on stderr and exit code 2."""
    try:
        return load_settings(require_redis=require_redis, api=api)
    except SettingsError as error:
        exit_bad_setting(error)
