"""What an article page says about itself: JSON-LD, OpenGraph and ``<meta>`` tags, canonical, lang.

``read_metadata`` is pure (bytes and URL in, an ``ArticleMeta`` out) and never raises on a
bad page: a broken JSON-LD block is skipped, a missing field is None. extruct reads the
JSON-LD blocks (one at a time, so one broken block does not hide the others) and the
OpenGraph properties; the rest are plain lookups on the same lxml tree.

Every text goes through ``html_to_text`` and every URL through ``canonical_url``, so what
comes out is safe to store whatever the page put in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.etree
import lxml.html

from digest.sentences import language_tag
from digest.sources.dates import iso_date
from digest.sources.normalise import canonical_url, html_to_text, unread_page
from digest.sources.pictures import left_out, stated_size

TITLE_LIMIT = 300
SUMMARY_LIMIT = 600
_ARTICLE_TYPES = {
    "newsarticle",
    "article",
    "reportagenewsarticle",
    "analysisnewsarticle",
    "opinionnewsarticle",
    "backgroundnewsarticle",
    "reviewnewsarticle",
    "liveblogposting",
    "blogposting",
}
_CHARSET = re.compile(rb"charset=[\"']?([A-Za-z0-9_.:-]+)", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", re.I)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


@dataclass(frozen=True)
class ArticleMeta:
    """An article page's own description of itself; every field already safe to store."""

    canonical: str | None = None  # rel=canonical (else og:url) when on the page's own site
    title: str = ""
    summary: str = ""
    author: str | None = None
    published_at: datetime | None = None
    modified_at: datetime | None = None
    image_url: str | None = None
    image_alt: str | None = None
    # og:image:width/height or the ImageObject's width/height: both or neither.
    image_width: int | None = None
    image_height: int | None = None
    # The note on the page's picture when its address was left out (pictures.left_out).
    image_left_out: str | None = None
    language: str | None = None
    section: str | None = None
    live: bool = False  # a LiveBlogPosting whose coverage has not ended
    # The page calls itself an article: JSON-LD of an article type, og:type "article", or a
    # publication date. A sign-in page or a home page a redirect ended on does not.
    article: bool = False
    # Why the page was not read at all ("" when it was): nested past MAX_NESTING, as a
    # listing page is refused. The reader skips the article with this as its note.
    refused: str = ""


def read_metadata(
    body: bytes, url: str, now: datetime | None = None, content_type: str = ""
) -> ArticleMeta:
    """The metadata of the article page ``body`` fetched from ``url``; empty fields when absent."""
    now = now or datetime.now(UTC)
    text = _XML_DECLARATION.sub("", decode_html(body, content_type), count=1)
    if not text.strip():
        return ArticleMeta()
    if refused := unread_page(text):
        # libxml2 stops at its own depth and returns the part it read: whatever the page
        # puts after its hostile nesting would be lost without a word.
        return ArticleMeta(refused=refused)
    try:
        tree = lxml.html.fromstring(text, parser=lxml.html.HTMLParser(encoding="utf-8"))
    except (lxml.etree.LxmlError, ValueError):
        return ArticleMeta()
    if tree is None:
        return ArticleMeta()
    ld = _article_object(tree)
    og = _opengraph(tree)
    meta = _meta_names(tree)

    title = _first_text(TITLE_LIMIT, ld.get("headline"), ld.get("name"), og.get("og:title"))
    if not title:
        title = _first_text(TITLE_LIMIT, meta.get("twitter:title"), _xpath_text(tree, "//title"))
    summary = _first_text(
        SUMMARY_LIMIT, ld.get("description"), og.get("og:description"), meta.get("description")
    )
    published = _first_date(
        now,
        ld.get("datePublished"),
        og.get("article:published_time"),
        meta.get("article:published_time"),
        _xpath_attr(tree, "//time[@datetime]/@datetime"),
    )
    modified = _first_date(
        now, ld.get("dateModified"), og.get("article:modified_time"), og.get("og:updated_time")
    )
    image_url, image_alt, (image_width, image_height), left = _image(ld, og, url)
    return ArticleMeta(
        canonical=_canonical(tree, og, url),
        title=title,
        summary=summary,
        author=_author(ld.get("author"))
        or _author(meta.get("author"))
        or _author(og.get("article:author")),
        published_at=published,
        modified_at=modified,
        image_url=image_url,
        image_alt=image_alt,
        image_width=image_width,
        image_height=image_height,
        image_left_out=left,
        language=_language(ld.get("inLanguage"), tree, og),
        section=_first_text(100, _one(ld.get("articleSection")), og.get("article:section")) or None,
        live=_is_live(ld, now),
        article=bool(ld) or og.get("og:type") == "article" or published is not None,
    )


# --- JSON-LD -------------------------------------------------------------------------------


def _article_object(tree: Any) -> dict[str, Any]:
    """The first JSON-LD object typed as an article, looking inside ``@graph`` too."""
    # extruct is imported on first use: its package pulls in rdflib and friends (a third
    # of a second), which every other command of the CLI need not pay for.
    from extruct.jsonld import JsonLdExtractor

    extractor = JsonLdExtractor()
    for script in tree.xpath('//script[@type="application/ld+json"]'):
        try:
            blocks = extractor.extract_items(script)
        except Exception:  # broken JSON (jstyleson raises its own kinds): skip this block only
            continue
        for obj in _objects(blocks):
            if _types(obj) & _ARTICLE_TYPES:
                return obj
    return {}


