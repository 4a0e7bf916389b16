"""Which picture a feed item gets, and the one it gives only inside its HTML.

Many feeds (UOL, WordPress and Blogger sites, Drupal) give no media:content, thumbnail or
enclosure: the item's picture is the first ``<img>`` of its description or content. That
first image is often no picture at all but a tracking pixel (FeedBurner's, WordPress.com's
stats), a share button, an avatar or an emoji; those are passed over by what they declare
(a side under 50 px, a class), where they come from (known pixel and avatar hosts) and
their path (``/pixel``, ``spacer.gif``, ``/smilies/``); and an ``<img>`` with nothing that
says it is a picture (no size, no srcset, no picture file's name: ``<img src=x onerror=...>``)
is none either. What remains is taken with its declared width and height (its shape in the
email) and its alt text. A relative address resolves against the item's link: both parsing
paths have that link, as an absolute URL, whatever base the feed declared.

The tags are found by a bounded pattern, not a parser: this runs on every item of every
feed, most of which have no ``<img>`` at all, and hostile HTML nested thousands deep costs
a pattern nothing more than flat HTML. The pattern reads quoted attribute values whole, so
an ``alt="a > b"`` is text, not the end of the tag.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple
from urllib.parse import urljoin, urlsplit

from digest.sources.normalise import canonical_url, html_to_text, image_size, refused_words

ALT_LIMIT = 300
# The email's widest picture is 584 px; twice that is sharp on a 2x screen and no heavier.
IMAGE_SHOWN = 584
IMAGE_SHARP = 2 * IMAGE_SHOWN
# Smaller than this on either side (as declared) is an icon, a button or a pixel.
_LEAST_SIDE = 50
# How many "<img" of one item are looked at before giving up: a gallery's first few.
_MOST_TAGS = 20

# An <img> start tag and its attributes. A quoted value is read whole, as a browser reads
# it: alt="a > b" does not end the tag, nor hide the src after it (a quote never closed is
# a character like any other). Possessive, so nothing is tried twice; matched with an end
# (_TAG_END) so that a "<img" never closed costs a scan of 4,000 characters, not of the
# rest of the item.
_IMG = re.compile(r"""<img\b((?:=\s*"[^"]*"|=\s*'[^']*'|[^<>])*+)>""", re.I)
_TAG_END = len("<img") + 4000 + len(">")
_IMG_START = re.compile(r"<img\b", re.I)
_ATTRIBUTE = re.compile(r"""([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?""")
# A side stated in a style attribute: "width: 700px; height: 467px".
_STYLE_SIDE = re.compile(r"(?:^|[;\s])(width|height)\s*:\s*(\d{1,5})(?:\.0+)?\s*px", re.I)
# A side as a tag declares it: "1", "1px", "1.0".
# One run of spaces before "px" and one after (as ``normalise._PIXELS``): linear time.
_SIDE = re.compile(r"\s*(\d{1,6})(?:\.\d*)?(?:\s*px)?\s*$", re.I)
# A srcset's candidate with a width descriptor: "https://x/a-1024x683.jpg 1024w".
_SRCSET = re.compile(r"\s*(\S+?)\s+(\d{1,5})w\s*(?:,|$)")
# Hosts that serve no pictures of a story: tracking pixels, feed buttons, avatars, emoji.
_NOT_PICTURE_HOST = re.compile(
    r"^(?:feeds|pixel|stats)\."
    r"|(?:^|\.)(?:feedburner\.com|feedblitz\.com|feedsportal\.com|gravatar\.com|s\.w\.org"
    r"|doubleclick\.net)$"
)
# Paths of the same: a /pixel end point, spacers, 1x1 images, smilies, icons, avatars,
# FeedBurner's /~r/ and /~ff/ links, SVG (which mail clients do not show).
_NOT_PICTURE_PATH = re.compile(
    r"/pixel(?:\.\w+)?(?:/|$)|/(?:spacer|blank|transparent|clear|1x1|pixel)\.(?:gif|png)$"
    r"|/(?:smilies|smileys|emoji|emojis|icons?|avatars?)/|/~(?:r|ff|a)/|\.svg$"
)
# A path that names a picture file.
_IMAGE_FILE = re.compile(r"\.(?:jpe?g|png|gif|webp|avif)$")
# Class words of images that are not the story's picture (WordPress's "wp-smiley", "avatar").
_NOT_PICTURE_CLASS = re.compile(r"smiley|emoji|avatar|icon|pixel|tracking|share|badge", re.I)


