"""Only the database's own trouble (locked, full, read-only, unreachable, its file unopenable
or damaged) is told as the admin's to mend with its traceback kept for -vv. An error of
digest's own SQL (a syntax error, a missing table or column) is a bug or a schema behind
the code: it keeps its traceback, and a missing table or column says `digest db upgrade`.

sqlite3 raises OperationalError for both kinds, so each case here is a real error of a real
SQLite file or PostgreSQL server, not one made up by hand."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from psycopg import errors as pg_errors
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from digest.app import App
from digest.config import load_config
from digest.jobs import send_job
from digest.sources.gather import SourceReport
from digest.store.trouble import database_error, database_trouble, schema_behind
from tests.conftest import FeedServer, rss, run_cli


def _raised(engine: Engine, *statements: str) -> DBAPIError:
    """The error the last of ``statements`` raises (each runs in one transaction)."""
    with pytest.raises(DBAPIError) as raised, engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    return raised.value


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'd.db'}", connect_args={"timeout": 0.1})
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (a INTEGER CHECK (a > 0), b BLOB)"))
    yield engine
    engine.dispose()


@pytest.mark.parametrize(
    ("statement", "missing"),
    [
        ("SELECT b2 FROM t", True),  # a column a newer digest's migration adds
        ("SELECT a FROM t2", True),
        ("INSERT INTO t (c) VALUES (1)", True),  # "table t has no column named c"
        ("SELEC a FROM t", False),  # a syntax error
        ("INSERT INTO t (a) VALUES (0)", False),  # a CHECK constraint: IntegrityError
        ("SELECT a FROM t WHERE a = :missing_parameter", False),
    ],
)
def test_an_error_of_digest_own_sql_on_sqlite_is_not_the_database_trouble(
    sqlite_file: Engine, statement: str, missing: bool
) -> None:
    try:
        with sqlite_file.begin() as connection:
            connection.execute(text(statement))
    except DBAPIError as exc:
        error: BaseException = exc
    except Exception as exc:
        error = exc
    else:
        pytest.fail(f"{statement!r} raised nothing")
    assert not database_trouble(error), error
    assert schema_behind(error) is missing, error


def _locked(engine: Engine, path: Path) -> DBAPIError:
    holder = sqlite3.connect(path, timeout=1)
    try:
        holder.execute("BEGIN IMMEDIATE")  # a backup holds the write lock
        return _raised(engine, "INSERT INTO t (a) VALUES (1)")
    finally:
        holder.rollback()
        holder.close()


def _full(engine: Engine, path: Path) -> DBAPIError:
    # SQLite's own limit on the file's pages: the same SQLITE_FULL a full disk gives.
    return _raised(
        engine, "PRAGMA max_page_count = 3", "INSERT INTO t (a, b) VALUES (1, zeroblob(100000))"
    )


def _read_only(engine: Engine, path: Path) -> DBAPIError:
    read_only = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        return _raised(read_only, "INSERT INTO t (a) VALUES (1)")
    finally:
        read_only.dispose()


def _unopenable(engine: Engine, path: Path) -> DBAPIError:
    nowhere = create_engine(f"sqlite:///{path.parent / 'gone' / 'd.db'}")
    try:
        return _raised(nowhere, "SELECT 1")
    finally:
        nowhere.dispose()


def _not_a_database(engine: Engine, path: Path) -> DBAPIError:
    other = path.parent / "digest.toml.db"
    other.write_text("[service]\n" * 1000)  # a config file where the database should be
    mistaken = create_engine(f"sqlite:///{other}")
    try:
        return _raised(mistaken, "SELECT * FROM t")
    finally:
        mistaken.dispose()


@pytest.mark.parametrize(
    ("make", "said", "message", "hint"),
    [
        (_locked, "database is locked", "the database is unavailable", "another process"),
        (_full, "database or disk is full", "its disk is full", "free space"),
        (_read_only, "readonly database", "it is read-only", "writable by the user"),
        (_unopenable, "unable to open database file", "cannot be opened", "its folder exist"),
        (_not_a_database, "file is not a database", "damaged or not a database", "backup"),
    ],
)
def test_the_sqlite_database_own_trouble_is_told_with_its_remedy(
    sqlite_file: Engine,
    tmp_path: Path,
    make: Callable[[Engine, Path], DBAPIError],
    said: str,
    message: str,
    hint: str,
) -> None:
    exc = make(sqlite_file, tmp_path / "d.db")
    assert said in str(exc.orig)
    assert database_trouble(exc) and not schema_behind(exc)
    error = database_error(exc)
    assert message in error.message and said in error.message, error.message
    assert hint in error.hint, error.hint


# PostgreSQL's errors, as psycopg raises them (its own classes, by SQLSTATE): the trouble is
# the server's; a deadlock between digest's sessions, a cancelled statement or digest's SQL
# is not.
TROUBLE_STATES = ["08006", "53100", "53200", "53300", "57P01", "57P03", "58030", "25006", "55P03"]
NOT_TROUBLE_STATES = ["40P01", "40001", "42703", "42P01", "42601", "23505", "22P02", "57014"]


@pytest.mark.parametrize("state", TROUBLE_STATES + NOT_TROUBLE_STATES)
def test_postgresql_trouble_is_told_by_its_sqlstate(state: str) -> None:
    orig = pg_errors.lookup(state)("the server's words")
    exc = DBAPIError.instance("SELECT 1", {}, orig, pg_errors.Error)
    assert database_trouble(exc) is (state in TROUBLE_STATES)
    assert schema_behind(exc) is (state in ("42703", "42P01"))


@pytest.mark.parametrize(
    "said",
    [
        "the connection is closed",  # psycopg's own, of a session the server ended
        "consuming input failed: server closed the connection unexpectedly",
        "SSL connection has been closed unexpectedly",
    ],
)
def test_a_postgresql_connection_lost_without_a_sqlstate_is_the_server_trouble(said: str) -> None:
    exc = DBAPIError.instance("SELECT 1", {}, pg_errors.OperationalError(said), pg_errors.Error)
    assert database_trouble(exc)
    assert "cannot be reached" in database_error(exc).message


def test_postgresql_errors_of_a_real_server_are_told_apart(postgres_database: str) -> None:
    engine = create_engine(postgres_database, pool_size=2)
    other = create_engine(postgres_database, isolation_level="AUTOCOMMIT")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (a integer)"))
        missing = _raised(engine, "SELECT b FROM t")
        assert not database_trouble(missing) and schema_behind(missing)
        syntax = _raised(engine, "SELEC a FROM t")
        assert not database_trouble(syntax) and not schema_behind(syntax)

        # A lock_timeout the admin set runs out behind a long transaction's lock.
        with engine.connect() as holder, holder.begin():
            holder.execute(text("LOCK TABLE t IN ACCESS EXCLUSIVE MODE"))
            locked = _raised(engine, "SET LOCAL lock_timeout = '50ms'", "INSERT INTO t VALUES (1)")
        assert database_trouble(locked)
        assert "another process may be writing" in database_error(locked).hint

        # The admin (or a failover) ends the session while it is open.
        with engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with other.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(OperationalError) as raised:
                connection.execute(text("SELECT 1"))
        assert database_trouble(raised.value)
        assert "cannot be reached" in database_error(raised.value).message
    finally:
        engine.dispose()
        other.dispose()


def _drop_column(database: Path, table: str, column: str) -> None:
    """The schema a restore of an older database (its migration stamp newer) leaves."""
    connection = sqlite3.connect(database)
    try:
        connection.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        connection.commit()
    finally:
        connection.close()


def test_a_command_on_a_schema_missing_a_column_prints_the_traceback_and_the_upgrade(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    config = write_config([("Wire", feed_server.add("/f.xml", rss([story])))])
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    _drop_column(tmp_path / "digest.db", "subscribers", "locale")

    code, out, err = run_cli("--config", str(config), "subscribers", "list")
    assert code == 1, (out, err)
    assert "Traceback" in err and "sqlite3.OperationalError" in err, err
    assert "error: no such column: subscribers.locale" in err, err
    assert "`digest db upgrade`" in err and "report it with the traceback" in err, err
    assert "unavailable" not in err and "another process" not in err, err


def test_a_job_on_a_schema_missing_a_column_logs_its_traceback_and_the_upgrade(
    write_config, feed_server: FeedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    config = write_config([("Wire", feed_server.add("/f.xml", rss([story])))])
    app = App.open(load_config(config))
    try:
        app.store.add_subscriber("ana@example.org")
        _drop_column(tmp_path / "digest.db", "subscribers", "locale")
        with caplog.at_level(logging.INFO, logger="digest"):
            assert send_job(app, "daily") is None
    finally:
        app.close()
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    (failure,) = [r for r in failures if "send daily failed" in r.getMessage()]
    assert failure.exc_info is not None, failure.getMessage()
    assert "failed: no such column: subscribers.locale" in failure.getMessage()
    assert "`digest db upgrade`" in failure.getMessage()
    assert not any("unavailable" in r.getMessage() for r in failures)
    code, out, _ = run_cli("--config", str(config), "status", "--json")
    assert code == 0
    summary = json.loads(out)["jobs"]["send daily"]["summary"]
    assert "no such column" in summary and "`digest db upgrade`" in summary, summary


def test_a_source_whose_fetch_cannot_be_stored_for_a_missing_column_says_the_upgrade(
    write_config, feed_server: FeedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The store of one source's fetch fails on a column the schema lacks: its report line
    says the schema and the upgrade, and the log keeps the traceback (not 'the database is
    unavailable')."""
    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    config = write_config([("Wire", feed_server.add("/f.xml", rss([story])))])
    app = App.open(load_config(config))
    try:
        _drop_column(tmp_path / "digest.db", "sources", "last_hint")
        with caplog.at_level(logging.INFO, logger="digest"):
            (report,) = asyncio.run(_gather(app))
    finally:
        app.close()
    assert "could not be stored: no such column: last_hint" in report.error, report.error
    assert "`digest db upgrade`" in report.hint, report.hint
    stored = [r for r in caplog.records if "could not be stored" in r.getMessage()]
    assert stored and all(r.exc_info is not None for r in stored)
    assert not any("unavailable" in r.getMessage() for r in caplog.records)


async def _gather(app: App) -> list[SourceReport]:
    from digest.pipeline import gather_sources

    return await gather_sources(app)


def test_a_migration_failing_on_another_program_database_is_not_told_as_unopenable(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    """A migration's SQL failing (a table of that name there already) was "cannot open or
    migrate the database ... check that its folder is writable and the server is up"."""
    config = write_config([("Wire", feed_server.add("/f.xml", rss([])))])
    other = sqlite3.connect(tmp_path / "digest.db")  # another program's database
    other.execute("CREATE TABLE sources (address TEXT)")
    other.commit()
    other.close()
    code, out, err = run_cli("--config", str(config), "subscribers", "add", "ana@example.org")
    assert code == 1, (out, err)
    assert "error: database migration failed: table sources already exists" in err, err
    assert "another program" in err and "cannot open" not in err and "writable" not in err
