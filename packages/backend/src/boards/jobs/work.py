"""The work a job does on its payload: deterministic, free of any storage or queue."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from boards.models import JobStatus

#: Payloads starting with this fail deterministically (no retry).
FAIL_PREFIX = "fail:"


@dataclass(frozen=True)
class Result:
    status: str
    result: dict[str, Any] | None = None
    error: str | None = None


def compute_result(payload: str) -> dict[str, Any]:
    return {
        "characters": len(payload),
        "words": len(payload.split()),
        "sha256": hashlib.sha256(payload.encode("utf-8")).hexdigest(),
    }


def perform(payload: str) -> Result:
    """Run the work; a ``fail:`` payload fails with its own words."""
    if payload.startswith(FAIL_PREFIX):
        error = payload[len(FAIL_PREFIX) :].strip() or "failure requested by payload"
        return Result(JobStatus.FAILED, error=error)
    return Result(JobStatus.SUCCEEDED, result=compute_result(payload))
