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
