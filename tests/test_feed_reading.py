"""What a feed says reaches the store as it said it: crafted feeds through `digest gather`.

Each case is one way digest used to misread a feed (the fast lxml path and the feedparser
path alike): text that looks like a tag, markup inside an element, an Atom <source>, a
windows-1252 feed labelled ISO-8859-1, an entry whose id is its link, fields the fast path
never read, and a relative Content-Location.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.app import App
from digest.config import load_config
from digest.store import Article
from tests.conftest import FeedServer, run_cli
from tests.store_queries import articles_between

ATOM = "application/atom+xml"
Gather = Callable[..., list[Article]]


@pytest.fixture
def gather(feed_server: FeedServer, write_config: Callable[..., Path]) -> Gather:
    """Serve ``body`` (with ``headers``), run `digest gather`, and return what it stored."""

    def run(body: bytes | str, headers: dict[str, str] | None = None) -> list[Article]:
        url = feed_server.add(
            "/feeds/feed.xml", body, headers=headers or {"Content-Type": "application/xml"}
        )
        config = write_config([("Wire", url)])
        code, out, err = run_cli("--config", str(config), "gather", "--json")
        assert code == 0, err
        [report] = json.loads(out)["sources"]
        assert report["status"] == "ok", report
        app = App.open(load_config(config))
        try:
            now = datetime.now(UTC)
            far = now.replace(year=now.year - 40), now.replace(year=now.year + 40)
            rows = articles_between(app.store, *far, ["Wire"])
        finally:
            app.close()
        return sorted((article for article, _ in rows), key=lambda a: a.url)

    return run


def _rss(items: str, declaration: str = '<?xml version="1.0" encoding="utf-8"?>') -> str:
    return (
        f'{declaration}\n<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:a10="http://www.w3.org/2005/Atom"><channel><title>W</title>'
        f"{items}</channel></rss>"
    )


def _atom(entries: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:media="http://search.yahoo.com/mrss/"><title>W</title><id>urn:w</id>'
        f"<updated>2026-12-01T00:00:00Z</updated>{entries}</feed>"
    )


# --- 1. text is text; only HTML is cleaned as HTML -------------------------------------------


def test_text_that_looks_like_a_tag_is_kept(gather: Gather) -> None:
    atom = _atom(
        "<entry><title type='text'>History of the &lt;blink&gt; tag</title>"
        "<link href='https://example.org/1'/><id>urn:1</id>"
        "<summary type='text'>if x&lt;y then</summary></entry>"
        "<entry><title type='html'>Tom &amp;amp; Jerry &lt;em&gt;live&lt;/em&gt;</title>"
        "<link href='https://example.org/2'/><id>urn:2</id></entry>"
    )
    first, second = gather(atom, {"Content-Type": ATOM})
    assert (first.title, first.summary) == ("History of the <blink> tag", "if x<y then.")
    assert second.title == "Tom & Jerry live"  # HTML: the markup goes


def test_an_rss_title_is_text_unless_it_carries_markup(gather: Gather) -> None:
    rss = _rss(
        "<item><title>Rust's Vec&lt;T&gt; and a&lt;b explained</title>"
        "<link>https://example.org/1</link></item>"
        "<item><title>The &lt;b&gt;bold&lt;/b&gt; plan</title>"
        "<link>https://example.org/2</link></item>"
    )
    first, second = gather(rss)
    assert first.title == "Rust's Vec<T> and a<b explained"
    assert second.title == "The bold plan"


# --- 2. the whole of an element, and the feed's own entities ---------------------------------


def test_markup_inside_an_element_is_read_whole(gather: Gather) -> None:
    feed = _rss(
        "<item><title>The <b>bold</b> plan</title><link>https://example.org/1</link>"
        "<description>But what exactly <em>is</em> good compression?</description></item>"
    )
    [item] = gather(feed)
    assert (item.title, item.summary) == ("The bold plan", "But what exactly is good compression?")


def test_entities_the_feed_declares_are_expanded(gather: Gather) -> None:
    feed = _rss(
        "<item><title>Caf&eacute;&nbsp;society</title><link>https://example.org/1</link></item>",
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<!DOCTYPE rss [<!ENTITY nbsp "&#160;"><!ENTITY eacute "&#233;">]>',
    )
    [item] = gather(feed)
    assert item.title == "Café society"  # the no-break space, as every space, tidied


# --- 3. an Atom <source> describes where the entry came from, not the entry -------------------


def test_an_atom_source_elements_link_is_not_the_entrys(gather: Gather) -> None:
    feed = _atom(
        "<entry><title>Copied</title><id>urn:1</id>"
        "<source><link href='https://origin.example/feed'/><id>urn:origin</id></source>"
        "<link href='https://example.org/copied'/></entry>"
    )
    [item] = gather(feed, {"Content-Type": ATOM})
    assert item.url == "https://example.org/copied"


# --- 4. windows-1252 bytes in a feed labelled ISO-8859-1 ------------------------------------


@pytest.mark.parametrize("charset_header", [False, True])
def test_windows_1252_bytes_labelled_latin_1_are_read_as_windows_1252(
    gather: Gather, charset_header: bool
) -> None:
    feed = _rss(
        "<item><title>Don\x92t panic \x96 caf\xe9</title><link>https://example.org/1</link>"
        "<description>\x93Quoted\x94</description></item>",
        '<?xml version="1.0" encoding="ISO-8859-1"?>',
    ).encode("latin-1")
    content_type = "application/rss+xml" + ("; charset=ISO-8859-1" if charset_header else "")
    [item] = gather(feed, {"Content-Type": content_type})
    assert (item.title, item.summary) == ("Don’t panic – café", "“Quoted”.")


# --- 5. one reading, whichever path reads the feed -------------------------------------------


@pytest.mark.parametrize("charset", ["", "; charset=utf-8", "; charset=iso-8859-1"])
def test_an_atom_entry_whose_id_is_its_url_is_kept_on_either_path(
    gather: Gather, charset: str
) -> None:
    """The charset decides the path (a charset the declaration does not name: feedparser)."""
    feed = _atom(
        "<entry><title>Id only</title><id>https://example.org/posts/1</id></entry>"
        "<entry><title>Relative id</title><id>/posts/2</id>"
        "<link href='https://example.org/posts/2'/></entry>"
    )
    first, second = gather(feed, {"Content-Type": ATOM + charset})
    assert (first.url, first.guid) == ("https://example.org/posts/1", "https://example.org/posts/1")
    # RFC 4287 compares ids as strings: a relative one is kept as written, on both paths.
    assert (second.url, second.guid) == ("https://example.org/posts/2", "/posts/2")


# --- 6. fields the fast path never read --------------------------------------------------------


def test_media_description_dublin_core_and_embedded_atom_fields_are_read(gather: Gather) -> None:
    feed = _rss(
        "<item><dc:title>A Dublin Core title</dc:title><link>https://example.org/1</link>"
        "<dc:description>A Dublin Core description</dc:description>"
        "<dcterms:modified>2026-11-30T08:00:00Z</dcterms:modified></item>"
        "<item><title>.NET</title><link>https://example.org/2</link>"
        "<a10:updated>2026-11-29T08:00:00Z</a10:updated>"
        "<body xmlns='http://www.w3.org/1999/xhtml'><p>An XHTML body</p></body></item>"
    )
    first, second = gather(feed)
    assert (first.title, first.summary) == ("A Dublin Core title", "A Dublin Core description.")
    assert first.published_at.replace(tzinfo=UTC) == datetime(2026, 11, 30, 8, tzinfo=UTC)
    assert second.summary == "An XHTML body."
    assert second.published_at.replace(tzinfo=UTC) == datetime(2026, 11, 29, 8, tzinfo=UTC)


def test_a_youtube_entrys_media_description_is_its_summary(gather: Gather) -> None:
    feed = _atom(
        "<entry><title>Video</title><link rel='alternate' href='https://www.youtube.com/watch?v=x'/>"
        "<id>yt:video:x</id><media:group><media:title>Video</media:title>"
        "<media:description>What the video shows.</media:description></media:group></entry>"
    )
    [item] = gather(feed, {"Content-Type": ATOM})
    assert item.summary == "What the video shows."


# --- 7. the document's own URL, and a body served without a Content-Type ---------------------


def test_a_relative_content_location_resolves_against_the_fetched_url(
    gather: Gather, feed_server: FeedServer
) -> None:
    feed = _rss("<item><title>Relative</title><link>posts/1</link></item>")
    [item] = gather(feed, {"Content-Type": "application/xml", "Content-Location": "/news/"})
    assert item.url == feed_server.url("/news/posts/1")


def test_a_body_without_a_content_type_that_is_no_feed_says_so(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    url = feed_server.add("/feeds/feed.xml", b"just some text, no feed at all", headers={})
    _, out, _ = run_cli("--config", str(write_config([("Wire", url)])), "gather", "--json")
    [report] = json.loads(out)["sources"]
    assert report["status"] == "error"
    assert "Content-type" not in report["error"]
    assert "not well-formed XML" in report["error"], report
