"""A feed item whose picture is only an <img> in its HTML (UOL, WordPress, Blogger, Drupal)
gets that picture, through the fast path, feedparser's and JSON Feed's alike; a tracking
pixel, an emoji, an avatar or a button is no picture."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from digest.records import FeedItem
from digest.sources import parse as parse_module
from digest.sources import parse_feed
from digest.sources.fastfeed import read_entries
from tests.conftest import SHARED

FEEDS = SHARED / "data" / "feeds"
BASE = "https://blog.test/feed/"


def _fast(body: bytes) -> list[FeedItem]:
    fast = read_entries(body, BASE)
    assert fast is not None  # plain RSS 2.0: the fast path reads it
    return parse_module._items(fast[0], None)[0]


def _feedparser(body: bytes) -> list[FeedItem]:
    parsed = parse_module.read_with_feedparser(body, {})
    return parse_module._items(parsed.entries, None, BASE)[0]


PATHS: dict[str, Callable[[bytes], list[FeedItem]]] = {"fast": _fast, "feedparser": _feedparser}


def _rss(
    description: str = "", content: str = "", media: str = "", title: str = "A story"
) -> bytes:
    """One RSS 2.0 item with the given description, content:encoded and media markup."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Blog</title>'
        f"<link>https://blog.test/</link><item><title>{title}</title>"
        "<link>https://blog.test/2026/12/bridge/</link>"
        f"<description><![CDATA[{description}]]></description>"
        + (f"<content:encoded><![CDATA[{content}]]></content:encoded>" if content else "")
        + f"{media}</item></channel></rss>"
    ).encode()


# WordPress's content:encoded: an emoji first (an <img> too), then the post's picture with its
# size and its srcset, then WordPress.com's stats pixel.
WORDPRESS = (
    '<p>Opening day <img src="https://s.w.org/images/core/emoji/15.0.3/72x72/1f642.png"'
    ' alt="🙂" class="wp-smiley" style="height: 1em; max-height: 1em;" /></p>'
    '<figure class="wp-block-image size-large"><img loading="lazy" decoding="async"'
    ' width="1024" height="683"'
    ' src="https://blog.test/wp-content/uploads/2026/12/bridge-1024x683.jpg"'
    ' alt="The new bridge at dusk, lit in blue" class="wp-image-42"'
    ' srcset="https://blog.test/wp-content/uploads/2026/12/bridge-300x200.jpg 300w,'
    " https://blog.test/wp-content/uploads/2026/12/bridge-1024x683.jpg 1024w,"
    " https://blog.test/wp-content/uploads/2026/12/bridge-768x512.jpg 768w,"
    ' https://blog.test/wp-content/uploads/2026/12/bridge-1536x1024.jpg 1536w"'
    ' sizes="(max-width: 1024px) 100vw, 1024px" /></figure>'
    "<p>The bridge opened on Monday.</p>"
    '<img src="https://pixel.wp.com/b.gif?host=blog.test&amp;blog=1&amp;post=42" alt=""'
    ' width="1" height="1" />'
)


