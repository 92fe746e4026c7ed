"""schemathesis hooks for test_api_schema (loaded by path through SCHEMATHESIS_HOOKS).

An Idempotency-Key is bound to its first request: the same key with another body is the
documented 422 (test_api_jobs checks it). Generated cases reuse keys across different bodies,
so each valid key is made unique; invalid keys are left as generated, to be refused.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

_VALID_KEY = re.compile(r"[!-~]{1,255}")


@schemathesis.hook
def map_headers(context: Any, headers: dict[str, Any] | None) -> dict[str, Any] | None:
    if not headers:
        return headers
    for name, value in list(headers.items()):
        valid = isinstance(value, str) and _VALID_KEY.fullmatch(value)
        if name.lower() == "idempotency-key" and valid:
            headers[name] = (value + "." + uuid.uuid4().hex)[-255:]
    return headers
