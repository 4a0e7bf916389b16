"""From a feedparser-shaped entry to a FeedItem: its text read as its type says and repaired
as feedparser repairs it, its link, image, language and date; the notes on items skipped.

The fast path (``fastfeed``) and feedparser both yield such entries, so one piece of code
makes FeedItems from both.
"""

from __future__ import annotations

import calendar
import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

from digest.errors import SourceError
from digest.records import FeedItem
from digest.sentences import written_tag
from digest.sources.dates import parse_localised_date
from digest.sources.normalise import (
    canonical_url,
    fitting_language,
    headline,
    html_to_text,
    nesting_depth,
    refused_words,
    too_deep,
)
from digest.sources.pictures import (
    ALT_LIMIT,
    Picture,
    inline_addresses,
    inline_picture,
    left_out_note,
    rendition_order,
    stated_size,
)
from digest.sources.redirects import item_links
from digest.sources.summary import DEFAULT_CHARS, email_summary

TITLE_LIMIT = 300
_IMAGE_PATH = re.compile(r"\.(?:jpe?g|png|gif|webp|avif)$", re.I)


def _some_usable(source: str, count: int, items: list[FeedItem], notes: list[str]) -> None:
    """Raise when the feed lists items and not one could be used: a feed that shows its
    readers nothing is broken, not "ok, 0 items" (an empty feed is fine)."""
    if count and not items:
        more = f"; {len(notes) - 1} more notes" if len(notes) > 1 else ""
        raise SourceError(
            source,
            f"none of the feed's {count} item{'s' if count != 1 else ''} could be used "
            f"({notes[0] if notes else 'no reason given'}{more})",
            "each item needs an http(s) link and a title or summary: tell the site, or "
            "point url at another of its feeds",
        )


def _items(
    entries: list[Any],
    feed_language: str | None,
    base_url: str | None = None,
    summary_chars: int = DEFAULT_CHARS,
    language: str | None = None,
) -> tuple[list[FeedItem], list[str]]:
    """FeedItems of feedparser-shaped entries, and a note for each one skipped.

    ``base_url`` resolves links the reader left relative (feedparser is given no base, so
    that it leaves ids as the feed wrote them). ``language``: the source's configured one,
    which wins over what the feed and its entries declare.
    """
    notes: list[str] = []
    items: list[FeedItem] = []
    for index, entry in enumerate(entries):
        item = _item_from_entry(entry, feed_language, base_url, summary_chars, language)
        notes.extend(deep_notes(index, title=entry.get("title"), summary=entry.get("summary")))
        if item is None:
            notes.append(_skipped(index, entry.get("title", ""), entry.get("link"), base_url))
        elif not item.title:
            notes.append(_untitled(index, item.url))
        else:
            items.append(item)
            if item.image_url is None and (
                note := left_out_note(
                    index, item.title, _written_pictures(entry, base_url, item.url)
                )
            ):
                notes.append(note)
    return items, notes


def deep_notes(index: int, **fields: object) -> list[str]:
    """A note for each field whose HTML nests past MAX_NESTING: hostile, so it was read as
    plain text by a tag strip (``html_to_text``), not parsed; the admin learns why."""
    return [
        f"item {index + 1}: its {name} nests its HTML {nesting_depth(value)} levels deep; "
        "read as plain text, not parsed"
        for name, value in fields.items()
        if isinstance(value, str) and too_deep(value)
    ]


def _skipped(index: int, title: object, link: object, base_url: str | None = None) -> str:
    """The note for an item without a usable link: which item, and what its link was (its
    length judged as it was read: resolved against ``base_url``, as a relative one is)."""
    label = html_to_text(str(title or ""), 80)
    named = f"item {index + 1} ({label!r})" if label else f"item {index + 1}"
    link = str(link or "").strip()
    if not link:
        return f"{named} has no link; skipped"
    long = refused_words(_resolved(link, base_url))
    if long is not None:
        return f"{named} has a link {long}; skipped"
    return f"{named} has no http(s) link (it has {link[:80]!r}); skipped"


def _written_pictures(entry: Any, base_url: str | None, link: str) -> Iterator[str]:
    """Every address the entry writes for its picture, resolved, in the order they are
    tried (media, thumbnail, enclosure, then its HTML's ``<img>``s): asked of an item kept
    without one, whose picture may have been left out (``pictures.left_out``)."""
    candidates = [*_media_images(entry), *_thumbnails(entry), *_enclosed_images(entry, base_url)]
    for _, _, url, _, _ in candidates:
        yield _resolved(str(url or "").strip(), base_url)
    yield from inline_addresses(_markups(entry), _html_base(entry) or link)


def _untitled(index: int, url: str) -> str:
    """The note for an item with neither a title nor a summary to stand in for one."""
    return f"item {index + 1} ({url}) has no title and no summary to take one from; skipped"