@pytest.mark.parametrize("path", PATHS)
def test_a_wordpress_items_picture_in_its_content_is_its_picture(path: str) -> None:
    (item,) = PATHS[path](_rss("<p>The bridge opened on Monday.</p>", WORDPRESS))
    assert item.image_url == "https://blog.test/wp-content/uploads/2026/12/bridge-1024x683.jpg"
    assert item.image_alt == "The new bridge at dusk, lit in blue"
    assert (item.image_width, item.image_height) == (1024, 683)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "img",
    [
        # FeedBurner's pixel, as Jornal de Notícias' feed ends every item with one
        '<img src="http://feeds.feedburner.com/~r/JN-ULTIMAS/~4/UBnb8Ra3Q1U" height="1"'
        ' width="1" alt=""/>',
        '<img src="https://news.test/t.gif?u=1" width="1" height="1">',  # any 1x1
        '<img src="https://news.test/count?u=1" style="width:1px;height:1px">',
        '<img src="https://news.test/share/facebook.png" width="24" height="24">',  # a button
        '<img src="https://feeds.feedblitz.com/~/i/123/0/blog">',
        '<img src="https://news.test/pixel?id=9">',
        '<img src="https://news.test/images/spacer.gif">',
        '<img src="https://secure.gravatar.com/avatar/ab12?s=96" alt="Ana">',
        '<img src="https://news.test/wp-content/uploads/avatars/7.jpg">',
        '<img src="https://news.test/wp-includes/images/smilies/icon_smile.gif">',
        '<img src="https://s.w.org/images/core/emoji/15.0.3/72x72/1f642.png" class="wp-smiley">',
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">',  # no http(s) address
        '<img src="https://news.test/logo.svg">',  # mail clients show no SVG
        "<img src=x onerror=alert(1)>",  # an attack: nothing says it is a picture
        '<img src="https://news.test/render?id=7">',  # nor here: no size, no picture file
    ],
)
def test_pixels_buttons_avatars_and_emoji_are_no_picture(path: str, img: str) -> None:
    (item,) = PATHS[path](_rss(f"<p>Text of the story.</p>{img}"))
    assert item.image_url is None
    assert (item.image_alt, item.image_width, item.image_height) == (None, None, None)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "pixel",
    [
        '<img src="http://feeds.feedburner.com/~r/blog/~4/Xy1" height="1" width="1" alt=""/>',
        '<img src="https://news.test/t.gif?u=1" width="1" height="1">',
        '<img src="https://secure.gravatar.com/avatar/ab12?s=96" alt="Ana">',
    ],
)
def test_a_pixel_before_the_picture_is_passed_over(path: str, pixel: str) -> None:
    img = '<img src="https://blog.test/photo.jpg" width="640" height="360">'
    (item,) = PATHS[path](_rss(f"{pixel}<p>Text.</p>{img}"))
    assert (item.image_url, item.image_width, item.image_height) == (
        "https://blog.test/photo.jpg",
        640,
        360,
    )


@pytest.mark.parametrize("path", PATHS)
def test_of_a_srcset_the_rendition_that_fits_the_email_keeps_the_declared_shape(
    path: str,
) -> None:
    img = (
        '<img src="https://blog.test/b-300x200.jpg" width="300" height="200"'
        ' srcset="https://blog.test/b-300x200.jpg 300w, https://blog.test/b-1024x683.jpg 1024w,'
        ' https://blog.test/b-2560x1707.jpg 2560w">'
    )
    (item,) = PATHS[path](_rss(img))
    assert (item.image_url, item.image_width, item.image_height) == (
        "https://blog.test/b-1024x683.jpg",
        1024,
        683,
    )


@pytest.mark.parametrize("path", PATHS)
def test_a_picture_declared_wide_enough_is_kept_over_a_smaller_rendition(path: str) -> None:
    """A width stated without a height still says how wide the src is: a thumbnail of
    its srcset is no better picture for the email's 584 px."""
    img = (
        '<img src="https://blog.test/b-1024.jpg" width="1024"'
        ' srcset="https://blog.test/b-150.jpg 150w">'
    )
    (item,) = PATHS[path](_rss(img))
    assert item.image_url == "https://blog.test/b-1024.jpg"


@pytest.mark.parametrize("path", PATHS)
def test_a_relative_picture_resolves_against_the_items_link_with_its_styled_size(
    path: str,
) -> None:
    """Drupal writes its pictures root-relative, sized by a style (Varthabharathi's feed)."""
    img = '<img alt="" src="/sites/files/isuzu-3.gif" style="width: 700px; height: 467px;" />'
    (item,) = PATHS[path](_rss(f"<p>The launch.</p>{img}"))
    assert item.image_url == "https://blog.test/sites/files/isuzu-3.gif"
    assert (item.image_alt, item.image_width, item.image_height) == (None, 700, 467)


