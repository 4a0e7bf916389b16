"""Parse a fetched document into FeedItems: RSS and Atom through feedparser, JSON Feed by hand.

``parse_feed`` never raises on a bad feed item; it raises SourceError only when the document
is not a feed at all (an HTML page, an empty body, unparseable bytes), with a hint.
"""

from __future__ import annotations

import html.entities
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin
from xml.sax import SAXException

import feedparser

from digest.config.models import GatherConfig, default
from digest.errors import SourceError
from digest.records import FeedItem
from digest.sources.charsets import mend_utf8
from digest.sources.entries import (
    TITLE_LIMIT,
    _items,
    _language,
    _some_usable,
    entry_date,
    entry_link,
    entry_text,
)
from digest.sources.fastfeed import read_entries, rss_title_type
from digest.sources.jsonfeed import parse_json_feed
from digest.sources.notfeed import html_page, not_a_feed
from digest.sources.placeholders import without_placeholders
from digest.sources.summary import DEFAULT_CHARS

# Re-exported: tests and callers read entries through here, as before the split.
__all__ = [
    "TITLE_LIMIT",
    "entry_date",
    "entry_link",
    "entry_text",
    "kept_items",
    "newest_first",
    "parse_feed",
    "read_with_feedparser",
    "within_limit",
]
# An entity reference by name; the ones neither XML nor HTML knows are a broken generator's.
_ENTITY_REF = re.compile(rb"&([A-Za-z][A-Za-z0-9]{0,31});")
_XML_ENTITIES = frozenset({b"lt", b"gt", b"amp", b"quot", b"apos"})


