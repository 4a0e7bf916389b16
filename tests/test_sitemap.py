"""Sources of kind 'sitemap': a Google News sitemap, plain entries, indexes and hostile XML."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.errors import SourceError
from digest.sources.dates import iso_date
from digest.sources.fetch import MAX_BODY_BYTES
from digest.sources.sitemap import parse_sitemap

DOC = (Path(__file__).parent / "data" / "pages" / "news-sitemap.xml").read_bytes()
BASE = "https://lantern.example/news-sitemap.xml"


def test_news_sitemap_entries() -> None:
    before = datetime.now(UTC)
    items, notes = parse_sitemap("lantern", DOC, BASE)
    by_url = {i.url: i for i in items}
    assert list(by_url) == [
        "https://lantern.example/world/2026/11/27/envoy-visit-eases-trade-tensions",
        "https://lantern.example/business/province-pays-salaries-early-before-holiday-48213",
        "https://lantern.example/science/2026/11/28/probe-returns-samples-from-asteroid",
        "https://lantern.example/2099/01/01/a-story-from-the-future",
    ]
    envoy = items[0]
    assert envoy.guid == envoy.url
    assert envoy.title == "Envoy's visit sets out to ease trade tensions"
    assert envoy.published_at == datetime(2026, 11, 27, 4, 30, tzinfo=UTC)
    assert envoy.modified_at == datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    assert envoy.language == "en"
    assert envoy.image_url == "https://lantern.example/img/envoy-arrives.jpg"
    assert envoy.image_alt == "The envoy steps off the plane in the rain"

    salaries = items[1]
    assert salaries.title == "Province to pay salaries early"  # the script is gone
    assert salaries.published_at == datetime(2026, 11, 26, 12, tzinfo=UTC)  # a bare date: noon
    # Its <news:language> says Urdu, its title is English: no language rather than a wrong
    # one, which the email would give a screen reader (``fitting_language``).
    assert salaries.language is None

    # A plain <url> entry: the title from the address's slug, the date from <lastmod>.
    probe = items[2]
    assert probe.title == "Probe returns samples from asteroid"
    assert probe.published_at == datetime(2026, 11, 28, 4, 0, tzinfo=UTC)

    future = items[3].published_at
    assert future is not None and before <= future <= datetime.now(UTC) + timedelta(seconds=1)

    assert notes == [
        "entry 4: https://lantern.example/world/ has no <news:title> and no words in its "
        "address; skipped",
        "entry 5: no http(s) <loc> ('javascript:alert(document.cookie)'); skipped",
    ]


def test_a_sitemap_index_names_a_news_sitemap_to_use() -> None:
    index = b"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>https://lantern.example/sitemap-pages.xml</loc></sitemap>
  <sitemap><loc>https://lantern.example/sitemap-news.xml</loc></sitemap>
</sitemapindex>"""
    with pytest.raises(SourceError, match="sitemap index of 2 sitemaps") as caught:
        parse_sitemap("lantern", index, BASE)
    assert "https://lantern.example/sitemap-news.xml" in caught.value.hint


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"<!doctype html><html><body>Not found</body></html>", "HTML page"),
        (b"<urlset><url><loc>https://a.example/x</loc>", "not well-formed"),
        (b'<rss version="2.0"><channel></channel></rss>', "root element is <rss>"),
        # A billion laughs: refused before any expansion.
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            b"<urlset><url><loc>https://a.example/&lol2;</loc></url></urlset>",
            "refuses for safety",
        ),
        # An external entity reading a local file (XXE): refused, nothing is read.
        (
            b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            b"<urlset><url><loc>https://a.example/x</loc>"
            b"<news:news xmlns:news='http://www.google.com/schemas/sitemap-news/0.9'>"
            b"<news:title>&xxe;</news:title></news:news></url></urlset>",
            "refuses for safety",
        ),
    ],
)
def test_what_is_not_a_news_sitemap_is_a_source_error(body: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_sitemap("lantern", body, BASE)


def test_relative_locations_resolve_against_the_sitemap() -> None:
    body = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
      <url><loc>/local/2026/town-council-approves-new-bridge</loc></url></urlset>"""
    items, _ = parse_sitemap("lantern", body, BASE)
    assert [(i.url, i.title) for i in items] == [
        (
            "https://lantern.example/local/2026/town-council-approves-new-bridge",
            "Town council approves new bridge",
        )
    ]


def test_a_gzipped_sitemap_file_is_read() -> None:
    items, _ = parse_sitemap("lantern", gzip.compress(DOC), BASE)
    assert len(items) == 4


def test_a_gzip_bomb_is_cut_off() -> None:
    bomb = gzip.compress(b"<urlset>" + b" " * (MAX_BODY_BYTES + 10) + b"</urlset>")
    assert len(bomb) < 100_000
    with pytest.raises(SourceError, match="inflates past the size limit"):
        parse_sitemap("lantern", bomb, BASE)


def test_a_bare_date_becomes_the_middle_of_the_part_of_its_day_already_past() -> None:
    """Noon of a past day; halfway to now today; a date with a time of day as it is."""
    now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    assert iso_date("2026-11-26", now) == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert iso_date("2026-11-28", now) == datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
    assert iso_date("20261126", None) == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert iso_date("2026-11-26T00:00:00Z", now) == datetime(2026, 11, 26, tzinfo=UTC)
    assert iso_date("2026-11-29", now) == now  # a date ahead of us: now, as before
