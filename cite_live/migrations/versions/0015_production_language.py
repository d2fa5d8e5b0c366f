"""productions: the language of what is spoken or sung

Revision ID: 0015_production_language
Revises: 0014_tag_names_en
Create Date: 2026-12-05 14:30:00

``productions.language`` (BCP 47, French unless said otherwise) is the LANGUAGE of a video's
audio rendition in its master playlist when the file's own stream is not tagged.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_production_language"
down_revision: str | None = "0014_tag_names_en"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ALTER TABLE, never a batch: on SQLite a batch copies the table and drops the old one, and
    # the rows pointing at the productions would go with it. The server default fills the
    # productions already there.
    op.add_column(
        "productions",
        sa.Column("language", sa.String(length=35), nullable=False, server_default="fr"),
    )


def downgrade() -> None:
    # SQLite (3.35 and later) drops a column in place too.
    op.drop_column("productions", "language")
