"""Sources of kind 'sitemap': a news sitemap (``<urlset>`` with ``<news:news>`` entries).

A Google News sitemap lists a site's articles of the last two days, each with its title,
publication date and language (https://developers.google.com/search/docs/crawling-indexing/
sitemaps/news-sitemap). Entries without ``<news:news>`` (a plain sitemap) are read too: the
title then comes from the URL's slug ("/2026/11/probe-returns-samples" -> "Probe returns
samples"), and an entry whose URL has no slug of three words or more is skipped with a
note, because a bare id or a section page makes no headline.

defusedxml parses the document: no entity expansion, no DTD fetching, no network, so a
"billion laughs" or an XXE sitemap is refused instead of exhausting memory or leaking files.
Elements are matched by local name, since sites get the namespaces wrong often enough.
A ``sitemap.xml.gz`` served as a plain file is inflated here, under the same size cap as
any download, so a gzip bomb is cut off. ``<news:keywords>`` are not kept: a FeedItem has
no field for them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zlib
from datetime import UTC, datetime
from urllib.parse import unquote, urljoin, urlsplit

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from digest.errors import SourceError
from digest.records import FeedItem
from digest.sentences import language_tag
from digest.sources.dates import iso_date
from digest.sources.fetch import MAX_BODY_BYTES
from digest.sources.normalise import (
    canonical_url,
    fitting_language,
    headline,
    html_to_text,
    refused_words,
)
from digest.sources.pictures import left_out

MAX_ENTRIES = 1000  # a news sitemap holds at most 1,000 URLs by Google's rules
_TITLE_LIMIT = 300
_SLUG_WORDS = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+){2,}", re.I)


def parse_sitemap(
    source: str, body: bytes, base_url: str, language: str | None = None
) -> tuple[list[FeedItem], list[str]]:
    """Items of a news sitemap and notes on skipped entries and pictures left out;
    SourceError if it is not one.
    ``language``: the source's configured one, which wins over what the sitemap declares."""
    root = _parse(source, body)
    kind = _local(root.tag)
    if kind == "sitemapindex":
        children = [_text(s, "loc") for s in root if _local(s.tag) == "sitemap"]
        news = [c for c in children if "news" in c.lower()]
        example = f" such as {news[0]!r}" if news else ""
        raise SourceError(
            source,
            f"this is a sitemap index of {len(children)} sitemaps, not a sitemap of articles",
            f"set url to the site's news sitemap{example} (one listed in the index)",
        )
    if kind != "urlset":
        raise SourceError(
            source,
            f"not a sitemap: the document's root element is <{kind}>, not <urlset>",
            "point url at the site's news sitemap (often /news-sitemap.xml; see its robots.txt)",
        )
    now = datetime.now(UTC)
    items: list[FeedItem] = []
    notes: list[str] = []
    entries = [e for e in root if _local(e.tag) == "url"]
    if len(entries) > MAX_ENTRIES:
        notes.append(f"{len(entries) - MAX_ENTRIES} entries past the first {MAX_ENTRIES} ignored")
        entries = entries[:MAX_ENTRIES]
    for index, entry in enumerate(entries, 1):
        item, note = _item(entry, base_url, now, language)
        if item is not None:
            items.append(item)
        if note:
            notes.append(f"entry {index}: {note}")
    return items, notes


