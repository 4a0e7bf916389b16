"""Which of a feed item's picture renditions the email gets: the largest up to twice the
width it is shown at (584 px), so it is sharp on a 2x screen and no heavier than that."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from digest.pipeline import gather_sources
from digest.records import ArticleRecord, RankedEdition, Story
from digest.render import render_edition
from digest.render.edition import LEAD_PICTURE, THUMBNAIL, picture_size
from digest.sources import parse_feed
from digest.sources.metadata import read_metadata
from tests.conftest import SHARED, FeedServer, OpenApp
from tests.renders import edition_info


def _feed(*widths: int) -> bytes:
    renditions = "".join(
        f'<media:content url="https://img.test/{w or "unknown"}.jpg" medium="image"'
        + (f' width="{w}"' if w else "")
        + "/>"
        for w in widths
    )
    return (
        '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>t</title>'
        "<item><title>A story</title><link>https://x.test/a</link>"
        f"{renditions}</item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    ("widths", "chosen"),
    [
        ((140, 460), 460),  # The Guardian's two: the larger, though under 584
        ((300, 800, 1168, 3000), 1168),  # the largest up to twice 584
        ((640, 2048, 4096), 640),  # not the 4K original
        ((100, 1200), 1200),  # 100 px would be blurred: the smallest wider one instead
        ((3000, 2000), 2000),
        ((0, 460), 460),  # a known width before an unknown one
    ],
)
def test_the_largest_rendition_up_to_twice_the_shown_width_is_chosen(
    widths: tuple[int, ...], chosen: int
) -> None:
    (item,), _ = parse_feed("Wire", _feed(*widths))
    assert item.image_url == f"https://img.test/{chosen}.jpg"


def test_a_pictures_own_description_is_its_alt_text() -> None:
    """Media RSS describes a picture in a child of its media:content (The Guardian, the BBC):
    that text is the picture's alt text, so a reader who cannot see it is told what it shows.
    A media:group's description (a video's, on YouTube) describes the item, not a picture."""
    feed = (
        b'<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>t</title>'
        b"<item><title>Bridge closes</title><link>https://x.test/a</link>"
        b'<media:content url="https://img.test/a.jpg" medium="image" width="600">'
        b'<media:description type="plain">The Northgate bridge at dusk</media:description>'
        b"<media:credit>Photo: A. Lens</media:credit></media:content></item>"
        b"<item><title>Storm</title><link>https://x.test/b</link>"
        b'<media:content url="https://img.test/b.jpg" medium="image">'
        b"<media:title>Waves over the sea wall</media:title></media:content></item>"
        b"<item><title>Video</title><link>https://x.test/c</link><media:group>"
        b"<media:description>A talk about bridges, an hour long</media:description>"
        b'<media:content url="https://img.test/c.jpg" medium="image"/></media:group></item>'
        b"</channel></rss>"
    )
    items, _ = parse_feed("Wire", feed)
    assert [(i.image_url, i.image_alt) for i in items] == [
        ("https://img.test/a.jpg", "The Northgate bridge at dusk"),
        ("https://img.test/b.jpg", "Waves over the sea wall"),
        ("https://img.test/c.jpg", None),
    ]


# --- the picture's shape -----------------------------------------------------------------------


def _media(name: str, width: str | None = None, height: str | None = None) -> str:
    size = (f' width="{width}"' if width else "") + (f' height="{height}"' if height else "")
    return f'<media:content url="https://img.test/{name}.jpg" medium="image"{size}/>'


def _sized(*renditions: str) -> bytes:
    return (
        '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>t</title>'
        "<item><title>A story</title><link>https://x.test/a</link>"
        f"{''.join(renditions)}</item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    ("renditions", "size"),
    [
        # The chosen rendition's own size, not another's.
        (
            (
                _media("s", "300", "100"),
                _media("m", "1000", "500"),
            ),
            (1000, 500),
        ),
        # media:thumbnail (the BBC's) states a size too.
        (('<media:thumbnail url="https://img.test/t.jpg" width="240" height="135"/>',), (240, 135)),
        # A width alone (The Guardian's) says nothing of the shape; nor does nonsense.
        (('<media:content url="https://img.test/g.jpg" medium="image" width="460"/>',), None),
        (
            ('<media:content url="https://img.test/x.jpg" medium="image" width="0" height="9"/>',),
            None,
        ),
        (
            (_media("x", "1e9", "9"),),
            None,
        ),
    ],
)
def test_the_chosen_renditions_stated_size_is_kept(
    renditions: tuple[str, ...], size: tuple[int, int] | None
) -> None:
    (item,), _ = parse_feed("Wire", _sized(*renditions))
    width, height = size or (None, None)
    assert (item.image_width, item.image_height) == (width, height)


def test_an_article_pages_picture_size_comes_from_og_image_or_its_image_object() -> None:
    def page(head: str) -> bytes:
        return (
            f'<html><head><meta property="og:type" content="article">{head}</head>'
            "<body><p>Text.</p></body></html>"
        ).encode()

    og = page(
        '<meta property="og:image" content="https://img.test/o.jpg">'
        '<meta property="og:image:width" content="1200">'
        '<meta property="og:image:height" content="600">'
    )
    meta = read_metadata(og, "https://x.test/a")
    assert (meta.image_url, meta.image_width, meta.image_height) == (
        "https://img.test/o.jpg",
        1200,
        600,
    )
    ld = page(
        '<script type="application/ld+json">{"@type": "NewsArticle", "headline": "H", '
        '"image": {"@type": "ImageObject", "url": "https://img.test/l.jpg", '
        '"width": {"@type": "QuantitativeValue", "value": 800}, "height": "450px"}}</script>'
    )
    meta = read_metadata(ld, "https://x.test/a")
    assert (meta.image_url, meta.image_width, meta.image_height) == (
        "https://img.test/l.jpg",
        800,
        450,
    )


async def test_a_2_to_1_picture_reaches_the_email_as_2_to_1(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    """Gathered, stored, ranked and rendered: the picture's width and height attributes (all
    Outlook on Windows sizes it by) keep the shape the feed stated, not a 16:9 box."""
    now = datetime.now(UTC)
    feed = _sized(
        '<media:content url="https://img.test/wide.jpg" medium="image" width="1200" height="600"/>'
    ).replace(
        b"</title><link>", f"</title><pubDate>{format_datetime(now)}</pubDate><link>".encode(), 1
    )
    app = open_app([("Wire", feed_server.add("/w.xml", feed))])
    await gather_sources(app)
    [article] = app.store.window_articles(
        now - timedelta(days=1), now + timedelta(minutes=1), ["Wire"]
    )
    assert (article.image_width, article.image_height) == (1200, 600)
    story = Story(article, (), 1.0, ())
    info = edition_info(dated=now)
    html = render_edition(info, RankedEdition((story,), ())).html
    [image] = re.findall(r"<img\b[^>]*>", html)
    assert 'width="584" height="292"' in image


def test_pictures_keep_their_shape_within_their_boxes() -> None:
    def sized(width: int | None, height: int | None) -> Story:
        article = ArticleRecord(
            1, "Wire", "A story", "https://x.test/a", "", datetime(2026, 12, 1, tzinfo=UTC),
            image_url="https://img.test/a.jpg", image_width=width, image_height=height,
        )  # fmt: skip
        return Story(article, (), 1.0, ())

    assert picture_size(sized(1200, 600), LEAD_PICTURE) == (584, 292)  # 2:1
    assert picture_size(sized(None, None), LEAD_PICTURE) == (584, None)  # unknown: no height
    assert picture_size(sized(1000, 1500), LEAD_PICTURE) == (292, 438)  # portrait: narrower
    assert picture_size(sized(800, 800), THUMBNAIL) == (96, 96)
    assert picture_size(sized(1600, 900), THUMBNAIL) == (128, 72)
    assert picture_size(sized(None, None), THUMBNAIL) == (128, 72)  # the CSS box's own
    # A portrait lead narrower than the column grows no wider than its attribute elsewhere.
    info = edition_info(dated=datetime(2026, 12, 1, tzinfo=UTC))
    html = render_edition(info, RankedEdition((sized(1000, 1500),), ())).html
    [image] = re.findall(r"<img\b[^>]*>", html)
    assert 'width="292" height="438"' in image and "max-width:292px" in image


# The Guardian states each rendition's width only; its address carries the crop (5:3 here).
GUARDIAN = (
    "https://i.guim.co.uk/img/media/b73c8752cd4667c923dff7f1542f1fb20089e421/0_108_3000_1799/"
    "master/3000.jpg?w={w}&amp;q=55&amp;auto=format&amp;usm=12&amp;fit=max&amp;s=0a4f"
)


def _guardian(*widths: int) -> bytes:
    """An item with The Guardian's renditions: no height, no medium, as it writes them."""
    return _sized(*(f'<media:content width="{w}" url="{GUARDIAN.format(w=w)}"/>' for w in widths))


