"""The pure core of the sources stage: parse_feed, canonical_url, html_to_text, dates.

No network and no database: bytes in, FeedItems (text only, canonical links, UTC dates) out.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from digest.errors import SourceError
from digest.records import FeedItem
from digest.sources import canonical_url, html_to_text, parse_feed
from digest.sources.dates import parse_localised_date
from digest.sources.parse import TITLE_LIMIT
from digest.sources.summary import DEFAULT_CHARS
from tests.conftest import SHARED, rss

FEEDS = SHARED / "data" / "feeds"

HOSTILE = (
    '<p>Ministers met.<script>alert("xss")</script></p>'
    '<img src="x" onerror="alert(2)"><iframe src="https://evil.test/">framed</iframe>'
    '<a href="javascript:alert(3)">Read more</a><style>p { color: red }</style>'
)
# Nothing of the markup may survive, whatever the wrapping: not the tags, not the attribute
# values, not what the script or style said.
FORBIDDEN = ("<", ">", "script", "alert", "onerror", "javascript", "iframe", "evil.test", "color")


def by_url(items: list[FeedItem]) -> dict[str, FeedItem]:
    return {i.url: i for i in items}


def assert_text_only(value: str) -> None:
    for bad in FORBIDDEN:
        assert bad not in value.lower(), f"{bad!r} survived in {value!r}"


# --- the three formats -----------------------------------------------------------------------

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Wire</title><link>https://wire.test/</link>
<item><title>Bridge &amp; tunnel closed</title>
  <link>https://Wire.TEST/bridge?id=7&amp;utm_source=rss#comments</link>
  <guid isPermaLink="false">wire-1</guid>
  <pubDate>Tue, 03 Jan 2023 14:30:00 +0200</pubDate>
  <description>&lt;p&gt;Engineers &lt;b&gt;inspect&lt;/b&gt; the damage.&lt;/p&gt;</description>
  <author>desk@wire.test (Ana Lima)</author></item>
<item><title>Second</title><link>https://wire.test/second</link>
  <pubDate>Mon, 02 Jan 2023 09:00:00 GMT</pubDate></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Post</title><id>urn:post</id>
<updated>2023-01-03T12:00:00Z</updated>
<entry><title type="html">Budget &lt;em&gt;passes&lt;/em&gt;</title><id>urn:post:1</id>
  <link rel="alternate" href="https://post.test/budget?fbclid=abc"/>
  <published>2023-01-03T08:15:00-05:00</published><updated>2023-01-03T09:00:00-05:00</updated>
  <summary type="html">&lt;div&gt;Votes &lt;i&gt;counted&lt;/i&gt; overnight&lt;/div&gt;</summary>
  <author><name>Bo Chen</name></author></entry>
<entry><title>Only updated</title><id>urn:post:2</id>
  <link href="https://post.test/updated"/><updated>2023-01-02T23:30:00+01:00</updated>
  <content type="html">&lt;p&gt;Content only&lt;/p&gt;</content></entry>
</feed>"""

JSON_11 = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "Daily",
    "items": [
        {
            "id": "d-1",
            "url": "https://daily.test/rates?gclid=x&page=2",
            "title": "Rates <b>held</b>",
            "content_html": "<p>The bank held rates.</p><p>Markets rose.</p>",
            "date_published": "2023-01-03T10:00:00+01:00",
            "authors": [{"name": "Cy Diaz"}],
        },
        {
            "id": 42,
            "external_url": "https://daily.test/external",
            "title": "External only",
            "content_text": "Plain text body",
            "date_modified": "2023-01-01T00:00:00Z",
        },
    ],
}

JSON_10 = {
    "version": "https://jsonfeed.org/version/1",
    "title": "Old",
    "items": [
        {
            "id": "o-1",
            "url": "https://old.test/a",
            "title": "Old style",
            "summary": "A summary",
            "date_published": "2022-12-31T23:00:00-03:00",
            "author": {"name": "Di Old"},
        }
    ],
}


