"""partners: the sites allowed to frame a production's player, and where each may play

Revision ID: 0009_partners
Revises: 0008_mail_sessions
Create Date: 2026-12-09 10:00:00

``partners`` lists the sites the admins allow to frame the players of productions kept for
partners; ``productions.embed_policy`` says where each production's player may be framed
(``anywhere``, the default every existing production gets, ``partners`` or ``site``).

``productions`` is altered in place, never copied: on SQLite a batch copy drops the original
table, and with foreign keys on, that deletes every row that refers to it (credits, versions,
jobs… ``ON DELETE CASCADE``), as 0007 explains. SQLite adds a column with its default and its
CHECK constraint in place, and drops it in place (3.35 and later).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_partners"
down_revision: str | None = "0008_mail_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ALLOWED = "embed_policy IN ('anywhere', 'partners', 'site')"


def upgrade() -> None:
    op.create_table(
        "partners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("origins", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partners")),
    )
    op.add_column(
        "productions",
        sa.Column(
            "embed_policy",
            sa.String(length=10),
            sa.CheckConstraint(ALLOWED, name=op.f("ck_productions_embed_policy_allowed")),
            server_default="anywhere",
            nullable=False,
        ),
    )


def downgrade() -> None:
    # Every production may be framed anywhere again. The column goes with its constraint.
    op.drop_column("productions", "embed_policy")
    op.drop_table("partners")
