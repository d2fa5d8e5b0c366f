"""search: artists are found by their English biography too

Revision ID: 0012_search_bio_en
Revises: 0011_collections
Create Date: 2026-12-05 08:40:00

An artist's search text now holds the English biography. The artists who have one get an empty
search text, which the next start indexes again (cite_live.search.needs_reindex and reindex, in
cite_live.services.open_services): the text itself is the application's to make.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_search_bio_en"
down_revision: str | None = "0011_collections"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    artists = sa.table("artists", sa.column("bio_en", sa.Text), sa.column("search_text", sa.Text))
    op.execute(
        artists.update()
        .where(artists.c.bio_en.is_not(None), artists.c.bio_en != "")
        .values(search_text="")
    )


def downgrade() -> None:
    # The English biography stays in the text until the artist is saved again: harmless.
    pass
