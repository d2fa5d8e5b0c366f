"""productions: published as soon as playable

Revision ID: 0016_publish_early
Revises: 0015_production_language
Create Date: 2026-12-05 17:10:00

``productions.publish_early``: while its transcode runs, a production whose first segments are
published (a media version in state ``building``) may be played by everyone who may see it,
not only by its owner and the admins.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_publish_early"
down_revision: str | None = "0015_production_language"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # ALTER TABLE, never a batch (see 0015): the server default fills the rows already there.
    op.add_column(
        "productions",
        sa.Column("publish_early", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("productions", "publish_early")
