"""A picture left out for its address is said, from every kind of source.

README promises a note for a picture whose address digest does not keep (past 2,048
bytes, or a host mail clients may read as another): one rule (``pictures.left_out``)
asked wherever an item writes its picture: media, enclosure, JSON Feed's image, a
sitemap's ``<image:loc>``, the item's own ``<img>``, an article page's og:image.
"""

from __future__ import annotations

import json

import pytest

from digest.sources.normalise import URL_LIMIT
from digest.sources.parse import parse_feed
from digest.sources.sitemap import parse_sitemap
from tests.conftest import FeedServer
from tests.test_page import ARTICLES, ENVOY, HTML, PAGES, SALARIES, read, serve

LONG = "https://img.example.org/" + "a" * URL_LIMIT + ".jpg"


def test_a_sitemap_pictures_address_left_out_is_said() -> None:
    sitemap = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
        ' xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">'
        "<url><loc>https://n.example.org/world/2026/12/envoy-visit-eases-tensions.html</loc>"
        f"<image:image><image:loc>{LONG}</image:loc></image:image></url>"
        "<url><loc>https://n.example.org/world/2026/12/harbour-strike-ends-today.html</loc>"
        "<image:image><image:loc>http://%31%39%32.168.1.1/x.jpg</image:loc></image:image>"
        "</url></urlset>"
    ).encode()
    items, notes = parse_sitemap("Lantern", sitemap, "https://n.example.org/news-sitemap.xml")
    assert [item.image_url for item in items] == [None, "http://192.168.1.1/x.jpg"]
    [note] = notes
    assert note.startswith("entry 1: its picture's address is 2,") and "bytes long" in note
    assert note.endswith("left out"), note


@pytest.mark.parametrize("kind", ["rss", "atom", "json"])  # fast path, feedparser, JSON
def test_an_inline_pictures_address_left_out_is_said(kind: str) -> None:
    html = f'&lt;p&gt;Text&lt;img src="{LONG}" width="800" height="600"&gt;&lt;/p&gt;'
    pixel = f'&lt;img src="https://pixel.example.org/{"p" * URL_LIMIT}" width="1" height="1"&gt;'
    if kind == "rss":
        body = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
            f"<item><title>Storm</title><link>https://n.example.org/1</link>"
            f"<description>{html}</description></item>"
            f"<item><title>Calm</title><link>https://n.example.org/2</link>"
            f"<description>{pixel}Calm day.</description></item></channel></rss>"
        ).encode()
        headers = {"Content-Type": "application/rss+xml"}
    elif kind == "atom":  # a feed feedparser reads (an entity the fast path leaves to it)
        body = (
            '<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY w "Wire">]>'
            '<feed xmlns="http://www.w3.org/2005/Atom"><title>&w;</title>'
            '<entry><title>Storm</title><link href="https://n.example.org/1"/><id>1</id>'
            f'<summary type="html">{html}</summary></entry>'
            '<entry><title>Calm</title><link href="https://n.example.org/2"/><id>2</id>'
            f'<summary type="html">{pixel}Calm day.</summary></entry></feed>'
        ).encode()
        headers = {"Content-Type": "application/atom+xml"}
    else:
        feed = {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Wire",
            "items": [
                {
                    "id": "1",
                    "url": "https://n.example.org/1",
                    "title": "Storm",
                    "content_html": f'<p>Text<img src="{LONG}" width="800" height="600"></p>',
                },
                {
                    "id": "2",
                    "url": "https://n.example.org/2",
                    "title": "Calm",
                    "content_html": f'<img src="https://pixel.example.org/{"p" * URL_LIMIT}"'
                    ' width="1" height="1">Calm day.',
                },
            ],
        }
        body, headers = json.dumps(feed).encode(), {"Content-Type": "application/feed+json"}
    items, notes = parse_feed("Wire", body, headers, 50, "https://n.example.org/feed")
    assert [(item.title, item.image_url) for item in items] == [("Storm", None), ("Calm", None)]
    # the story's picture is said; a tracking pixel passed over is no picture to speak of
    [note] = notes
    size = len(LONG)
    assert note.startswith(f"item 1 ('Storm'): its picture's address is {size:,} bytes long")
    assert note.endswith("left out"), note


async def test_a_page_sources_picture_address_left_out_is_said(feed_server: FeedServer) -> None:
    """An article page whose og:image is past the limit: the article is kept, its picture
    left out with a note naming the article; the other pages' pictures are kept."""
    listing = serve(feed_server)
    envoy = (PAGES / ARTICLES[ENVOY]).read_text(encoding="utf-8")
    long_picture = "{BASE}/img/" + "e" * URL_LIMIT + ".jpg"
    envoy = envoy.replace("{BASE}/img/envoy-arrives.jpg", long_picture)
    feed_server.add(ENVOY, envoy.replace("{BASE}", feed_server.url("")), headers=HTML)
    items, notes = await read(feed_server, listing)
    assert set(items) == set(ARTICLES)
    assert items[ENVOY].image_url is None
    assert items[SALARIES].image_url == feed_server.url("/img/salaries.png")
    [note] = notes
    assert note.startswith(f"article {feed_server.url(ENVOY)}: its picture's address is "), note
    assert "bytes long" in note and note.endswith("left out"), note
