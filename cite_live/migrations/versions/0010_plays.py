"""plays: listens counted without cookies or addresses, and the daily salt of visitor hashes

Revision ID: 0010_plays
Revises: 0008_mail_sessions
Create Date: 2026-12-05 08:00:00

``plays`` holds one row per listen (production, day, source, the embedding site's origin), with
a visitor hash made with ``play_salts``' salt of the day, which is deleted the day after.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_plays"
down_revision: str | None = "0009_partners"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "play_salts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_play_salts")),
    )
    op.create_table(
        "plays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("production_id", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("visitor", sa.String(length=64), nullable=False),
        sa.Column("dedupe", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("source IN ('site', 'embed')", name=op.f("ck_plays_source_allowed")),
        sa.ForeignKeyConstraint(
            ["production_id"],
            ["productions.id"],
            name=op.f("fk_plays_production_id_productions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plays")),
        sa.UniqueConstraint("dedupe", name=op.f("uq_plays_dedupe")),
    )
    op.create_index(op.f("ix_plays_day"), "plays", ["day"], unique=False)
    op.create_index("ix_plays_production_day", "plays", ["production_id", "day"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_plays_production_day", table_name="plays")
    op.drop_index(op.f("ix_plays_day"), table_name="plays")
    op.drop_table("plays")
    op.drop_table("play_salts")
