"""The web app's one context: one sender for every confirmation and the console's test
sends, closed when the server stops, and the sign-up limits named once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.app import App
from digest.config import load_config
from digest.web import create_app
from digest.web.admin.preview import segment_of, send_test
from digest.web.context import SIGNUP_PER_ADDRESS_PER_HOUR
from digest.web.mailer import Mailer
from tests.conftest import FeedServer, RecordingHandler, csrf, free_port, rss

pytestmark = pytest.mark.asyncio


class _SessionHandler(RecordingHandler):
    """Records which SMTP session (client address and port) carried each message, and the
    QUITs that ended sessions."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[tuple[str, int]] = []
        self.quits = 0

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quits += 1
        return "221 Bye"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.sessions.append(tuple(session.peer))  # type: ignore[arg-type]
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def smtp() -> Iterator[tuple[_SessionHandler, int]]:
    handler = _SessionHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


@pytest.fixture
def config(write_config, feed_server: FeedServer, smtp: tuple[_SessionHandler, int]) -> Path:
    url = feed_server.add(
        "/f.xml", rss([{"title": "One", "guid": "1", "link": "https://w.test/1"}])
    )
    return write_config([("Wire", url)], transport="smtp", smtp_port=smtp[1])


async def _sign_up(client: httpx.AsyncClient, email: str) -> httpx.Response:
    page = await client.get("/")
    return await client.post("/subscribe", data={"email": email, "csrf": csrf(page)})


async def test_confirmations_go_through_one_sender_closed_when_the_server_stops(
    config: Path, smtp: tuple[_SessionHandler, int]
) -> None:
    handler, _ = smtp
    app = App.open(load_config(config))
    asgi = create_app(app)
    transport = httpx.ASGITransport(app=asgi, client=("203.0.113.7", 1234))
    client = httpx.AsyncClient(transport=transport, base_url="https://digest.test")
    async with asgi.router.lifespan_context(asgi), client as c:
        for email in ("ann@example.org", "bob@example.org", "cy@example.org"):
            assert (await _sign_up(c, email)).status_code == 200
    app.close()
    assert [m.recipients for m in handler.messages] == [
        ["ann@example.org"],
        ["bob@example.org"],
        ["cy@example.org"],
    ]
    # One SMTP session carried them all: the app keeps one sender, not one per email.
    assert len(set(handler.sessions)) == 1, handler.sessions
    assert handler.quits == 1  # and it said goodbye when the server stopped


async def test_the_named_limit_of_confirmations_to_one_address(
    config: Path, smtp: tuple[_SessionHandler, int]
) -> None:
    app = App.open(load_config(config))
    transport = httpx.ASGITransport(app=create_app(app), client=("203.0.113.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as c:
        answers = [
            (await _sign_up(c, "ann@example.org")).status_code
            for _ in range(SIGNUP_PER_ADDRESS_PER_HOUR + 1)
        ]
    app.close()
    assert answers == [200] * SIGNUP_PER_ADDRESS_PER_HOUR + [429]


async def test_a_sender_left_idle_is_closed_and_the_next_confirmation_opens_a_fresh_one(
    config: Path, smtp: tuple[_SessionHandler, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, _ = smtp
    monkeypatch.setattr("digest.web.mailer.IDLE_SECONDS", -1.0)  # every gap is too long
    app = App.open(load_config(config))
    asgi = create_app(app)
    transport = httpx.ASGITransport(app=asgi, client=("203.0.113.7", 1234))
    client = httpx.AsyncClient(transport=transport, base_url="https://digest.test")
    async with asgi.router.lifespan_context(asgi), client as c:
        for email in ("ann@example.org", "bob@example.org"):
            assert (await _sign_up(c, email)).status_code == 200
    app.close()
    assert len(handler.messages) == 2
    assert len(set(handler.sessions)) == 2  # a stale session is not reused
    assert handler.quits == 2  # and each was closed properly


async def test_a_reloaded_config_sends_through_its_own_transport(
    config: Path, smtp: tuple[_SessionHandler, int]
) -> None:
    """The Config screen's reload replaces ``app.config``: the mailer's sender, built from
    the old one, is closed and the next message goes by the new transport."""
    handler, _ = smtp
    other = _SessionHandler()
    controller = Controller(other, hostname="127.0.0.1", port=free_port())
    controller.start()
    app = App.open(load_config(config))
    asgi = create_app(app)
    transport = httpx.ASGITransport(app=asgi, client=("203.0.113.7", 1234))
    client = httpx.AsyncClient(transport=transport, base_url="https://digest.test")
    try:
        async with asgi.router.lifespan_context(asgi), client as c:
            assert (await _sign_up(c, "ann@example.org")).status_code == 200
            smtp_settings = app.config.delivery.smtp.model_copy(update={"port": controller.port})
            delivery = app.config.delivery.model_copy(update={"smtp": smtp_settings})
            app.config = app.config.model_copy(update={"delivery": delivery})
            assert (await _sign_up(c, "bob@example.org")).status_code == 200
    finally:
        app.close()
        controller.stop()
    assert [m.recipients for m in handler.messages] == [["ann@example.org"]]
    assert [m.recipients for m in other.messages] == [["bob@example.org"]]
    assert handler.quits == 1  # the old transport's session was closed, not dropped


async def test_the_consoles_test_sends_share_the_apps_one_sender(
    config: Path, smtp: tuple[_SessionHandler, int]
) -> None:
    """ "Send me a test" goes through the mailer the confirmations use: one session for
    many tests, closed with the app, not a transport (and its threads) per click."""
    handler, _ = smtp
    app = App.open(load_config(config))
    mailer = Mailer(app)
    try:
        segment = segment_of(app, "")
        for _ in range(2):
            assert await send_test(app, mailer, segment, "admin@example.org")
        assert handler.quits == 0  # kept open between tests
    finally:
        await mailer.aclose()
        app.close()
    assert [m.recipients for m in handler.messages] == [["admin@example.org"]] * 2
    assert len(set(handler.sessions)) == 1, handler.sessions
    assert handler.quits == 1


async def test_one_mailbox_written_many_ways_shares_its_limit(
    config: Path, smtp: tuple[_SessionHandler, int]
) -> None:
    """A stranger cannot flood one mailbox by writing its address a new way each time:
    subaddresses (ann+1@) and Gmail's dots reach the same inbox and count as one."""
    app = App.open(load_config(config))
    transport = httpx.ASGITransport(app=create_app(app), client=("203.0.113.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as c:
        ann = [f"ann+{n}@example.org" for n in range(SIGNUP_PER_ADDRESS_PER_HOUR)]
        ann_answers = [(await _sign_up(c, email)).status_code for email in ann]
        ann_more = (await _sign_up(c, "Ann+more@Example.org")).status_code
        lee = ["an.lee@gmail.com", "anlee@gmail.com", "a.n.l.e.e+x@googlemail.com"]
        lee_answers = [(await _sign_up(c, email)).status_code for email in lee]
        lee_more = (await _sign_up(c, "anl.ee@gmail.com")).status_code
        other = (await _sign_up(c, "bob@example.org")).status_code
    app.close()
    assert ann_answers == lee_answers == [200] * SIGNUP_PER_ADDRESS_PER_HOUR
    assert (ann_more, lee_more, other) == (429, 429, 200)
    handler, _ = smtp
    assert len(handler.messages) == 2 * SIGNUP_PER_ADDRESS_PER_HOUR + 1