def test_rss_20() -> None:
    items, notes = parse_feed("Wire", RSS)
    assert notes == []
    first, second = items  # newest first
    assert first == FeedItem(
        guid="wire-1",
        url="https://wire.test/bridge?id=7",
        title="Bridge & tunnel closed",
        summary="Engineers inspect the damage.",
        author="desk@wire.test (Ana Lima)",
        published_at=datetime(2023, 1, 3, 12, 30, tzinfo=UTC),
    )
    assert second.published_at == datetime(2023, 1, 2, 9, 0, tzinfo=UTC)
    assert second.guid == "https://wire.test/second"  # no guid: the canonical link stands in


def test_atom_10() -> None:
    items, notes = parse_feed("Post", ATOM)
    assert notes == []
    got = by_url(items)
    budget = got["https://post.test/budget"]
    assert (budget.guid, budget.title, budget.summary, budget.author) == (
        "urn:post:1",
        "Budget passes",
        "Votes counted overnight.",  # a summary ends as a sentence
        "Bo Chen",
    )
    assert budget.published_at == datetime(2023, 1, 3, 13, 15, tzinfo=UTC)  # published wins
    only_updated = got["https://post.test/updated"]
    assert only_updated.published_at == datetime(2023, 1, 2, 22, 30, tzinfo=UTC)
    assert only_updated.summary == "Content only."


def test_json_feed_11() -> None:
    items, notes = parse_feed("Daily", json.dumps(JSON_11).encode())
    assert notes == []
    rates, external = items
    assert rates == FeedItem(
        guid="d-1",
        url="https://daily.test/rates?page=2",
        title="Rates held",
        summary="The bank held rates. Markets rose.",
        author="Cy Diaz",
        published_at=datetime(2023, 1, 3, 9, 0, tzinfo=UTC),
    )
    assert (external.guid, external.url, external.summary) == (
        "42",
        "https://daily.test/external",
        "Plain text body.",
    )
    assert external.published_at == datetime(2023, 1, 1, tzinfo=UTC)


def test_json_feed_10_author_object() -> None:
    [item], _ = parse_feed("Old", json.dumps(JSON_10).encode())
    assert item.author == "Di Old"
    assert item.summary == "A summary."
    assert item.published_at == datetime(2023, 1, 1, 2, 0, tzinfo=UTC)


def test_json_is_recognised_by_content_type_and_byte_order_mark() -> None:
    body = b"\xef\xbb\xbf" + json.dumps(JSON_10).encode()
    [item], _ = parse_feed("Old", body, {"Content-Type": "application/feed+json"})
    assert item.url == "https://old.test/a"


def test_items_are_newest_first_and_limited() -> None:
    feed = rss(
        [
            {
                "title": f"n{day}",
                "link": f"https://x.test/{day}",
                "date": f"0{day} Jan 2023 10:00 GMT",
            }
            for day in (2, 5, 1, 4, 3)
        ]
    )
    items, _ = parse_feed("X", feed.encode(), limit=3)
    assert [i.title for i in items] == ["n5", "n4", "n3"]


# --- items that cannot be kept ---------------------------------------------------------------


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        " JavaScript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "ftp://files.test/a",
        "mailto:desk@x.test",
        "http://host:notaport/a",
        "",
    ],
)
def test_rss_item_without_http_link_is_skipped_with_a_note(link: str) -> None:
    feed = rss(
        [
            {"title": "Kept", "link": "https://x.test/kept"},
            {"title": "Dropped item", "link": link},
        ]
    )
    items, notes = parse_feed("X", feed.encode())
    assert [i.url for i in items] == ["https://x.test/kept"]
    [note] = notes
    assert "item 2" in note and "Dropped item" in note and "skipped" in note


def test_json_item_without_http_link_is_skipped_with_a_note() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [
            {"id": "1", "url": "javascript:alert(1)", "title": "Evil"},
            {"id": "2", "title": "No link"},
            "not an object",
            {"id": "4", "url": "https://x.test/ok", "title": "Fine"},
        ],
    }
    items, notes = parse_feed("X", json.dumps(doc).encode())
    assert [i.url for i in items] == ["https://x.test/ok"]
    assert len(notes) == 3
    assert "Evil" in notes[0] and "No link" in notes[1] and "item 3" in notes[2]


