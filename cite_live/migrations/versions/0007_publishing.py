"""publishing: drafts, and the addresses a production held before

Revision ID: 0007_publishing
Revises: 0006_artist_profiles
Create Date: 2026-12-08 10:00:00

A production uploaded by an artist is now a draft (``publish_as``: the visibility it takes once
published) until the artist publishes it; every existing production was published already.
The addresses a production held before its present one go to ``production_slugs``; the one
such address kept until now (``former_slug``, the secret address of a production made public
from unlisted) is the first of them.

``productions`` is altered in place, never copied: on SQLite a batch copy drops the original
table, and with foreign keys on, that deletes every row that refers to it (credits, versions,
jobs… ``ON DELETE CASCADE``). SQLite (3.35 and later) drops a column in place, and adds one with
its CHECK constraints in place.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_publishing"
down_revision: str | None = "0006_artist_profiles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALLOWED = "publish_as IN ('public', 'unlisted', 'private')"
DRAFTS_ARE_PRIVATE = "publish_as IS NULL OR visibility = 'private'"


def upgrade() -> None:
    op.create_table(
        "production_slugs",
        sa.Column("slug", sa.String(length=220), nullable=False),
        sa.Column("production_id", sa.String(length=16), nullable=False),
        sa.Column("secret", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["production_id"],
            ["productions.id"],
            name=op.f("fk_production_slugs_production_id_productions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_production_slugs")),
    )
    op.create_index(
        op.f("ix_production_slugs_production_id"), "production_slugs", ["production_id"]
    )
    productions = sa.table(
        "productions", sa.column("id", sa.String), sa.column("former_slug", sa.String)
    )
    slugs = sa.table(
        "production_slugs",
        sa.column("slug", sa.String),
        sa.column("production_id", sa.String),
        sa.column("secret", sa.Boolean),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        slugs.insert().from_select(
            ["slug", "production_id", "secret", "created_at"],
            sa.select(
                productions.c.former_slug,
                productions.c.id,
                sa.true(),
                sa.func.current_timestamp(),
            ).where(productions.c.former_slug.is_not(None)),
        )
    )

    op.drop_index(op.f("ix_productions_former_slug"), table_name="productions")
    op.drop_column("productions", "former_slug")
    # Null for every existing row: they were all published.
    op.add_column(
        "productions",
        sa.Column(
            "publish_as",
            sa.String(length=10),
            sa.CheckConstraint(ALLOWED, name=op.f("ck_productions_publish_as_allowed")),
            sa.CheckConstraint(DRAFTS_ARE_PRIVATE, name=op.f("ck_productions_drafts_are_private")),
            nullable=True,
        ),
    )


def downgrade() -> None:
    # Drafts stay private: nobody published them. The column goes with its constraints.
    op.drop_column("productions", "publish_as")
    op.add_column("productions", sa.Column("former_slug", sa.String(length=220), nullable=True))
    op.create_index(op.f("ix_productions_former_slug"), "productions", ["former_slug"])
    # Of the secret addresses a production held, the newest is the one former_slug kept.
    op.execute(
        "UPDATE productions SET former_slug = ("
        " SELECT s.slug FROM production_slugs s WHERE s.production_id = productions.id"
        " AND s.secret ORDER BY s.created_at DESC LIMIT 1)"
    )
    op.drop_index(op.f("ix_production_slugs_production_id"), table_name="production_slugs")
    op.drop_table("production_slugs")