@pytest.mark.parametrize("path", PATHS)
def test_a_relative_picture_under_an_xml_base_resolves_against_it(path: str) -> None:
    """feedparser resolves the HTML's addresses against the xml:base in scope; the fast
    path's picture is the same."""
    feed = (
        b'<rss version="2.0"><channel xml:base="https://cdn.test/base/"><title>t</title>'
        b"<item><title>A</title><link>https://blog.test/post/1</link><description>"
        b'&lt;img src="pics/a.jpg" width="600" height="400"&gt; Text</description></item>'
        b"</channel></rss>"
    )
    (item,) = PATHS[path](feed)
    assert item.image_url == "https://cdn.test/base/pics/a.jpg"


@pytest.mark.parametrize("path", PATHS)
def test_an_alt_that_is_the_headline_is_no_alt_text(path: str) -> None:
    img = '<img src="https://blog.test/a.jpg" alt="Bridge  opens">'
    (item,) = PATHS[path](_rss(img, title="Bridge opens"))
    assert (item.image_url, item.image_alt) == ("https://blog.test/a.jpg", None)


@pytest.mark.parametrize("path", PATHS)
def test_a_lazy_loaded_picture_is_read_from_its_data_src(path: str) -> None:
    img = (
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" '
        'data-src="https://blog.test/real.jpg" width="800" height="450">'
    )
    (item,) = PATHS[path](_rss(f"<p>Text.</p>{img}"))
    assert (item.image_url, item.image_width, item.image_height) == (
        "https://blog.test/real.jpg",
        800,
        450,
    )


@pytest.mark.parametrize("path", PATHS)
def test_a_media_picture_comes_before_one_in_the_html(path: str) -> None:
    media = '<media:content url="https://cdn.test/m.jpg" medium="image" width="800" height="600"/>'
    (item,) = PATHS[path](_rss('<img src="https://blog.test/inline.jpg">', media=media))
    assert (item.image_url, item.image_width) == ("https://cdn.test/m.jpg", 800)


def test_a_text_summary_that_shows_an_img_tag_gives_no_picture() -> None:
    """An Atom summary of type text shows "<img ...>" as written: it is no markup."""
    feed = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:f</id>'
        b"<updated>2026-12-01T00:00:00Z</updated><entry><title>Tags</title><id>urn:1</id>"
        b'<link href="https://blog.test/tags"/><updated>2026-12-01T00:00:00Z</updated>'
        b'<summary type="text">Write &lt;img src="https://blog.test/x.jpg"&gt; for a picture'
        b"</summary></entry></feed>"
    )
    (item,), _ = parse_feed("Blog", feed)
    assert item.image_url is None


def test_a_json_feed_items_content_html_picture_is_its_picture() -> None:
    """JSON Feed alike: no ``image``, the first picture of its ``content_html``."""
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Blog",
        "items": [
            {"id": "1", "url": "https://blog.test/1", "title": "Bridge", "content_html": WORDPRESS},
            {
                "id": "2",
                "url": "https://blog.test/2",
                "title": "Pixel only",
                "content_html": '<p>Text.</p><img src="https://pixel.wp.com/b.gif" width="1">',
            },
            {
                "id": "3",
                "url": "https://blog.test/3",
                "title": "Own image",
                "image": "https://blog.test/own.jpg",
                "content_html": '<img src="https://blog.test/inline.jpg">',
            },
        ],
    }
    items, _ = parse_feed(
        "Blog", json.dumps(feed).encode(), {"content-type": "application/feed+json"}
    )
    assert [(i.image_url, i.image_width, i.image_height) for i in items] == [
        ("https://blog.test/wp-content/uploads/2026/12/bridge-1024x683.jpg", 1024, 683),
        (None, None, None),
        ("https://blog.test/own.jpg", None, None),
    ]