def test_relative_links_resolve_against_the_feed_address() -> None:
    feed = rss([{"title": "Rel", "link": "/news/1?utm_medium=rss"}])
    [item], notes = parse_feed("X", feed.encode(), base_url="https://site.test/feeds/all.xml")
    assert item.url == "https://site.test/news/1"
    assert notes == []
    # Without an address it cannot be resolved, and a feed of no usable item is an error.
    with pytest.raises(SourceError, match="none of the feed's 1 item could be used"):
        parse_feed("X", feed.encode())


# --- hostile markup --------------------------------------------------------------------------


def test_hostile_html_in_rss_title_and_description_leaves_text_only() -> None:
    feed = rss([{"title": f"Headline {HOSTILE}", "link": "https://x.test/a", "desc": HOSTILE}])
    [item], _ = parse_feed("X", feed.encode())
    assert_text_only(item.title)
    assert_text_only(item.summary)
    assert item.summary == "Ministers met."  # the frame, its text and the read-more are gone
    assert item.title.startswith("Headline Ministers met.")


def test_hostile_html_in_cdata_atom_and_json_leaves_text_only() -> None:
    cdata = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        f"<title><![CDATA[{HOSTILE}]]></title><link>https://x.test/c</link>"
        f"<description><![CDATA[{HOSTILE}]]></description></item></channel></rss>"
    )
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><entry><id>a</id>'
        '<link href="https://x.test/a"/>'
        f'<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">{HOSTILE}</div></title>'
        f'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">{HOSTILE}</div>'
        "</content></entry></feed>"
    )
    jsonfeed = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [{"id": "j", "url": "https://x.test/j", "title": HOSTILE, "summary": HOSTILE}],
        }
    )
    for body in (cdata, atom, jsonfeed):
        [item], _ = parse_feed("X", body.encode())
        assert_text_only(item.title)
        assert_text_only(item.summary)
        assert "Ministers met." in item.summary


def test_summary_and_title_are_capped() -> None:
    long = " ".join(["word"] * 1000)
    feed = rss([{"title": long, "link": "https://x.test/a", "desc": f"<p>{long}</p>"}])
    [item], _ = parse_feed("X", feed.encode())
    assert len(item.summary) <= DEFAULT_CHARS and item.summary.endswith("word…")
    assert len(item.title) <= TITLE_LIMIT and item.title.endswith("…")


# --- documents that are not feeds ------------------------------------------------------------


def test_an_html_page_is_named_as_such() -> None:
    page = b"<!DOCTYPE html>\n<html><head><title>Home</title></head><body>Hi</body></html>"
    with pytest.raises(SourceError) as caught:
        parse_feed("Homepage", page, {"Content-Type": "text/html; charset=utf-8"})
    assert "HTML page" in caught.value.message
    assert "'Homepage'" in caught.value.message
    assert "rel=alternate" in caught.value.hint


def test_an_html_page_is_recognised_without_a_content_type() -> None:
    page = b"\n\n<html lang='en'><body><p>Welcome</p></body></html>"
    with pytest.raises(SourceError, match="HTML page"):
        parse_feed("Homepage", page)


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b"", "", "empty"),
        (b"  \n\t ", "application/xml", "empty"),
        (b'{"items": [', "application/json", "invalid JSON"),
        (b"{not json at all", "", "invalid JSON"),
        (b'{"title": "an API answer"}', "application/json", "JSON Feed"),
        (b"[1, 2, 3]", "application/json", "JSON Feed"),
        (
            b'<?xml version="1.0"?><urlset><url><loc>https://x.test/</loc></url></urlset>',
            "",
            "not a feed",
        ),
        (b"\x00\x01\x02 binary garbage", "application/octet-stream", "not a feed"),
    ],
)
def test_documents_that_are_not_feeds_raise_with_a_hint(
    body: bytes, content_type: str, says: str
) -> None:
    with pytest.raises(SourceError) as caught:
        parse_feed("Odd", body, {"Content-Type": content_type})
    assert says in caught.value.message
    assert caught.value.message.startswith("source 'Odd': ")
    assert caught.value.hint


