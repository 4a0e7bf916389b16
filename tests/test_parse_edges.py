"""Edge cases of reading sources: odd dates, lying encodings, xml:base, cuts, sites, walls.

Each test pins one case where an item was lost, garbled or misread; where the case is about
a source, it goes end to end through the real FeedServer, App and database.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from digest.config import SourceConfig
from digest.pipeline import gather_sources
from digest.sources.dates import iso_date, parse_localised_date
from digest.sources.fastfeed import read_entries
from digest.sources.metadata import read_metadata
from digest.sources.page import find_links
from digest.sources.parse import parse_feed
from tests.conftest import FeedServer, OpenApp, rss
from tests.store_queries import every_article


def _source(name: str, url: str, kind: str) -> str:
    """A [[sources]] table of a kind other than feed, for the config's ``extra``."""
    return f'\n[[sources]]\nname = "{name}"\nkind = "{kind}"\nurl = "{url}"\n'


# --- dates out of range are no date, never a failed source ---------------------------------

OUT_OF_RANGE_ISO = ["9999-12-31", "0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"]


@pytest.mark.parametrize("value", OUT_OF_RANGE_ISO)
def test_an_iso_date_past_what_datetime_holds_is_no_date(value: str) -> None:
    assert iso_date(value, None) is None
    assert iso_date(value, datetime.now(UTC)) is None


def test_a_localised_date_past_year_9999_in_utc_is_no_date() -> None:
    assert parse_localised_date("Sex, 31 Dez 9999 23:00:00 -0100") is None


@pytest.mark.parametrize(
    "date", ["Fri, 31 Dec 9999 23:00:00 -0100", "Sex, 31 Dez 9999 23:00:00 -0100"]
)
@pytest.mark.parametrize("version", ["2.0", "0.92x"])  # the lxml fast path; feedparser
def test_an_rss_item_with_a_date_out_of_range_is_kept_undated(date: str, version: str) -> None:
    body = rss(
        [
            {"title": "Odd", "link": "https://x.test/odd", "date": date},
            {
                "title": "Good",
                "link": "https://x.test/good",
                "date": "Tue, 03 Jan 2023 12:00:00 GMT",
            },
        ]
    ).replace('version="2.0"', f'version="{version}"')
    items, notes = parse_feed("X", body.encode())
    assert {i.title: i.published_at for i in items} == {
        "Good": datetime(2023, 1, 3, 12, tzinfo=UTC),
        "Odd": None,
    }
    assert notes == []


def test_an_article_page_dated_out_of_range_is_read_undated() -> None:
    page = (
        b'<html><head><script type="application/ld+json">{"@type": "NewsArticle", '
        b'"headline": "Odd date", "datePublished": "0001-01-01T00:00:00+01:00"}</script>'
        b"</head><body></body></html>"
    )
    meta = read_metadata(page, "https://x.test/2024/05/odd-date-story")
    assert (meta.title, meta.published_at) == ("Odd date", None)


async def test_a_json_feed_item_dated_year_9999_does_not_fail_the_others(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "items": [
            {
                "id": "1",
                "url": "https://j.test/good",
                "title": "Good",
                "date_published": datetime.now(UTC).isoformat(),
            },
            {
                "id": "2",
                "url": "https://j.test/odd",
                "title": "Odd",
                "date_published": "9999-12-31",
            },
        ],
    }
    url = feed_server.add(
        "/j.json", json.dumps(feed), headers={"Content-Type": "application/feed+json"}
    )
    app = open_app([("J", url)])
    [report] = await gather_sources(app)
    assert (report.status, report.new_items) == ("ok", 2), (report.error, report.hint)
    assert {a.title for a, _ in every_article(app)} == {"Good", "Odd"}


async def test_a_sitemap_entry_dated_year_1_before_utc_does_not_fail_the_sitemap(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    now = datetime.now(UTC).isoformat()
    body = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
        "<url><loc>https://s.test/a</loc><news:news><news:title>Good one</news:title>"
        f"<news:publication_date>{now}</news:publication_date></news:news></url>"
        "<url><loc>https://s.test/b</loc><news:news><news:title>Odd one</news:title>"
        "<news:publication_date>0001-01-01T00:00:00+01:00</news:publication_date>"
        "</news:news><lastmod>9999-12-31</lastmod></url>"
        "</urlset>"
    )
    url = feed_server.add("/news-sitemap.xml", body)
    app = open_app([], extra=_source("Map", url, "sitemap"))
    [report] = await gather_sources(app)
    assert (report.status, report.new_items) == ("ok", 2), (report.error, report.hint)
    assert {a.title for a, _ in every_article(app)} == {"Good one", "Odd one"}


