"""The public archive as a reader reads it: each edition's whole subject (the email's is cut
at about 60 characters for inboxes; the page has room) and its date as the visitor's
language writes one, not ``2026-12-07 07:00 Europe/London``, in its digest's zone (the
date its email carried)."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from babel.dates import format_date

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
    # The service in Paris; the digest in Auckland, at 07:00 there: 19:00 or 20:00 of the
    # day before in Paris, whatever the season, so the two zones date it differently.
    text = path.read_text().replace('timezone = "UTC"', 'timezone = "Europe/Paris"\nlocale = "fr"')
    path.write_text(
        text.replace(
            'schedule = "0 7 * * *"', 'schedule = "0 7 * * *"\ntimezone = "Pacific/Auckland"'
        )
    )
    return path


@pytest.fixture
async def client(config: Path) -> AsyncIterator[tuple[httpx.AsyncClient, App]]:
    app = App.open(load_config(config))
    transport = httpx.ASGITransport(app=create_app(app), client=("203.0.113.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as c:
        yield c, app
    app.close()


def _when(page: str) -> tuple[str, str]:
    """The archive's one edition's ``datetime`` and its date as the page writes it."""
    when = re.search(r'<time class="note" datetime="([^"]+)">([^<]+)</time>', page)
    assert when, page
    return when.group(1), when.group(2)


async def test_the_archive_shows_the_whole_subject_and_the_date_its_email_carried(
    client: tuple[httpx.AsyncClient, App], config: Path, smtp_server: SmtpServer
) -> None:
    c, app = client
    assert run_cli("--config", str(config), "subscribers", "add", "ann@example.org")[0] == 0
    sent = await asyncio.to_thread(run_cli, "--config", str(config), "send", "--gather")
    assert sent[0] == 0, sent[2]
    (edition,) = app.store.editions(5)
    assert edition.subject.endswith("…")  # the email's subject, cut for the inbox
    # The date the email carried at its top ("Test Desk · mardi 8 décembre 2026"), in
    # the digest's zone: the day after the slot's day in the service's.
    body = smtp_server.messages[-1].message().get_body(("plain",))
    assert body is not None
    dateline = re.search(r"Test Desk · (\w+ \d{1,2} \w+ \d{4})", body.get_content())
    assert dateline, body.get_content()
    in_paris = format_date(edition.slot.astimezone(ZoneInfo("Europe/Paris")), "full", locale="fr")
    assert dateline.group(1) != in_paris

    page = html.unescape((await c.get("/archive")).text)
    assert f"Daily Test: {HEADLINE}</a>" in page and "…" not in page
    iso, when = _when(page)
    assert iso == edition.slot.isoformat()
    # The day the email carried, as French writes it, then the edition's time there.
    assert re.fullmatch(rf"{dateline.group(1)}, 07:00 NZ[DS]T", when), when
    assert in_paris not in when

    # In a German browser's language, the same day, as German writes it.
    german = html.unescape((await c.get("/archive", headers={"Accept-Language": "de"})).text)
    local = edition.slot.astimezone(ZoneInfo("Pacific/Auckland"))
    day = f"{format_date(local, 'EEEE', locale='de')}, {local.day}. "
    assert _when(german)[1].startswith(day), _when(german)[1]
    assert re.search(r"07:00 NZ[DS]T$", _when(german)[1]), _when(german)[1]