# Picture services that write a picture's shape into its address, by host: The Guardian's
# crop rectangle, x_y_width_height (i.guim.co.uk/img/media/<id>/0_108_3000_1799/master/
# 3000.jpg?w=460): its feed states each rendition's width only.
_SHAPE_IN_ADDRESS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (re.compile(r"(?:^|\.)guim\.co\.uk$"), re.compile(r"/\d{1,5}_\d{1,5}_(\d{1,5})_(\d{1,5})/")),
)


class Picture(NamedTuple):
    """The picture an item gets: its address, alt text, and size as the source states it."""

    url: str | None = None
    alt: str | None = None
    width: int | None = None
    height: int | None = None


def stated_size(url: str | None, width: object, height: object) -> tuple[int | None, int | None]:
    """The picture's width and height as its source states them (``image_size``: both or
    neither); when it states less, the shape its address writes (The Guardian's crop), at
    the stated width or height if one is: the email then boxes it in its own shape."""
    size = image_size(width, height)
    if size[0] is not None or not url:
        return size
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    for hosts, path in _SHAPE_IN_ADDRESS:
        match = path.search(parts.path) if hosts.search(host) else None
        if match is None:
            continue
        shape = image_size(match.group(1), match.group(2))
        if shape[0] is None or shape[1] is None:
            return size
        stated_width, stated_height = image_size(width, 1)[0], image_size(1, height)[1]
        if stated_width:
            return stated_width, max(1, round(stated_width * shape[1] / shape[0]))
        if stated_height:
            return max(1, round(stated_height * shape[0] / shape[1])), stated_height
        return shape
    return size


def rendition_order(width: int) -> tuple[int, int]:
    """Sort key of a rendition ``width`` px wide (0: not said): first the largest up to twice
    the width the email shows, if it fills it; then the smallest wider than that; then the
    largest narrower one; then one of unknown width."""
    if IMAGE_SHOWN <= width <= IMAGE_SHARP:
        return (0, -width)
    if width > IMAGE_SHARP:
        return (1, width)
    return (2, -width) if width else (3, 0)


def inline_picture(markups: Iterable[str], page_url: str, headline: str = "") -> Picture:
    """The first ``<img>`` of the item's HTML (``markups``, in order) that is a picture of
    the story, as an absolute http(s) URL resolved against ``page_url``; its declared size
    and its alt text (unless that only repeats ``headline``). No picture: an empty one.

    Of a srcset, the rendition that suits the email (``rendition_order``), its height
    scaled from the declared shape.
    """
    for attributes in _images(markups):
        picture = _picture(attributes, page_url, headline)
        if picture is not None:
            return picture
    return Picture()


def inline_addresses(markups: Iterable[str], page_url: str) -> list[str]:
    """The address, resolved against ``page_url``, of each ``<img>`` of ``markups`` that
    ``inline_picture`` asks for one (not one that says it is a pixel or an icon): what
    ``left_out`` is asked of an item without a picture."""
    return [
        _written(attributes, page_url)
        for attributes in _images(markups)
        if not _too_small(*_declared(attributes)) and not _marked_not_picture(attributes)
    ]


def left_out(addresses: Iterable[str]) -> str | None:
    """For an item kept without a picture, what a note says of the first of the
    ``addresses`` its source wrote for one (absolute: media, enclosure, sitemap image,
    ``<img>``) that ``canonical_url`` refused ("its picture's address is 3,023 bytes long
    ...; left out"); None when none was. The one rule of every kind of source."""
    for address in addresses:
        if words := refused_words(address):
            return f"its picture's address is {words}; left out"
    return None


def left_out_note(index: int, title: str, addresses: Iterable[str]) -> str | None:
    """``left_out`` as a feed's note on its item ``index`` (from 0) titled ``title``."""
    why = left_out(addresses)
    return None if why is None else f"item {index + 1} ({title[:80]!r}): {why}"


def _images(markups: Iterable[str]) -> Iterator[dict[str, str]]:
    """The attributes of each ``<img>`` of ``markups``, in order, of the first _MOST_TAGS."""
    tried = 0
    for markup in markups:
        start = _IMG_START.search(markup)
        while start is not None:
            tried += 1
            if tried > _MOST_TAGS:  # each "<img" tried costs at most one bounded match
                return
            tag = _IMG.match(markup, start.start(), start.start() + _TAG_END)
            if tag is not None:
                yield _attributes(tag.group(1))
            start = _IMG_START.search(markup, start.end())


def _attributes(text: str) -> dict[str, str]:
    """A tag's attributes by lower-case name, values decoded; the first of a repeated one."""
    found: dict[str, str] = {}
    for match in _ATTRIBUTE.finditer(text):
        name = match.group(1).lower()
        if name not in found:
            value = next((v for v in match.groups()[1:] if v is not None), "")
            found[name] = html.unescape(value).strip()
    return found


