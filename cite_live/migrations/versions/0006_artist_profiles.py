"""artist profiles: an English biography and a photo

Revision ID: 0006_artist_profiles
Revises: 0005_secret_addresses
Create Date: 2026-12-08 10:00:00

Artists edit their own profile from the studio: a biography for English readers beside the
French one, and a photo kept in two sizes (a large one for their page, whose width and height
are stored for the page's layout, and a square crop for cards).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_artist_profiles"
down_revision: str | None = "0005_secret_addresses"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("artists", sa.Column("bio_en", sa.Text(), nullable=True))
    op.add_column("artists", sa.Column("photo_key", sa.String(length=400), nullable=True))
    op.add_column("artists", sa.Column("photo_width", sa.Integer(), nullable=True))
    op.add_column("artists", sa.Column("photo_height", sa.Integer(), nullable=True))
    op.add_column("artists", sa.Column("photo_square_key", sa.String(length=400), nullable=True))


def downgrade() -> None:
    # The photos stay in the store: their keys are gone with these columns.
    op.drop_column("artists", "photo_square_key")
    op.drop_column("artists", "photo_height")
    op.drop_column("artists", "photo_width")
    op.drop_column("artists", "photo_key")
    op.drop_column("artists", "bio_en")
