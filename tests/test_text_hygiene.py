"""What a feed's text may not carry into a digest: invisible characters that disguise it,
Python reprs of JSON values of the wrong type, and headlines that are no headline.

Every case goes through real parsing (``parse_feed``: lxml's fast path, feedparser and the
JSON Feed reader; a page source over a real HTTP server; a news sitemap).
"""

from __future__ import annotations

import json
import mailbox
from collections.abc import Callable
from email.header import decode_header, make_header
from pathlib import Path

import httpx
import pytest

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.records import FeedItem
from digest.sources import parse_feed
from digest.sources.fetch import Fetched, fetch
from digest.sources.page import read_page_source
from digest.sources.site import Site
from digest.sources.sitemap import parse_sitemap
from tests.conftest import FeedServer, run_cli
from tests.conftest import rss as feed

RLO, PDF, ZWSP, BOM, WJ, SHY = "\u202e", "\u202c", "\u200b", "\ufeff", "\u2060", "\u00ad"
LRI, PDI, ZWJ, ZWNJ = "\u2066", "\u2069", "\u200d", "\u200c"
INVISIBLE = (RLO, PDF, ZWSP, BOM, WJ, SHY, LRI, PDI, "\U000e0041")

HIDDEN_TITLE = f"{BOM}Invoice{ZWSP} {RLO}fdp.exe{PDF} Pay{ZWJ}Pal {LRI}ok{PDI}{WJ}"
TAGS = "\U000e0041\U000e0042"  # invisible "AB"
HIDDEN_SUMMARY = f"Bundes{SHY}regierung{ZWSP} meets{BOM} today{TAGS}."
HIDDEN_AUTHOR = f"{RLO}Jane Doe{PDF}"


def rss_item(title: str, link: str = "https://x.test/a", extra: str = "") -> str:
    return f"<item><title>{title}</title><link>{link}</link>{extra}</item>"


