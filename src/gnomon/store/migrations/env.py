"""Alembic environment: runs on the connection handed over by Database.upgrade()."""

from alembic import context

from gnomon.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `alembic` on the command line lands here
    raise SystemExit("run migrations with `gnomon db upgrade`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