# --- the fast path reads what feedparser reads: encodings, xml:base ------------------------

CAFE = "Café São Paulo"


def _rss_declaring(encoding: str) -> str:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel><title>T'
        f"</title><item><title>{CAFE}</title><link>https://x.test/a</link></item>"
        "</channel></rss>"
    )


@pytest.mark.parametrize(
    ("declared", "written", "content_type"),
    [
        # UTF-8 bytes under a Latin-1 declaration: the HTTP charset tells the truth...
        ("ISO-8859-1", "utf-8", "application/rss+xml; charset=utf-8"),
        # ...or nothing does, and the text is mended as feedparser mends it.
        ("ISO-8859-1", "utf-8", "application/rss+xml"),
        ("windows-1252", "utf-8", "text/xml; charset=UTF-8"),
        # Honest declarations, with or without a charset that agrees.
        ("ISO-8859-1", "latin-1", "application/rss+xml; charset=iso-8859-1"),
        ("ISO-8859-1", "latin-1", "application/xml"),
        ("UTF-8", "utf-8", "application/rss+xml; charset=utf-8"),
        ("us-ascii", "ascii", "application/rss+xml"),
    ],
)
async def test_a_feed_is_read_in_its_true_encoding(
    feed_server: FeedServer, open_app: OpenApp, declared: str, written: str, content_type: str
) -> None:
    body = _rss_declaring(declared)
    if written == "ascii":
        body = body.replace(CAFE, "Cafe Sao Paulo")
    url = feed_server.add("/x.xml", body.encode(written), headers={"Content-Type": content_type})
    app = open_app([("X", url)])
    [report] = await gather_sources(app)
    expected = "Cafe Sao Paulo" if written == "ascii" else CAFE
    assert [a.title for a, _ in every_article(app)] == [expected], report.notes


@pytest.mark.parametrize(
    ("declared", "written", "content_type", "fast"),
    [
        ("UTF-8", "utf-8", "application/rss+xml; charset=utf-8", True),
        ("us-ascii", "ascii", "", True),
        ("ISO-8859-1", "latin-1", "application/rss+xml; charset=latin1", True),  # honest
        ("ISO-8859-1", "latin-1", "text/xml", True),
        ("ISO-8859-1", "utf-8", "", False),  # the declaration lies: the body is UTF-8
        ("ISO-8859-1", "latin-1", "application/rss+xml; charset=utf-8", False),  # disagree
        ("UTF-8", "utf-8", "application/rss+xml; charset=iso-8859-1", False),
        ("x-no-such-encoding", "utf-8", "", False),
    ],
)
def test_the_fast_path_takes_a_feed_only_when_its_encoding_is_not_in_doubt(
    declared: str, written: str, content_type: str, fast: bool
) -> None:
    text = _rss_declaring(declared)
    body = (text.replace(CAFE, "Cafe") if written == "ascii" else text).encode(written)
    read = read_entries(body, "https://x.test/feed", content_type)
    assert (read is not None) == fast
    if read is not None:
        assert read[0][0]["title"] in (CAFE, "Cafe")


ATOM_WITH_BASES = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.test/posts/">
  <title>B</title><id>urn:b</id><updated>2024-01-01T00:00:00Z</updated>
  <entry><id>urn:1</id><title>One</title><updated>2024-01-03T00:00:00Z</updated>
    <link href="one.html"/></entry>
  <entry xml:base="2024/"><id>urn:2</id><title>Two</title><updated>2024-01-02T00:00:00Z</updated>
    <link href="two.html"/></entry>
  <entry><id>urn:3</id><title>Three</title><updated>2024-01-01T00:00:00Z</updated>
    <link xml:base="/archive/" href="three.html"/></entry>
