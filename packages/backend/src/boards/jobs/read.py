"""Reading jobs: one job for the API, and the figures ``/metrics`` exports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from boards.db import Database
from boards.models import Job, JobStatus, utcnow


def get_job(db: Database, job_id: str) -> Job | None:
    with db.session() as session:
        return session.get(Job, job_id)


def status_counts(db: Database) -> dict[str, int]:
    """Jobs per status (every status present, zero when none)."""
    counts = dict.fromkeys(JobStatus.ALL, 0)
    with db.session() as session:
        for status, count in session.execute(select(Job.status, func.count()).group_by(Job.status)):
            counts[status] = int(count)
    return counts


def oldest_queued_age(db: Database, *, now: datetime | None = None) -> float:
    """Seconds the oldest ``queued`` job has waited since it was created (0 when none)."""
    with db.session() as session:
        oldest = session.scalar(
            select(func.min(Job.created_at)).where(Job.status == JobStatus.QUEUED)
        )
    if oldest is None:
        return 0.0
    return max(0.0, ((now or utcnow()) - oldest).total_seconds())