@pytest.mark.skipif(not FEEDS.is_dir(), reason=f"the shared feeds are not here ({FEEDS})")
def test_uols_items_get_the_picture_their_description_carries() -> None:
    """UOL puts each item's picture only as an <img> at the start of its description."""
    items, _ = parse_feed("UOL", (FEEDS / "uolNoticias.rss").read_bytes(), base_url=BASE)
    by_link = {i.url: i.image_url for i in items}
    ibope = (
        "https://noticias.uol.com.br/politica/eleicoes/2018/noticias/2018/09/24/"
        "ibope-bolsonaro-perde-de-haddad-ciro-e-alckmin-em-simulacoes-de-2-turno.htm"
    )
    assert by_link[ibope] == (
        "https://conteudo.imguol.com.br/c/noticias/5f/2018/09/17/"
        "presidenciaveis-1537211917356_142x100.jpg"
    )
    # Every item with an <img> in its description has a picture, and only those.
    body = (FEEDS / "uolNoticias.rss").read_bytes()
    assert sum(1 for i in items if i.image_url) == body.count(b"<img ") == 4


@pytest.mark.skipif(not FEEDS.is_dir(), reason=f"the shared feeds are not here ({FEEDS})")
def test_jornal_de_noticias_feedburner_pixels_are_no_pictures() -> None:
    body = (FEEDS / "encoding.rss").read_bytes()
    assert b"feeds.feedburner.com/~r/" in body
    items, _ = parse_feed("JN", body, base_url=BASE)
    assert items and all(i.image_url is None for i in items)


def test_hostile_html_costs_a_bounded_look() -> None:
    """A million characters of "<img" never closed, or of pixels, is looked at in bounded
    time: twenty "<img" at most, each match at most 4,000 characters long."""
    unclosed = "<img src='https://blog.test/a.jpg' " * 30_000
    pixels = '<img src="https://blog.test/p.gif" width="1" height="1">' * 20_000
    real = '<img src="https://blog.test/real.jpg" width="800" height="450">'
    for html in (unclosed + real, pixels + real):
        started = time.process_time()
        (item,) = _fast(_rss(html))
        assert time.process_time() - started < 0.5
        assert item.image_url is None  # past the first twenty: given up, not searched for


@pytest.mark.parametrize("path", PATHS)
def test_a_stated_size_padded_with_spaces_is_read_in_linear_time(path: str) -> None:
    """A media:content width of a digit, 200,000 spaces and a letter (a hostile feed) is
    no size, found out at once: the pattern read it in quadratic time (minutes)."""
    pad = " " * 200_000
    media = (
        '<media:content url="https://blog.test/a.jpg" medium="image"'
        f' width="1{pad}x" height="1{pad}x"/>'
    )
    body = _rss(media=media)
    started = time.process_time()
    (item,) = PATHS[path](body)
    assert time.process_time() - started < 2
    assert item.image_url == "https://blog.test/a.jpg"
    assert (item.image_width, item.image_height) == (None, None)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "img",
    [
        '<img alt="Rates > 5%, the Bank says" src="https://blog.test/rates.jpg" width="800"'
        ' height="450">',
        "<img title='Before > after' alt=\"Rates > 5%, the Bank says\""
        ' src="https://blog.test/rates.jpg" width="800" height="450">',
        '<img alt="Rates > 5%, the Bank says" title="<b>" src=https://blog.test/rates.jpg'
        " width=800 height=450>",
    ],
)
def test_a_greater_than_sign_in_a_quoted_value_does_not_end_the_tag(path: str, img: str) -> None:
    """``>`` inside a quoted alt or title is text: the src, width and height after it are
    the tag's still."""
    (item,) = PATHS[path](_rss(f"<p>Text.</p>{img}"))
    assert (item.image_url, item.image_alt, item.image_width, item.image_height) == (
        "https://blog.test/rates.jpg",
        "Rates > 5%, the Bank says",
        800,
        450,
    )


@pytest.mark.parametrize("path", PATHS)
def test_a_quote_never_closed_is_read_as_a_character(path: str) -> None:
    """A tag whose quote never closes (broken markup) is read as before: up to its ``>``."""
    img = '<img src=https://blog.test/a.jpg alt="broken width=640 height=360><p>Text.</p>'
    (item,) = PATHS[path](_rss(img))
    assert item.image_url == "https://blog.test/a.jpg"
