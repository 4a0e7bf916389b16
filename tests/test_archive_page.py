"""The public archive as a reader reads it: each edition's whole subject (the email's is cut
at about 60 characters for inboxes; the page has room) and its date as the service's
language writes one, not ``2026-12-07 07:00 Europe/London``."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from digest.app import App
from digest.config import load_config
from digest.web import create_app
from tests.conftest import FeedServer, SmtpServer, ago, rss, run_cli

pytestmark = pytest.mark.asyncio

HEADLINE = (
    "Harbour strike ends after dockers and port authority agree a three-year pay deal at dawn talks"
)


@pytest.fixture
def config(write_config, feed_server: FeedServer, smtp_server: SmtpServer) -> Path:
    url = feed_server.add(
        "/f.xml", rss([{"title": HEADLINE, "link": "https://wire.test/1", "date": ago(hours=1)}])
    )
    path = write_config([("Wire", url)], transport="smtp", smtp_port=smtp_server.port)
    path.write_text(
        path.read_text().replace('timezone = "UTC"', 'timezone = "Europe/Paris"\nlocale = "fr"')
    )
    return path


@pytest.fixture
async def client(config: Path) -> AsyncIterator[tuple[httpx.AsyncClient, App]]:
    app = App.open(load_config(config))
    transport = httpx.ASGITransport(app=create_app(app), client=("203.0.113.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as c:
        yield c, app
    app.close()


async def test_the_archive_shows_the_whole_subject_and_a_date_in_the_services_language(
    client: tuple[httpx.AsyncClient, App], config: Path
) -> None:
    c, app = client
    assert run_cli("--config", str(config), "subscribers", "add", "ann@example.org")[0] == 0
    sent = await asyncio.to_thread(run_cli, "--config", str(config), "send", "--gather")
    assert sent[0] == 0, sent[2]
    (edition,) = app.store.editions(5)
    assert edition.subject.endswith("…")  # the email's subject, cut for the inbox

    page = html.unescape((await c.get("/archive")).text)
    assert f"Daily Test: {HEADLINE}</a>" in page and "…" not in page
    when = re.search(r'<time class="note" datetime="([^"]+)">([^<]+)</time>', page)
    assert when and when.group(1) == edition.slot.isoformat()
    # The day, as French writes it, then the edition's time in the service's zone.
    assert re.fullmatch(
        r"(lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche) \d{1,2} \w+ \d{4}, 07:00 CET",
        when.group(2),
    ), when.group(2)