def test_a_feed_with_no_items_is_empty_not_an_error() -> None:
    assert parse_feed("Quiet", rss([]).encode()) == ([], [])


# --- real feeds from the wild ------------------------------------------------------------------


def real_feed(name: str) -> bytes:
    path = FEEDS / name
    if not path.is_file():
        pytest.skip(f"the shared sample feeds are not here ({FEEDS})")
    return path.read_bytes()


@pytest.mark.parametrize(
    ("name", "count", "title", "accented", "first_date"),
    [
        (
            "guardian.rss",
            55,
            "FBI has 'grave concerns' about Trump plan to release controversial memo",
            "Fitzgerald’s financial interests",
            datetime(2018, 1, 31, 20, 13, 54, tzinfo=UTC),
        ),
        (
            "heise.atom",
            15,
            "Microsoft veröffentlicht Cordova-Erweiterung für Visual Studio Code",
            "Die nun verfügbare Version 10",
            datetime(2016, 2, 1, 16, 22, tzinfo=UTC),
        ),
        (
            "uolNoticias.rss",
            15,
            "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno",
            "não tem o mesmo desempenho",
            # "Seg, 24 Set 2018 19:42:40 -0300": Portuguese names feedparser cannot read.
            datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC),
        ),
        (
            "encoding.rss",
            40,
            "Mãe de utente é a nova presidente da Raríssimas",
            "mãe de uma criança de três anos",
            datetime(2018, 1, 3, 13, 48, tzinfo=UTC),
        ),
        (
            "customfields.rss",
            15,
            "ISUZU launches the ‘mu-X’ premium full-size 7 seater SUV in Bengaluru",
            "Launched with a 3.0 Litre engine",
            datetime(2017, 5, 19, 15, 35, 2, tzinfo=UTC),
        ),
        (
            "instant-article.rss",
            1,
            "My first Instant Article",
            "Lorem ipsum",
            datetime(2016, 5, 4, 6, 53, 45, tzinfo=UTC),
        ),
    ],
)
def test_real_feeds(name: str, count: int, title: str, accented: str, first_date: datetime) -> None:
    # Served as a typical server would: a content type without a charset, so the decoding
    # comes from the document itself (or, for uolNoticias, from no declaration at all).
    items, notes = parse_feed(name, real_feed(name), {"Content-Type": "text/xml"}, limit=500)
    assert len(items) == count
    assert notes == []
    assert title in {i.title for i in items}
    assert any(accented in i.summary for i in items)
    assert items[0].published_at == first_date
    for item in items:
        assert item.url.startswith(("http://", "https://"))
        assert item.published_at is not None and item.published_at.tzinfo == UTC
        assert "\ufffd" not in item.title + item.summary  # nothing decoded wrongly
        assert "Ã" not in item.title + item.summary  # no UTF-8 read as Latin-1
        assert "<" not in item.summary


def test_real_feed_content_encoded_and_creator() -> None:
    [item] = parse_feed("IA", real_feed("instant-article.rss"))[0]
    assert (item.url, item.author, item.summary) == (
        "https://localhost:8000/",
        "tobi",
        "Lorem ipsum.",
    )


def test_real_feed_tracking_parameter_is_dropped() -> None:
    items, _ = parse_feed("heise", real_feed("heise.atom"))
    assert all("wt_mc" not in i.url for i in items)
    assert (
        "http://www.heise.de/developer/meldung/Java-Anwendungsserver-Red-Hat-gibt-WildFly-10-frei-3088438.html"
        in {i.url for i in items}
    )


