"""The errors for a document that is no feed: an HTML page (naming the feed it links to, if
any) or a body with no RSS, Atom or JSON Feed in it."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urljoin
from xml.sax import SAXException

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from digest.errors import SourceError
from digest.sources.metadata import decode_html
from digest.sources.normalise import too_deep

# The types of the feeds a page names in <link rel="alternate" type=... href=...>.
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")


def html_page(source: str, body: bytes, headers: Mapping[str, str], base: str) -> SourceError:
    """The error for a web page where a feed was expected, naming the feed the page links
    to, if any; a news site's page is also a source as it is, as kind = "page"."""
    as_page = 'or set kind = "page" to read this page\'s article links as they are'
    feeds: list[str] = []
    page = decode_html(body, headers.get("content-type", ""))
    try:
        # A page nested deeper than any real one is not parsed (seconds of CPU): no feed named.
        tree = None if too_deep(page) else LexborHTMLParser(page)
        for link in tree.css("link[rel][href]") if tree else ():
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


def not_a_feed(source: str, broken: object) -> SourceError:
    """The error for a document feedparser found no feed in; ``broken`` is its complaint.

    feedparser's complaints about the Content-Type (missing, or not XML's) are not why a
    document is no feed: a feed served without one still reads.
    """
    reason = (
        f"the body is not well-formed XML ({broken})"
        if isinstance(broken, SAXException)
        else "no RSS or Atom elements found (it is neither RSS, Atom nor JSON Feed)"
    )
    return SourceError(source, f"not a feed: {reason}", "check the feed URL in the config")
