"""job delivery bookkeeping: attempts, lease, enqueue time, idempotency key

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("request_fingerprint", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(
            sa.Column("redeliveries", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        # Existing rows: "last sent" is unknown, so their creation time (the reconciler checks
        # old queued rows against Redis and re-sends those it does not find).
        batch.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE jobs SET enqueued_at = created_at")
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("enqueued_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_unique_constraint("uq_jobs_idempotency_key", ["idempotency_key"])
        batch.create_index("ix_jobs_status_enqueued_at", ["status", "enqueued_at"])
        # The composite index serves status look-ups; a second one would only cost writes.
        batch.drop_index("ix_jobs_status")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.create_index("ix_jobs_status", ["status"])
        batch.drop_index("ix_jobs_status_enqueued_at")
        batch.drop_constraint("uq_jobs_idempotency_key", type_="unique")
        for column in (
            "finished_at",
            "started_at",
            "lease_expires_at",
            "enqueued_at",
            "redeliveries",
            "attempts",
            "request_fingerprint",
            "idempotency_key",
        ):
            batch.drop_column(column)