# --- canonical_url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://x.test/a?utm_source=rss&utm_medium=feed", "https://x.test/a"),
        ("https://x.test/a?id=3&utm_campaign=c&b=2", "https://x.test/a?id=3&b=2"),
        ("https://x.test/a?fbclid=F&gclid=G&UTM_Term=t", "https://x.test/a"),
        ("https://x.test/a#section-2", "https://x.test/a"),
        ("HTTPS://News.Example.TEST/Path/Case", "https://news.example.test/Path/Case"),
        ("https://x.test/a?z=1&a=2&m=3", "https://x.test/a?z=1&a=2&m=3"),  # order kept
        ("https://x.test/a?q=caf%C3%A9+au+lait&x", "https://x.test/a?q=caf%C3%A9+au+lait&x"),
        ("https://x.test/a?12345", "https://x.test/a?12345"),  # a bare key stays bare
        ("http://x.test:80/a", "http://x.test/a"),
        ("https://x.test:443/a", "https://x.test/a"),
        ("https://x.test:8443/a", "https://x.test:8443/a"),
        ("http://[2001:DB8::1]:8080/a", "http://[2001:db8::1]:8080/a"),
        ("https://user:pw@x.test/a", "https://x.test/a"),
        ("https://x.test", "https://x.test/"),
        ("  https://x.test/padded  ", "https://x.test/padded"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "java\nscript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "file:///etc/passwd",
        "ftp://x.test/a",
        "mailto:a@x.test",
        "//x.test/protocol-relative",
        "/relative/path",
        "https://",
        "http://[::1/unclosed",
        "http://x.test:port/a",
        "",
    ],
)
def test_canonical_url_rejects_what_is_not_a_web_link(url: str) -> None:
    assert canonical_url(url) is None


# --- html_to_text --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>One</p><p>Two</p>", "One Two"),
        ("line<br>break<br/>again", "line break again"),
        ("<ul><li>a</li><li>b</li></ul>", "a b"),
        ("<b>bold</b>face", "boldface"),  # inline tags do not split words
        ("AT&amp;T &eacute;t&eacute; &#8364;5 &#x2014; &nbsp;ok", "AT&T été €5 — ok"),
        ("a < b and c > d", "a < b and c > d"),
        ("  lots \n\n of \t space  ", "lots of space"),
        ("<script>var x = '<p>no</p>';</script>after", "after"),
        ("<style>.a{}</style><noscript>no</noscript>shown", "shown"),
        ("<!-- a comment -->visible", "visible"),
        ('<a href="javascript:alert(1)" onclick="x()">link text</a>', "link text"),
        ("<img src=x onerror=alert(1)>", ""),
        # escaped twice: the first decoding yields markup, which is cleaned in turn
        ("&lt;script&gt;alert(1)&lt;/script&gt;Hello", "Hello"),
        ("Tom &amp;amp; Jerry &lt;img src=x onerror=alert(1)&gt;", "Tom & Jerry"),
        ("Tom &amp; Jerry: 3 &lt; 4", "Tom & Jerry: 3 < 4"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_html_to_text_cuts_at_a_word_within_the_limit() -> None:
    assert html_to_text("alpha beta gamma delta", 12) == "alpha beta…"
    assert html_to_text("x" * 50, 10) == "x" * 9 + "…"
    assert html_to_text("short", 10) == "short"


# --- dates feedparser cannot read --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "utc"),
    [
        ("Seg, 24 Set 2018 19:42:40 -0300", datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC)),
        ("Sáb, 31 Dic 2022 23:59:59 -0500", datetime(2023, 1, 1, 4, 59, 59, tzinfo=UTC)),
        ("Mi, 3. Mär 2021 10:00:00 +0100", datetime(2021, 3, 3, 9, 0, tzinfo=UTC)),
        ("mar., 05 févr. 2019 08:00:00 GMT", datetime(2019, 2, 5, 8, 0, tzinfo=UTC)),
        ("lun, 1 luglio 2019 12:00 +0200", datetime(2019, 7, 1, 10, 0, tzinfo=UTC)),
        ("24 Dez 2020 10:00", datetime(2020, 12, 24, 10, 0, tzinfo=UTC)),
    ],
)
def test_localised_dates(raw: str, utc: datetime) -> None:
    assert parse_localised_date(raw) == utc


@pytest.mark.parametrize("raw", ["", "yesterday", "Mon, 1 Foo 2019 12:00:00", "31 Set 2018 10:00"])
def test_unreadable_dates_are_none(raw: str) -> None:
    assert parse_localised_date(raw) is None