# The content types whose value is markup; any other declared type is text. No type at all
# counts as HTML: RSS descriptions are HTML by convention, and so are most undeclared values.
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "html", "xhtml", ""})
# C1 control characters, which no text means: bytes of windows-1252 read as ISO-8859-1
# (WHATWG reads the iso-8859-1 label as windows-1252, and so does feedparser).
_C1 = re.compile("[\x80-\x9f]")
_CP1252 = {
    byte: bytes([byte]).decode("cp1252", errors="ignore") or chr(byte) for byte in range(0x80, 0xA0)
}


# A UTF-8 lead byte and a continuation byte, read as two ISO-8859-1 characters ("Ã©").
_MOJIBAKE = re.compile("[\xc2-\xf4][\x80-\xbf]")


def _repaired(value: str) -> str:
    """``value`` with the two repairs feedparser makes to every text it reads.

    UTF-8 read as ISO-8859-1 and encoded again ("cafÃ©") is decoded once more, when the
    whole text decodes; each C1 control character becomes the windows-1252 character of
    its byte.
    """
    if _MOJIBAKE.search(value):
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            value = value.encode("iso-8859-1").decode("utf-8")
    return value.translate(_CP1252) if _C1.search(value) else value


def _detail_is_html(entry: Any, key: str) -> bool:
    detail = entry.get(key)
    kind = detail.get("type") if isinstance(detail, dict) else None
    return str(kind or "").lower() in _HTML_TYPES


def entry_text(
    entry: Any, language: str | None = None, summary_chars: int = DEFAULT_CHARS
) -> tuple[str, str]:
    """(title, summary) of a feedparser-shaped entry as plain text, each read as its type says;
    the summary written for the email (``email_summary``).

    A text construct ("History of the <blink> tag") stays as written; an HTML one loses its
    markup. The summary is the entry's summary, else (none, or none left once read) its
    first content.
    """
    title = _repaired(str(entry.get("title") or ""))
    title_text = html_to_text(title, TITLE_LIMIT, markup=_detail_is_html(entry, "title_detail"))
    summary = entry.get("summary") or ""
    summary_html = _detail_is_html(entry, "summary_detail")
    content = (entry.get("content") or [{}])[0]
    if not summary or ("summary_detail" not in entry and content.get("value") == summary):
        # No summary, or feedparser's copy of the content (which keeps no type): the content.
        summary = content.get("value") or ""
        summary_html = str(content.get("type") or "").lower() in _HTML_TYPES
    summary_text = email_summary(
        _repaired(str(summary)), language, summary_chars, markup=summary_html
    )
    if not summary_text and content.get("value") and content.get("value") != summary:
        # The summary read as nothing, a credit line say ("Photo: Reuters" in an item's
        # media:description ahead of its description, which feedparser then files as
        # content): the content is the item's text.
        content_html = str(content.get("type") or "").lower() in _HTML_TYPES
        summary_text = email_summary(
            _repaired(str(content["value"])), language, summary_chars, markup=content_html
        )
    return title_text, summary_text


def entry_link(entry: Any, base_url: str | None) -> str:
    """The entry's link, resolved against ``base_url`` if the reader left it relative."""
    return _resolved(str(entry.get("link") or ""), base_url)


def _resolved(link: str, base_url: str | None) -> str:
    """``link`` against ``base_url``; an absolute http(s) link as it is (most are)."""
    if base_url and link and not link.startswith(("https://", "http://")):
        return urljoin(base_url, link)
    return link


def _item_from_entry(
    entry: Any,
    feed_language: str | None,
    base_url: str | None,
    summary_chars: int,
    configured: str | None,
) -> FeedItem | None:
    """The entry's FeedItem; None without an http(s) link, an empty title without words.

    Its url is the article's own address and the link as the feed wrote it the guid of an
    entry without an id (``redirects.item_links``).
    """
    links = item_links(entry_link(entry, base_url), entry.get("feedburner_origlink"))
    if links is None:
        return None
    url = links.url
    # The source's configured language first: its summary is cut by that language's rules.
    language = configured or _entry_language(entry) or feed_language
    title, summary = entry_text(entry, language, summary_chars)
    language = fitting_language(language, title, summary)
    guid = entry.get("id") or links.identity
    title = headline(title, summary)
    picture = _entry_image(entry, base_url) or inline_picture(
        _markups(entry), _html_base(entry) or url, title
    )
    author = _repaired(str(entry.get("author") or ""))
    return FeedItem(
        guid=str(guid)[:500],
        url=url,
        title=title,
        summary=summary,
        author=html_to_text(author, 200) or None,
        published_at=entry_date(entry),
        image_url=picture.url,
        image_alt=picture.alt,
        language=language,
        image_width=picture.width,
        image_height=picture.height,
        feed_link=links.feed_link,
    )


