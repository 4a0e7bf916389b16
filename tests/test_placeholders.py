"""A site's placeholder or test item (a blog engine's "Hello world!", "My first Instant
Article", a body of lorem ipsum) is left out of the store and the digest, named in a note
and the log; a real headline that merely looks like one is kept.

The rule is written once (``digest.sources.placeholders``) and applied where every kind of
source meets: RSS read by the fast path and by feedparser, Atom, JSON Feed, news sitemaps
and news pages, each over a real local HTTP server here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from digest.pipeline import gather_sources
from digest.records import FeedItem
from digest.sources.placeholders import placeholder, without_placeholders
from tests.conftest import FeedServer, OpenApp, ago, rss, run_cli
from tests.store_queries import every_article

HTML = {"Content-Type": "text/html; charset=utf-8"}


def item(title: str, summary: str = "", url: str = "https://news.test/a") -> FeedItem:
    return FeedItem(guid=url, url=url, title=title, summary=summary, author=None, published_at=None)


# --- the rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "summary", "reason"),
    [
        # The real feed's test item, as parse_feed reads it.
        ("My first Instant Article", "Lorem ipsum.", "its title is the default"),
        ("Hello world!", "", "its title is the default"),  # WordPress's first post
        ("Hello, World", "", "its title is the default"),
        ("Sample Page", "", "its title is the default"),
        ("Test post", "", "its title is the default"),
        ("  TEST  ", "", "its title is the default"),
        ("Welcome to Jekyll!", "", "its title is the default"),
        ("Olá, mundo!", "", "its title is the default"),  # WordPress in Portuguese
        ("¡Hola, mundo!", "", "its title is the default"),
        ("Bonjour tout le monde !", "", "its title is the default"),
        ("Hallo Welt!", "", "its title is the default"),
        ("Página de exemplo", "", "its title is the default"),
        ("Lorem ipsum dolor sit amet", "", "its title is lorem ipsum filler"),
        # A real-looking title over a body of filler: an unfinished or test item.
        (
            "Council approves new budget",
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit. Nulla facilisi.",
            "its summary is lorem ipsum filler",
        ),
        ("Quarterly update", "Lorem ipsum", "its summary is lorem ipsum filler"),
        (
            "Our new site",
            "Welcome to WordPress. This is your first post. Edit or delete it, then start writing!",
            "its text is a blog engine's default post",
        ),
    ],
)
def test_placeholders_are_told_by_their_whole_title_or_a_filler_body(
    title: str, summary: str, reason: str
) -> None:
    assert placeholder(item(title, summary)).startswith(reason)


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        # A default's words inside a real headline are news.
        ("Hello, world: the first image from the new telescope", ""),
        ("Hello world! Voyager's greeting turns fifty", ""),
        ("My first year as mayor", ""),
        ("My first Instant Article went live, and readers noticed", ""),
        ("Test match: England bowled out for 120", ""),
        ("Testing times for the coalition", ""),
        ("Olá, mundo: a primeira imagem do novo telescópio", ""),
        ("Hallo Welt, hier spricht der Kanzler", ""),
        ("Sample Page from the 1455 Gutenberg Bible sold at auction", ""),
        # A title or a summary about lorem ipsum is news; only filler itself is not.
        ("Lorem Ipsum publisher sold", ""),
        ("Lorem ipsum: the story of the world's favourite filler text", ""),
        (
            "Typesetters' dummy text turns 500",
            "Lorem ipsum is the dummy text designers have used since the 1500s.",
        ),
        (
            "Designers' favourite",
            "Lorem ipsum dolor sit amet, the scrambled Cicero every designer knows, is 500.",
        ),
        ("Latin returns to the classroom", "Dolor sit amet, wrote the students, lorem ipsum."),
    ],
)
def test_real_headlines_that_look_like_placeholders_are_kept(title: str, summary: str) -> None:
    assert placeholder(item(title, summary)) == ""


@pytest.mark.parametrize(
    ("text", "filler"),
    [
        ("Lorem ipsum", True),
        ("Lorem ipsum.", True),  # the real feed's, as parse_feed writes its summary
        ("LOREM IPSUM DOLOR", True),
        ("lorem ipsum dolor sit amet, consectetuer adipiscing elit, sed diam nonummy", True),
        ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. Nulla facilisi.", True),
        ("Lorem ipsum is placeholder text", False),
        ("Lorem Ipsum publisher sold", False),
        ("Ipsum lorem", False),
        ("", False),
    ],
)
def test_filler_is_lorem_ipsum_going_on_in_latin(text: str, filler: bool) -> None:
    reason = placeholder(item("Quarterly update", text))  # a real title over the text
    assert (reason == "its summary is lorem ipsum filler") is filler


def test_each_item_left_out_gets_a_note_naming_it() -> None:
    real = item("Council approves new budget", "The vote was 7 to 2.", "https://news.test/b")
    test = item("Hello world!", "", "https://news.test/hello-world")
    kept, notes = without_placeholders([test, real])
    assert kept == [real]
    [note] = notes
    assert "'Hello world!'" in note and "https://news.test/hello-world" in note
    assert "left out" in note and "not news" in note


# --- over real HTTP, every kind of source ------------------------------------------------------

REAL = "Bridge reopens after repairs"
OTHER = "Budget vote set for Tuesday"


def json_feed(base: str) -> str:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Wire",
            "items": [
                {
                    "id": "1",
                    "url": f"{base}/json/lorem",
                    "title": "Quarterly update",
                    "content_text": "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
                    "date_published": "2026-11-27T10:00:00Z",
                },
                {
                    "id": "2",
                    "url": f"{base}/json/bridge",
                    "title": REAL,
                    "content_text": "Traffic flows again over the river.",
                    "date_published": "2026-11-27T09:00:00Z",
                },
            ],
        }
    )


def atom(base: str) -> str:
    entries = "".join(
        f"<entry><id>{base}/atom/{slug}</id><title>{title}</title>"
        f'<link href="{base}/atom/{slug}"/><updated>2026-11-27T10:00:00Z</updated>'
        f"<summary>{summary}</summary></entry>"
        for slug, title, summary in [
            ("first", "Test post", "Just checking the feed works."),
            ("budget", OTHER, "The council meets at noon."),
        ]
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>{base}/atom</id><title>Wire</title><updated>2026-11-27T10:00:00Z</updated>"
        f"{entries}</feed>"
    )


def rdf(base: str) -> str:
    """RSS 1.0, which the fast path leaves to feedparser."""
    items = "".join(
        f'<item rdf:about="{base}/rdf/{slug}"><title>{title}</title><link>{base}/rdf/{slug}'
        f"</link><description>{summary}</description><dc:date>2026-11-27T10:00:00Z</dc:date>"
        "</item>"
        for slug, title, summary in [
            ("hello-world", "Hello world!", "Welcome to WordPress."),
            ("bridge", REAL, "Traffic flows again."),
        ]
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<channel rdf:about="{base}/rdf"><title>Wire</title><link>{base}/</link>'
        f"<description>Wire</description></channel>{items}</rdf:RDF>"
    )


def sitemap(base: str) -> str:
    urls = "".join(
        f"<url><loc>{base}/map/{slug}</loc><news:news><news:publication><news:name>Wire"
        "</news:name><news:language>en</news:language></news:publication>"
        "<news:publication_date>2026-11-27T10:00:00Z</news:publication_date>"
        f"<news:title>{title}</news:title></news:news></url>"
        for slug, title in [("sample-page", "Sample Page"), ("bridge-reopens", REAL)]
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{urls}</urlset>'
    )


def article_page(title: str, description: str) -> str:
    return (
        f"<!doctype html><html lang='en'><head><title>{title}</title>"
        f"<meta property='og:title' content='{title}'>"
        f"<meta property='og:type' content='article'>"
        f"<meta name='description' content='{description}'>"
        "<meta property='article:published_time' content='2026-11-27T10:00:00Z'>"
        f"</head><body><article><h1>{title}</h1><p>{description}</p></article></body></html>"
    )


def placeholder_and_real(base: str) -> str:
    """An RSS feed of a placeholder (Facebook's sample Instant Article) and a real item."""
    return rss(
        [
            {
                "title": "My first Instant Article",
                "link": f"{base}/first",
                "desc": "Lorem ipsum",
                "date": ago(hours=1),
            },
            {
                "title": REAL,
                "link": f"{base}/bridge",
                "desc": "Traffic flows again.",
                "date": ago(hours=2),
            },
        ]
    )


def serve_every_kind(server: FeedServer) -> dict[str, tuple[str, str]]:
    """One source of each kind, each with one placeholder and one real item: name -> (kind,
    url)."""
    base = server.url("").rstrip("/")
    utf8 = placeholder_and_real(f"{base}/rss")
    server.add(
        "/pages/2026/11/27/hello-world",
        article_page("Hello world!", "Welcome to WordPress. This is your first post."),
        headers=HTML,
    )
    server.add(
        "/pages/2026/11/27/budget-vote-set-for-tuesday",
        article_page(OTHER, "The council meets at noon."),
        headers=HTML,
    )
    listing = (
        "<!doctype html><html><body><main><ul>"
        f"<li><a href='{base}/pages/2026/11/27/hello-world'>Read the very first post on our "
        "new site</a></li>"
        f"<li><a href='{base}/pages/2026/11/27/budget-vote-set-for-tuesday'>{OTHER} as the "
        "council meets</a></li></ul></main></body></html>"
    )
    xml = {"Content-Type": "application/xml"}
    return {
        "Fast RSS": ("feed", server.add("/rss.xml", utf8, headers=xml)),
        "RSS 1.0": ("feed", server.add("/rdf.xml", rdf(base), headers=xml)),
        "Atom": ("feed", server.add("/atom.xml", atom(base), headers=xml)),
        "JSON": (
            "feed",
            server.add("/feed.json", json_feed(base), headers={"Content-Type": "application/json"}),
        ),
        "Map": ("sitemap", server.add("/map.xml", sitemap(base), headers=xml)),
        "Pages": ("page", server.add("/news/latest", listing, headers=HTML)),
    }


PLACEHOLDERS = {
    "Fast RSS": "My first Instant Article",
    "RSS 1.0": "Hello world!",
    "Atom": "Test post",
    "JSON": "Quarterly update",
    "Map": "Sample Page",
    "Pages": "Hello world!",
}
KEPT = {
    "Fast RSS": REAL,
    "RSS 1.0": REAL,
    "Atom": OTHER,
    "JSON": REAL,
    "Map": REAL,
    "Pages": OTHER,
}


def sources_toml(sources: dict[str, tuple[str, str]]) -> str:
    return "".join(
        f'\n[[sources]]\nname = "{name}"\nkind = "{kind}"\nurl = "{url}"\n'
        for name, (kind, url) in sources.items()
    )


async def test_a_placeholder_is_not_stored_from_any_kind_of_source_and_is_named(
    feed_server: FeedServer, open_app: OpenApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = open_app([], extra=sources_toml(serve_every_kind(feed_server)))
    with caplog.at_level(logging.INFO, logger="digest.sources"):
        reports = {r.name: r for r in await gather_sources(app)}
    titles = {a.url: a.title for a, _ in every_article(app)}
    for name, report in reports.items():
        assert report.status == "ok", (name, report)
        assert report.new_items == report.items_seen == 1, (name, report)
        [note] = [n for n in report.notes if "left out" in n]
        assert repr(PLACEHOLDERS[name]) in note and "not news" in note, (name, note)
        # Logged under the source's name, with the item's title.
        assert any(
            r.levelno >= logging.INFO
            and repr(name) in r.getMessage()
            and repr(PLACEHOLDERS[name]) in r.getMessage()
            for r in caplog.records
        ), (name, caplog.text)
    assert sorted(titles.values()) == sorted(KEPT.values())
    assert not set(PLACEHOLDERS.values()) & set(titles.values())


def test_digest_gather_prints_the_placeholder_left_out(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    base = feed_server.url("").rstrip("/")
    feed = placeholder_and_real(base)
    config = write_config([("Instant Article", feed_server.add("/ia.xml", feed))])
    code, out, err = run_cli("--config", str(config), "gather")
    assert code == 0, err
    assert "ok    Instant Article: 1 item, 1 new" in out
    assert "note: item 'My first Instant Article'" in out and "left out" in out
