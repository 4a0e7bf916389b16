"""Parse a fetched document into FeedItems: RSS and Atom through feedparser, JSON Feed by hand.

``parse_feed`` never raises on a bad feed item; it raises SourceError only when the document
is not a feed at all (an HTML page, an empty body, unparseable bytes), with a hint.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import html.entities
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin
from xml.sax import SAXException

import feedparser
from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from digest.config.models import GatherConfig, default
from digest.errors import SourceError
from digest.records import FeedItem
from digest.sources.dates import iso_date, parse_localised_date
from digest.sources.fastfeed import read_entries, rss_title_type
from digest.sources.metadata import decode_html
from digest.sources.normalise import canonical_url, headline, html_to_text
from digest.sources.summary import DEFAULT_CHARS, email_summary

TITLE_LIMIT = 300
ALT_LIMIT = 300
# A BCP 47 language tag as feeds write it ("en", "pt-BR", "zh_Hant"); anything else is dropped.
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,4}$")
_IMAGE_PATH = re.compile(r"\.(?:jpe?g|png|gif|webp|avif)$", re.I)
# The email's widest picture is 584 px; twice that is sharp on a 2x screen and no heavier.
_IMAGE_SHOWN = 584
_IMAGE_SHARP = 2 * _IMAGE_SHOWN
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
) -> tuple[list[FeedItem], list[str]]:
    """Items of the feed (newest first, at most ``limit``) and notes on what was skipped.

    ``base_url`` is where the feed was fetched from; relative item links resolve against it.
    ``limit`` and ``summary_chars`` are max_items_per_source and summary_chars from the
    config's [gather] table.
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
        items, notes = _parse_json_feed(source, stripped, base_url, summary_chars)
    else:
        items, notes = _parse_xml_feed(source, body, headers, base_url, summary_chars)
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
    source: str, body: bytes, headers: dict[str, str], base_url: str | None, summary_chars: int
) -> tuple[list[FeedItem], list[str]]:
    fast = read_entries(body, base_url, headers.get("content-type", ""))
    if fast is not None:  # plain RSS 2.0 / Atom 1.0 in UTF-8: lxml, ten times faster
        entries, language = fast
        items, notes = _items(entries, _language(language), None, summary_chars)
        _some_usable(source, len(entries), items, notes)
        return items, notes
    body, unknown = _drop_unknown_entities(body)
    parsed = read_with_feedparser(body, headers)
    if not parsed.entries and not parsed.get("version"):
        head = body[:2048].lower()
        html_type = "text/html" in headers.get("content-type", "")
        if html_type or b"<html" in head or b"<!doctype html" in head:
            raise _html_page(source, body, headers, base_url or "")
        broken = parsed.get("bozo_exception")
        # feedparser's complaints about the Content-Type (missing, or not XML's) are not why
        # a document is no feed: a feed served without one still reads.
        reason = (
            f"the body is not well-formed XML ({broken})"
            if isinstance(broken, SAXException)
            else "no RSS or Atom elements found (it is neither RSS, Atom nor JSON Feed)"
        )
        raise SourceError(source, f"not a feed: {reason}", "check the feed URL in the config")
    items, notes = _items(
        parsed.entries, _language(parsed.feed.get("language")), base_url, summary_chars
    )
    broken = parsed.get("bozo_exception")
    malformed = str(broken) if isinstance(broken, SAXException) else None
    if unknown and malformed is None:  # the XML was well-formed but for those (dropped)
        malformed = f"undefined entity {', '.join(unknown)}"
    if malformed and not items:
        # Nothing read is no "ok, 0 items": the admin would never learn the feed is broken.
        raise SourceError(
            source,
            f"the feed is not well-formed XML ({malformed}) and no item could be read from it",
            "a feed cut off in transfer, or a broken generator (tell the site); digest "
            "tries again at the next run",
        )
    _some_usable(source, len(parsed.entries), items, notes)
    if unknown:
        notes.insert(
            0,
            f"the feed names entities neither XML nor HTML knows ({', '.join(unknown)}): "
            "left out of its text; a broken generator (tell the site)",
        )
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


