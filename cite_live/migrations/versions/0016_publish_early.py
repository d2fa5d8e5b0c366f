"""publish early: a production plays while it processes, and its artist may let everyone hear it

Revision ID: 0016_publish_early
Revises: 0015_production_language
Create Date: 2026-12-05 17:00:00

``productions.publish_early`` (off for every production there is): its artist lets everyone who
may see it play it as soon as its preview plays, before it is finished. A media version may be in
the state ``preview`` (its playlists still growing) while its job runs.

``productions`` is altered in place (a batch copy on SQLite would drop the rows referring to it,
as 0007 explains). ``media_versions`` has to be copied on SQLite, which changes a CHECK
constraint no other way: dropping the old table sets every production's
``current_version_id`` to NULL (``ON DELETE SET NULL``), so the pointers are read before and
written back after, in the same transaction.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_publish_early"
down_revision: str | None = "0015_production_language"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_media_versions_state_allowed"
BEFORE = ("building", "published", "retired")
AFTER = ("building", "preview", "published", "retired")


def _states(states: tuple[str, ...]) -> None:
    """The version states the CHECK constraint allows become ``states``."""
    allowed = "state IN ({})".format(", ".join(f"'{state}'" for state in states))
    bind = op.get_bind()
    productions = sa.table(
        "productions", sa.column("id", sa.String), sa.column("current_version_id", sa.Integer)
    )
    pointers = bind.execute(
        sa.select(productions.c.id, productions.c.current_version_id).where(
            productions.c.current_version_id.is_not(None)
        )
    ).all()
    with op.batch_alter_table("media_versions", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(CONSTRAINT), type_="check")
        batch_op.create_check_constraint(op.f(CONSTRAINT), allowed)
    if bind.dialect.name == "sqlite":
        for production_id, version_id in pointers:
            bind.execute(
                productions.update()
                .where(productions.c.id == production_id)
                .values(current_version_id=version_id)
            )


def upgrade() -> None:
    op.add_column(
        "productions",
        sa.Column("publish_early", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    _states(AFTER)


def downgrade() -> None:
    # A preview belongs to a job that has not finished: without the state, it goes (its job
    # publishes a version of its own when it finishes, or fails).
    op.execute("DELETE FROM media_versions WHERE state = 'preview'")
    _states(BEFORE)
    op.drop_column("productions", "publish_early")
