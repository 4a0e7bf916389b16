"""The reader's pages as the web tests drive them: the web app in-process through httpx's
ASGI transport on a set clock, a config whose source offers topics, and the steps a reader
takes (sign up, open the mailed link) with the links the service signs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import httpx

from digest.app import App
from digest.clock import ManualClock
from digest.config import load_config
from digest.links import make_token
from digest.store import Subscriber
from digest.web import create_app
from digest.web.security import RateLimit
from tests.conftest import SECRET, SmtpServer, csrf

Client = tuple[httpx.AsyncClient, App]


def topics_config(
    write_config: Callable[..., Path], url: str, smtp_port: int, topics: list[str]
) -> Path:
    """A config of one source, "Wire" at ``url``, offering ``topics`` on the sign-up form,
    mailing through the test SMTP server on ``smtp_port``."""
    return write_config(
        [("Wire", url)], transport="smtp", smtp_port=smtp_port, topics={"Wire": topics}
    )


@asynccontextmanager
async def web_client(config: Path) -> AsyncIterator[Client]:
    """The web app over ``config`` as a reader at 203.0.113.7 reaches it, and its App.

    The App's clock is set (``later`` moves it on); the per-address limit is the app's own
    (3 an hour, on that clock), the per-IP one wider than any test signs up."""
    app = App.open(load_config(config), clock=ManualClock(datetime.now(UTC)))
    try:
        asgi = create_app(app, per_ip=RateLimit(100, 3600, app.clock.monotonic))
        transport = httpx.ASGITransport(app=asgi, client=("203.0.113.7", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as c:
            yield c, app
    finally:
        app.close()


def later(app: App, seconds: float) -> None:
    """Move the app's set clock on: what it stamps and the links it dates are later."""
    assert isinstance(app.clock, ManualClock)
    app.clock.advance(seconds)


async def sign_up(c: httpx.AsyncClient, **fields: str | list[str]) -> httpx.Response:
    """The sign-up form sent with ``fields`` and the page's own CSRF field."""
    return await c.post("/subscribe", data={**fields, "csrf": csrf(await c.get("/"))})


def mailed_confirm_path(smtp_server: SmtpServer, to: str) -> str:
    """The path of the confirmation link last mailed, which must have gone to ``to``."""
    mail = smtp_server.messages[-1]
    found = re.search(r"https://digest\.test(/confirm/\S+)", mail.message().get_content())
    assert found and mail.recipients == [to]
    return found.group(1)


async def confirmed(
    c: httpx.AsyncClient, app: App, smtp_server: SmtpServer, email: str, **fields: str | list[str]
) -> Subscriber:
    """A reader signed up on the form (with ``fields``) who opened the mailed link."""
    await sign_up(c, email=email, **fields)
    await c.post(mailed_confirm_path(smtp_server, email))
    row = app.store.subscriber_by_email(email)
    assert row is not None
    return row


def signed_link(purpose: Literal["unsubscribe", "preferences"], row: Subscriber) -> str:
    """The path of ``row``'s unsubscribe or preferences link, as its emails carry it."""
    return f"/{purpose}/{make_token(SECRET, purpose, row.public_id)}"