def _html_page(source: str, body: bytes, headers: Mapping[str, str], base: str) -> SourceError:
    """The error for a web page where a feed was expected, naming the feed the page links
    to, if any; a news site's page is also a source as it is, as kind = "page"."""
    as_page = 'or set kind = "page" to read this page\'s article links as they are'
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
) -> tuple[list[FeedItem], list[str]]:
    """FeedItems of feedparser-shaped entries, and a note for each one skipped.

    ``base_url`` resolves links the reader left relative (feedparser is given no base, so
    that it leaves ids as the feed wrote them).
    """
    notes: list[str] = []
    items: list[FeedItem] = []
    for index, entry in enumerate(entries):
        item = _item_from_entry(entry, feed_language, base_url, summary_chars)
        if item is None:
            notes.append(_skipped(index, entry.get("title", ""), entry.get("link")))
        elif not item.title:
            notes.append(_untitled(index, item.url))
        else:
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
    markup. The summary is the entry's summary, else its first content.
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
    feed_language: str | None = None,
    base_url: str | None = None,
    summary_chars: int = DEFAULT_CHARS,
) -> FeedItem | None:
    """The entry's FeedItem; None without an http(s) link, an empty title without words."""
    url = canonical_url(entry_link(entry, base_url))
    if url is None:
        return None
    language = _entry_language(entry) or feed_language
    title, summary = entry_text(entry, language, summary_chars)
    guid = entry.get("id") or url or _content_hash(title, summary)
    image_url, image_alt = _entry_image(entry, base_url)
    author = _repaired(str(entry.get("author") or ""))
    return FeedItem(
        guid=str(guid)[:500],
        url=url,
        title=headline(title, summary),
        summary=summary,
        author=html_to_text(author, 200) or None,
        published_at=entry_date(entry),
        image_url=image_url,
        image_alt=image_alt,
        language=language,
    )


def _entry_image(entry: Any, base_url: str | None = None) -> tuple[str | None, str | None]:
    """The entry's best image and its alt text: media:content, media:thumbnail, enclosure.

    Among renditions of one kind, the one that suits the email best (``_rendition_order``);
    only http(s) URLs are taken.
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
            href = _resolved(str(link.get("href") or ""), base_url)
            candidates.append((2, 0, href, link.get("title")))
    for _, _, url, alt in sorted(candidates, key=lambda c: (c[0], _rendition_order(-c[1]))):
        canonical = canonical_url(str(url or ""))
        if canonical is not None:
            return canonical, html_to_text(str(alt or ""), ALT_LIMIT) or None
    return None, None


def _rendition_order(width: int) -> tuple[int, int]:
    """Sort key of a rendition ``width`` px wide (0: not said): first the largest up to twice
    the width the email shows, if it fills it; then the smallest wider than that; then the
    largest narrower one; then one of unknown width."""
    if _IMAGE_SHOWN <= width <= _IMAGE_SHARP:
        return (0, -width)
    if width > _IMAGE_SHARP:
        return (1, width)
    return (2, -width) if width else (3, 0)


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


def _parse_json_feed(
    source: str, body: bytes, base_url: str | None, summary_chars: int = DEFAULT_CHARS
) -> tuple[list[FeedItem], list[str]]:
    """JSON Feed 1.0 / 1.1 (https://jsonfeed.org/version/1.1)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(
            source, f"invalid JSON: {exc}", "check the feed URL in the config"
        ) from exc
    except RecursionError as exc:  # [[[[...]]]] a hundred thousand deep: no feed is written so
        raise SourceError(
            source,
            "invalid JSON Feed: nested too deeply to read",
            "no JSON Feed nests like this; check the feed URL, or tell the site",
        ) from exc
    # The spec says https://jsonfeed.org/version/1.1; early feeds wrote http://.
    if not isinstance(doc, dict) or "://jsonfeed.org/version/" not in str(doc.get("version")):
        raise SourceError(source, "JSON without a JSON Feed 'version'", "check the feed URL")
    notes: list[str] = []
    items: list[FeedItem] = []
    feed_language = _language(doc.get("language"))
    raw_items = doc.get("items")
    if not isinstance(raw_items, list):
        raise SourceError(
            source,
            f"the JSON Feed's 'items' is {_json_kind(raw_items)}, not a list of items",
            "a broken feed generator: tell the site; digest tries again at the next run",
        )
    for index, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            notes.append(f"item {index + 1} is not an object; skipped")
            continue
        field = _JsonFields(raw, index, notes)
        link = field.text("url") or field.text("external_url")
        url = canonical_url(urljoin(base_url, link) if base_url else link)
        if url is None:
            notes.append(_skipped(index, field.text("title", noted=False), link))
            continue
        # summary and content_text are plain text by the spec, but feeds put markup in
        # them too: everything goes through html_to_text, so no markup can get through.
        summary_html = (
            field.text("summary") or field.text("content_html") or field.text("content_text")
        )
        language = _language(field.text("language")) or feed_language
        summary = email_summary(summary_html, language, summary_chars)
        title = headline(html_to_text(field.text("title"), TITLE_LIMIT), summary)
        if not title:
            notes.append(_untitled(index, url))
            continue
        items.append(
            FeedItem(
                guid=(field.text("id", number=True) or url)[:500],
                url=url,
                title=title,
                summary=summary,
                author=html_to_text(field.author(), 200) or None,
                published_at=iso_date(
                    field.text("date_published") or field.text("date_modified"), None
                ),
                image_url=canonical_url(field.text("image") or field.text("banner_image")),
                language=language,
            )
        )
    _some_usable(source, len(raw_items), items, notes)
    return items, notes


