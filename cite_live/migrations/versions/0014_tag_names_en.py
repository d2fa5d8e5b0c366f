"""tags: an optional English name

Revision ID: 0014_tag_names_en
Revises: 0012_search_bio_en
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
    with op.batch_alter_table("tags") as batch:
        batch.add_column(sa.Column("name_en", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tags") as batch:
        batch.drop_column("name_en")
