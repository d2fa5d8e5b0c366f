"""downloads: an artist lets listeners save a production's file

Revision ID: 0013_downloads
Revises: 0012_search_bio_en
Create Date: 2026-12-05 10:40:00

Off for every production there is: an artist turns it on, on the studio's edit form, for a
production whose licence permits it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_downloads"
down_revision: str | None = "0012_search_bio_en"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ALTER TABLE ... ADD COLUMN, on SQLite too: a batch would copy the table and drop it, and
    # the credits, chapters and tags that refer to it would go with it.
    op.add_column(
        "productions",
        sa.Column("allow_download", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("productions", "allow_download")
