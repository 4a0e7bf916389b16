"""A database that cannot be written (its disk full, read-only, locked) is the admin's to
mend, not "a bug in digest": the CLI and the daemon's jobs name what the database said
and what to do, with the driver's error kept as the cause."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from digest.app import App
from digest.config import load_config
from digest.jobs import send_job
from digest.sources.gather import SourceReport, gather
from digest.store import engine as store_engine
from digest.store.engine import database_error
from tests.conftest import FeedServer, rss

CASES = [
    # (what the driver said, words of the message, words of the hint)
    ("database or disk is full", "its disk is full", "free space on the disk"),
    ("could not extend file: No space left on device", "its disk is full", "free space"),
    ("attempt to write a readonly database", "it is read-only", "writable by the user"),
    ("cannot execute INSERT in a read-only transaction", "it is read-only", "writable"),
    ("database is locked", "the database is unavailable: database is locked", "backup"),
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
