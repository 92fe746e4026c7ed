"""One error shape for every answer the API cannot give: ``{"error", "detail", "request_id"}``.

Nothing of the internals reaches a client: no SQL, parameters, driver messages or tracebacks.
Those go to the log, under the request id the response carries (``X-Request-ID``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from boards.db import UNAVAILABLE
from boards.logs import one_line

logger = logging.getLogger("boards.api")


class Code(StrEnum):
    """Every ``error`` value the API answers (docs/operations.md has the table)."""

    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    INVALID_JSON = "invalid_json"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    BODY_TOO_LARGE = "body_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    HEADERS_TOO_LARGE = "headers_too_large"
    NOT_IMPLEMENTED = "not_implemented"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    INVALID_REQUEST = "invalid_request"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    BROKER_NOT_CONFIGURED = "broker_not_configured"
    BROKER_UNAVAILABLE = "broker_unavailable"
    DATABASE_UNAVAILABLE = "database_unavailable"
    INTERNAL_ERROR = "internal_error"


#: Codes for the HTTP errors Starlette and FastAPI raise themselves (404 route, 405, 400 body).
_HTTP_CODES = {
    400: Code.BAD_REQUEST,
    404: Code.NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED,
    413: Code.BODY_TOO_LARGE,
    415: Code.UNSUPPORTED_MEDIA_TYPE,
}


class ApiError(Exception):
    """Raised by routes: answered as the error shape with ``status``."""

    def __init__(
        self, status: int, error: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}


def request_id_of(scope_or_request: Any) -> str | None:
    scope = getattr(scope_or_request, "scope", scope_or_request)
    state = scope.get("state") or {}
    value = state.get("request_id")
    return str(value) if value is not None else None


def error_body(error: str, detail: str, request_id: str | None, **extra: Any) -> bytes:
    # ensure_ascii: a client's lone surrogate can never make the error itself unrenderable.
    content = {"error": error, "detail": detail, "request_id": request_id, **extra}
    return json.dumps(content, ensure_ascii=True, allow_nan=False).encode("ascii")


def error_response(
    status: int,
    error: str,
    detail: str,
    request_id: str | None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    return Response(
        error_body(error, detail, request_id, **extra),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _validation_errors(exc: RequestValidationError) -> tuple[int, str, str, list[dict[str, Any]]]:
    """Status, code, one-line detail and the field errors, without the rejected input."""
    errors = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    if any(err["type"] == "json_invalid" for err in errors):
        return 400, Code.INVALID_JSON, "the body is not valid JSON", []
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(part for part in first["loc"] if part != "body") or "body"
    return 422, Code.INVALID_REQUEST, f"{where}: {first['msg']}", errors


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(
            exc.status, exc.error, exc.detail, request_id_of(request), headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        status, code, detail, errors = _validation_errors(exc)
        if errors:
            return error_response(status, code, detail, request_id_of(request), errors=errors)
        return error_response(status, code, detail, request_id_of(request))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, Code.BAD_REQUEST)
        detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI's body parser failed (not UTF-8, a number or a nesting past the parser's
            # limits): to the client, the body is not JSON it can send.
            code, detail = Code.INVALID_JSON, "the body could not be read as JSON"
        return error_response(
            exc.status_code, code, detail, request_id_of(request), headers=exc.headers
        )

    async def _database_down(request: Request, exc: Exception) -> Response:
        logger.error("request %s: database unavailable: %s", request_id_of(request), one_line(exc))
        return error_response(
            503,
            Code.DATABASE_UNAVAILABLE,
            "the database is unavailable; retry later",
            request_id_of(request),
            headers={"Retry-After": "5"},
        )

    # Only "the database did not answer" is a 503. Any other exception is a bug: it reaches
    # the request-id middleware, which logs the traceback and answers a bare 500.
    for unavailable in UNAVAILABLE:
        app.add_exception_handler(unavailable, _database_down)


def drop_default_validation_errors(app: FastAPI) -> None:
    """Take FastAPI's own ``422 HTTPValidationError`` out of the OpenAPI document: no route
    answers that shape (a 422 here is :class:`ErrorOut`, declared where a route can give it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                    del responses["422"]
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
