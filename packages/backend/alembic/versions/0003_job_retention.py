"""job retention: a partial index on finished_at, and a finish time for every finished job

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINISHED = sa.text("finished_at IS NOT NULL")


def upgrade() -> None:
    # Jobs that finished before revision 0002 have no finish time; their last update is one, so
    # retention counts from it instead of keeping them for ever.
    op.execute(
        "UPDATE jobs SET finished_at = updated_at"
        " WHERE finished_at IS NULL AND status IN ('succeeded', 'failed')"
    )
    # IF NOT EXISTS: on a table that grew for months before retention, an operator can build the
    # index first with CREATE INDEX CONCURRENTLY (docs/operations.md, "Migrations"), and this
    # step finds it. (CONCURRENTLY here would deadlock with replicas waiting on the migration lock.)
    op.create_index(
        "ix_jobs_finished_at",
        "jobs",
        ["finished_at"],
        postgresql_where=FINISHED,
        sqlite_where=FINISHED,
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_finished_at", table_name="jobs")