</feed>"""


async def test_atom_links_resolve_against_the_nearest_xml_base(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    url = feed_server.add("/b/atom.xml", ATOM_WITH_BASES)
    app = open_app([("B", url)])
    await gather_sources(app)
    assert sorted(a.url for a, _ in every_article(app)) == [
        "https://blog.test/archive/three.html",
        "https://blog.test/posts/2024/two.html",
        "https://blog.test/posts/one.html",
    ]


@pytest.mark.parametrize(
    ("body", "urls"),
    [
        (
            ATOM_WITH_BASES,
            [
                "https://blog.test/posts/one.html",
                "https://blog.test/posts/2024/two.html",
                "https://blog.test/archive/three.html",
            ],
        ),
        # A relative xml:base resolves against the feed's URL; RSS carries xml:base too.
        (
            b'<rss version="2.0" xml:base="/site/"><channel><title>R</title>'
            b"<item><title>A</title><link>a/1.html</link></item>"
            b'<item xml:base="https://other.test/"><title>B</title><guid>b/2.html</guid></item>'
            b"</channel></rss>",
            ["https://feeds.cdn.test/site/a/1.html", "https://other.test/b/2.html"],
        ),
    ],
)
def test_the_fast_path_and_feedparser_resolve_xml_base_alike(body: bytes, urls: list[str]) -> None:
    feed_url = "https://feeds.cdn.test/b/feed.xml"
    fast, _ = parse_feed("B", body, {}, 10, feed_url)
    # feedparser, as the fallback reads it: the fast path declines an unknown RSS version.
    slow, _ = parse_feed("B", body.replace(b'version="2.0"', b'version="2.0x"'), {}, 10, feed_url)
    assert [i.url for i in fast] == [i.url for i in slow] == urls


# --- max_items_per_source: undated items keep their place, and the cut is noted ------------


async def test_the_newest_undated_story_survives_the_item_limit_and_the_cut_is_noted(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    feed = rss(
        [
            {"title": "Breaking: newest story, undated", "link": "https://x.test/new"},
            {"title": "Older", "link": "https://x.test/b", "date": "Tue, 03 Jan 2023 12:00:00 GMT"},
            {
                "title": "Oldest",
                "link": "https://x.test/c",
                "date": "Mon, 02 Jan 2023 12:00:00 GMT",
            },
        ]
    )
    app = open_app([("X", feed_server.add("/x.xml", feed))], gather="max_items_per_source = 2")
    [report] = await gather_sources(app)
    assert {a.title for a, _ in every_article(app)} == {"Breaking: newest story, undated", "Older"}
    assert (
        "1 older item past max_items_per_source = 2 (the limit in [gather]) left out"
        in report.notes
    )


@pytest.mark.parametrize(
    ("dates", "kept"),
    [
        # Newest first, undated items between dated ones: the feed's order is kept.
        (["", "2023-01-05", "", "2023-01-03", "", "2023-01-01"], [0, 1, 2, 3]),
        # Oldest first (some feeds are): the newest dated items are kept, undated beside them.
        (["2023-01-01", "2023-01-02", "", "2023-01-03", "2023-01-04"], [4, 3, 1, 2]),
        # Nothing dated: the top of the feed.
        (["", "", "", "", ""], [0, 1, 2, 3]),
    ],
)
def test_the_item_limit_keeps_the_newest_by_date_and_by_place(
    dates: list[str], kept: list[int]
) -> None:
    body = rss(
        [
            {"title": f"Story {n}", "link": f"https://x.test/{n}", "date": f"{d}T12:00:00Z"}
            if d
            else {"title": f"Story {n}", "link": f"https://x.test/{n}"}
            for n, d in enumerate(dates)
        ]
    )
    items, notes = parse_feed("X", body.encode(), {}, limit=4)
    assert [i.url for i in items] == [f"https://x.test/{n}" for n in kept]
    cut = len(dates) - 4
    assert notes == [
        f"{cut} older item{'s' if cut != 1 else ''} past max_items_per_source = 4 "
        "(the limit in [gather]) left out"
    ]


# --- page sources: the same site is the registrable domain (Public Suffix List) -------------


@pytest.fixture
def through_feed_server(feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> FeedServer:
    """The FeedServer as the HTTP proxy: any host name reaches it, routes keyed by full URL."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", feed_server.url(""))
    return feed_server


def _page(title: str, published: str = "2024-05-02T10:00:00Z") -> bytes:
    return (
        f'<html><head><title>{title} | Site</title><script type="application/ld+json">'
        f'{{"@type": "NewsArticle", "headline": "{title}", "datePublished": "{published}"}}'
        "</script></head><body><article>Text</article></body></html>"
    ).encode()


async def test_a_co_uk_listing_follows_its_own_site_and_not_another_co_uk_site(
    through_feed_server: FeedServer, open_app: OpenApp
) -> None:
    server = through_feed_server
    html = {"Content-Type": "text/html; charset=utf-8"}
    own = "http://www.news.co.uk/2024/05/council-votes-on-new-budget-plan"
    sibling = "http://sport.news.co.uk/2024/05/county-side-wins-the-cup-final"
    rival = "http://www.rival.co.uk/2024/05/rival-paper-story-about-something"
    listing = "".join(
        f'<a href="{url}">{text}</a>'
        for url, text in [
            (own, "Council votes on new budget plan"),
            (sibling, "County side wins the cup final"),
            (rival, "Rival paper story about something"),
        ]
    )
    server.add("http://www.news.co.uk/latest", f"<main>{listing}</main>", headers=html)
    server.add(own, _page("Council votes on new budget plan"), headers=html)
    server.add(sibling, _page("County side wins the cup final"), headers=html)
    server.add(rival, _page("Rival paper story about something"), headers=html)
    app = open_app([], extra=_source("News", "http://www.news.co.uk/latest", "page"))
    [report] = await gather_sources(app)
    assert report.status == "ok", (report.error, report.hint)
    assert sorted(a.url for a, _ in every_article(app)) == [sibling, own]
    assert rival not in [path for path, _ in server.requests]