def _entry_image(entry: Any, base_url: str | None = None) -> Picture | None:
    """The entry's best image, its alt text and its stated size: media:content,
    media:thumbnail, enclosure; None when it gives none of those.

    Among renditions of one kind, the one that suits the email best (``_rendition_order``);
    only http(s) URLs are taken. The size is the chosen rendition's own (width and height
    attributes, both or neither): the email keeps the picture's shape by it.
    """
    candidates = [
        *_media_images(entry),
        *_thumbnails(entry),
        *_enclosed_images(entry, base_url),
    ]
    for _, _, url, alt, size in sorted(candidates, key=lambda c: (c[0], rendition_order(-c[1]))):
        canonical = canonical_url(str(url or ""))
        if canonical is not None:
            alt_text = html_to_text(str(alt or ""), ALT_LIMIT) or None
            return Picture(canonical, alt_text, *stated_size(canonical, *size))
    return None


def _html_base(entry: Any) -> str | None:
    """What the fast path says the entry's HTML is written against (its xml:base); feedparser
    has resolved the addresses in its HTML itself, and the rest resolve against the link."""
    base = entry.get("html_base")
    return base if isinstance(base, str) and base.startswith(("https://", "http://")) else None


def _markups(entry: Any) -> list[str]:
    """The entry's HTML, where a feed without media elements puts its picture: its summary,
    then each content, of those whose type is HTML (a text one shows "<img" as written)."""
    markups = []
    if entry.get("summary") and _detail_is_html(entry, "summary_detail"):
        markups.append(str(entry["summary"]))
    for content in entry.get("content") or []:
        if isinstance(content, dict) and str(content.get("type") or "").lower() in _HTML_TYPES:
            markups.append(str(content.get("value") or ""))
    return markups


# An image candidate: (rank of its kind, -width, url, alt, (width, height) as stated).
_Candidate = tuple[int, int, object, object, tuple[object, object]]


def _media_images(entry: Any) -> list[_Candidate]:
    """media:content elements that are images (by medium, type, or a picture's path)."""
    out: list[_Candidate] = []
    for media in entry.get("media_content") or []:
        if not isinstance(media, dict):
            continue
        kind = str(media.get("medium") or media.get("type") or "")
        address = str(media.get("url") or "")
        if kind.startswith("image") or (not kind and _IMAGE_PATH.search(address.split("?")[0])):
            alt = media.get("description") or media.get("title")
            size = (media.get("width"), media.get("height"))
            out.append((0, -_number(media.get("width")), address, alt, size))
    return out


def _thumbnails(entry: Any) -> list[_Candidate]:
    """media:thumbnail elements, which carry no alt text."""
    return [
        (
            1,
            -_number(thumb.get("width")),
            thumb.get("url"),
            None,
            (thumb.get("width"), thumb.get("height")),
        )
        for thumb in entry.get("media_thumbnail") or []
        if isinstance(thumb, dict)
    ]


def _enclosed_images(entry: Any, base_url: str | None) -> list[_Candidate]:
    """Enclosures of an image type, resolved against ``base_url``."""
    out: list[_Candidate] = []
    for link in entry.get("links") or []:
        is_enclosure = isinstance(link, dict) and link.get("rel") == "enclosure"
        if is_enclosure and str(link.get("type") or "").startswith("image/"):
            href = _resolved(str(link.get("href") or ""), base_url)
            out.append((2, 0, href, link.get("title"), (None, None)))
    return out


def _entry_language(entry: Any) -> str | None:
    for key in ("title_detail", "summary_detail"):
        detail = entry.get(key)
        if isinstance(detail, dict) and (language := _language(detail.get("language"))):
            return language
    return None


def _language(value: object) -> str | None:
    """A language tag, if it looks like one (feeds put all sorts in <language>), as BCP 47
    writes it: "pt_BR", as some feeds write it, is "pt-BR" (``sentences.language_tag``)."""
    return written_tag(str(value or ""))


def _number(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def entry_date(entry: Any) -> datetime | None:
    """The entry's date in UTC: what feedparser read, else a non-English RFC 822 date."""
    # dict.get, not entry.get: feedparser's own get maps a missing "updated" to "published"
    # with a DeprecationWarning; each key is asked for in turn here anyway.
    for key in ("published", "updated", "created"):
        parsed = dict.get(entry, f"{key}_parsed")
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
            except (OverflowError, OSError, ValueError):  # a year datetime cannot hold
                continue
        raw = dict.get(entry, key)
        if isinstance(raw, str) and (localised := parse_localised_date(raw)) is not None:
            return localised
    return None
