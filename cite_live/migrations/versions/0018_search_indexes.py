"""search: text indexes over search_text (SQLite FTS5 trigram, PostgreSQL pg_trgm)

Revision ID: 0018_search_indexes
Revises: 0017_job_chunks
Create Date: 2026-12-05 20:10:00

Search matches every word of a query anywhere in ``search_text`` (LIKE '%word%'), which no
B-tree serves: each search read every row, 206 ms at 100,000 productions. Both databases
index substrings by their trigrams (see cite_live.search):

- SQLite: an FTS5 table per searched table, tokenizer ``trigram``, with external content (the
  index holds trigrams only; the text stays in its table). Triggers keep it in step with
  every write, in the writer's transaction, whatever writes (the ORM, a bulk insert, a
  cascade). ``productions`` is altered in place, never copied (see 0007): a batch copy would
  drop these triggers with the original table, and tests/test_search.py checks they exist.
- PostgreSQL: GIN indexes with ``gin_trgm_ops``, which serve LIKE '%word%' as it is written.
  pg_trgm ships with PostgreSQL (contrib) and is a trusted extension since PostgreSQL 13: the
  database's owner may create it. Where it cannot be created, the migration stops and says
  what to run as a superuser; search never silently goes back to reading every row.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018_search_indexes"
down_revision: str | None = "0017_job_chunks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, the column FTS5 reads its rowid from): productions' key is text, so its rowid.
TABLES = (("productions", "rowid"), ("artists", "id"))


def _sqlite_upgrade(table: str, rowid: str) -> None:
    fts = f"{table}_search"
    op.execute(
        f"CREATE VIRTUAL TABLE {fts} USING fts5(search_text, content='{table}', "
        f"content_rowid='{rowid}', tokenize='trigram')"
    )
    # External content: a row leaves the index by being given back exactly as it was indexed.
    # (Every name here comes from TABLES, none from outside: S608.)
    forget = (
        f"INSERT INTO {fts}({fts}, rowid, search_text) VALUES ('delete', old.{rowid}, "  # noqa: S608
        "old.search_text);"
    )
    learn = f"INSERT INTO {fts}(rowid, search_text) VALUES (new.{rowid}, new.search_text);"  # noqa: S608
    op.execute(f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {learn} END")
    op.execute(f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {forget} END")
    op.execute(
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF search_text ON {table} "
        f"BEGIN {forget} {learn} END"
    )
    op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")  # noqa: S608


def _postgresql_upgrade() -> None:
    connection = op.get_bind()
    try:
        with connection.begin_nested():
            op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:
        raise RuntimeError(
            "search needs PostgreSQL's pg_trgm extension, which this database user may not "
            "create: run 'CREATE EXTENSION pg_trgm;' in this database as a superuser (or its "
            "owner, PostgreSQL 13 and later), then start again"
        ) from exc
    for table, _ in TABLES:
        op.execute(
            f"CREATE INDEX ix_{table}_search_trgm ON {table} USING gin (search_text gin_trgm_ops)"
        )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table, rowid in TABLES:
            _sqlite_upgrade(table, rowid)
    elif dialect == "postgresql":
        _postgresql_upgrade()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table, _ in TABLES:
        if dialect == "sqlite":
            for event in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_search_{event}")
            op.execute(f"DROP TABLE IF EXISTS {table}_search")
        elif dialect == "postgresql":
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_search_trgm")
    # pg_trgm stays: other schemas of the database may use it.
