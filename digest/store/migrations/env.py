"""Alembic environment: digest runs migrations in-process on the connection it hands over."""

from alembic import context

from digest.store.tables import SQLModel

target_metadata = SQLModel.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `digest db upgrade`, not the alembic CLI")
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