def _picture(attributes: dict[str, str], page_url: str, headline: str) -> Picture | None:
    """The picture one <img> gives, or None when it is no picture of the story.

    The cheap tests first: most images passed over are pixels that say they are 1x1.
    """
    width, height = _declared(attributes)
    if _too_small(width, height) or _marked_not_picture(attributes):
        return None
    url = _address(attributes, page_url)
    if url is None:
        return None
    path = urlsplit(url).path.lower()
    srcset = attributes.get("srcset", "")
    if not (width or height or srcset or _IMAGE_FILE.search(path)):
        # Nothing says it is a picture: no size, no renditions, no picture file's name.
        # "<img src=x onerror=...>" is an attack, not the story's picture.
        return None
    url, shown = _rendition(url, image_size(width, height), srcset, page_url, _side(width))
    if shown[0] is None:  # no shape stated: the one its address may write
        shown = stated_size(url, None, None)
    return Picture(url, _alt(attributes, headline), *shown)


def _too_small(width: str | None, height: str | None) -> bool:
    """A side declared under the least a picture has: a pixel, an icon, a button."""
    return any(side is not None and side < _LEAST_SIDE for side in (_side(width), _side(height)))


def _marked_not_picture(attributes: dict[str, str]) -> bool:
    """A class that says emoji, avatar, pixel and the like."""
    classes = attributes.get("class")
    return bool(classes and _NOT_PICTURE_CLASS.search(classes))


def _address(attributes: dict[str, str], page_url: str) -> str | None:
    """The picture's absolute address (a lazy loader's real one), or None when there is
    none, or it is a tracker's, an avatar's or a spacer's."""
    source = _written(attributes, page_url)
    url = canonical_url(source) if source else None
    if url is None:
        return None
    parts = urlsplit(url)
    if _NOT_PICTURE_HOST.search(parts.hostname or "") or _NOT_PICTURE_PATH.search(
        parts.path.lower()
    ):
        return None
    return url


def _written(attributes: dict[str, str], page_url: str) -> str:
    """The picture's address as written (a lazy loader's real one), resolved; "" if none."""
    source = attributes.get("src", "")
    if not source or source.startswith("data:"):  # a lazy loader's placeholder
        lazy = ("data-src", "data-lazy-src", "data-original")
        source = next((attributes[k] for k in lazy if attributes.get(k)), "")
    if not source.startswith(("https://", "http://")):
        source = urljoin(page_url, source) if source else ""
    return source


def _alt(attributes: dict[str, str], headline: str) -> str | None:
    """The alt text, unless it only repeats the headline printed beside the picture."""
    alt = attributes.get("alt", "")
    alt = html_to_text(alt, ALT_LIMIT) if alt else ""
    if " ".join(alt.split()).casefold() == " ".join(headline.split()).casefold():
        return None
    return alt or None


def _declared(attributes: dict[str, str]) -> tuple[str | None, str | None]:
    """The width and height the tag declares: its attributes, else its style's pixels."""
    width, height = attributes.get("width"), attributes.get("height")
    style = attributes.get("style")
    if style and (width is None or height is None):
        for name, pixels in _STYLE_SIDE.findall(style):
            if name.lower() == "width":
                width = width or pixels
            else:
                height = height or pixels
    return width, height


def _side(value: str | None) -> int | None:
    """A declared side in whole pixels ("1", "1px", "0"); None for "100%", "auto" or none."""
    match = _SIDE.match(value) if value else None
    return int(match.group(1)) if match else None


def _rendition(
    url: str,
    size: tuple[int | None, int | None],
    srcset: str,
    page_url: str,
    declared_width: int | None = None,
) -> tuple[str, tuple[int | None, int | None]]:
    """Of ``url`` (``size`` as declared) and the srcset's renditions, the one that suits the
    email, with its size: the declared shape scaled to its width, else nothing said.
    ``declared_width``: the tag's width, said without a height too (no shape, but how wide
    ``url`` is: a smaller rendition is no better)."""
    width, height = size
    renditions: list[tuple[int, str]] = [(width or declared_width or 0, url)]
    for address, pixels in _SRCSET.findall(srcset):
        absolute = canonical_url(urljoin(page_url, html.unescape(address)))
        if absolute is not None and int(pixels) > 0:
            renditions.append((int(pixels), absolute))
    chosen_width, chosen = min(renditions, key=lambda r: rendition_order(r[0]))
    if chosen == url:
        return url, size
    if width and height:
        return chosen, image_size(chosen_width, max(1, round(height * chosen_width / width)))
    return chosen, (None, None)
