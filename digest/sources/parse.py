"""Parse a fetched document into FeedItems: RSS and Atom through feedparser, JSON Feed by hand.

``parse_feed`` never raises on a bad feed item; it raises SourceError only when the document
is not a feed at all (an HTML page, an empty body, unparseable bytes), with a hint.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin
from xml.sax import SAXException

import feedparser
from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from digest.errors import SourceError
from digest.records import FeedItem
from digest.sources.dates import iso_date, parse_localised_date
from digest.sources.fastfeed import read_entries
from digest.sources.metadata import decode_html
from digest.sources.normalise import canonical_url, html_to_text

SUMMARY_LIMIT = 600
TITLE_LIMIT = 300
ALT_LIMIT = 300
# A BCP 47 language tag as feeds write it ("en", "pt-BR", "zh_Hant"); anything else is dropped.
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,4}$")
_IMAGE_PATH = re.compile(r"\.(?:jpe?g|png|gif|webp|avif)$", re.I)


def parse_feed(
    source: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    limit: int = 200,
    base_url: str | None = None,
) -> tuple[list[FeedItem], list[str]]:
    """Items of the feed (newest first, at most ``limit``) and notes on what was skipped.

    ``base_url`` is where the feed was fetched from; relative item links resolve against it.
    ``limit`` is max_items_per_source from the config's [gather] table.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if base_url:
        headers.setdefault("content-location", base_url)
    content_type = headers.get("content-type", "")
    stripped = body.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip()
    if not stripped:
        raise SourceError(source, "the response body is empty", "check the feed URL in the config")
    if stripped[:1] == b"{" or "json" in content_type:
        items, notes = _parse_json_feed(source, stripped, base_url)
    else:
        items, notes = _parse_xml_feed(source, body, headers)
    items, cut = within_limit(items, limit)
    return items, notes + cut


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
    source: str, body: bytes, headers: dict[str, str]
) -> tuple[list[FeedItem], list[str]]:
    fast = read_entries(body, headers.get("content-location"), headers.get("content-type", ""))
    if fast is not None:  # plain RSS 2.0 / Atom 1.0 in UTF-8: lxml, ten times faster
        entries, language = fast
        return _items(entries, _language(language))
    parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False)
    if not parsed.entries and not parsed.get("version"):
        head = body[:2048].lower()
        html_type = "text/html" in headers.get("content-type", "")
        if html_type or b"<html" in head or b"<!doctype html" in head:
            raise _html_page(source, body, headers)
        reason = parsed.get("bozo_exception") or "no RSS or Atom elements found"
        raise SourceError(source, f"not a feed: {reason}", "check the feed URL in the config")
    items, notes = _items(parsed.entries, _language(parsed.feed.get("language")))
    broken = parsed.get("bozo_exception")
    if isinstance(broken, SAXException):  # not an encoding quibble: the XML itself is broken
        notes.insert(
            0,
            f"the feed is not well-formed XML ({broken}): {len(items)} "
            f"item{'' if len(items) == 1 else 's'} read from what parsed; a feed cut off in "
            "transfer, or a broken generator (tell the site)",
        )
    return items, notes


# The types of the feeds a page names in <link rel="alternate" type=... href=...>.
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")


def _html_page(source: str, body: bytes, headers: Mapping[str, str]) -> SourceError:
    """The error for a web page where a feed was expected, naming the feed the page links
    to, if any; a news site's page is also a source as it is, as kind = "page"."""
    as_page = 'or set kind = "page" to read this page\'s article links as they are'
    base = headers.get("content-location", "")
    feeds: list[str] = []
    try:
        tree = LexborHTMLParser(decode_html(body, headers.get("content-type", "")))
        for link in tree.css("link[rel][href]"):
            rel = (link.attributes.get("rel") or "").lower().split()
            kind = (link.attributes.get("type") or "").lower().split(";")[0].strip()
            href = (link.attributes.get("href") or "").strip()
            if "alternate" in rel and kind in _FEED_TYPES and href:
                feeds.append(urljoin(base, href))
    except (SelectolaxError, ValueError):
        pass  # no feed named: the general hint
    if feeds:
        hint = f'the page names its feed: set url = "{feeds[0]}"; {as_page}'
    else:
        hint = (
            "point url at the site's RSS, Atom or JSON feed (look for a link rel=alternate of "
            f"type application/rss+xml on the page), {as_page}"
        )
    return SourceError(source, "the address returned an HTML page, not a feed", hint)


def _items(entries: list[Any], feed_language: str | None) -> tuple[list[FeedItem], list[str]]:
    """FeedItems of feedparser-shaped entries, and a note for each one skipped."""
    notes: list[str] = []
    items: list[FeedItem] = []
    for index, entry in enumerate(entries):
        item = _item_from_entry(entry, feed_language)
        if item is None:
            notes.append(_skipped(index, entry.get("title", ""), entry.get("link")))
            continue
        items.append(item)
    return items, notes


def _skipped(index: int, title: object, link: object) -> str:
    """The note for an item without a usable link: which item, and what its link was."""
    label = html_to_text(str(title or ""), 80)
    named = f"item {index + 1} ({label!r})" if label else f"item {index + 1}"
    link = str(link or "").strip()
    if not link:
        return f"{named} has no link; skipped"
    return f"{named} has no http(s) link (it has {link[:80]!r}); skipped"


