"""Sources of kind 'page' over real HTTP: a listing page in the style of a news site's
"Latest Updates" and "Breaking News" columns, and the article pages it links to.

The pages are files under tests/data/pages; ``{BASE}`` in them becomes the local server's
address, so absolute canonical and image URLs point back at it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from digest.app import App
from digest.config import SourceConfig, load_config
from digest.errors import SourceError
from digest.records import FeedItem
from digest.sources.fetch import Fetched, fetch
from digest.sources.metadata import read_metadata
from digest.sources.page import find_links, read_page_source
from digest.sources.site import Site
from digest.store import Article
from tests.conftest import FeedServer, run_cli

PAGES = Path(__file__).parent / "data" / "pages"
HTML = {"Content-Type": "text/html; charset=utf-8"}

# path on the server -> file
ARTICLES = {
    "/world/2026/11/27/envoy-visit-eases-trade-tensions": "envoy.html",
    "/business/province-pays-salaries-early-before-holiday-48213": "salaries.html",
    "/culture/viral-song-taken-down-after-millions-of-views": "song.html",
    "/live/election-count-results-as-they-come-in": "election.html",
    "/world/embassy-says-it-is-closely-following-developments": "embassy.html",
    "/science/2026/11/28/probe-returns-samples-from-asteroid": "probe.html",
}
ENVOY, SALARIES, SONG, ELECTION, EMBASSY, PROBE = ARTICLES


def serve(server: FeedServer, skip: tuple[str, ...] = ()) -> str:
    """Serve the listing at /news/latest and every article page; returns the listing URL."""
    base = server.url("")
    for path, name in ARTICLES.items():
        if path not in skip:
            text = (PAGES / name).read_text(encoding="utf-8").replace("{BASE}", base)
            server.add(path, text, headers=HTML)
    return server.add("/news/latest", (PAGES / "listing.html").read_bytes(), headers=HTML)


async def read(
    server: FeedServer,
    listing_url: str,
    known: set[str] | None = None,
    **config: object,
) -> tuple[dict[str, FeedItem], list[str]]:
    """Run read_page_source over the real server; items keyed by their path."""
    source = SourceConfig.model_validate(
        {"name": "lantern", "kind": "page", "url": listing_url, **config}
    )
    async with httpx.AsyncClient(timeout=5) as client:
        listing = await fetch(client, "lantern", listing_url, Path("."))

        def fetch_article(url: str, site: Site) -> Awaitable[Fetched]:
            return fetch(client, "lantern", url, Path("."), within=site)

        def is_known(urls: list[str]) -> set[str]:
            return {u for u in urls if u in (known or set())}

        items, notes = await read_page_source(source, listing, listing_url, fetch_article, is_known)
    base = server.url("")
    return {i.url.removeprefix(base): i for i in items}, notes


def article_requests(server: FeedServer) -> list[str]:
    return [path for path, _ in server.requests if path in ARTICLES]


async def test_automatic_extraction_finds_exactly_the_articles(feed_server: FeedServer) -> None:
    items, notes = await read(feed_server, serve(feed_server))
    # Not the nav, footer, share, author, tag, login or other-site links; tracking
    # parameters stripped, so the sidebar's ?utm_source link is the same article.
    assert set(items) == set(ARTICLES)
    assert notes == []
    assert sorted(article_requests(feed_server)) == sorted(ARTICLES)  # each page once


async def test_automatic_breaking_flags(feed_server: FeedServer) -> None:
    items, _ = await read(feed_server, serve(feed_server))
    breaking = {path for path, item in items.items() if item.breaking}
    assert breaking == {
        SALARIES,  # in the "Breaking News" section (and also listed under Latest Updates)
        SONG,  # same section
        EMBASSY,  # the block right after a second "Breaking News" heading
        PROBE,  # its own "Just in" label
        ELECTION,  # a LiveBlogPosting with no coverageEndTime: still live
    }
    assert not items[ENVOY].breaking  # the top story, under no breaking heading


async def test_configured_selectors_override_automatic_detection(feed_server: FeedServer) -> None:
    items, _ = await read(
        feed_server,
        serve(feed_server),
        links="ul.latest-list a",
        breaking="ul.latest-list li:first-child",
    )
    assert set(items) == {PROBE, ELECTION, SALARIES}
    assert items[PROBE].breaking  # the selector
    assert items[ELECTION].breaking  # live, whatever the selectors say
    assert not items[SALARIES].breaking  # the page's breaking block is not consulted


async def test_metadata_from_json_ld_graph_and_opengraph(feed_server: FeedServer) -> None:
    items, _ = await read(feed_server, serve(feed_server))
    base = feed_server.url("")
    envoy = items[ENVOY]
    assert envoy.guid == envoy.url == base + ENVOY
    # The JSON-LD NewsArticle inside @graph wins over OpenGraph; a broken block is skipped.
    assert envoy.title == "Envoy's visit sets out to ease trade tensions between the two capitals"
    assert envoy.summary.startswith("The foreign minister arrives on Wednesday")
    assert envoy.published_at == datetime(2026, 11, 27, 4, 30, tzinfo=UTC)
    assert envoy.modified_at == datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    assert envoy.author == "Mira Halden, Tomas Ilves"
    assert envoy.section == "World"
    assert envoy.language == "en-GB"
    assert envoy.image_url == base + "/img/envoy-arrives.jpg"
    assert envoy.image_alt == "The envoy steps off the plane in the rain"

    salaries = items[SALARIES]
    assert salaries.title == "Province to pay public salaries early before the holiday"
    assert salaries.summary == (
        "Public employees will be paid five days before the holiday, the finance department said."
    )
    assert salaries.published_at == datetime(2026, 11, 26, 13, 45, tzinfo=UTC)
    assert salaries.author == "Lantern Business Desk"
    assert salaries.image_url == base + "/img/salaries.png"  # relative og:image resolved

    probe = items[PROBE]
    assert probe.title == "Probe returns samples from a distant asteroid"
    assert probe.section == "Science"
    assert probe.language == "en"
    assert not probe.summary.startswith("<")


async def test_date_fallbacks_and_future_dates(feed_server: FeedServer) -> None:
    before = datetime.now(UTC)
    items, _ = await read(feed_server, serve(feed_server))
    # No JSON-LD, no article:published_time: the page's <time datetime>.
    assert items[EMBASSY].published_at == datetime(2026, 11, 26, 8, 15, tzinfo=UTC)
    assert items[EMBASSY].title == "Embassy says it is closely following developments"
    assert items[EMBASSY].summary.startswith("The embassy said it was following")
    # Marked lang="ur", written in English: no language rather than a wrong one, which the
    # email would give a screen reader (``fitting_language``).
    assert items[EMBASSY].language is None
    # OpenGraph's article:published_time when there is no JSON-LD.
    assert items[SONG].published_at == datetime(2026, 11, 27, 21, 10, tzinfo=UTC)
    # A date in 2099 is clamped to now.
    election = items[ELECTION].published_at
    assert election is not None and before <= election <= datetime.now(UTC) + timedelta(seconds=1)
    assert (
        items[ELECTION].summary == "Follow the count district by district as the results come in."
    )


async def test_hostile_metadata_never_survives(feed_server: FeedServer) -> None:
    items, _ = await read(feed_server, serve(feed_server))
    song = items[SONG]
    stored = " ".join(
        str(v) for v in (song.title, song.summary, song.author, song.section, song.image_alt)
    )
    for bad in ("<", "script", "onerror", "onload", "onmouseover", "javascript:", "alert", "steal"):
        assert bad not in stored.lower(), bad
    assert song.title == "Viral song taken down after millions of views"
    assert song.summary == "The song had passed 28 million views."  # not its "Watch" link
    assert song.image_url is None  # javascript: is not an image
    # A canonical link to another site cannot take over that site's article.
    assert song.url == feed_server.url(SONG)


async def test_known_articles_are_not_fetched_again(feed_server: FeedServer) -> None:
    listing = serve(feed_server)
    known = {feed_server.url(ENVOY), feed_server.url(SONG)}
    items, _ = await read(feed_server, listing, known=known)
    assert set(items) == set(ARTICLES) - {ENVOY, SONG}
    assert ENVOY not in article_requests(feed_server)
    assert SONG not in article_requests(feed_server)


async def test_max_articles_caps_the_pages_fetched(feed_server: FeedServer) -> None:
    items, notes = await read(feed_server, serve(feed_server), max_articles=2)
    assert len(items) == 2 and len(article_requests(feed_server)) == 2
    assert notes == ["4 more new links left for the next run (max_articles = 2)"]


async def test_a_broken_article_page_is_a_note(feed_server: FeedServer) -> None:
    items, notes = await read(feed_server, serve(feed_server, skip=(SONG,)))
    assert set(items) == set(ARTICLES) - {SONG}
    assert len(notes) == 1
    assert notes[0].startswith(f"article {feed_server.url(SONG)} skipped: ")
    assert "404" in notes[0]


async def test_a_page_without_article_links_is_a_source_error(feed_server: FeedServer) -> None:
    url = feed_server.add(
        "/empty", "<html><body><nav><a href='/a-b-c-d'>Home page link</a>", headers=HTML
    )
    with pytest.raises(SourceError, match="no article links") as caught:
        await read(feed_server, url)
    assert caught.value.hint == "set `links` to a CSS selector of the article links"
    feed = feed_server.add("/feed.xml", '<?xml version="1.0"?><rss version="2.0"><channel/></rss>')
    with pytest.raises(SourceError, match="no article links") as caught:
        await read(feed_server, feed)
    assert caught.value.hint == "the address serves XML, not a web page: set kind = 'feed'"


async def test_a_bad_selector_is_a_source_error(feed_server: FeedServer) -> None:
    with pytest.raises(SourceError, match="invalid CSS selector"):
        await read(feed_server, serve(feed_server), links="ul[[[")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", ""),
        (b"\x00\xff\xfe garbage", ""),
        (b"<html><head><title>Only a <b>title</b></title></head></html>", "Only a title"),
        (
            b'<html><head><script type="application/ld+json">{"@type": ["Thing", "NewsArticle"],'
            b' "headline": "Typed twice"}</script></head></html>',
            "Typed twice",
        ),
    ],
)
def test_read_metadata_is_total(body: bytes, expected: str) -> None:
    assert read_metadata(body, "https://news.example/a").title == expected


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<title>Café crème</title>".encode(), ""),  # UTF-8, undeclared
        ("<title>Café crème</title>".encode("latin-1"), ""),  # Latin-1, undeclared
        ("<title>Café crème</title>".encode("latin-1"), "text/html; charset=ISO-8859-1"),
        ('<meta charset="windows-1252"><title>Café crème</title>'.encode("cp1252"), ""),
        ('<?xml version="1.0" encoding="utf-8"?><title>Café crème</title>'.encode(), ""),
    ],
)
def test_article_page_charsets(body: bytes, content_type: str) -> None:
    meta = read_metadata(body, "https://news.example/a", content_type=content_type)
    assert meta.title == "Café crème"


def test_gather_json_end_to_end(feed_server: FeedServer, write_config: Callable[..., Path]) -> None:
    listing = serve(feed_server)
    sitemap = feed_server.add(
        "/news-sitemap.xml",
        (PAGES / "news-sitemap.xml").read_bytes(),
        headers={"Content-Type": "application/xml"},
    )
    config = write_config(
        [],
        extra=(
            f'\n[[sources]]\nname = "Lantern"\nkind = "page"\nurl = "{listing}"\n'
            f'\n[[sources]]\nname = "Lantern sitemap"\nkind = "sitemap"\nurl = "{sitemap}"\n'
        ),
    )
    code, out, err = run_cli("--config", str(config), "gather", "--json")
    assert code == 0, err
    reports = {s["name"]: s for s in json.loads(out)["sources"]}
    assert reports["Lantern"]["status"] == "ok"
    assert reports["Lantern"]["new_items"] == len(ARTICLES)
    assert reports["Lantern sitemap"]["status"] == "ok"
    assert reports["Lantern sitemap"]["new_items"] == 4
    first = sorted(article_requests(feed_server))
    assert first == sorted(ARTICLES)

    # The second run reads the listing again but fetches no article page twice.
    code, out, err = run_cli("--config", str(config), "gather", "--json")
    assert code == 0, err
    reports = {s["name"]: s for s in json.loads(out)["sources"]}
    assert reports["Lantern"]["new_items"] == 0
    assert sorted(article_requests(feed_server)) == first

    app = App.open(load_config(config))
    try:
        with app.store.session() as s:
            rows = s.exec(select(Article)).all()
            breaking = {r.url.removeprefix(feed_server.url("")) for r in rows if r.breaking}
    finally:
        app.close()
    assert breaking == {SALARIES, SONG, EMBASSY, PROBE, ELECTION}


def test_a_listing_of_thousands_of_links_is_read_in_linear_time() -> None:
    # Once, breaking detection looked at every block again for every link: minutes here.
    items = "".join(
        f'<li><h3><a href="/news/2026/11/story-number-{i}-about-things">Story number {i} '
        f"about many things</a></h3></li>"
        for i in range(5000)
    )
    body = f"<html><body><main><h2>Latest</h2><div><ul>{items}</ul></div></main></body></html>"
    source = SourceConfig(name="big", kind="page", url="https://big.example/")
    started = time.perf_counter()
    links = find_links(source, body.encode(), "https://big.example/")
    assert len(links) == 5000 and not any(link.breaking for link in links)
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize(
    ("json_ld", "live"),
    [
        ('{"@type": "LiveBlogPosting", "headline": "Count"}', True),
        ('{"@type": "LiveBlogPosting", "coverageEndTime": "2999-01-01T00:00:00Z"}', True),
        ('{"@type": "LiveBlogPosting", "coverageEndTime": "2020-01-01T00:00:00Z"}', False),
        ('{"@type": "NewsArticle", "headline": "Not live"}', False),
        ('{"@graph": [{"@type": "WebPage"}, {"@type": "LiveBlogPosting"}]}', True),
    ],
)
def test_live_blogs_are_live_until_their_coverage_ends(json_ld: str, live: bool) -> None:
    body = f'<script type="application/ld+json">{json_ld}</script>'.encode()
    assert read_metadata(body, "https://news.example/live").live is live


def test_author_from_meta_tags_never_a_profile_url() -> None:
    body = (
        b'<meta property="article:author" content="https://social.example/mira">'
        b'<meta name="author" content="Mira Halden">'
    )
    assert read_metadata(body, "https://news.example/a").author == "Mira Halden"
    only_url = b'<meta property="article:author" content="https://social.example/mira">'
    assert read_metadata(only_url, "https://news.example/a").author is None


def test_links_are_only_followed_within_the_site() -> None:
    body = b"""<base href="http://169.254.169.254/">
    <ul class="list">
      <li><a href="https://news.lantern.example/2026/11/27/one-story-on-a-sister-host">One
        story on a sister host of the site</a></li>
      <li><a href="/2026/11/27/a-story-resolved-against-the-base">A story resolved
        against a hostile base element</a></li>
      <li><a href="http://127.0.0.1:8080/2026/11/27/an-internal-address">A story at an
        internal address on this machine</a></li>
      <li><a href="https://other.example/2026/11/27/another-sites-story">Another site's
        story that the selector also matches</a></li>
    </ul>"""
    for links in (None, "ul.list a"):
        source = SourceConfig(
            name="l", kind="page", url="https://www.lantern.example/", links=links
        )
        found = find_links(source, body, "https://www.lantern.example/latest")
        assert [link.url for link in found] == [
            "https://news.lantern.example/2026/11/27/one-story-on-a-sister-host"
        ]