def test_a_pictures_shape_written_in_its_address_completes_a_width_alone() -> None:
    """The Guardian's media:content states a width alone; the crop in its address
    (x_y_width_height) gives the shape, so the stored size is the rendition's, 5:3."""
    (item,), _ = parse_feed("Guardian", _guardian(140, 460))
    assert item.image_url and "w=460" in item.image_url
    assert (item.image_width, item.image_height) == (460, 276)


@pytest.mark.parametrize(
    ("url", "size"),
    [
        (GUARDIAN.format(w=460).replace("&amp;", "&"), (3000, 1799)),  # nothing stated
        ("https://img.test/media/ab/0_108_3000_1799/master/3000.jpg", None),  # another host
        ("https://i.guim.co.uk/img/media/ab/0_0_0_1799/master/3000.jpg", None),  # no shape
    ],
)
def test_only_a_known_services_address_gives_a_shape(
    url: str, size: tuple[int, int] | None
) -> None:
    """A page's og:image without og:image:width/height: the shape its address writes, for
    a service known to write one; any other address's numbers say nothing."""
    html = (
        '<html><head><meta property="og:type" content="article">'
        f'<meta property="og:image" content="{url}"></head><body><p>Text.</p></body></html>'
    ).encode()
    meta = read_metadata(html, "https://x.test/a")
    assert (meta.image_width, meta.image_height) == (size or (None, None))


