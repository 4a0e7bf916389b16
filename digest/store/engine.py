"""Opening the database: SQLite in WAL mode by default, any SQLAlchemy URL otherwise; migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import create_engine

from digest.errors import StoreError, without_password
from digest.store.trouble import database_trouble, database_words

_MIGRATIONS = Path(__file__).parent / "migrations"


def shown_url(url: str) -> str:
    """A database URL as an error or `digest status` shows it: its password hidden (the
    terminal, the journal a service logs to), also in a URL SQLAlchemy cannot parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return without_password(url)


def resolve_url(url: str, base_dir: Path) -> str:
    """Make a relative SQLite path relative to the config's folder, not the working directory."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise StoreError(
            f"database_url {shown_url(url)!r} is not a database URL",
            "write it as 'sqlite:///digest.db' or 'postgresql+psycopg://user@host/db'",
        ) from exc
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database or "")
        if not path.is_absolute():
            return str(parsed.set(database=str((base_dir / path).resolve())))
    return url


# How long a SQLite statement waits for another writer's lock before "database is locked":
# the longest one try of a write can take (deliver.recording keeps a lease's worth of it).
BUSY_TIMEOUT_SECONDS = 10.0


def open_engine(url: str) -> Engine:
    """Create the engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    try:
        parsed = make_url(url)
        is_sqlite = parsed.get_backend_name() == "sqlite"
        if is_sqlite and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database or "").parent.mkdir(parents=True, exist_ok=True)
        connect_args: dict[str, Any] = {"check_same_thread": False} if is_sqlite else {}
        engine = create_engine(url, connect_args=connect_args, pool_pre_ping=not is_sqlite)
    except (ArgumentError, ModuleNotFoundError, OSError) as exc:
        raise StoreError(
            f"cannot open database {shown_url(url)!r}: {exc}",
            "for PostgreSQL install the driver (`pip install 'digest[postgres]'`) and use "
            "'postgresql+psycopg://...'; for SQLite check the folder is writable",
        ) from exc
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every pending migration; run on every start so the schema is always current."""
    cfg = _alembic_config()
    try:
        with (
            engine.connect() as connection,
            _foreign_keys_checked_at_the_end(connection),
            connection.begin(),
        ):
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
            _no_dangling_references(connection)
    except SQLAlchemyError as exc:
        if database_trouble(exc):  # locked, unreachable, read-only: not the migration's
            raise StoreError(
                f"cannot open or migrate the database: {database_words(exc)}",
                "check service.database_url, that its folder is writable and the server is up",
            ) from exc
        # A migration's SQL failing ("table sources already exists": another program's
        # database at service.database_url, or a bug): its own words, not "cannot open".
        raise StoreError(
            f"database migration failed: {database_words(exc)}",
            "service.database_url may name a database another program made (digest "
            "migrates an empty one, or one it made); if it is digest's own, this is a bug "
            "in digest: `-vv` shows the failing statement and its traceback to report",
        ) from exc


@contextmanager
def _foreign_keys_checked_at_the_end(connection: Connection) -> Iterator[None]:
    """SQLite changes a table's constraints by copying it and dropping the old copy; with
    foreign keys on, dropping a table other rows point at (subscribers, sources) fails, or
    leaves them dangling for a deferred check. SQLite's own procedure: keys off for the
    change (outside a transaction, the only place the pragma works), then every reference
    checked before the commit, and keys on again."""
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


def _no_dangling_references(connection: Connection) -> None:
    """Fail the migration (before its commit) when a row points at a row that is gone."""
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
        if broken is not None:
            raise StoreError(
                f"a migration left a row of {broken[0]} pointing at a missing {broken[2]} row",
                "nothing was changed; fix or remove that row (sqlite3's `PRAGMA foreign_key_check` "
                "lists them all), then start digest again",
            )


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def existing_engine(url: str) -> Engine | None:
    """The engine of a database that is there already, at the schema this digest writes;
    None for one not made yet (a new install's SQLite file is not created), one that cannot
    be reached, or one at an older migration (the next start migrates it). For a command
    that reads the database without making or changing it: `digest check`."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not path.is_file() or path.stat().st_size == 0:
            return None  # also ":memory:", "" and a file touched: nothing there to read
    try:
        engine = open_engine(url)
    except StoreError:
        return None
    try:
        if current_revision(engine) == _head_revision():
            return engine
    except SQLAlchemyError:
        pass
    engine.dispose()
    return None


def _head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()