def _gunzip(source: str, body: bytes) -> bytes:
    """A sitemap.xml.gz served as a file (no Content-Encoding), inflated up to the body cap."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error as exc:
        raise SourceError(
            source, f"the gzipped sitemap is corrupt: {exc}", "check the URL"
        ) from exc
    if len(data) > MAX_BODY_BYTES or inflater.unconsumed_tail:
        raise SourceError(
            source,
            "the gzipped sitemap inflates past the size limit and was cut off",
            "point url at a news sitemap (a few hundred entries), not a full archive",
        )
    return data


def _parse(source: str, body: bytes) -> ET.Element:
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(source, body)
    if not body.strip():
        raise SourceError(source, "the response body is empty", "check the sitemap URL")
    try:
        return SafeET.fromstring(body)
    except DefusedXmlException as exc:
        raise SourceError(
            source,
            f"the sitemap uses XML features digest refuses for safety ({type(exc).__name__})",
            "a real news sitemap declares no entities or DTDs; check the URL",
        ) from exc
    except ET.ParseError as exc:
        head = body[:2048].lower()
        if b"<html" in head or b"<!doctype html" in head:
            raise SourceError(
                source,
                "the address returned an HTML page, not a sitemap",
                "point url at the site's news sitemap, or use kind = 'page' for a listing page",
            ) from exc
        raise SourceError(
            source, f"the sitemap is not well-formed XML: {exc}", "check the sitemap URL"
        ) from exc


def _item(
    entry: ET.Element, base_url: str, now: datetime, configured: str | None
) -> tuple[FeedItem | None, str]:
    """The <url> entry's item and the note on its picture left out (or ""), or None and why
    it was skipped. A missing element reads as "" (``_text`` of no parent), so an entry
    without <news:news> takes its title from its address and its date from <lastmod>."""
    loc = _text(entry, "loc")
    url = canonical_url(urljoin(base_url, loc)) if loc else None
    if url is None:
        if not loc:
            return None, "no <loc>; skipped"
        long = refused_words(urljoin(base_url, loc))
        if long is not None:
            return None, f"its <loc> is {long}; skipped"
        return None, f"no http(s) <loc> ({loc[:80]!r}); skipped"
    news = _child(entry, "news")
    title = headline(html_to_text(_text(news, "title"), _TITLE_LIMIT)) or _title_from_slug(url)
    if not title:
        return None, f"{url} has no <news:title> and no words in its address; skipped"
    published = iso_date(_text(news, "publication_date"), now)
    modified = iso_date(_text(entry, "lastmod"), now)
    language = _text(_child(news, "publication"), "language")
    image_url, image_alt, left = _image(_child(entry, "image"), base_url)
    return FeedItem(
        guid=url,
        url=url,
        title=title,
        summary="",
        author=None,
        published_at=published or modified,
        modified_at=modified,
        image_url=image_url,
        image_alt=image_alt,
        language=fitting_language(configured or language_tag(language), title),
        section=None,
    ), left or ""


def _image(image: ET.Element | None, base_url: str) -> tuple[str | None, str | None, str | None]:
    """An <image:image>'s http(s) address, its caption (or title) as alt text, and the
    note on it when its address is left out (``pictures.left_out``)."""
    if image is None:
        return None, None, None
    written = urljoin(base_url, _text(image, "loc"))
    image_url = canonical_url(written)
    if image_url is None:
        return None, None, left_out([written])
    image_alt = html_to_text(_text(image, "caption") or _text(image, "title"), 300) or None
    return image_url, image_alt, None


def _title_from_slug(url: str) -> str:
    """ "/world/2026/11/envoy-visit-eases-tensions.html" -> "Envoy visit eases tensions"."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    for segment in reversed(segments):
        stem = unquote(segment).rsplit(".", 1)[0]
        match = _SLUG_WORDS.search(stem)
        if match:
            words = [w for w in re.split(r"[-_]", match.group(0)) if not w.isdigit() or len(w) < 5]
            if len(words) >= 3:
                text = " ".join(words)
                return html_to_text(text[:1].upper() + text[1:], _TITLE_LIMIT)
    return ""


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1].lower()


def _child(parent: ET.Element | None, name: str) -> ET.Element | None:
    if parent is None:
        return None
    for child in parent:
        if _local(child.tag) == name:
            return child
    return None


def _text(parent: ET.Element | None, name: str) -> str:
    child = _child(parent, name)
    return (child.text or "").strip() if child is not None else ""
