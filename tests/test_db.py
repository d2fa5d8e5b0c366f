import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, text

from cite_live.db import alembic_config, in_models, make_engine, migrate, refresh_statistics
from cite_live.models import Artist, Base, Credit, Production
from cite_live.web.catalogue import related_query


def test_migrations_build_exactly_the_models(any_database_url: str) -> None:
    engine = make_engine(any_database_url)
    try:
        migrate(engine)
        migrate(engine)  # a second run is a no-op
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_object": in_models})
            diff = compare_metadata(context, Base.metadata)
            tables = set(inspect(connection).get_table_names())
        assert diff == []
        assert {"artists", "productions", "credits", "media_versions", "jobs"} <= tables
    finally:
        engine.dispose()


def test_sqlite_file_is_created_under_its_folder(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'deep' / 'db.sqlite'}")
    try:
        migrate(engine)
    finally:
        engine.dispose()
    assert (tmp_path / "deep" / "db.sqlite").is_file()


def test_statistics_lead_sqlite_to_an_artists_credits(tmp_path: Path) -> None:
    """ "The artists' other sessions" of an artist with one credit among thousands of sessions:
    without statistics SQLite walked every production in date order; with them (what
    open_services and the sweeper keep up to date) it looks up the artist's credits."""
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        migrate(engine)
        now = datetime.now(UTC)
        productions = [
            {
                "id": f"p{n:05d}",
                "slug": f"p{n:05d}",
                "title": f"Session {n}",
                "kind": "audio",
                "status": "ready",
                "visibility": "public",
                "description": "",
                "title_is_placeholder": False,
                "created_at": now,
                "updated_at": now,
                "published_at": now - timedelta(minutes=n),
            }
            for n in range(3000)
        ]
        artists = [{"id": n, "name": f"A{n}", "slug": f"a{n}", "bio": ""} for n in range(1, 101)]
        # Artist 1 is on every session but one; artist 2 only on the last.
        credits = [
            {"production_id": row["id"], "artist_id": 1 if n < 2999 else 2, "role": "performer"}
            for n, row in enumerate(productions)
        ]
        with engine.begin() as connection:
            connection.execute(insert(Artist), artists)
            connection.execute(insert(Production), productions)
            connection.execute(insert(Credit), credits)

        def plan() -> str:
            statement = related_query("p00000", {2}).compile(
                engine, compile_kwargs={"literal_binds": True}
            )
            with engine.connect() as connection:
                rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}").all()
            return "\n".join(str(row[-1]) for row in rows)

        assert "ix_productions_listing" in plan()
        refresh_statistics(engine)
        after = plan()
        assert "ix_credits_artist_id" in after and "ix_productions_listing" not in after, after
        with engine.connect() as connection:
            analysed = {
                row[0] for row in connection.exec_driver_sql("SELECT tbl FROM sqlite_stat1")
            }
        assert {"productions", "credits"} <= analysed
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_statistics_are_left_to_postgresql(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    try:
        migrate(engine)
        refresh_statistics(engine)  # autovacuum's work there: nothing to do, nothing fails
    finally:
        engine.dispose()


def test_the_language_migration_keeps_every_production_and_makes_it_french(
    any_database_url: str,
) -> None:
    """0015 adds ``productions.language`` in place: the rows pointing at a production (its
    credits) stay, and a production already there is French, as new ones are."""
    engine = make_engine(any_database_url)
    config = alembic_config(engine)
    try:
        command.upgrade(config, "0014_tag_names_en")
        now = datetime.now(UTC)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO productions (id, slug, title, title_is_placeholder, kind, status,"
                    " description, visibility, created_at, updated_at, search_text) VALUES"
                    " ('p0', 'good', 'Good', false, 'video', 'ready', '', 'public', :now, :now, '')"
                ),
                {"now": now},
            )
            connection.execute(
                text(
                    "INSERT INTO artists (id, name, slug, bio, disciplines, links, created_at)"
                    " VALUES (1, 'Nora', 'nora', '', '[]', '[]', :now)"
                ),
                {"now": now},
            )
            connection.execute(
                text(
                    "INSERT INTO credits (production_id, artist_id, role, position)"
                    " VALUES ('p0', 1, 'performer', 0)"
                )
            )
        migrate(engine)
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT language FROM productions")) == "fr"
            assert connection.scalar(text("SELECT count(*) FROM credits")) == 1
        command.downgrade(config, "0014_tag_names_en")
        with engine.connect() as connection:
            assert "language" not in {
                c["name"] for c in inspect(connection).get_columns("productions")
            }
            assert connection.scalar(text("SELECT count(*) FROM credits")) == 1
    finally:
        engine.dispose()


def _migrate_at_once(database_url: str, data_dir: Path, processes: int) -> list[tuple[int, str]]:
    """Start ``processes`` `cite-live migrate` together, as a first start or a rolling upgrade
    of several machines does; their exit codes and error output."""
    env = {**os.environ, "CITE_LIVE_DATABASE_URL": database_url}
    env["CITE_LIVE_DATA_DIR"] = str(data_dir)
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "cite_live", "migrate"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    return [(process.wait(timeout=120), process.communicate()[1]) for process in started]


def test_migrations_started_together_all_succeed(any_database_url: str, tmp_path: Path) -> None:
    results = _migrate_at_once(any_database_url, tmp_path / "data", 4)
    assert [code for code, _ in results] == [0, 0, 0, 0], [err[-2000:] for _, err in results]
    engine = make_engine(any_database_url)
    try:
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
            context = MigrationContext.configure(connection, opts={"include_object": in_models})
            diff = compare_metadata(context, Base.metadata)
        heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
        assert [row[0] for row in versions] == heads
        assert diff == []
    finally:
        engine.dispose()
