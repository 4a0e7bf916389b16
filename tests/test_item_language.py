"""An item's language is not one its text cannot be in: a feed declaring a language written
in another script than Latin ("kn", "ru", "zh") for an item whose every letter is Latin
(a Kannada portal's English section) leaves the item's language unknown, rather than mark
an English headline lang="kn" in the email, which a screen reader reads in Kannada.
"""

from __future__ import annotations

import json

import pytest

from digest.records import FeedItem
from digest.sources import parse_feed
from digest.sources.normalise import fitting_language
from digest.sources.sitemap import parse_sitemap
from tests.conftest import SHARED, rss

FEEDS = SHARED / "data" / "feeds"


@pytest.mark.parametrize(
    ("tag", "texts", "kept"),
    [
        ("kn", ("ISUZU launches the ‘mu-X’ premium SUV in Bengaluru", ""), None),
        ("kn", ("ಬೆಂಗಳೂರಿನಲ್ಲಿ ಹೊಸ ಮೆಟ್ರೋ ಮಾರ್ಗ", ""), "kn"),
        # A Kannada story under a title of brand names: its summary is Kannada.
        ("kn", ("IPL 2017", "ಬೆಂಗಳೂರು ತಂಡಕ್ಕೆ ಜಯ"), "kn"),
        ("ru", ("Путин встретился с министрами", ""), "ru"),
        ("ru-RU", ("Putin meets ministers", "A short meeting."), None),
        ("zh_Hant", ("台北股市收盤上漲", ""), "zh_Hant"),
        ("zh", ("iPhone 15 Pro review", ""), None),
        ("ar", ("الأمم المتحدة", ""), "ar"),
        # Languages written in Latin keep their tag whatever the text; so does a text
        # without letters, which says nothing.
        ("pt-BR", ("Bolsonaro estaciona na liderança", ""), "pt-BR"),
        ("en", ("Путин встретился с министрами", ""), "en"),
        ("kn", ("2017", "—"), "kn"),
        (None, ("Anything", ""), None),
    ],
)
def test_a_language_stays_unless_the_text_cannot_be_in_it(
    tag: str | None, texts: tuple[str, str], kept: str | None
) -> None:
    assert fitting_language(tag, *texts) == kept


def kannada_feed() -> str:
    return rss(
        [
            {"title": "ISUZU launches the mu-X in Bengaluru", "link": "https://v.test/en"},
            {"title": "ಬೆಂಗಳೂರಿನಲ್ಲಿ ಹೊಸ ಮೆಟ್ರೋ ಮಾರ್ಗ", "link": "https://v.test/kn"},
        ]
    ).replace("<channel>", "<channel><language>kn</language>")


def languages(items: list[FeedItem]) -> dict[str, str | None]:
    return {i.url: i.language for i in items}


def test_a_feeds_declared_language_is_dropped_for_its_items_in_another_script() -> None:
    expected = {"https://v.test/en": None, "https://v.test/kn": "kn"}
    # The fast path (UTF-8 RSS 2.0), and feedparser (RSS 1.0, which the fast path leaves).
    assert languages(parse_feed("V", kannada_feed().encode())[0]) == expected
    rdf = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<channel rdf:about="https://v.test/"><title>V</title><link>https://v.test/</link>'
        "<description>V</description><dc:language>kn</dc:language></channel>"
        '<item rdf:about="https://v.test/en"><title>ISUZU launches the mu-X in Bengaluru'
        "</title><link>https://v.test/en</link></item>"
        '<item rdf:about="https://v.test/kn"><title>ಬೆಂಗಳೂರಿನಲ್ಲಿ ಹೊಸ ಮೆಟ್ರೋ ಮಾರ್ಗ</title>'
        "<link>https://v.test/kn</link></item></rdf:RDF>"
    )
    assert languages(parse_feed("V", rdf.encode())[0]) == expected


def test_a_json_feeds_language_is_dropped_for_an_item_in_latin_letters() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "language": "ru",
        "items": [
            {"id": "1", "url": "https://j.test/1", "title": "Putin meets ministers"},
            {"id": "2", "url": "https://j.test/2", "title": "Путин встретился с министрами"},
        ],
    }
    items = parse_feed("J", json.dumps(doc).encode())[0]
    assert languages(items) == {"https://j.test/1": None, "https://j.test/2": "ru"}


def test_a_sitemaps_language_is_dropped_for_a_title_in_latin_letters() -> None:
    urls = "".join(
        f"<url><loc>https://s.test/{n}</loc><news:news><news:publication><news:name>S"
        "</news:name><news:language>zh</news:language></news:publication>"
        f"<news:title>{title}</news:title></news:news></url>"
        for n, title in [(1, "iPhone 15 Pro review"), (2, "台北股市收盤上漲")]
    )
    body = (
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{urls}</urlset>'
    ).encode()
    items, _ = parse_sitemap("S", body, "https://s.test/")
    assert languages(items) == {"https://s.test/1": None, "https://s.test/2": "zh"}


def test_the_real_kannada_portals_english_items_are_not_marked_kannada() -> None:
    path = FEEDS / "customfields.rss"
    if not path.is_file():
        pytest.skip(f"the shared sample feeds are not here ({FEEDS})")
    items, _ = parse_feed("Varthabharathi", path.read_bytes())
    assert len(items) == 15
    assert {i.language for i in items} == {None}
