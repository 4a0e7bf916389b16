"""A person in a real browser: subscribe on the form, confirm from the mailbox, change
preferences, unsubscribe from the page; then a mail client's one-click POST. Each step is
checked in the database. Headless Chromium driven by Playwright; the app runs in uvicorn.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from digest.app import App
from digest.config import load_config
from digest.links import make_token
from digest.web import create_app
from tests.browser import launch, sync_api
from tests.conftest import SECRET, FeedServer, SmtpServer, free_port, rss

uvicorn = pytest.importorskip("uvicorn")


@pytest.fixture
def site(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> Iterator[tuple[str, App]]:
    url = feed_server.add("/f.xml", rss([{"title": "T", "guid": "1", "link": "https://w.test/1"}]))
    config = write_config([("Wire", url)], transport="smtp", smtp_port=smtp_server.port)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config.write_text(
        config.read_text()
        .replace('base_url = "https://digest.test"', f'base_url = "{base}"')
        .replace(f'url = "{url}"', f'url = "{url}"\ntopics = ["world", "science"]')
    )
    app = App.open(load_config(config))
    server = uvicorn.Server(
        uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield base, app
    server.should_exit = True
    thread.join(timeout=5)
    app.close()


def _wait_for_mail(smtp_server: SmtpServer, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(smtp_server.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.slow
def test_a_reader_subscribes_confirms_chooses_and_leaves(
    site: tuple[str, App], smtp_server: SmtpServer
) -> None:
    base, app = site
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page()
        page.goto(base + "/")
        page.fill("#email", "reader@example.org")
        page.fill("#name", "Rea")
        page.check("input[value=science]")
        page.click("button[type=submit]")
        assert "Check your inbox" in page.content()
        row = app.store.subscriber_by_email("reader@example.org")
        assert row is not None and row.status == "pending" and row.topics == "science"

        _wait_for_mail(smtp_server, 1)
        body = smtp_server.messages[0].message().get_content()
        link = re.search(rf"{re.escape(base)}/confirm/\S+", body)
        assert link, body
        page.goto(link.group(0))
        assert "Confirm your subscription" in page.content()
        # Opening the link alone confirms nothing.
        assert app.store.subscriber_by_email("reader@example.org").status == "pending"  # type: ignore[union-attr]
        page.click("button[type=submit]")
        assert "You are subscribed" in page.content()
        assert app.store.subscriber_by_email("reader@example.org").status == "active"  # type: ignore[union-attr]

        page.click("text=Your topics and settings")
        page.check("input[value=world]")
        page.uncheck("input[value=science]")
        page.fill("#timezone", "Asia/Tokyo")
        page.select_option("#locale", "de")
        page.click("button[type=submit]")
        assert "Gespeichert." in page.content()  # in the language just chosen
        row = app.store.subscriber_by_email("reader@example.org")
        assert row is not None
        assert (row.topics, row.timezone, row.locale) == ("world", "Asia/Tokyo", "de")

        page.click("text=Abbestellen")  # the saved page speaks the language chosen
        page.click("button[type=submit]")
        assert "Sie sind abgemeldet" in page.content()
        assert app.store.subscriber_by_email("reader@example.org").status == "unsubscribed"  # type: ignore[union-attr]
        browser.close()


def test_one_click_post_as_a_mail_client_sends_it(
    site: tuple[str, App], config_secret: str = SECRET
) -> None:
    base, app = site
    row, _ = app.store.add_subscriber("gmail-user@example.org")
    url = f"{base}/unsubscribe/{make_token(SECRET, 'unsubscribe', row.public_id)}"
    # What Gmail sends for List-Unsubscribe-Post: no cookie, no session, just the body.
    response = httpx.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert app.store.subscriber_by_email("gmail-user@example.org").status == "unsubscribed"  # type: ignore[union-attr]
