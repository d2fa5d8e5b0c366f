"""a replacement's original kept on its job until published

Revision ID: 0004_job_originals
Revises: 0003
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_job_originals"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("original_key", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("original_filename", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("original_bytes", sa.BigInteger(), nullable=True))
    # Originals removed before this revision (refused files) kept counting against the quota.
    op.execute("UPDATE productions SET original_bytes = NULL WHERE original_key IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("original_bytes")
        batch_op.drop_column("original_filename")
        batch_op.drop_column("original_key")
