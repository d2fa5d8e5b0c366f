"""catalogue, media versions and jobs

Revision ID: 0001
Revises:
Create Date: 2026-11-26 20:32:18.957391
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "artists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("bio", sa.Text(), nullable=False),
        sa.Column("commune", sa.String(length=120), nullable=True),
        sa.Column("disciplines", sa.JSON(), nullable=False),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artists")),
        sa.UniqueConstraint("slug", name=op.f("uq_artists_slug")),
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("slug", name=op.f("uq_tags_slug")),
    )
    op.create_table(
        "venues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("commune", sa.String(length=120), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_venues")),
        sa.UniqueConstraint("slug", name=op.f("uq_venues_slug")),
    )
    op.create_table(
        "productions",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("slug", sa.String(length=220), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("title_en", sa.String(length=300), nullable=True),
        sa.Column("title_is_placeholder", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("description_en", sa.Text(), nullable=True),
        sa.Column("recorded_on", sa.Date(), nullable=True),
        sa.Column("venue_id", sa.Integer(), nullable=True),
        sa.Column("session_type", sa.String(length=20), nullable=True),
        sa.Column("licence", sa.String(length=40), nullable=True),
        sa.Column("visibility", sa.String(length=10), nullable=False),
        sa.Column("original_key", sa.String(length=500), nullable=True),
        sa.Column("original_filename", sa.String(length=300), nullable=True),
        sa.Column("current_version_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('audio', 'video')", name=op.f("ck_productions_kind_allowed")),
        sa.CheckConstraint(
            "status IN ('processing', 'ready', 'failed')",
            name=op.f("ck_productions_status_allowed"),
        ),
        sa.CheckConstraint(
            "visibility IN ('public', 'unlisted', 'private')",
            name=op.f("ck_productions_visibility_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["venue_id"],
            ["venues.id"],
            name=op.f("fk_productions_venue_id_venues"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_productions")),
        sa.UniqueConstraint("slug", name=op.f("uq_productions_slug")),
    )
    op.create_table(
        "credits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("production_id", sa.String(length=16), nullable=False),
        sa.Column("artist_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=60), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["artist_id"],
            ["artists.id"],
            name=op.f("fk_credits_artist_id_artists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["production_id"],
            ["productions.id"],
            name=op.f("fk_credits_production_id_productions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credits")),
        sa.UniqueConstraint(
            "production_id", "artist_id", "role", name=op.f("uq_credits_production_id")
        ),
    )
    with op.batch_alter_table("credits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_credits_artist_id"), ["artist_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_credits_production_id"), ["production_id"], unique=False
        )

    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("production_id", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_jobs_state_allowed")
        ),
        sa.ForeignKeyConstraint(
            ["production_id"],
            ["productions.id"],
            name=op.f("fk_jobs_production_id_productions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_jobs_production_id"), ["production_id"], unique=False)

    op.create_table(
        "media_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("production_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("prefix", sa.String(length=300), nullable=False),
        sa.Column("master_key", sa.String(length=400), nullable=True),
        sa.Column("poster_key", sa.String(length=400), nullable=True),
        sa.Column("cover_key", sa.String(length=400), nullable=True),
        sa.Column("waveform_key", sa.String(length=400), nullable=True),
        sa.Column("storyboard_image_key", sa.String(length=400), nullable=True),
        sa.Column("storyboard_vtt_key", sa.String(length=400), nullable=True),
        sa.Column("ladder", sa.JSON(), nullable=False),
        sa.Column("loudness_lufs", sa.Float(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('building', 'published', 'retired')",
            name=op.f("ck_media_versions_state_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["production_id"],
            ["productions.id"],
            name=op.f("fk_media_versions_production_id_productions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_versions")),
    )
    with op.batch_alter_table("media_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_media_versions_production_id"), ["production_id"], unique=False
        )

    # The production ↔ version cycle: this key can only be added once both tables exist.
    with op.batch_alter_table("productions", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_productions_current_version_id_media_versions"),
            "media_versions",
            ["current_version_id"],
            ["id"],
            ondelete="SET NULL",
        )

    op.create_table(
        "production_tags",
        sa.Column("production_id", sa.String(length=16), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["production_id"],
            ["productions.id"],
            name=op.f("fk_production_tags_production_id_productions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f("fk_production_tags_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("production_id", "tag_id", name=op.f("pk_production_tags")),
    )


def downgrade() -> None:
    op.drop_table("production_tags")
    with op.batch_alter_table("productions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_productions_current_version_id_media_versions"), type_="foreignkey"
        )
    with op.batch_alter_table("media_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_versions_production_id"))

    op.drop_table("media_versions")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_production_id"))

    op.drop_table("jobs")
    with op.batch_alter_table("credits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_credits_production_id"))
        batch_op.drop_index(batch_op.f("ix_credits_artist_id"))

    op.drop_table("credits")
    op.drop_table("productions")
    op.drop_table("venues")
    op.drop_table("tags")
    op.drop_table("artists")