@pytest.mark.parametrize(
    ("raw", "utc_hour"),
    [
        ("Tue, 15 Sep 2020 10:00:00 CEST", 8),
        ("Tue, 15 Sep 2020 10:00:00 MESZ", 8),
        ("Di, 15 Sep 2020 10:00:00 MESZ", 8),  # German weekday: the localised reader
        ("Tue, 15 Sep 2020 10:00 CET", 9),
        ("Tue, 15 Sep 2020 10:00:00 JST", 1),
        ("Tue, 15 Sep 2020 10:00:00 EST", 15),  # the US names: feedparser's own reading
        ("Tue, 15 Sep 2020 10:00:00 GMT", 10),
        ("Tue, 15 Sep 2020 10:00:00 IST", 10),  # India, Ireland or Israel: left as it was
        ("Tue Sep 15 10:00:00 2020 CEST", 8),  # strftime("%c %Z"): the offset is no year
    ],
)
def test_zone_names_are_read_as_their_offsets(raw: str, utc_hour: int) -> None:
    """feedparser reads a zone name it does not know as UTC: a Berlin paper's 10:00 CEST
    would look two hours fresher than it is."""
    feed = rss([{"title": "t", "link": "https://x.test/a", "date": raw}])
    atom = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><entry><title>t</title>'
        f'<link href="https://x.test/a"/><id>a</id><updated>{raw}</updated></entry></feed>'
    )
    for body in (feed, atom):
        [item], _ = parse_feed("X", body.encode())
        assert item.published_at is not None
        assert (item.published_at.day, item.published_at.hour) == (15, utc_hour), body


def test_a_feed_cut_off_in_transfer_keeps_its_items_and_says_it_is_broken() -> None:
    """Items before the cut are news; the source stays ok, but its report says why the
    rest may be missing, for the admin reading `digest sources`."""
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        b"<item><title>Story</title><link>https://a.test/1</link></item>"
        b"<item><title>Second</title><link>https://a.test/2</link><description>cut"
    )
    items, notes = parse_feed("X", body)
    assert [i.url for i in items] == ["https://a.test/1", "https://a.test/2"]
    assert notes and notes[0].startswith("the feed is not well-formed XML")
    assert "2 items read" in notes[0]


def test_item_with_unreadable_date_has_none() -> None:
    feed = rss([{"title": "t", "link": "https://x.test/a", "date": "sometime last week"}])
    [item], _ = parse_feed("X", feed.encode())
    assert item.published_at is None


# --- images and language ---------------------------------------------------------------------

MEDIA_RSS = b"""<?xml version="1.0"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>t</title>
<language>pt-BR</language>
<item><title>Widest media:content wins</title><link>https://x.test/a</link>
<media:content url="https://img.test/small.jpg" medium="image" width="100"/>
<media:content url="https://img.test/wide.jpg?utm_source=rss" medium="image" width="1200"/>
<media:content url="https://img.test/clip.mp4" medium="video" width="4000"/>
<media:thumbnail url="https://img.test/thumb.jpg"/></item>
<item><title>Thumbnail before enclosure</title><link>https://x.test/b</link>
<enclosure url="https://img.test/e.png" type="image/png" length="1"/>
<media:thumbnail url="https://img.test/t.jpg"/></item>
<item><title>Image enclosure, audio ignored</title><link>https://x.test/c</link>
<enclosure url="https://img.test/e.mp3" type="audio/mpeg" length="1"/>
<enclosure url="https://img.test/e2.png" type="image/png" length="1"/></item>
<item><title>Hostile image URLs are dropped</title><link>https://x.test/d</link>
<media:thumbnail url="javascript:alert(1)"/>
<media:content url="data:image/png;base64,AAAA" medium="image"/></item>
</channel></rss>"""


def test_the_best_http_image_of_each_item_is_kept() -> None:
    items = by_url(parse_feed("M", MEDIA_RSS)[0])
    assert items["https://x.test/a"].image_url == "https://img.test/wide.jpg"
    assert items["https://x.test/b"].image_url == "https://img.test/t.jpg"
    assert items["https://x.test/c"].image_url == "https://img.test/e2.png"
    assert items["https://x.test/d"].image_url is None
    assert {i.language for i in items.values()} == {"pt-BR"}