@pytest.mark.parametrize(
    ("listing", "link", "followed"),
    [
        ("https://www.news.com.au/latest", "https://www.rival.com.au/2024/05/a-b-c-d", False),
        ("https://www.news.com.au/latest", "https://news.com.au/2024/05/a-b-c-d", True),
        ("https://alice.github.io/blog/", "https://bob.github.io/2024/05/a-b-c-d", False),
        ("https://alice.github.io/blog/", "https://alice.github.io/2024/05/a-b-c-d", True),
        ("https://www.bbc.co.uk/news", "https://feeds.bbc.co.uk/2024/05/a-b-c-d", True),
        ("https://example.com/latest", "https://www.example.com/2024/05/a-b-c-d", True),
        ("https://example.com/latest", "https://example.com.evil.test/2024/05/a-b-c-d", False),
        ("http://localhost:8000/latest", "http://other.localhost/2024/05/a-b-c-d", False),
    ],
)
def test_a_listing_follows_links_within_its_registrable_domain(
    listing: str, link: str, followed: bool
) -> None:
    html = f'<main><a href="{link}">A headline of several words</a></main>'.encode()
    source = SourceConfig(name="S", kind="page", url=listing)
    assert [found.url for found in find_links(source, html, listing)] == (
        [link] if followed else []
    )


# --- page sources: an article behind a login wall is skipped with a note, not stored -------

HTML = {"Content-Type": "text/html; charset=utf-8"}


def _listing(*paths: str) -> bytes:
    links = "".join(f"<a href='{p}'>{p.rsplit('/', 1)[-1].replace('-', ' ')}</a>" for p in paths)
    return f"<html><body><main>{links}</main></body></html>".encode()


async def test_a_page_article_behind_a_login_redirect_is_skipped_and_tried_again(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    article = "/2024/05/council-votes-on-the-new-budget"
    login = (
        b"<html><head><title>Sign in to continue</title></head><body><form></form></body></html>"
    )
    feed_server.add("/login?next=/2024/05", login, headers=HTML)
    feed_server.add(article, "", status=302, headers={"Location": "/login?next=/2024/05"})
    url = feed_server.add("/latest", _listing(article), headers=HTML)
    app = open_app([], extra=_source("Site", url, "page"))
    [report] = await gather_sources(app)
    assert (report.status, every_article(app)) == ("ok", [])
    assert report.notes == [
        f"article {feed_server.url(article)} skipped: it led to "
        f"{feed_server.url('/login?next=/2024/05')}, a sign-in or subscription page; "
        "tried again next run"
    ]
    feed_server.add(article, _page("Council votes on the new budget"), headers=HTML)
    await gather_sources(app)  # the wall is gone (or the article free again): stored now
    assert [a.title for a, _ in every_article(app)] == ["Council votes on the new budget"]


async def test_a_page_article_redirected_to_a_page_that_is_no_article_is_skipped(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    gone = "/2024/05/story-that-moved-to-the-home-page"
    moved = "/2024/05/old-address-of-a-story"
    home = b"<html><head><title>The Daily Example</title></head><body>News</body></html>"
    feed_server.add("/", home, headers=HTML)
    feed_server.add(gone, "", status=302, headers={"Location": "/"})
    # A plain page (no metadata) at a new article address is the article: it is stored.
    feed_server.add(moved, "", status=301, headers={"Location": "/2024/05/new-address-of-a-story"})
    plain = b"<html><head><title>New address of a story</title></head><body>Text</body></html>"
    feed_server.add("/2024/05/new-address-of-a-story", plain, headers=HTML)
    url = feed_server.add("/latest", _listing(gone, moved), headers=HTML)
    app = open_app([], extra=_source("Site", url, "page"))
    [report] = await gather_sources(app)
    assert [a.title for a, _ in every_article(app)] == ["New address of a story"]
    assert report.notes == [
        f"article {feed_server.url(gone)} skipped: it led to {feed_server.url('/')}, "
        "a page that is not an article; tried again next run"
    ]
