"""uploads: a writer lease in the row, and parts assembled by the object store

Revision ID: 0019_upload_parts
Revises: 0018_search_indexes
Create Date: 2026-12-05 20:00:00

Any web process may take any request of an upload (no sticky routing): who writes, completes,
stores or expires one is decided by a lease in its row (``writer``, ``writer_until``), taken by
one conditional UPDATE. With an S3 store an upload's bytes go to the store as they come, as the
parts of a multipart upload at ``key`` (its production's original): ``parts_id`` is the store's
id of it, ``parts`` what each part holds (number, ETag, size), ``part_reserved`` the highest
part number given to a writer (never given twice, so a late writer cannot overwrite a part
another recorded). Every column is nullable: uploads
begun before keep their partial files.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_upload_parts"
down_revision: str | None = "0018_search_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("writer", "writer_until", "key", "parts_id", "parts", "part_reserved")


def upgrade() -> None:
    # Nullable columns added in place (no batch copy): rows elsewhere refer to uploads.
    op.add_column("uploads", sa.Column("writer", sa.String(length=32), nullable=True))
    op.add_column("uploads", sa.Column("writer_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("uploads", sa.Column("key", sa.String(length=1024), nullable=True))
    op.add_column("uploads", sa.Column("parts_id", sa.String(length=1024), nullable=True))
    op.add_column("uploads", sa.Column("parts", sa.JSON(), nullable=True))
    op.add_column("uploads", sa.Column("part_reserved", sa.Integer(), nullable=True))


def downgrade() -> None:
    # In place too (SQLite drops a column since 3.35): a batch copy would drop the old table,
    # and with it every job's upload_id (ON DELETE SET NULL).
    for column in reversed(COLUMNS):
        op.drop_column("uploads", column)