def _item_from_entry(entry: Any, feed_language: str | None = None) -> FeedItem | None:
    link = entry.get("link") or ""
    url = canonical_url(link)
    if url is None:
        return None
    title = html_to_text(entry.get("title", ""), TITLE_LIMIT) or "(untitled)"
    summary_html = entry.get("summary", "")
    if not summary_html and entry.get("content"):
        summary_html = entry["content"][0].get("value", "")
    guid = entry.get("id") or url or _content_hash(title, summary_html)
    image_url, image_alt = _entry_image(entry)
    return FeedItem(
        guid=str(guid)[:500],
        url=url,
        title=title,
        summary=html_to_text(summary_html, SUMMARY_LIMIT),
        author=html_to_text(entry.get("author", ""), 200) or None,
        published_at=_entry_date(entry),
        image_url=image_url,
        image_alt=image_alt,
        language=_entry_language(entry) or feed_language,
    )


def _entry_image(entry: Any) -> tuple[str | None, str | None]:
    """The entry's best image and its alt text: media:content, media:thumbnail, enclosure.

    Among media:content images the widest wins; only http(s) URLs are taken.
    """
    candidates: list[tuple[int, int, object, object]] = []  # (rank, -width, url, alt)
    for media in entry.get("media_content") or []:
        if not isinstance(media, dict):
            continue
        kind = str(media.get("medium") or media.get("type") or "")
        address = str(media.get("url") or "")
        if kind.startswith("image") or (not kind and _IMAGE_PATH.search(address.split("?")[0])):
            alt = media.get("description") or media.get("title")
            candidates.append((0, -_number(media.get("width")), address, alt))
    for thumb in entry.get("media_thumbnail") or []:
        if isinstance(thumb, dict):
            candidates.append((1, -_number(thumb.get("width")), thumb.get("url"), None))
    for link in entry.get("links") or []:
        is_enclosure = isinstance(link, dict) and link.get("rel") == "enclosure"
        if is_enclosure and str(link.get("type") or "").startswith("image/"):
            candidates.append((2, 0, link.get("href"), link.get("title")))
    for _, _, url, alt in sorted(candidates, key=lambda c: (c[0], c[1])):
        canonical = canonical_url(str(url or ""))
        if canonical is not None:
            return canonical, html_to_text(str(alt or ""), ALT_LIMIT) or None
    return None, None


def _entry_language(entry: Any) -> str | None:
    for key in ("title_detail", "summary_detail"):
        detail = entry.get(key)
        if isinstance(detail, dict) and (language := _language(detail.get("language"))):
            return language
    return None


def _language(value: object) -> str | None:
    """A language tag, if it looks like one (feeds put all sorts in <language>)."""
    text = str(value or "").strip()
    return text if _LANGUAGE.match(text) else None


def _number(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _entry_date(entry: Any) -> datetime | None:
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


def _parse_json_feed(
    source: str, body: bytes, base_url: str | None
) -> tuple[list[FeedItem], list[str]]:
    """JSON Feed 1.0 / 1.1 (https://jsonfeed.org/version/1.1)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(
            source, f"invalid JSON: {exc}", "check the feed URL in the config"
        ) from None
    # The spec says https://jsonfeed.org/version/1.1; early feeds wrote http://.
    if not isinstance(doc, dict) or "://jsonfeed.org/version/" not in str(doc.get("version")):
        raise SourceError(source, "JSON without a JSON Feed 'version'", "check the feed URL")
    notes: list[str] = []
    items: list[FeedItem] = []
    feed_language = _language(doc.get("language"))
    raw_items = doc.get("items")
    for index, raw in enumerate(raw_items if isinstance(raw_items, list) else []):
        if not isinstance(raw, dict):
            notes.append(f"item {index + 1} is not an object; skipped")
            continue
        link = str(raw.get("url") or raw.get("external_url") or "")
        url = canonical_url(urljoin(base_url, link) if base_url else link)
        if url is None:
            notes.append(_skipped(index, raw.get("title"), link))
            continue
        # summary and content_text are plain text by the spec, but feeds put markup in
        # them too: everything goes through html_to_text, so no markup can get through.
        summary_html = str(
            raw.get("summary") or raw.get("content_html") or raw.get("content_text") or ""
        )
        authors = raw.get("authors") or (
            [raw["author"]] if isinstance(raw.get("author"), dict) else []
        )
        author = next(
            (str(a.get("name")) for a in authors if isinstance(a, dict) and a.get("name")), None
        )
        items.append(
            FeedItem(
                guid=str(raw.get("id") or url)[:500],
                url=url,
                title=html_to_text(str(raw.get("title") or ""), TITLE_LIMIT) or "(untitled)",
                summary=html_to_text(summary_html, SUMMARY_LIMIT),
                author=author,
                published_at=iso_date(raw.get("date_published") or raw.get("date_modified"), None),
                image_url=canonical_url(str(raw.get("image") or raw.get("banner_image") or "")),
                language=_language(raw.get("language")) or feed_language,
            )
        )
    return items, notes


def _content_hash(*parts: str) -> str:
    return "sha1:" + hashlib.sha1("\x00".join(parts).encode()).hexdigest()
