"""What a subscriber trips over on the way in and out: an address mistyped on the form,
a confirmation link opened after it expired, a form refused for one field, an unsubscribe
by mistake. In-process through httpx's ASGI transport, mailing through a real SMTP server.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from digest.app import App
from digest.clock import ManualClock
from digest.config import load_config
from digest.web import create_app
from digest.web.security import RateLimit
from tests.conftest import FeedServer, SmtpServer, csrf, rss

pytestmark = pytest.mark.asyncio


@pytest.fixture
def config(write_config, feed_server: FeedServer, smtp_server: SmtpServer) -> Path:
    url = feed_server.add(
        "/f.xml", rss([{"title": "Harbour strike ends", "guid": "1", "link": "https://w.test/1"}])
    )
    path = write_config([("Wire", url)], transport="smtp", smtp_port=smtp_server.port)
    path.write_text(
        path.read_text().replace(f'url = "{url}"', f'url = "{url}"\ntopics = ["world", "science"]')
    )
    return path


@pytest.fixture
async def client(config: Path) -> AsyncIterator[tuple[httpx.AsyncClient, App]]:
    app = App.open(load_config(config), clock=ManualClock(datetime.now(UTC)))
    asgi = create_app(app, per_ip=RateLimit(100, 3600, app.clock.monotonic))
    transport = httpx.ASGITransport(app=asgi, client=("203.0.113.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as c:
        yield c, app
    app.close()


async def _sign_up(c: httpx.AsyncClient, **fields: str | list[str]) -> httpx.Response:
    return await c.post("/subscribe", data={**fields, "csrf": csrf(await c.get("/"))})


def _mailed_link(smtp_server: SmtpServer, to: str) -> str:
    """The path of the confirmation link last mailed to ``to``."""
    mail = smtp_server.messages[-1]
    found = re.search(r"https://digest\.test(/confirm/\S+)", mail.message().get_content())
    assert found and mail.recipients == [to]
    return found.group(1)


async def test_the_check_your_inbox_page_names_the_address_typed_and_the_way_to_fix_it(
    client: tuple[httpx.AsyncClient, App], smtp_server: SmtpServer
) -> None:
    """A typo in the address ('gmial.com') is the commonest reason a confirmation never
    comes: the page says where it went, so the reader can see it and sign up again."""
    c, _ = client
    sent = await _sign_up(c, email="Ana@Gmial.com", name="Ana")
    assert sent.status_code == 200
    assert "Check your inbox" in sent.text
    assert "<strong>ana@gmial.com</strong>" in sent.text
    assert 'Not your address, or mistyped? <a href="/">Sign up with the right' in sent.text
    # Escaped like everything typed into a form.
    odd = await _sign_up(c, email='"<b>x</b>"@example.org')
    assert "<b>x</b>" not in odd.text
