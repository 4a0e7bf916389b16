"""Sources of kind 'page': a news site's own listing page and the article pages it links to.

The listing page gives the links (a CSS selector from the config, else found automatically)
and which of them the page marks as breaking; each new article page gives the item's
metadata (``metadata.read_metadata``). selectolax (the Lexbor HTML5 parser) reads the
listing: it parses as browsers do and runs the CSS selectors written in the config.

Automatic link finding keeps links that stay on the site, have an article-like path (a
slug of several words, a date, a long numeric id) and headline-like text, outside the
site's navigation, footer, share and tag blocks. Automatic breaking detection (on unless a
`breaking` selector is set: a `links` selector does not turn it off) marks links inside a
block whose heading, class or id says "breaking" (or "live", "just in"), and links whose
own label says so.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from functools import partial
from urllib.parse import urlsplit

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.records import FeedItem
from digest.sources.fetch import Fetched
from digest.sources.listing import ListingLink, article_path, find_links, read_listing
from digest.sources.metadata import read_metadata
from digest.sources.normalise import canonical_url, fitting_language, headline, html_to_text
from digest.sources.site import Site
from digest.sources.summary import DEFAULT_CHARS, email_summary

# How an article page is read into its item (``_item`` with the source's settings).
_ReadArticle = Callable[[ListingLink, Fetched], tuple[FeedItem | None, str]]

# Re-exported: the listing's readers lived here, and tests import them from here.
__all__ = ["ListingLink", "find_links", "read_listing", "read_page_source"]

_TITLE_LIMIT = 300
# Where a login wall or a paywall sends a reader: a sign-in, account or subscription page.
_WALL_SEGMENT = re.compile(
    r"^(log-?in|log-?on|sign-?in|sign-?up|register|registration|my-?account|accounts?|auth"
    r"|sso|subscribe|subscriptions?|paywall|membership|wp-login\.php)$",
    re.I,
)
_WALL_HOST = re.compile(r"^(login|signin|accounts?|auth|sso|subscribe)\.", re.I)


async def read_page_source(
    source: SourceConfig,
    listing: Fetched,
    listing_url: str,
    fetch_article: Callable[[str, Site], Awaitable[Fetched]],
    known: Callable[[list[str]], set[str]],
    summary_chars: int = DEFAULT_CHARS,
) -> tuple[list[FeedItem], list[str]]:
    """Items from a listing page: links found on it, metadata read from each new article page.

    ``fetch_article(url, site)`` fetches through the gatherer's polite client, refusing any
    hop off ``site`` before it is requested (raises SourceError); ``known(urls)`` says which
    canonical URLs are stored already, so they are not fetched. ``summary_chars`` is the
    [gather] table's summary_chars. The article pages are
    fetched concurrently: the client's per-host limits and pause are what spaces them out.
    Returns the items and notes on what was skipped and why, in the listing's order.
    """
    content_type = listing.header("content-type")
    base_url = listing.url or listing_url
    # Parsing a listing (and, once a process, reading the suffix list) takes milliseconds:
    # off the loop, so fetches go on.
    links, notes = await asyncio.to_thread(
        read_listing, source, listing.body, base_url, content_type
    )
    if not links:
        raise SourceError(
            source.name,
            "no article links found on the listing page",
            _no_links_hint(source, listing),
        )
    new = _new_links(source, links, known, notes)
    site = Site.of(base_url)
    # Requests start in this order as the host's slots free up. Breaking news first; the
    # rest in a new order each run: in the listing's order, pages that stall at its top
    # would take every slot of the host until the source's deadline on every run, and
    # the pages after them would never be read.
    order = sorted(new, key=lambda link: (not link.breaking, random.random()))
    # Each article page read with the source's configured language first (it wins over
    # what the page declares, before its summary is cut by that language's rules).
    read = partial(_item, summary_chars=summary_chars, configured=source.language)
    reads = await _read_articles(order, site, fetch_article, read)
    items: list[FeedItem] = []
    for link in new:  # items and notes in the listing's order
        item, note = reads[link.url]
        if item is not None:
            items.append(item)
        if note:  # why it was skipped, or why its picture was left out
            notes.append(note)
    return items, notes


def _new_links(
    source: SourceConfig,
    links: list[ListingLink],
    known: Callable[[list[str]], set[str]],
    notes: list[str],
) -> list[ListingLink]:
    """The links not stored before, at most max_articles of them (breaking ones first);
    a note says how many were left for the next run."""
    stored = known([link.url for link in links])
    new = [link for link in links if link.url not in stored]
    if len(new) > source.max_articles:
        new.sort(key=lambda link: not link.breaking)  # breaking news is not left for later
        notes.append(
            f"{len(new) - source.max_articles} more new links left for the next run "
            f"(max_articles = {source.max_articles})"
        )
        new = new[: source.max_articles]
    return new


async def _read_articles(
    order: list[ListingLink],
    site: Site,
    fetch_article: Callable[[str, Site], Awaitable[Fetched]],
    read: _ReadArticle,
) -> dict[str, tuple[FeedItem | None, str]]:
    """Each link's item or note, the article pages fetched concurrently, started in ``order``
    and each ``read`` (``_item``, with the source's settings)."""
    try:
        async with asyncio.TaskGroup() as group:
            reads = {
                link.url: group.create_task(_read_article(link, site, fetch_article, read))
                for link in order
            }
    except ExceptionGroup as failed:  # a bug on one page: the gatherer reports it as before
        first = failed.exceptions[0]
        # Re-raised with the cause it came with (`from None` would wipe it); the group
        # itself adds nothing, so it is left out of the chain. Its own traceback says where.
        raise first from first.__cause__
    return {url: task.result() for url, task in reads.items()}


async def _read_article(
    link: ListingLink,
    site: Site,
    fetch_article: Callable[[str, Site], Awaitable[Fetched]],
    read: _ReadArticle,
) -> tuple[FeedItem | None, str]:
    """The link's item and any note on it, or None and a note on why it was skipped."""
    try:
        page = await fetch_article(link.url, site)
    except SourceError as exc:
        return None, f"article {link.url} skipped: {exc.message}"
    # Parsing a large article page takes milliseconds: off the loop, so fetches go on.
    item, detour = await asyncio.to_thread(read, link, page)
    if item is None:
        # Not stored, so the link is new again on the next run and fetched again then.
        return None, f"article {link.url} skipped: {detour}; tried again next run"
    return item, detour  # a note on its picture left out, or ""


def _no_links_hint(source: SourceConfig, listing: Fetched) -> str:
    head = listing.body[:1024].lstrip().lower()
    if head.startswith(b"<?xml") or head.startswith((b"<rss", b"<feed", b"<urlset")):
        kind = "sitemap" if b"<urlset" in head else "feed"
        return f"the address serves XML, not a web page: set kind = {kind!r}"
    if source.links is None:
        return "set `links` to a CSS selector of the article links"
    return f"the selector links = {source.links!r} matches no article link; check it"


def _item(
    link: ListingLink,
    page: Fetched,
    *,
    summary_chars: int,
    configured: str | None,
) -> tuple[FeedItem | None, str]:
    """The link's item from its article page and the note on its picture left out (or
    ""); None and why when the page is not the article.
    ``configured``: the source's language (``[[sources]] language``), which wins over the
    page's."""
    meta = read_metadata(page.body, page.url or link.url, content_type=page.header("content-type"))
    if meta.refused:  # nested past the limit: not parsed, as a listing page would not be
        return None, meta.refused
    detour = _detour(link.url, page.url, meta.article)
    if detour:
        return None, detour
    title = headline(meta.title) or headline(html_to_text(link.text, _TITLE_LIMIT), meta.summary)
    language = configured or meta.language
    summary = email_summary(meta.summary, language, summary_chars)
    item = FeedItem(
        # The listing's link, canonicalised, is the identity: it is what ``known`` is asked
        # about on the next run, so an article page is fetched once.
        guid=link.url,
        url=link.url,
        title=title,
        summary=summary,
        author=meta.author,
        published_at=meta.published_at,
        modified_at=meta.modified_at,
        image_url=meta.image_url,
        image_alt=meta.image_alt,
        language=fitting_language(language, title, summary),
        section=meta.section,
        breaking=link.breaking or meta.live,
        image_width=meta.image_width,
        image_height=meta.image_height,
    )
    if not item.title:
        return None, "it has no title, no link text and no summary to take one from"
    return item, f"article {link.url}: {meta.image_left_out}" if meta.image_left_out else ""


def _detour(link: str, final: str, is_article: bool) -> str:
    """Why the page a link redirected to is not its article ("" when it is).

    A login wall or a paywall redirects to its sign-in page, whose <title> ("Sign in to
    continue") would be stored as the headline, under the link's URL, and never fetched again.
    """
    landed = canonical_url(final) if final else None
    if landed is None or landed == link:
        return ""
    parts = urlsplit(landed)
    if _WALL_HOST.match(parts.hostname or ""):
        return f"it led to {landed}, a sign-in or subscription page"
    if parts.path == urlsplit(link).path:  # to https, or to www.: the same page
        return ""
    if any(_WALL_SEGMENT.match(s) for s in parts.path.split("/")):
        return f"it led to {landed}, a sign-in or subscription page"
    if not is_article and not article_path(landed):
        return f"it led to {landed}, a page that is not an article"
    return ""
