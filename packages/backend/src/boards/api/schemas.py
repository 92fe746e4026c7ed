"""The API's request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Longest payload, in characters (the body limit, BOARDS_API_MAX_BODY_BYTES, applies first).
MAX_PAYLOAD_CHARS = 1_000_000
#: Longest delay a job may ask for, in seconds.
MAX_DELAY_SECONDS = 30


class JobIn(BaseModel):
    # NaN and Infinity are valid Python floats but no valid delay (nor valid JSON).
    model_config = ConfigDict(allow_inf_nan=False)

    # The pattern only tells the schema (and its readers) that NUL is refused: the validator
    # below decides, with the same answer.
    payload: str = Field(
        max_length=MAX_PAYLOAD_CHARS,
        description="Text to process (no NUL character)",
        json_schema_extra={"pattern": "^[^\\u0000]*$"},
    )
    # strict: a JSON number only; "0" and false are not delays.
    delay_seconds: float = Field(
        default=0.0,
        ge=0,
        le=MAX_DELAY_SECONDS,
        strict=True,
        description="Seconds the worker waits first",
    )

    @field_validator("payload")
    @classmethod
    def _storable_text(cls, value: str) -> str:
        # PostgreSQL text holds neither NUL nor a lone UTF-16 surrogate (JSON's "\ud800").
        if "\x00" in value:
            raise ValueError("payload must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("payload must be valid Unicode (no lone surrogates)") from None
        return value


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    reasons: list[str]


class JobAccepted(BaseModel):
    id: str
    status: str


class JobOut(BaseModel):
    id: str
    status: str
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime


class ErrorOut(BaseModel):
    """Every error the API answers: a stable code, a human sentence, the request's id."""

    error: str
    detail: str
    request_id: str | None = None


class ComponentStatus(BaseModel):
    status: Literal["ok", "down", "not_configured"]
    detail: str | None = None


class MigrationStatus(BaseModel):
    current: str | None
    head: str | None
    status: Literal["ok", "pending", "unknown"]
    detail: str | None = None


class SystemHealth(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: ComponentStatus
    broker: ComponentStatus
    migrations: MigrationStatus
