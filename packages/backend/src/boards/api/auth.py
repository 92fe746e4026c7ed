"""Bearer-token access to the API when ``BOARDS_API_TOKENS_FILE`` is set.

A pure ASGI middleware, not a FastAPI dependency: FastAPI reads a route's body before it runs
its dependencies, and a request without a valid token is refused before any body is read. Every
path needs the token except liveness and readiness (an orchestrator's probes carry none): the
job routes, the system health, ``/metrics``, the OpenAPI document, and unknown paths too, so a
client without a token learns nothing of the routes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from boards.api.errors import Code, error_body, request_id_of
from boards.api.metrics import ApiMetrics
from boards.tokens import TokenFile

#: Paths answered without a token: the probes (docs/operations.md, "Security").
OPEN_PATHS = frozenset({"/health", "/health/ready"})
REALM = 'Bearer realm="boards"'
SCHEME = "bearer"  # the name of the OpenAPI security scheme

#: reason -> (detail, WWW-Authenticate), per RFC 6750 section 3: no error code when the
#: request carried no bearer credentials, ``invalid_token`` when it carried a wrong one.
_REFUSALS = {
    "missing": ("send Authorization: Bearer <token>", REALM),
    "invalid": ("the bearer token is not valid", f'{REALM}, error="invalid_token"'),
}


def _authorization(scope: Scope) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            return bytes(value)
    return None


def refusal_reason(scope: Scope, tokens: TokenFile) -> str | None:
    """None when the request may pass, else why not: ``missing`` or ``invalid``."""
    header = _authorization(scope)
    if header is None:
        return "missing"
    scheme, _, credentials = header.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return "missing"  # other credentials (Basic, ...) are no bearer token
    credentials = credentials.strip()
    return None if credentials and tokens.accepts(credentials) else "invalid"


class BearerAuth:
    def __init__(self, app: ASGIApp, tokens: TokenFile, metrics: ApiMetrics) -> None:
        self.app = app
        self.tokens = tokens
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        reason = refusal_reason(scope, self.tokens)
        if reason is None:
            await self.app(scope, receive, send)
            return
        self.metrics.auth_failures.labels(reason).inc()
        detail, challenge = _REFUSALS[reason]
        body = error_body(Code.UNAUTHORIZED, detail, request_id_of(scope))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            (b"www-authenticate", challenge.encode("ascii")),
        ]
        if any(key in (b"content-length", b"transfer-encoding") for key, _ in scope["headers"]):
            # The body is never read, so the connection cannot carry another request.
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def declare_bearer(app: FastAPI) -> None:
    """Make the OpenAPI document declare the bearer scheme, and it and a 401 on every
    operation outside :data:`OPEN_PATHS`."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})[SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "a token of BOARDS_API_TOKENS_FILE",
        }
        error = (
            {"$ref": "#/components/schemas/ErrorOut"}
            if "ErrorOut" in components.get("schemas", {})
            else {"type": "object"}
        )
        for path, operations in schema.get("paths", {}).items():
            if path in OPEN_PATHS:
                continue
            for operation in operations.values():
                operation["security"] = [{SCHEME: []}]
                operation.setdefault("responses", {})["401"] = {
                    "description": "no valid bearer token",
                    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": error}},
                }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
