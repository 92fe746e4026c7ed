"""What a step of a job's life came to: one type for every answer, not strings beside statuses."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    #: The work ran and its result is recorded.
    SUCCEEDED = "succeeded"
    #: The work ran and failed (a ``fail:`` payload, its time limit, or retries spent).
    FAILED = "failed"
    #: No such job: never stored, or withdrawn after its send failed.
    MISSING = "missing"
    #: Already final: a duplicate delivery, nothing to do.
    DONE = "done"
    #: Running under another delivery's live lease.
    HELD = "held"
    #: This delivery lost its lease to another one while it ran; its result was dropped.
    SUPERSEDED = "superseded"
    #: A stopping worker put the job back to ``queued`` to be sent again.
    HANDED_BACK = "handed_back"
