"""jobs: the chunks of a segmented transcode

Revision ID: 0017_job_chunks
Revises: 0016_publish_early
Create Date: 2026-12-05 17:20:00

A long video is transcoded in chunks that any worker may take (see cite_live.jobs.segmented):
each chunk is a job of its own (type ``chunk``) pointing at the transcode it belongs to, with
what to encode (``task``) and what it has encoded so far (``output``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_job_chunks"
down_revision: str | None = "0016_publish_early"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A batch, which on SQLite copies the table: nothing refers to jobs, so dropping the old
    # copy takes no other row with it (unlike productions, see 0007).
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("chunk", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("task", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("output", sa.JSON(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_jobs_parent_id_jobs"), "jobs", ["parent_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_index(batch_op.f("ix_jobs_parent_id"), ["parent_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_parent_id"))
        batch_op.drop_constraint(batch_op.f("fk_jobs_parent_id_jobs"), type_="foreignkey")
        for column in ("output", "task", "chunk", "parent_id"):
            batch_op.drop_column(column)
