"""``/healthz`` says whether the database answers, and tells the public nothing more.

The driver's message names the database server's address, port, database and user; a
health check anyone may fetch answers "unavailable" and the cause goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from digest.app import App
from digest.config import load_config
from digest.web import create_app
from tests.pg import create_database, drop_database, server_or_skip

pytestmark = pytest.mark.asyncio


async def test_a_database_that_went_away_is_unavailable_and_the_cause_is_logged(
    write_config: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    server = server_or_skip()
    database = create_database(server)
    config = write_config([("Wire", "https://wire.example.org/feed.xml")])
    text = config.read_text(encoding="utf-8").replace("sqlite:///digest.db", database)
    config.write_text(text, encoding="utf-8")
    app = App.open(load_config(config))
    try:
        transport = httpx.ASGITransport(app=create_app(app), client=("203.0.113.7", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as c:
            assert (await c.get("/healthz")).json() == {"status": "ok"}
            drop_database(server, database)
            with caplog.at_level(logging.WARNING, logger="digest.web"):
                answer = await c.get("/healthz")
    finally:
        app.close()
    assert answer.status_code == 503
    assert answer.json() == {"status": "error", "database": "unavailable"}
    name = database.rsplit("/", 1)[1]
    assert name in caplog.text and "/healthz: the database is unavailable" in caplog.text


async def test_an_outage_is_logged_once_and_then_at_most_once_a_minute_with_a_count(
    write_config: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Anyone may ask /healthz as often as they like: during an outage, a warning per
    request would let them flood the log. The first is logged, then one a minute saying
    how many went unlogged, and the database answering again once."""
    from digest.web import public

    config = write_config([("Wire", "https://wire.example.org/feed.xml")])
    app = App.open(load_config(config))

    def unavailable(*args: object, **kwargs: object) -> object:
        raise ConnectionError('connection to server at "10.0.0.5", port 5432 failed')

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    try:
        transport = httpx.ASGITransport(app=create_app(app), client=("203.0.113.7", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as c:
            with caplog.at_level(logging.WARNING, logger="digest.web"):
                monkeypatch.setattr(app.store, "editions", unavailable)
                for _ in range(20):
                    assert (await c.get("/healthz")).status_code == 503
                assert len(warnings()) == 1, warnings()
                assert "/healthz: the database is unavailable" in warnings()[0]
                monkeypatch.setattr(public, "OUTAGE_LOG_SECONDS", 0.0)  # a minute later
                assert (await c.get("/healthz")).status_code == 503
                assert len(warnings()) == 2, warnings()
                assert "19 more failed checks since the last warning" in warnings()[1]
                monkeypatch.undo()
                assert (await c.get("/healthz")).json() == {"status": "ok"}
                assert (await c.get("/healthz")).json() == {"status": "ok"}
                assert len(warnings()) == 3, warnings()
                assert "/healthz: the database answers again" in warnings()[2]
    finally:
        app.close()
