from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from cite_live.db import make_engine, migrate
from cite_live.models import Base


def test_migrations_build_exactly_the_models(any_database_url: str) -> None:
    engine = make_engine(any_database_url)
    try:
        migrate(engine)
        migrate(engine)  # a second run is a no-op
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
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