class _JsonFields:
    """One JSON Feed item's fields as text; a field of another type (an object as a title,
    a list as a url) is left out with a note, never stored as its Python repr."""

    def __init__(self, raw: dict[str, Any], index: int, notes: list[str]) -> None:
        self.raw, self.index, self.notes = raw, index, notes

    def text(self, key: str, *, number: bool = False, noted: bool = True) -> str:
        """The field's string; "" when absent or of another type. ``number``: the spec's
        reader coerces a numeric id to a string, so a number is taken as its digits."""
        return self._text(self.raw, key, key, number=number, noted=noted)

    def author(self) -> str:
        """The first author's name: from ``authors`` (1.1), else ``author`` (1.0). A plain
        string where the spec has an object is taken as the name (no repr can come of it)."""
        key = "authors" if self.raw.get("authors") is not None else "author"
        value = self.raw.get(key)
        people = value if key == "authors" else [value]
        if value is None or not isinstance(people, list):
            if value is not None:
                self._note(key, value, "a list of authors")
            return ""
        for n, person in enumerate(people):
            label = f"{key}[{n}]" if key == "authors" else key
            if isinstance(person, str):
                name = person
            elif isinstance(person, dict):
                name = self._text(person, "name", f"{label}.name")
            else:
                self._note(label, person, "an author")
                continue
            if name.strip():
                return name
        return ""

    def _text(
        self,
        mapping: dict[str, Any],
        key: str,
        label: str,
        *,
        number: bool = False,
        noted: bool = True,
    ) -> str:
        value = mapping.get(key)
        if value is None or isinstance(value, str):
            return value or ""
        if number and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if noted:
            self._note(label, value)
        return ""

    def _note(self, label: str, value: object, wanted: str = "text") -> None:
        self.notes.append(
            f"item {self.index + 1}: its {label!r} is {_json_kind(value)}, not {wanted}; left out"
        )


def _json_kind(value: object) -> str:
    """What a JSON value is, in a note's words."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _content_hash(*parts: str) -> str:
    return "sha1:" + hashlib.sha1("\x00".join(parts).encode()).hexdigest()
