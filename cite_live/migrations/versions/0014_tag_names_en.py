"""tags: an optional English name

Revision ID: 0014_tag_names_en
Revises: 0013_downloads
Create Date: 2026-12-05 10:40:00

``tags.name_en`` is the name English pages show, given by an admin; without it they show the
name, marked as French.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_tag_names_en"
down_revision: str | None = "0013_downloads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ALTER TABLE, never a batch: on SQLite a batch copies the table and drops the old one, and
    # the productions' links to their tags would go with it.
    op.add_column("tags", sa.Column("name_en", sa.String(length=100), nullable=True))


def downgrade() -> None:
    op.drop_column("tags", "name_en")