def _objects(value: object, depth: int = 0) -> Iterator[dict[str, Any]]:
    if depth > 4:  # a hostile page can nest lists without end; articles sit near the top
        return
    if isinstance(value, list):
        for v in value:
            yield from _objects(v, depth + 1)
    elif isinstance(value, dict):
        yield value
        if "@graph" in value:
            yield from _objects(value["@graph"], depth + 1)


def _types(obj: dict[str, Any]) -> set[str]:
    kind = obj.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {k.rsplit("/", 1)[-1].lower() for k in kinds if isinstance(k, str)}


def _is_live(ld: dict[str, Any], now: datetime) -> bool:
    """A live blog is breaking until its coverage ends."""
    if "liveblogposting" not in _types(ld):
        return False
    end = iso_date(ld.get("coverageEndTime"), now=None)
    return end is None or end > now


def _author(value: object) -> str | None:
    names: list[str] = []
    for a in value if isinstance(value, list) else [value]:
        raw = a.get("name") if isinstance(a, dict) else a
        name = html_to_text(raw, 100) if isinstance(raw, str) else ""
        if name and not name.startswith(("http://", "https://")) and name not in names:
            names.append(name)
    return ", ".join(names[:5])[:200] or None


def _one(value: object) -> object:
    """The first of a list (JSON-LD allows one value or many almost everywhere)."""
    return value[0] if isinstance(value, list) and value else value


# --- OpenGraph and <meta> ------------------------------------------------------------------


def _opengraph(tree: Any) -> dict[str, Any]:
    """OpenGraph properties, the first value of each (og:image:alt stays next to og:image)."""
    from extruct.opengraph import OpenGraphExtractor

    try:
        found = OpenGraphExtractor().extract_items(tree)
    except Exception:  # extruct on a malformed head: treat as absent
        return {}
    merged: dict[str, Any] = {}
    for block in found:
        for key, value in block.get("properties", []):
            if isinstance(key, str):
                merged.setdefault(key, value)
    return merged


def _meta_names(tree: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for node in tree.xpath("//meta[@name and @content]"):
        out.setdefault(str(node.get("name")).strip().lower(), str(node.get("content")))
    return out


def _canonical(tree: Any, og: dict[str, Any], url: str) -> str | None:
    """rel=canonical (else og:url), only when it stays on the page's own site.

    A page naming another site's URL as its own could take over that article's identity.
    """
    for href in (_xpath_attr(tree, '//link[@rel="canonical"]/@href'), og.get("og:url")):
        if isinstance(href, str) and href.strip():
            found = canonical_url(urljoin(url, href.strip()))
            if found and _site(found) == _site(url):
                return found
    return None


def _image(
    ld: dict[str, Any], og: dict[str, Any], url: str
) -> tuple[str | None, str | None, tuple[int | None, int | None], str | None]:
    """The page's picture: its address, alt text and stated size (og:image:width/height,
    or an ImageObject's width and height); without one, the note on an address left out."""
    written: list[str] = []
    candidates: list[tuple[object, object, tuple[object, object]]] = [
        (
            og.get("og:image:secure_url") or og.get("og:image"),
            og.get("og:image:alt"),
            (og.get("og:image:width"), og.get("og:image:height")),
        )
    ]
    image = _one(ld.get("image"))
    if isinstance(image, dict):
        candidates.append(
            (
                image.get("url") or image.get("contentUrl"),
                image.get("caption"),
                (image.get("width"), image.get("height")),
            )
        )
    else:
        candidates.append((image, None, (None, None)))
    for src, alt, size in candidates:
        if isinstance(src, str) and src.strip():
            written.append(urljoin(url, src.strip()))
            found = canonical_url(written[-1])
            if found:
                text = html_to_text(alt, 300) if isinstance(alt, str) else ""
                return found, text or None, stated_size(found, *size), None
    return None, None, (None, None), left_out(written)


def _language(value: object, tree: Any, og: dict[str, Any]) -> str | None:
    locale = og.get("og:locale")
    for raw in (
        _one(value),
        _xpath_attr(tree, "/html/@lang"),
        locale.replace("_", "-") if isinstance(locale, str) else None,
    ):
        if isinstance(raw, dict):
            raw = raw.get("alternateName") or raw.get("name")
        if isinstance(raw, str) and (tag := language_tag(raw)):
            return tag
    return None


# --- helpers -------------------------------------------------------------------------------


def _first_text(limit: int, *values: object) -> str:
    for value in values:
        if isinstance(value, str) and (text := html_to_text(value, limit)):
            return text
    return ""


def _first_date(now: datetime, *values: object) -> datetime | None:
    for value in values:
        if (found := iso_date(value, now)) is not None:
            return found
    return None


def _xpath_text(tree: Any, path: str) -> str:
    nodes = tree.xpath(path)
    return str(nodes[0].text_content()) if nodes else ""


def _xpath_attr(tree: Any, path: str) -> str | None:
    values = tree.xpath(path)
    return str(values[0]) if values else None


def _site(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def decode_html(body: bytes, content_type: str = "") -> str:
    """The page as text: the charset the server or the page declares, else UTF-8, else cp1252.

    Pages without a declaration are mostly UTF-8; what is not valid UTF-8 is nearly always
    Latin-1 or its Windows superset, and cp1252 decodes any byte, so this never fails.
    """
    for declared in (_CHARSET.search(content_type.encode()), _META_CHARSET.search(body[:4096])):
        if declared:
            name = declared.group(1).decode("ascii", "replace")
            try:
                return body.decode(name, errors="replace")
            except LookupError:
                pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1252", errors="replace")
