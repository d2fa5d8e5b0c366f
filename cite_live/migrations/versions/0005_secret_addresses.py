"""secret addresses: unlisted, private and unpublished productions leave the plain slugs

Revision ID: 0005_secret_addresses
Revises: 0004_job_originals
Create Date: 2026-12-04 22:40:00

Until now an unlisted production's address was its plain slug ("good-2"), found by counting,
and a hidden production held a plain slug that pushed newcomers to "-2". Every production that
is not listed (ready and public) gets the address cite_live.catalogue gives such productions
now, its slug followed by 64 random bits; a listed one keeps its address.
"""

import base64
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_secret_addresses"
down_revision: str | None = "0004_job_originals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The same form as cite_live.catalogue.secret_slug, written out: a migration keeps doing what it
# did when it was written, whatever the application's code becomes.
SECRET_BYTES = 8


def _secret() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()


def upgrade() -> None:
    with op.batch_alter_table("productions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("former_slug", sa.String(length=220), nullable=True))
        batch_op.create_index(batch_op.f("ix_productions_former_slug"), ["former_slug"])

    productions = sa.table(
        "productions",
        sa.column("id", sa.String),
        sa.column("slug", sa.String),
        sa.column("status", sa.String),
        sa.column("visibility", sa.String),
    )
    connection = op.get_bind()
    hidden = connection.execute(
        sa.select(productions.c.id, productions.c.slug).where(
            sa.or_(productions.c.status != "ready", productions.c.visibility != "public")
        )
    ).all()
    for production_id, slug in hidden:
        connection.execute(
            productions.update()
            .where(productions.c.id == production_id)
            .values(slug=f"{slug}-{_secret()}")
        )


def downgrade() -> None:
    # The secret addresses stay: the plain slugs they came from may have been taken since.
    with op.batch_alter_table("productions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_productions_former_slug"))
        batch_op.drop_column("former_slug")
