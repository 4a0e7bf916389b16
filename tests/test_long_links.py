"""A link of tens of kilobytes is a broken or hostile feed's, and costs only its own item.

PostgreSQL cannot index an address past ~2,700 bytes: one such link in a feed failed the
insert of all its source's items, and the source with it. Now an item whose link is past
``URL_LIMIT`` is skipped with a note naming it and its length, a picture address past it
is no picture, and the feed's other items are stored, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from digest.app import App
from digest.config import load_config
from digest.sources.normalise import URL_LIMIT
from digest.sources.parse import parse_feed
from tests.conftest import FeedServer, ago, run_cli
from tests.store_queries import every_article

# Letters at random: PostgreSQL compresses a repetitive value under its index limit.
LONG = "".join(random.Random(7).choices(string.ascii_letters, k=12_000))
MEDIA = 'xmlns:media="http://search.yahoo.com/mrss/"'


def _rss() -> str:
    def item(title: str, link: str, extra: str = "") -> str:
        return (
            f"<item><title>{title}</title><link>{link}</link>"
            f"<pubDate>{ago(minutes=5)}</pubDate>{extra}</item>"
        )

    picture = f'<media:content url="https://img.example.org/{LONG}.jpg" medium="image"/>'
    return (
        f'<?xml version="1.0"?><rss version="2.0" {MEDIA}><channel><title>Wire</title>'
        + item("Endless link", f"https://wire.example.org/{LONG}")
        + item("Harbour strike ends", "https://wire.example.org/harbour", picture)
        + "</channel></rss>"
    )


def _json_feed() -> str:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Post",
            "items": [
                {"id": "1", "url": f"https://post.example.org/{LONG}", "title": "Endless"},
                {
                    "id": "2",
                    "url": "https://post.example.org/tram",
                    "title": "Tram line opens",
                    "image": f"https://img.example.org/{LONG}.jpg",
                },
            ],
        }
    )


@pytest.fixture
def gathered(
    feed_server: FeedServer, write_config: Callable[..., Path], database_url: str
) -> tuple[dict[str, dict[str, Any]], dict[str, list[Any]]]:
    """One gather of both feeds: the JSON reports and the stored articles, by source."""
    json_type = {"Content-Type": "application/feed+json"}
    config = write_config(
        [
            ("Wire", feed_server.add("/wire.xml", _rss())),
            ("Post", feed_server.add("/post.json", _json_feed(), headers=json_type)),
        ],
        database_url=database_url,
    )
    code, out, err = run_cli("--config", str(config), "gather", "--json")
    assert code == 0, err
    app = App.open(load_config(config))
    try:
        stored: dict[str, list[Any]] = {}
        for article, name in every_article(app):
            stored.setdefault(name, []).append(article)
    finally:
        app.close()
    return {r["name"]: r for r in json.loads(out)["sources"]}, stored


def test_an_endless_link_skips_its_item_with_a_note_and_the_rest_is_stored(
    gathered: tuple[dict[str, dict[str, Any]], dict[str, list[Any]]],
) -> None:
    reports, stored = gathered
    for name, kept in (("Wire", "Harbour strike ends"), ("Post", "Tram line opens")):
        report = reports[name]
        assert (report["status"], report["new_items"]) == ("ok", 1), report
        assert [a.title for a in stored[name]] == [kept]
        [note] = [n for n in report["notes"] if "Endless" in n]
        assert f"a link {len(LONG) + 25:,} bytes long" in note, note  # host, "/" and LONG
        assert f"past the {URL_LIMIT:,} digest keeps; skipped" in note, note


def test_a_picture_address_past_the_limit_is_no_picture(
    gathered: tuple[dict[str, dict[str, Any]], dict[str, list[Any]]],
) -> None:
    reports, stored = gathered
    [harbour] = stored["Wire"]
    assert harbour.image_url is None
    [tram] = stored["Post"]
    assert tram.image_url is None
    for name, title in (("Wire", "Harbour strike ends"), ("Post", "Tram line opens")):
        # the story is kept, and the picture left out is said, not lost without a word
        [note] = [n for n in reports[name]["notes"] if title in n]
        size = len(f"https://img.example.org/{LONG}.jpg")
        assert f"its picture's address is {size:,} bytes long" in note, note
        assert note.endswith("left out"), note
    for articles in stored.values():
        for article in articles:
            assert len(article.url.encode()) <= URL_LIMIT


@pytest.mark.parametrize("kind", ["rss", "rdf", "json"])  # fast path, feedparser, JSON
def test_a_relative_link_past_the_limit_is_named_for_its_length(kind: str) -> None:
    """A relative link is read against the feed's address: when that makes it too long,
    the note says so, not that the item has no http(s) link."""
    relative = f"/stories/{LONG[:2040]}"
    if kind == "rss":
        body = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
            f"<item><title>Endless</title><link>{relative}</link></item>"
            "<item><title>Tram line opens</title><link>/tram</link></item></channel></rss>"
        ).encode()
        headers = {"Content-Type": "application/rss+xml"}
    elif kind == "rdf":  # RSS 1.0: feedparser reads it, and leaves the link relative
        body = (
            '<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
            ' xmlns="http://purl.org/rss/1.0/"><channel rdf:about="x"><title>Wire</title>'
            "</channel>"
            f'<item rdf:about="1"><title>Endless</title><link>{relative}</link></item>'
            '<item rdf:about="2"><title>Tram line opens</title><link>/tram</link></item>'
            "</rdf:RDF>"
        ).encode()
        headers = {"Content-Type": "application/rdf+xml"}
    else:
        feed = {"version": "https://jsonfeed.org/version/1.1", "title": "Post"}
        feed["items"] = [  # type: ignore[assignment]
            {"id": "1", "url": relative, "title": "Endless"},
            {"id": "2", "url": "/tram", "title": "Tram line opens"},
        ]
        body, headers = json.dumps(feed).encode(), {"Content-Type": "application/feed+json"}
    items, notes = parse_feed("Wire", body, headers, 50, "https://wire.example.org/feed")
    assert [item.title for item in items] == ["Tram line opens"]
    [note] = notes
    size = len("https://wire.example.org") + len(relative)
    assert f"has a link {size:,} bytes long ('https://wire.example.org/stories/" in note, note
    assert "skipped" in note, note
