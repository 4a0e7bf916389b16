"""Which of a feed item's picture renditions the email gets: the largest up to twice the
width it is shown at (584 px), so it is sharp on a 2x screen and no heavier than that."""

from __future__ import annotations

import pytest

from digest.sources import parse_feed


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