@pytest.mark.skipif(not (SHARED / "data" / "feeds").is_dir(), reason="no shared feeds here")
def test_the_guardians_lead_picture_is_boxed_5_to_3_not_16_to_9() -> None:
    """Every item of the shared Guardian feed gets its 5:3 shape; its lead in the email is
    584 x 350, where a 16:9 box (328) made the text below move 22 px when it loaded."""
    body = (SHARED / "data" / "feeds" / "guardian.rss").read_bytes()
    items, _ = parse_feed("The Guardian", body)
    assert items and all(
        i.image_width and i.image_height and abs(i.image_width / i.image_height - 5 / 3) < 0.01
        for i in items
    )
    first = items[0]
    article = ArticleRecord(
        1, "The Guardian", first.title, first.url, "", datetime(2026, 12, 1, tzinfo=UTC),
        image_url=first.image_url, image_width=first.image_width,
        image_height=first.image_height,
    )  # fmt: skip
    image = _lead_img(article)
    assert 'width="584" height="350"' in image


def test_a_lead_of_unknown_shape_has_a_width_and_no_invented_height() -> None:
    """No stated shape: the width Outlook needs, no height to stretch it to; height:auto
    (the CSS) lets every client draw it in its own shape."""
    article = ArticleRecord(
        1, "Wire", "A story", "https://x.test/a", "", datetime(2026, 12, 1, tzinfo=UTC),
        image_url="https://img.test/a.jpg",
    )  # fmt: skip
    image = _lead_img(article)
    assert 'width="584"' in image and "height=" not in image
    assert "height:auto" in image.replace(" ", "")


def _lead_img(article: ArticleRecord) -> str:
    """The one <img> of an edition whose only story (a lead) is ``article``."""
    html = render_edition(
        edition_info(dated=datetime(2026, 12, 1, tzinfo=UTC)),
        RankedEdition((Story(article, (), 1.0, ()),), ()),
    ).html
    [image] = re.findall(r"<img\b[^>]*>", html)
    return image
