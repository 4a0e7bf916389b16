"""A database that cannot be written (its disk full, read-only, locked) is the admin's to
mend, not "a bug in digest": the CLI and the daemon's jobs name what the database said
and what to do, with the driver's error kept as the cause."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from digest.app import App
from digest.config import load_config
from digest.jobs import send_job
from digest.sources.gather import SourceReport, gather
from digest.store import engine as store_engine
from digest.store.trouble import database_error
from tests.conftest import FeedServer, rss, run_cli

CASES = [
    # (what the driver said, words of the message, words of the hint)
    ("database or disk is full", "its disk is full", "free space on the disk"),
    ("could not extend file: No space left on device", "its disk is full", "free space"),
    ("attempt to write a readonly database", "it is read-only", "writable by the user"),
    # PostgreSQL's (a standby, a database set read-only): its remedy is not SQLite's files
    ("cannot execute INSERT in a read-only transaction", "it is read-only", "the primary"),
    ("database is locked", "the database is unavailable: database is locked", "backup"),
    # PostgreSQL gone (stopped, restarted, its machine lost): not "another process writing"
    (
        'connection failed: connection to server at "10.0.0.5", port 5432 failed: '
        "Connection refused",
        "the database server cannot be reached",
        "PostgreSQL is running",
    ),
    (
        "terminating connection due to administrator command",
        "the database server cannot be reached",
        "PostgreSQL is running",
    ),
    ("server closed the connection unexpectedly", "cannot be reached", "is running"),
]


@pytest.mark.parametrize(("said", "message", "hint"), CASES)
def test_what_the_database_said_becomes_what_to_do(said: str, message: str, hint: str) -> None:
    error = database_error(OperationalError("INSERT ...", {}, sqlite3.OperationalError(said)))
    assert message in error.message and said in error.message
    assert hint in error.hint
    assert "bug" not in error.message + error.hint


def test_a_daemon_job_failing_on_the_database_says_so_not_a_bug(
    write_config,
    feed_server: FeedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    config = write_config([("Wire", feed_server.add("/f.xml", rss([story])))])
    monkeypatch.setattr(store_engine, "BUSY_TIMEOUT_SECONDS", 0.2)  # fail fast when locked
    app = App.open(load_config(config))  # (not run_cli: its logging set-up drops caplog's)
    app.store.add_subscriber("ana@example.org")
    holder = sqlite3.connect(tmp_path / "digest.db", timeout=1)
    try:
        holder.execute("BEGIN IMMEDIATE")  # a backup holds the write lock over the slot
        with caplog.at_level(logging.INFO, logger="digest"):
            assert send_job(app, "daily") is None
        holder.rollback()
        failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any(
            "send daily failed: the database is unavailable: database is locked" in f
            for f in failures
        ), failures
        assert not any("a bug in digest" in f for f in failures), failures
        assert all(r.exc_info is None for r in caplog.records if r.levelno >= logging.ERROR)
    finally:
        holder.close()
        app.close()


def test_a_gather_on_a_database_it_cannot_write_says_so_per_source(
    write_config, feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each source's line says what the database said and what to do, not SQLAlchemy's
    statement and its documentation link."""
    import asyncio

    from digest.pipeline import gather_sources

    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    config = write_config([("Wire", feed_server.add("/f.xml", rss([story])))])
    monkeypatch.setattr(store_engine, "BUSY_TIMEOUT_SECONDS", 0.2)
    app = App.open(load_config(config))
    asyncio.run(gather_sources(app))  # the source is known; the next fetch has state to store
    holder = sqlite3.connect(tmp_path / "digest.db", timeout=1)
    try:
        holder.execute("BEGIN IMMEDIATE")
        (report,) = asyncio.run(_fetch_only(app))  # (the prune after it fails alone)
        holder.rollback()
    finally:
        holder.close()
        app.close()
    assert report.status == "error"
    assert "could not be stored: the database is unavailable: database is locked" in (
        report.error or ""
    ), report.error
    assert "sqlalche.me" not in (report.error or "") and "[SQL:" not in (report.error or "")
    assert report.hint and "another process may be writing to it" in report.hint


async def _fetch_only(app: App) -> list[SourceReport]:
    async with app.http() as client:
        return await gather(app.config, app.store, client)


@contextmanager
def _read_only(url: str) -> Iterator[None]:
    """The PostgreSQL database set to refuse writes, as a hot standby does (SQLSTATE 25006,
    which psycopg raises as an InternalError, not an OperationalError)."""
    name = make_url(url).database
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(
                text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            )
        yield
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        engine.dispose()


def test_a_read_only_postgresql_is_said_with_its_remedy_by_the_cli_and_the_jobs(
    postgres_database: str,
    write_config,
    feed_server: FeedServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A PostgreSQL that takes no writes (service.database_url on a standby, the old primary
    after a failover) was a traceback: its error is not an OperationalError."""
    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    config = write_config([("Wire", feed_server.add("/f.xml", rss([story])))])
    config.write_text(config.read_text().replace('"sqlite:///digest.db"', f'"{postgres_database}"'))
    app = App.open(load_config(config))
    app.store.add_subscriber("ana@example.org")
    app.close()
    with _read_only(postgres_database):
        app = App.open(load_config(config))  # (before run_cli: its logging drops caplog's)
        try:
            with caplog.at_level(logging.INFO, logger="digest"):
                assert send_job(app, "daily") is None
        finally:
            app.close()
        code, out, err = run_cli("--config", str(config), "subscribers", "add", "bo@example.org")
    assert code == 1, (out, err)
    assert "error: the database cannot be written: it is read-only" in err, err
    assert "the primary" in err and "Traceback" not in err and "[SQL:" not in err, err
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("send daily failed: the database cannot be written" in f for f in failures), failures
    assert not any("a bug in digest" in f for f in failures), failures


def test_a_database_url_in_an_error_keeps_its_password_hidden() -> None:
    """`digest run` with no PostgreSQL driver (or a mistyped one), or a port mistyped: the
    error names the database, to the terminal and the service's journal, but never its
    password."""
    from digest.errors import StoreError
    from digest.store.engine import open_engine, resolve_url

    for fails in (
        lambda: open_engine("postgresql+nosuchdriver://bob:s3cret-pw@db.internal/digest"),
        lambda: resolve_url("postgresql+psycopg://bob:s3cret-pw@db.internal:54x2/digest", Path()),
    ):
        with pytest.raises(StoreError) as raised:
            fails()
        assert "db.internal" in raised.value.message
        assert "s3cret-pw" not in f"{raised.value.message} {raised.value.hint}"
