"""setlists, search text, downloads

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 21:12:38.588873
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chapters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("production_id", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("start", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["production_id"],
            ["productions.id"],
            name=op.f("fk_chapters_production_id_productions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chapters")),
    )
    with op.batch_alter_table("chapters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_chapters_production_id"), ["production_id"], unique=False
        )

    with op.batch_alter_table("artists", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("featured", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("search_text", sa.Text(), server_default="", nullable=False))

    with op.batch_alter_table("media_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("download_key", sa.String(length=400), nullable=True))

    with op.batch_alter_table("productions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_text", sa.Text(), server_default="", nullable=False))

    with op.batch_alter_table("productions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_productions_listing", ["status", "visibility", "published_at"], unique=False
        )
        batch_op.create_index(
            "ix_productions_venue_listing", ["status", "visibility", "venue_id"], unique=False
        )
        batch_op.create_index(
            "ix_productions_session_listing", ["status", "visibility", "session_type"], unique=False
        )
    with op.batch_alter_table("production_tags", schema=None) as batch_op:
        batch_op.create_index("ix_production_tags_tag_id", ["tag_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("production_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_production_tags_tag_id")
    with op.batch_alter_table("productions", schema=None) as batch_op:
        batch_op.drop_index("ix_productions_session_listing")
        batch_op.drop_index("ix_productions_venue_listing")
        batch_op.drop_index("ix_productions_listing")

    with op.batch_alter_table("productions", schema=None) as batch_op:
        batch_op.drop_column("search_text")

    with op.batch_alter_table("media_versions", schema=None) as batch_op:
        batch_op.drop_column("download_key")

    with op.batch_alter_table("artists", schema=None) as batch_op:
        batch_op.drop_column("search_text")
        batch_op.drop_column("featured")

    with op.batch_alter_table("chapters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chapters_production_id"))

    op.drop_table("chapters")
