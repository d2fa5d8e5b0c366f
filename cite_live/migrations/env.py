"""Alembic environment: the engine is handed in by cite_live.db.migrate."""

from alembic import context

from cite_live.db import in_models
from cite_live.models import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=in_models,
    )
    with context.begin_transaction():
        context.run_migrations()