def rss(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def rss1(title: str, summary: str, author: str) -> bytes:
    """RSS 1.0: not the lxml fast path, so feedparser reads it."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<channel rdf:about="https://x.test/"><title>T</title><link>https://x.test/</link>'
        "<description>d</description></channel>"
        f'<item rdf:about="https://x.test/a"><title>{title}</title><link>https://x.test/a</link>'
        f"<description>{summary}</description><dc:creator>{author}</dc:creator></item>"
        "</rdf:RDF>"
    ).encode()


def json_feed(*items: object) -> bytes:
    return json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "items": list(items)}
    ).encode()


FORMATS = {
    "rss-fast-path": rss(
        rss_item(
            HIDDEN_TITLE,
            extra=f"<description>{HIDDEN_SUMMARY}</description><author>{HIDDEN_AUTHOR}</author>",
        )
    ),
    "rss1-feedparser": rss1(HIDDEN_TITLE, HIDDEN_SUMMARY, HIDDEN_AUTHOR),
    "json-feed": json_feed(
        {
            "id": "a",
            "url": "https://x.test/a",
            "title": HIDDEN_TITLE,
            "content_text": HIDDEN_SUMMARY,
            "authors": [{"name": HIDDEN_AUTHOR}],
        }
    ),
}


@pytest.mark.parametrize("body", FORMATS.values(), ids=list(FORMATS))
def test_invisible_characters_are_stripped_from_every_text_a_reader_sees(body: bytes) -> None:
    [item], _ = parse_feed("X", body)
    assert item.title == "Invoice fdp.exe PayPal ok"
    assert item.summary == "Bundesregierung meets today."
    assert item.author == "Jane Doe"
    for text in (item.title, item.summary, item.author):
        assert not any(c in text for c in INVISIBLE), repr(text)


def test_joiners_that_shape_a_script_or_an_emoji_are_kept() -> None:
    persian = f"می{ZWNJ}خواهم"  # "I want": the ZWNJ keeps the two letters apart
    family = f"\U0001f468{ZWJ}\U0001f469{ZWJ}\U0001f467"
    england = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
    [item], _ = parse_feed("X", rss(rss_item(f"{persian} {family} {england}")))
    assert item.title == f"{persian} {family} {england}"


def test_an_invisible_character_in_a_link_is_percent_encoded() -> None:
    """The same address (a browser sends it so), which cannot turn a text part around."""
    [item], _ = parse_feed("X", rss(rss_item("Report", link=f"https://x.test/{RLO}gpj.exe")))
    assert item.url == "https://x.test/%E2%80%AEgpj.exe"


def test_an_item_of_invisible_characters_only_falls_back_to_its_summary() -> None:
    extra = "<description>The council voted to close the bridge. Work starts soon.</description>"
    [item], _ = parse_feed("X", rss(rss_item(f"{RLO}{ZWSP}{BOM}", extra=extra)))
    assert item.title == "The council voted to close the bridge."


# --- JSON Feed values of the wrong type ------------------------------------------------------


def test_json_feed_fields_of_the_wrong_type_are_a_note_and_left_out() -> None:
    body = json_feed(
        {
            "id": 42,  # a number: the spec's reader coerces it to a string
            "url": ["https://x.test/list"],
            "external_url": "https://x.test/ext",
            "title": {"text": "An object"},
            "content_text": "Ferries resume after the storm. More at six.",
            "authors": [{"name": ["Jane"]}, {"name": "Joe Bloggs"}],
            "image": {"url": "https://img.test/1.jpg"},
            "date_published": 20261207,
        },
        {"id": "b", "url": "https://x.test/b", "title": "Fine", "summary": ["a", "b"]},
    )
    items, notes = parse_feed("J", body)
    second, first = sorted(items, key=lambda i: i.url)
    assert first.url == "https://x.test/ext"  # the url list left out, external_url used
    assert first.guid == "42"
    assert first.title == "Ferries resume after the storm."
    assert first.author == "Joe Bloggs"
    assert first.image_url is None and first.published_at is None
    assert (second.title, second.summary) == ("Fine", "")
    for item in items:
        for value in (item.guid, item.url, item.title, item.summary, item.author):
            assert not any(c in (value or "") for c in "{}[]'"), value
    assert sorted(notes) == sorted(  # one note per field; the order is the reader's
        [
            "item 1: its 'url' is a list, not text; left out",
            "item 1: its 'title' is an object, not text; left out",
            "item 1: its 'authors[0].name' is a list, not text; left out",
            "item 1: its 'date_published' is a number, not text; left out",
            "item 1: its 'image' is an object, not text; left out",
            "item 2: its 'summary' is a list, not text; left out",
        ]
    )


@pytest.mark.parametrize(
    ("fields", "author", "note"),
    [
        ({"author": {"name": "Joe Bloggs"}}, "Joe Bloggs", None),  # JSON Feed 1.0
        ({"author": "Joe Bloggs"}, "Joe Bloggs", None),  # a string where an object belongs
        ({"author": ["Joe"]}, None, "its 'author' is a list, not an author"),
        ({"authors": {"name": "Joe"}}, None, "its 'authors' is an object, not a list of authors"),
        ({"authors": [3, {"name": "Ann"}]}, "Ann", "its 'authors[0]' is a number, not an author"),
    ],
)
def test_json_feed_authors_of_every_shape(
    fields: dict[str, object], author: str | None, note: str | None
) -> None:
    body = json_feed({"id": "1", "url": "https://x.test/1", "title": "T", **fields})
    [item], notes = parse_feed("J", body)
    assert item.author == author
    assert notes == ([f"item 1: {note}; left out"] if note else [])


def test_a_json_feed_item_whose_only_url_is_a_list_is_skipped_with_notes() -> None:
    body = json_feed(
        {"id": "a", "url": ["https://x.test/a"], "title": "Lost"},
        {"id": "b", "url": "https://x.test/b", "title": "Kept"},
    )
    [item], notes = parse_feed("J", body)
    assert item.title == "Kept"
    assert notes == [
        "item 1: its 'url' is a list, not text; left out",
        "item 1 ('Lost') has no link; skipped",
    ]


def test_a_json_feed_item_without_a_url_is_skipped_not_linked_to_the_feed() -> None:
    body = json_feed(
        {"id": "a", "title": "Lost"},
        {"id": "b", "url": "/b", "title": "Kept"},  # relative: against the feed's address
    )
    [item], notes = parse_feed("J", body, base_url="https://x.test/feed.json")
    assert (item.title, item.url) == ("Kept", "https://x.test/b")
    assert notes == ["item 1 ('Lost') has no link; skipped"]


# --- titles that are no headline -------------------------------------------------------------

SUMMARY = "<description>Ministers agreed on the budget late on Sunday. Talks went on.</description>"


@pytest.mark.parametrize(
    ("title", "extra", "headline"),
    [
        ("&l7;", SUMMARY, "Ministers agreed on the budget late on Sunday."),
        ("Prices &l7; rise", "", "Prices rise"),
        ("(untitled)", SUMMARY, "Ministers agreed on the budget late on Sunday."),
        ("Untitled", SUMMARY, "Ministers agreed on the budget late on Sunday."),
        ("", SUMMARY, "Ministers agreed on the budget late on Sunday."),
        (
            "",
            "<description>" + "word " * 60 + "</description>",
            ("word " * 23).strip() + "…",
        ),
        ("AT&amp;amp;T &amp; partners", "", "AT&T & partners"),  # known names: decoded
    ],
)
def test_a_title_that_is_no_headline_takes_the_summary_start(
    title: str, extra: str, headline: str
) -> None:
    """&l7; makes the XML malformed, so feedparser reads these; the rest lxml."""
    [item], _ = parse_feed("X", rss(rss_item(title, extra=extra)))
    assert item.title == headline


def test_an_unknown_entity_in_a_summary_never_reaches_a_headline_or_summary() -> None:
    """&l7; makes the XML malformed, and feedparser's reading of HTML then wrote it as
    "&l7" (no semicolon, so nothing could tell it from AT&T): "&l7" became a headline, and
    the start of a headline taken from the summary."""
    items, notes = parse_feed(
        "X",
        rss(
            rss_item("", extra="<description>&l7;</description>", link="https://x.test/1")
            + rss_item("&l7;", extra="<description>&l7; Trams run late.</description>",
                       link="https://x.test/2")
            + rss_item("Prices &l7; rise", extra="<description><![CDATA[<p>Up &l7; 3%.</p>]]>"
                       "</description>", link="https://x.test/3")
            + rss_item("AT&amp;T &eacute;t&eacute;", link="https://x.test/4")
        ),
    )  # fmt: skip

    assert [(i.title, i.summary) for i in items] == [
        ("Trams run late.", "Trams run late."),
        ("Prices rise", "Up 3%."),
        ("AT&T été", ""),
    ]
    assert not any("l7" in f"{i.title} {i.summary}" for i in items)
    assert "item 1 (https://x.test/1) has no title and no summary to take one from; skipped" in (
        notes
    )
    assert any("&l7;" in note and "tell the site" in note for note in notes)


def test_an_item_with_no_title_and_no_summary_is_skipped_with_a_note() -> None:
    items, notes = parse_feed(
        "X", rss(rss_item("(untitled)"), rss_item("Bridge reopens", link="https://x.test/b"))
    )
    assert [i.title for i in items] == ["Bridge reopens"]
    assert "item 1 (https://x.test/a) has no title and no summary to take one from; skipped" in (
        notes
    )


def test_a_json_feed_item_without_a_title_is_headed_by_its_text() -> None:
    """Microblog posts have no title by the spec: their first sentence heads them."""
    body = json_feed(
        {"id": "1", "url": "https://x.test/1", "content_html": "<p>Just landed. Hello!</p>"},
        {"id": "2", "url": "https://x.test/2", "title": "(untitled)"},
    )
    [item], notes = parse_feed("J", body)
    assert item.title == "Just landed."
    assert notes == [
        "item 2 (https://x.test/2) has no title and no summary to take one from; skipped"
    ]


def test_a_sitemap_title_that_is_an_entity_name_falls_back_to_the_address() -> None:
    body = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
      xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url>
      <loc>https://lantern.example/2026/town-council-approves-new-bridge</loc>
      <news:news><news:title>&amp;l7;</news:title></news:news></url></urlset>"""
    [item], _ = parse_sitemap("lantern", body, "https://lantern.example/sitemap.xml")
    assert item.title == "Town council approves new bridge"


HTML = {"Content-Type": "text/html; charset=utf-8"}
LISTING = """<html><body><main><ul>
<li><a href="/world/2026/12/07/ferry-services-resume-after-the-storm">{link_text}</a></li>
</ul></main></body></html>"""
ARTICLE = """<html><head><title>{title}</title>{description}
<meta property="og:type" content="article"></head><body><p>Text</p></body></html>"""
PATH = "/world/2026/12/07/ferry-services-resume-after-the-storm"


async def read_page(
    server: FeedServer, link_text: str, title: str, description: str
) -> tuple[list[FeedItem], list[str]]:
    server.add(PATH, ARTICLE.format(title=title, description=description), headers=HTML)
    listing = server.add("/latest", LISTING.format(link_text=link_text), headers=HTML)
    source = SourceConfig.model_validate(
        {"name": "lantern", "kind": "page", "url": listing, "links": "main a"}
    )
    async with httpx.AsyncClient(timeout=5) as client:
        fetched = await fetch(client, "lantern", listing, Path("."))

        async def get(url: str, site: Site) -> Fetched:
            return await fetch(client, "lantern", url, Path("."))

        return await read_page_source(source, fetched, listing, get, lambda urls: set())


@pytest.mark.parametrize(
    ("link_text", "title", "description", "headline"),
    [
        ("Ferry services resume", f"{RLO}(untitled){PDF}", "", "Ferry services resume"),
        (
            "",
            "&amp;l7;",
            '<meta name="description" content="Ferries run again. Good.">',
            ("Ferries run again."),
        ),
        ("Ferry services resume", f"Ferries{ZWSP} resume{BOM}", "", "Ferries resume"),
    ],
)
async def test_a_page_title_that_is_no_headline_falls_back(
    feed_server: FeedServer, link_text: str, title: str, description: str, headline: str
) -> None:
    [item], _ = await read_page(feed_server, link_text, title, description)
    assert item.title == headline


async def test_a_page_with_no_title_at_all_is_skipped_with_a_note(
    feed_server: FeedServer,
) -> None:
    items, notes = await read_page(feed_server, "", "(untitled)", "")
    assert items == []
    assert any("has no title, no link text and no summary" in n for n in notes), notes


# --- feeds that yield nothing because they are broken ----------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (rss(rss_item("One")).replace(b"</channel></rss>", b"")[:-20], "not well-formed XML"),
        (rss(rss_item("Lost", link="")), "none of the feed's 1 item could be used"),
        (
            json_feed({"id": "1", "url": ["https://x.test/1"], "title": "T"}),
            "none of the feed's 1 item could be used",
        ),
        (
            json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": {}}).encode(),
            "'items' is an object, not a list",
        ),
        (
            json.dumps({"version": "https://jsonfeed.org/version/1"}).encode(),
            "'items' is missing",
        ),
        (
            b'{"version": "https://jsonfeed.org/version/1.1", "items": '
            + b"[" * 100_000
            + b"]" * 100_000
            + b"}",
            "nested too deeply",
        ),
    ],
    ids=[
        "malformed-xml",
        "no-links",
        "json-no-links",
        "json-items-object",
        "json-no-items",
        "json-nested",
    ],
)
def test_a_feed_that_yields_nothing_because_it_is_broken_is_a_source_error(
    body: bytes, reason: str
) -> None:
    with pytest.raises(SourceError) as caught:
        parse_feed("Wire", body)
    assert reason in caught.value.message and "'Wire'" in caught.value.message
    assert caught.value.hint


@pytest.mark.parametrize(
    "body",
    [rss(), json_feed()],
    ids=["rss", "json"],
)
def test_an_empty_feed_is_not_an_error(body: bytes) -> None:
    assert parse_feed("Wire", body) == ([], [])


# --- the subject line ------------------------------------------------------------------------


def test_the_subject_line_carries_the_fallback_headline_and_nothing_invisible(
    write_config: Callable[..., Path], feed_server: FeedServer, tmp_path: Path
) -> None:
    """Gathered, ranked, rendered and sent: the one story's headline heads the subject."""
    story = {
        "title": f"{RLO}(untitled){PDF}",
        "guid": "1",
        "link": "https://wire.test/1",
        "desc": f"Harbour strike ends{ZWSP} after talks. Ships sail tonight.",
    }
    config = write_config([("Wire", feed_server.add("/f.xml", feed([story])))])
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    code, _, err = run_cli("--config", str(config), "send", "--gather")
    assert code == 0, err
    [message] = mailbox.Maildir(str(tmp_path / "mail"), create=False)
    subject = str(make_header(decode_header(message["Subject"])))
    assert subject.endswith(": Harbour strike ends after talks."), subject
    assert "(untitled)" not in subject and not any(c in subject for c in INVISIBLE)
