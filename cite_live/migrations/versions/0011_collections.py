"""collections: festivals' highlights, seasons, albums and podcast series of productions

Revision ID: 0011_collections
Revises: 0008_mail_sessions
Create Date: 2026-12-05 08:00:00

``collections`` holds each collection (kind, state, French and English titles and
descriptions, cover, owner); ``collection_items`` the productions in it, in order, each once.
Deleting a collection or a production removes its items; deleting its owner's account leaves
the collection to the site.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_collections"
down_revision: str | None = "0010_plays"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("slug", sa.String(length=220), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("title_en", sa.String(length=300), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("description_en", sa.Text(), nullable=True),
        sa.Column("cover_key", sa.String(length=400), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('festival', 'season', 'album', 'podcast')",
            name=op.f("ck_collections_kind_allowed"),
        ),
        sa.CheckConstraint(
            "state IN ('draft', 'public')", name=op.f("ck_collections_state_allowed")
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_collections_owner_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collections")),
        sa.UniqueConstraint("slug", name=op.f("uq_collections_slug")),
    )
    op.create_index("ix_collections_listing", "collections", ["state", "updated_at"])
    op.create_index(op.f("ix_collections_owner_id"), "collections", ["owner_id"])
    op.create_table(
        "collection_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.String(length=16), nullable=False),
        sa.Column("production_id", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_collection_items_collection_id_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["production_id"],
            ["productions.id"],
            name=op.f("fk_collection_items_production_id_productions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collection_items")),
        sa.UniqueConstraint(
            "collection_id", "production_id", name=op.f("uq_collection_items_collection_id")
        ),
    )
    op.create_index(
        op.f("ix_collection_items_collection_id"), "collection_items", ["collection_id"]
    )
    op.create_index(
        op.f("ix_collection_items_production_id"), "collection_items", ["production_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_collection_items_production_id"), table_name="collection_items")
    op.drop_index(op.f("ix_collection_items_collection_id"), table_name="collection_items")
    op.drop_table("collection_items")
    op.drop_index(op.f("ix_collections_owner_id"), table_name="collections")
    op.drop_index("ix_collections_listing", table_name="collections")
    op.drop_table("collections")