def parse_feed(
    source: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    limit: int = default(GatherConfig, "max_items_per_source"),
    base_url: str | None = None,
    summary_chars: int = DEFAULT_CHARS,
    language: str | None = None,
) -> tuple[list[FeedItem], list[str]]:
    """Items of the feed (newest first, at most ``limit``) and notes on what was skipped.

    ``base_url`` is where the feed was fetched from; relative item links resolve against it.
    ``limit`` and ``summary_chars`` are max_items_per_source and summary_chars from the
    config's [gather] table; ``language`` is the source's (``[[sources]] language``): set,
    it wins over what the feed and its items declare, before summaries are cut by its rules.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    # Relative links resolve against the document's URL: a Content-Location header names
    # it (relative to where the body came from, RFC 9110 8.7), else the fetched URL.
    location = headers.get("content-location", "").strip()
    if location:
        base_url = urljoin(base_url or "", location)
    content_type = headers.get("content-type", "")
    stripped = body.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip()
    if not stripped:
        raise SourceError(source, "the response body is empty", "check the feed URL in the config")
    if stripped[:1] == b"{" or "json" in content_type:
        items, notes = parse_json_feed(source, stripped, base_url, summary_chars, language)
    else:
        items, notes = _parse_xml_feed(source, body, headers, base_url, summary_chars, language)
    items, cut = within_limit(items, limit)
    return items, notes + cut


def kept_items(items: list[FeedItem], limit: int) -> tuple[list[FeedItem], list[str]]:
    """What gathering keeps of a reader's items, a feed's, a page's or a sitemap's: no
    placeholder or test item (``placeholders``), then the ``limit`` newest (``within_limit``);
    with a note on each left out. Whatever measures gathered items calls this too."""
    # Placeholders go before the cut, so on a page or a sitemap they take no slot; a feed's
    # parser has cut already (``parse_feed``), so there one took a slot of the limit.
    items, placeholders = without_placeholders(items)
    items, cut = within_limit(items, limit)
    return items, placeholders + cut


def within_limit(items: list[FeedItem], limit: int) -> tuple[list[FeedItem], list[str]]:
    """The ``limit`` newest items (``newest_first``), and a note when older ones were cut:
    the one cut for feeds, pages and sitemaps alike."""
    items, cut = newest_first(items, limit)
    if not cut:
        return items, []
    return items, [
        f"{cut} older item{'s' if cut != 1 else ''} past max_items_per_source = {limit} "
        "(the limit in [gather]) left out"
    ]


_NEWEST = datetime.max.replace(tzinfo=UTC)


def newest_first(items: list[FeedItem], limit: int) -> tuple[list[FeedItem], int]:
    """The ``limit`` newest items, newest first, and how many older ones were left out.

    An undated item stands where the feed put it: feeds list the newest first, so it counts
    as dated like the dated item above it (as newest of all at the top). Counted as oldest,
    the undated story a feed has just put at its top would be the first one cut.
    """
    ranks: list[datetime] = []
    above = _NEWEST
    for item in items:
        above = item.published_at or above
        ranks.append(above)
    # sorted() is stable, reverse=True too: an undated item stays below its dated neighbour.
    order = sorted(range(len(items)), key=ranks.__getitem__, reverse=True)
    return [items[i] for i in order[:limit]], max(len(items) - limit, 0)


def _parse_xml_feed(
    source: str,
    body: bytes,
    headers: dict[str, str],
    base_url: str | None,
    summary_chars: int,
    language: str | None,
) -> tuple[list[FeedItem], list[str]]:
    body, mended = mend_utf8(body, headers.get("content-type", ""))
    mended_notes = (
        [
            f"{mended} byte sequence{'s' if mended != 1 else ''} not valid UTF-8 in a UTF-8 "
            "feed, shown as \ufffd (the rest read as UTF-8); a broken generator (tell the site)"
        ]
        if mended
        else []
    )
    fast = read_entries(body, base_url, headers.get("content-type", ""))
    if fast is not None:  # plain RSS 2.0 / Atom 1.0 in UTF-8: lxml, ten times faster
        entries, declared = fast
        items, notes = _items(entries, _language(declared), None, summary_chars, language)
        _some_usable(source, len(entries), items, notes)
        return items, mended_notes + notes
    body, unknown = _drop_unknown_entities(body)
    parsed = read_with_feedparser(body, headers)
    if not parsed.entries and not parsed.get("version"):
        head = body[:2048].lower()
        html_type = "text/html" in headers.get("content-type", "")
        if html_type or b"<html" in head or b"<!doctype html" in head:
            raise html_page(source, body, headers, base_url or "")
        raise not_a_feed(source, parsed.get("bozo_exception"))
    declared = _language(parsed.feed.get("language"))
    items, notes = _items(parsed.entries, declared, base_url, summary_chars, language)
    broken = parsed.get("bozo_exception")
    _readable(source, broken, unknown, items)
    _some_usable(source, len(parsed.entries), items, notes)
    return items, mended_notes + _malformed_notes(broken, unknown, len(items)) + notes


def _readable(source: str, broken: object, unknown: list[str], items: list[FeedItem]) -> None:
    """Raise when the XML is broken and no item could be read from it: nothing read is no
    "ok, 0 items", or the admin would never learn the feed is broken."""
    malformed = str(broken) if isinstance(broken, SAXException) else None
    if unknown and malformed is None:  # the XML was well-formed but for those (dropped)
        malformed = f"undefined entity {', '.join(unknown)}"
    if malformed and not items:
        raise SourceError(
            source,
            f"the feed is not well-formed XML ({malformed}) and no item could be read from it",
            "a feed cut off in transfer, or a broken generator (tell the site); digest "
            "tries again at the next run",
        )


def _malformed_notes(broken: object, unknown: list[str], count: int) -> list[str]:
    """The notes that head the list when the XML was broken or named unknown entities."""
    notes: list[str] = []
    if isinstance(broken, SAXException):  # not an encoding quibble: the XML itself is broken
        notes.append(
            f"the feed is not well-formed XML ({broken}): {count} "
            f"item{'' if count == 1 else 's'} read from what parsed; a feed cut off in "
            "transfer, or a broken generator (tell the site)"
        )
    if unknown:
        notes.append(
            f"the feed names entities neither XML nor HTML knows ({', '.join(unknown)}): "
            "left out of its text; a broken generator (tell the site)"
        )
    return notes


def _drop_unknown_entities(body: bytes) -> tuple[bytes, list[str]]:
    """The body without the entity references that neither XML nor HTML names (``&l7;``, a
    broken generator's), and those references, for a note.

    Such a reference is no text: ``headline`` drops it from a title. But it makes the XML
    malformed, and feedparser then writes it in HTML as ``&l7`` (so does a well-formed
    ``&amp;l7;`` in HTML): without its semicolon nothing tells it from the text "AT&T",
    and it was shown, as a headline even. So it goes before feedparser reads the body. A
    feed declaring entities of its own (``<!ENTITY``) is left as it is; HTML's names
    (``&eacute;``), which feedparser expands, are kept.
    """
    if b"&" not in body or b"<!ENTITY" in body[:65536]:
        return body, []
    unknown: list[str] = []

    def drop(match: re.Match[bytes]) -> bytes:
        name = match[1]
        if name in _XML_ENTITIES or f"{name.decode()};" in html.entities.html5:
            return match[0]
        if len(unknown) < 5 and match[0].decode() not in unknown:
            unknown.append(match[0].decode())
        return b""

    return _ENTITY_REF.sub(drop, body), unknown


def read_with_feedparser(body: bytes, headers: Mapping[str, str]) -> Any:
    """feedparser's reading of ``body``, as the fast path would read it.

    feedparser gets no base URL: ids stay as the feed wrote them (RFC 4287 compares them
    as strings; feedparser would resolve a relative one), and ``entry_link`` resolves the
    links it leaves relative. RSS titles are typed by ``rss_title_type``, as the fast path
    types them.
    """
    headers = {k: v for k, v in headers.items() if k.lower() != "content-location"}
    parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False)
    if not str(parsed.get("version", "")).startswith("atom"):
        for entry in parsed.entries:
            detail = entry.get("title_detail")
            if isinstance(detail, dict) and detail.get("type") in ("text/plain", "text/html"):
                detail["type"] = rss_title_type(str(entry.get("title") or ""))
    return parsed