def test_atom_image_enclosure_brings_its_title_as_alt_and_entry_language_wins() -> None:
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr">
    <title>x</title>
    <entry xml:lang="de"><title>Eins</title><id>1</id><link href="https://x.test/1"/>
    <link rel="enclosure" type="image/jpeg" href="https://img.test/1.jpg"
          title="Die Br&#252;cke &lt;script&gt;alert(1)&lt;/script&gt;"/></entry>
    <entry><title>Deux</title><id>2</id><link href="https://x.test/2"/></entry></feed>"""
    items = by_url(parse_feed("A", atom)[0])
    one = items["https://x.test/1"]
    assert (one.image_url, one.image_alt, one.language) == (
        "https://img.test/1.jpg",
        "Die Brücke",
        "de",
    )
    assert items["https://x.test/2"].language == "fr"


def test_json_feed_image_and_language() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "language": "en-GB",
        "items": [
            {"id": "1", "url": "https://x.test/1", "title": "A", "image": "https://img.test/1.jpg"},
            {
                "id": "2",
                "url": "https://x.test/2",
                "title": "B",
                "image": "javascript:x",
                "language": "cy",
            },
        ],
    }
    items = by_url(parse_feed("J", json.dumps(doc).encode())[0])
    assert (items["https://x.test/1"].image_url, items["https://x.test/1"].language) == (
        "https://img.test/1.jpg",
        "en-GB",
    )
    assert (items["https://x.test/2"].image_url, items["https://x.test/2"].language) == (None, "cy")


def test_a_language_that_is_not_a_tag_is_dropped() -> None:
    feed = rss([{"title": "T", "link": "https://x.test/t"}]).replace(
        "<channel>", "<channel><language>&lt;script&gt;en</language>"
    )
    [item] = parse_feed("R", feed.encode())[0]
    assert item.language is None


OLDER_FORMATS = {
    "rss-0.91": b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<rss version="0.91"><channel><title>Old</title><link>https://old.test/</link>
<item><title>Caf\xe9 reopens</title><link>https://old.test/cafe</link>
<description>Coffee &amp; cake.</description></item></channel></rss>""",
    "rss-1.0": b"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://old.test/"><title>RDF</title><link>https://old.test/</link>
<items><rdf:Seq><rdf:li rdf:resource="https://old.test/cafe"/></rdf:Seq></items></channel>
<item rdf:about="https://old.test/cafe"><title>Caf\xc3\xa9 reopens</title>
<link>https://old.test/cafe</link><description>Coffee &amp; cake.</description>
<dc:date>2026-11-28T06:00:00Z</dc:date></item></rdf:RDF>""",
    "atom-0.3": b"""<?xml version="1.0" encoding="utf-8"?>
<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>Atom 0.3</title>
<entry><title>Caf\xc3\xa9 reopens</title><link rel="alternate" type="text/html"
 href="https://old.test/cafe"/><id>tag:old.test,2026:cafe</id>
<issued>2026-11-28T06:00:00Z</issued><modified>2026-11-28T06:00:00Z</modified>
<summary>Coffee &amp; cake.</summary></entry></feed>""",
}


@pytest.mark.parametrize("name", sorted(OLDER_FORMATS))
def test_older_feed_formats_are_read_through_feedparser(name: str) -> None:
    items, notes = parse_feed(name, OLDER_FORMATS[name])
    assert notes == []
    (item,) = items
    assert (item.title, item.url, item.summary) == (
        "Café reopens",
        "https://old.test/cafe",
        "Coffee & cake.",
    )
    if name != "rss-0.91":
        assert item.published_at == datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "Plain title: 5 > 3, \"quoted\" and 'single'",
        "  spaced\r\n\tout \u00a0 text  ",
        "\ufeffa byte-order mark first",
        "a NUL\x00 inside",
        "a\u2028line separator and \U0001f600",
        "long words " * 40,
    ],
)
def test_plain_text_skips_the_sanitiser_with_the_same_result(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.sources import normalise

    quick = html_to_text(text, 60)
    monkeypatch.setattr(normalise, "_PLAIN", re.compile(r"(?!)"))  # never plain: always nh3
    assert quick == html_to_text(text, 60)
