"""Hostile feed input that digest already defuses, pinned end to end with real servers.

A headline carrying CR LF and a header of its own must not become a header of the email
(nor add a recipient); a feed's DTD, parameter entity or external entity must never make
the gatherer request anything or read a file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from digest.app import App
from digest.config import load_config
from tests.conftest import FeedServer, SmtpServer, ago, run_cli
from tests.store_queries import every_article

JSON_FEED = {"Content-Type": "application/feed+json"}


def test_a_headline_with_line_breaks_adds_no_header_and_no_recipient(
    feed_server: FeedServer, smtp_server: SmtpServer, write_config: Callable[..., Path]
) -> None:
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>W</title><item>'
        "<title>Harbour strike ends&#13;&#10;Bcc: victim@evil.test&#13;&#10;X-Injected: 1"
        "</title><link>https://wire.example.org/1</link>"
        f"<pubDate>{ago(minutes=5)}</pubDate></item></channel></rss>"
    )
    json_feed = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "J",
            "items": [
                {
                    "id": "j1",
                    "url": "https://post.example.org/1",
                    "title": "Tram line opens\r\nBcc: victim@evil.test\nX-Injected: 2",
                    "date_published": "2026-12-01T06:00:00Z",
                }
            ],
        }
    )
    config = write_config(
        [
            ("Wire", feed_server.add("/w.xml", rss)),
            ("Post", feed_server.add("/p.json", json_feed, headers=JSON_FEED)),
        ],
        transport="smtp",
        smtp_port=smtp_server.port,
    )
    assert run_cli("--config", str(config), "subscribers", "add", "ann@example.org")[0] == 0
    code, _, err = run_cli("--config", str(config), "send", "--gather")
    assert code == 0, err
    [received] = smtp_server.messages
    assert received.recipients == ["ann@example.org"]
    message = received.message()
    head = received.data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert "Bcc" not in message and "X-Injected" not in message
    assert "\nBcc:" not in head and "\nX-Injected:" not in head
    subject = str(message["Subject"])
    assert "\r" not in subject and "\n" not in subject
    assert subject.startswith("Daily Test: Harbour strike ends Bcc: victim@evil.test")


def test_a_feeds_dtd_and_entities_never_fetch_or_read_anything(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    dtd = feed_server.add("/evil.dtd", '<!ENTITY leak "LEAKED">')
    entity = feed_server.add("/entity.txt", "FETCHED")

    def feed(doctype: str, title: str) -> str:
        return (
            f'<?xml version="1.0"?>{doctype}<rss version="2.0"><channel><title>T</title>'
            f"<item><title>{title}</title><link>https://x.example.org/{len(doctype)}</link>"
            f"<pubDate>{ago(minutes=5)}</pubDate></item></channel></rss>"
        )

    documents = {
        "parameter-entity": feed(f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "{dtd}"> %p;]>', "P &leak;"),
        "external-dtd": feed(f'<!DOCTYPE rss SYSTEM "{dtd}">', "D &leak;"),
        "http-entity": feed(f'<!DOCTYPE rss [<!ENTITY e SYSTEM "{entity}">]>', "H &e;"),
        "file-entity": feed('<!DOCTYPE rss [<!ENTITY e SYSTEM "file:///etc/hostname">]>', "F &e;"),
    }
    config = write_config(
        [(name, feed_server.add(f"/{name}", body)) for name, body in documents.items()]
    )
    code, _, err = run_cli("--config", str(config), "gather")
    assert code == 0, err
    asked = sorted(path for path, _ in feed_server.requests)
    assert asked == sorted(f"/{name}" for name in documents)  # never the DTD or the entity
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else ""
    app = App.open(load_config(config))
    try:
        titles = [article.title for article, _ in every_article(app)]
    finally:
        app.close()
    assert len(titles) == len(documents)
    for title in titles:
        assert "LEAKED" not in title and "FETCHED" not in title
        assert not hostname or hostname not in title
