"""HTML nested far past any real page (tens of thousands of levels) is hostile: parsing it,
or walking up its ancestors, took seconds to minutes of CPU in a thread no deadline stops.
Such values are read as text by a tag strip (feeds) or refused with a note (pages)."""

from __future__ import annotations

import json
import time

import pytest

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.sources import parse_feed
from digest.sources.listing import read_listing
from digest.sources.normalise import MAX_NESTING, html_to_text, nesting_depth
from tests.conftest import FeedServer
from tests.test_page import ARTICLES, HTML, SONG, read, serve

LINKS = "".join(
    f'<li><a href="/news/2026/12/story-number-{i}-about-things">Story number {i} about '
    "many things</a></li>"
    for i in range(20)
)


def nested(levels: int, inner: str, tag: str = "div") -> str:
    return f"<{tag}>" * levels + inner + f"</{tag}>" * levels


def json_feed(**fields: str) -> bytes:
    item = {"id": "1", "url": "https://news.example/a", "title": "Plain title"} | fields
    return json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "title": "F", "items": [item]}
    ).encode()


def test_nesting_depth_counts_open_elements_not_void_or_closed_tags() -> None:
    assert nesting_depth("<p>a <b>b</b> <br> <img src=x/> c</p>" * 300) == 2
    assert nesting_depth(nested(600, "x")) == 600
    assert nesting_depth("1 < 2 and a<b" * 10) <= MAX_NESTING


@pytest.mark.parametrize("field", ["title", "content_html"])
def test_a_deeply_nested_feed_value_is_read_as_text_in_linear_time(field: str) -> None:
    # 300 KB of nested tags: ~3.6 s in nh3 before for the title alone, more on a busy machine.
    value = nested(30_000, "Deep <script>alert(1)</script> &lt;b&gt;text&lt;/b&gt;", "span")
    started = time.process_time()
    items, notes = parse_feed("Deep", json_feed(**{field: value}), summary_chars=300)
    assert time.process_time() - started < 2
    name = "title" if field == "title" else "summary"
    assert notes == [
        f"item 1: its {name} nests its HTML 30001 levels deep; read as plain text, not parsed"
    ]
    (item,) = items
    text = item.title if field == "title" else item.summary
    assert "Deep" in text and "text" in text
    assert "<" not in text


def test_deep_rss_title_is_read_as_text() -> None:
    title = nested(30_000, "Deep title", "b").replace("<", "&lt;").replace(">", "&gt;")
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>'
        f"<item><title>{title}</title><link>https://news.example/a</link></item>"
        "</channel></rss>"
    ).encode()
    started = time.process_time()
    items, notes = parse_feed("Deep", rss)
    assert time.process_time() - started < 2
    assert items[0].title == "Deep title"
    assert notes == [
        "item 1: its title nests its HTML 30000 levels deep; read as plain text, not parsed"
    ]


def test_html_to_text_strips_deep_markup_without_leaving_tags() -> None:
    value = nested(1000, "a &lt;script&gt;x&lt;/script&gt; b &amp;lt;i&amp;gt;c")
    assert "<" not in html_to_text(value)
    assert html_to_text(value).split() == ["a", "x", "b", "c"]


def test_a_page_nested_20000_levels_deep_is_refused_naming_the_source() -> None:
    # Before: ~7 s (and up to 18 s) of lexbor parsing and breaking detection's walk up
    # every ancestor, quadratic in the depth.
    body = f"<html><body>{nested(20_000, f'<ul>{LINKS}</ul>')}</body></html>".encode()
    source = SourceConfig(name="Deep news", kind="page", url="https://news.example/")
    started = time.process_time()
    with pytest.raises(SourceError) as raised:
        read_listing(source, body, "https://news.example/")
    assert time.process_time() - started < 2
    assert raised.value.source == "Deep news"
    assert "nests its HTML 20005 levels deep; not read" in str(raised.value)


def test_a_page_nested_within_the_limit_is_read() -> None:
    inner = f"<section class='breaking-news'><h2>Breaking</h2>{nested(400, f'<ul>{LINKS}</ul>')}"
    body = f"<html><body>{inner}</section></body></html>".encode()
    source = SourceConfig(name="News", kind="page", url="https://news.example/")
    started = time.process_time()
    links, _ = read_listing(source, body, "https://news.example/")
    assert time.process_time() - started < 2
    assert len(links) == 20


def _article(inner: str) -> str:
    """An article page whose metadata is all in its head, its body ``inner``."""
    return (
        "<html><head><title>Song taken down</title>"
        '<meta property="og:type" content="article">'
        '<meta property="og:description" content="The label asked for it.">'
        f"</head><body>{inner}</body></html>"
    )


async def test_an_article_page_nested_past_the_limit_is_skipped_with_a_note(
    feed_server: FeedServer,
) -> None:
    """As a listing page is refused (the same words): an article page nested past the limit
    is not parsed (lxml would stop at its own depth and keep what it read, without a word),
    its link is skipped with a note and tried again next run; the other articles are kept."""
    listing = serve(feed_server)
    feed_server.add(SONG, _article(nested(20_000, "<p>The lyrics.</p>")), headers=HTML)
    started = time.process_time()
    items, notes = await read(feed_server, listing)
    assert time.process_time() - started < 5
    assert set(items) == set(ARTICLES) - {SONG}
    assert notes == [
        f"article {feed_server.url(SONG)} skipped: the page nests its HTML 20003 levels deep; "
        "not read; tried again next run"
    ]


async def test_an_article_page_nested_within_the_limit_is_read(feed_server: FeedServer) -> None:
    listing = serve(feed_server)
    feed_server.add(SONG, _article(nested(400, "<p>The lyrics.</p>")), headers=HTML)
    items, notes = await read(feed_server, listing)
    assert notes == []
    assert items[SONG].title == "Song taken down"
    assert items[SONG].summary == "The label asked for it."
