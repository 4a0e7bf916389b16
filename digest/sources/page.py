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
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.records import FeedItem
from digest.sources.breaking import BreakingDetector, anchor_text
from digest.sources.fetch import Fetched
from digest.sources.metadata import decode_html, read_metadata
from digest.sources.normalise import canonical_url, headline, html_to_text
from digest.sources.site import Site
from digest.sources.summary import DEFAULT_CHARS, email_summary

_TITLE_LIMIT = 300
# Blocks whose links are never articles: navigation, footers, sharing, tag clouds, logins.
_CHROME_TAGS = {"nav", "footer"}
_CHROME_ROLES = {"navigation", "contentinfo", "banner", "menu", "menubar", "search"}
_CHROME_WORDS = re.compile(
    r"(?:^|[\s_-])(nav|navbar|navigation|menu|footer|breadcrumbs?|share|sharing|social|tags?"
    r"|tag-?cloud|pagination|pager|cookies?|login|signin|subscribe|newsletter|author|byline)"
    r"(?:$|[\s_-])",
    re.I,
)
# Path segments of pages that are not articles (lists, people, accounts, feeds, assets).
_NOT_ARTICLE_SEGMENT = re.compile(
    r"^(tags?|topics?|category|categories|author|authors|writers?|page|search|login|logout"
    r"|signin|sign-in|signup|register|account|subscribe|newsletter|share|feed|rss|about"
    r"|contact|privacy|terms|cookies?|advertise|wp-login\.php|wp-admin|cdn-cgi|static)$",
    re.I,
)
# Where a login wall or a paywall sends a reader: a sign-in, account or subscription page.
_WALL_SEGMENT = re.compile(
    r"^(log-?in|log-?on|sign-?in|sign-?up|register|registration|my-?account|accounts?|auth"
    r"|sso|subscribe|subscriptions?|paywall|membership|wp-login\.php)$",
    re.I,
)
_WALL_HOST = re.compile(r"^(login|signin|accounts?|auth|sso|subscribe)\.", re.I)
_ASSET = re.compile(r"\.(jpe?g|png|gif|webp|svg|pdf|zip|mp[34]|css|js|xml|json|ico)$", re.I)
_SLUG = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+){2,}", re.I)  # three words or more
_DATE_PATH = re.compile(r"/(19|20)\d\d/[01]?\d/")
_LONG_ID = re.compile(r"\d{5,}")


@dataclass
class ListingLink:
    """An article link found on a listing page: canonical URL, its text, breaking or not."""

    url: str
    text: str
    breaking: bool = False


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
    content_type = _content_type(listing)
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
    stored = known([link.url for link in links])
    new = [link for link in links if link.url not in stored]
    if len(new) > source.max_articles:
        new.sort(key=lambda link: not link.breaking)  # breaking news is not left for later
        notes.append(
            f"{len(new) - source.max_articles} more new links left for the next run "
            f"(max_articles = {source.max_articles})"
        )
        new = new[: source.max_articles]
    site = Site.of(base_url)
    # Requests start in this order as the host's slots free up. Breaking news first; the
    # rest in a new order each run: in the listing's order, pages that stall at its top
    # would take every slot of the host until the source's deadline on every run, and
    # the pages after them would never be read.
    order = sorted(new, key=lambda link: (not link.breaking, random.random()))
    try:
        async with asyncio.TaskGroup() as group:
            reads = {
                link.url: group.create_task(_read_article(link, site, fetch_article, summary_chars))
                for link in order
            }
    except ExceptionGroup as failed:  # a bug on one page: the gatherer reports it as before
        first = failed.exceptions[0]
        # Re-raised with the cause it came with (`from None` would wipe it); the group
        # itself adds nothing, so it is left out of the chain. Its own traceback says where.
        raise first from first.__cause__
    items: list[FeedItem] = []
    for link in new:  # items and notes in the listing's order
        item, note = reads[link.url].result()
        if item is not None:
            items.append(item)
        else:
            notes.append(note)
    return items, notes


async def _read_article(
    link: ListingLink,
    site: Site,
    fetch_article: Callable[[str, Site], Awaitable[Fetched]],
    summary_chars: int = DEFAULT_CHARS,
) -> tuple[FeedItem | None, str]:
    """The link's item, or None and a note on why it was skipped."""
    try:
        page = await fetch_article(link.url, site)
    except SourceError as exc:
        return None, f"article {link.url} skipped: {exc.message}"
    # Parsing a large article page takes milliseconds: off the loop, so fetches go on.
    item, detour = await asyncio.to_thread(_item, link, page, summary_chars)
    if item is None:
        # Not stored, so the link is new again on the next run and fetched again then.
        return None, f"article {link.url} skipped: {detour}; tried again next run"
    return item, ""


def _no_links_hint(source: SourceConfig, listing: Fetched) -> str:
    head = listing.body[:1024].lstrip().lower()
    if head.startswith(b"<?xml") or head.startswith((b"<rss", b"<feed", b"<urlset")):
        kind = "sitemap" if b"<urlset" in head else "feed"
        return f"the address serves XML, not a web page: set kind = {kind!r}"
    if source.links is None:
        return "set `links` to a CSS selector of the article links"
    return f"the selector links = {source.links!r} matches no article link; check it"


def find_links(
    source: SourceConfig, body: bytes, base_url: str, content_type: str = ""
) -> list[ListingLink]:
    """The listing page's article links in page order, one per canonical URL."""
    return read_listing(source, body, base_url, content_type)[0]


def read_listing(
    source: SourceConfig, body: bytes, base_url: str, content_type: str = ""
) -> tuple[list[ListingLink], list[str]]:
    """The listing's article links (page order, breaking-only ones last) and notes on the
    breaking links left out and why.

    Links the page marks as breaking are articles too: the `breaking` selector's links are
    kept beside the `links` selector's (an admin writes one selector for the Latest column
    and one for the Breaking block). Without a `breaking` selector, automatic detection
    keeps a breaking block's links, whether `links` is set or not, even when the headline
    rule or the chrome rule would drop them (a short ticker label, a banner in the site
    header). Only links off the site or to no article are left out.
    """
    try:
        tree = LexborHTMLParser(decode_html(body, content_type))
    except (SelectolaxError, ValueError) as exc:
        raise SourceError(source.name, f"cannot parse the listing page: {exc}") from exc
    # The site is where the listing came from, never what its <base> claims: links are only
    # followed within it, so a page cannot send the gatherer to other (or internal) hosts.
    site = Site.of(base_url)
    listing = canonical_url(base_url)
    base = tree.css_first("base[href]")
    if base is not None:
        base_url = urljoin(base_url, base.attributes.get("href") or "")

    def resolve(anchor: LexborNode) -> str | None:
        return canonical_url(urljoin(base_url, anchor.attributes.get("href") or ""))

    found: dict[str, ListingLink] = {}

    def add(url: str, text: str) -> ListingLink:
        link = found.setdefault(url, ListingLink(url, text))
        if len(text) > len(link.text):
            link.text = text  # "Read more" and the headline share a URL; keep the headline
        return link

    every = tree.css("a[href]")
    anchors = (
        _selected(tree, source.links, source.name)
        if source.links
        else [a for a in every if not _in_chrome(a)]
    )
    for anchor in anchors:
        url = resolve(anchor)
        if url is None or not site.holds(url):
            continue
        text = anchor_text(anchor)
        if source.links is None and not (_article_path(url) and _headline(text)):
            continue
        add(url, text)
    if source.links and not found:
        # The admin's selector finds nothing: an error to fix, even when breaking detection
        # would find links (the Latest column it names is what the admin wants read).
        raise SourceError(
            source.name,
            "no article links found on the listing page",
            f"the selector links = {source.links!r} matches no article link; check it",
        )
    left_out: Counter[str] = Counter()
    if source.breaking:
        for anchor in _selected(tree, source.breaking, source.name):
            url = resolve(anchor)
            why = _not_followed(url, site, any_path=True)
            if why:
                left_out[why] += 1
            elif url is not None and url != listing:
                add(url, anchor_text(anchor)).breaking = True
    else:
        looks_breaking = BreakingDetector(set(found))
        outside = {a.mem_id for a in anchors}
        # Every link on the page is asked, so a breaking banner in the site header or a
        # ticker's short labels are not lost, with a `links` selector too (it names the
        # Latest column; only a `breaking` selector replaces this detection).
        for anchor in every:
            url = resolve(anchor)
            link = found.get(url) if url is not None else None
            if link is not None and link.breaking:
                continue
            if anchor.mem_id not in outside and not (url and _article_path(url)):
                continue  # a menu's section links: chrome, whatever badge sits beside them
            if url == listing or not looks_breaking(anchor):
                continue  # (a breaking banner's "#top" or close link is the listing itself)
            why = _not_followed(url, site, any_path=link is not None)
            if why:
                left_out[why] += 1
            elif url is not None:
                add(url, anchor_text(anchor)).breaking = True
    notes = [
        f"{n} breaking link{'s' if n != 1 else ''} left out: {why}"
        for why, n in sorted(left_out.items())
    ]
    return list(found.values()), notes


def _not_followed(url: str | None, site: Site, *, any_path: bool) -> str:
    """Why a breaking link is not fetched; "" when it is.

    ``any_path``: the admin's selector chose it, so any address on the site is an article.
    """
    if url is None:
        return "not a web address"
    if not site.holds(url):
        return "on another site"
    if not any_path and not _article_path(url):
        return "not an article address (a section, tag or account page)"
    return ""


def _item(
    link: ListingLink, page: Fetched, summary_chars: int = DEFAULT_CHARS
) -> tuple[FeedItem | None, str]:
    """The link's item from its article page; None and why when the page is not the article."""
    meta = read_metadata(page.body, page.url or link.url, content_type=_content_type(page))
    detour = _detour(link.url, page.url, meta.article)
    if detour:
        return None, detour
    item = FeedItem(
        # The listing's link, canonicalised, is the identity: it is what ``known`` is asked
        # about on the next run, so an article page is fetched once.
        guid=link.url,
        url=link.url,
        title=headline(meta.title) or headline(html_to_text(link.text, _TITLE_LIMIT), meta.summary),
        summary=email_summary(meta.summary, meta.language, summary_chars),
        author=meta.author,
        published_at=meta.published_at,
        modified_at=meta.modified_at,
        image_url=meta.image_url,
        image_alt=meta.image_alt,
        language=meta.language,
        section=meta.section,
        breaking=link.breaking or meta.live,
    )
    if not item.title:
        return None, "it has no title, no link text and no summary to take one from"
    return item, ""


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
    if not is_article and not _article_path(landed):
        return f"it led to {landed}, a page that is not an article"
    return ""


def _selected(tree: LexborHTMLParser, selector: str, name: str) -> list[LexborNode]:
    """The links a configured selector picks: matched <a> elements and links inside matches."""
    try:
        matches = tree.css(selector)
    except (SelectolaxError, ValueError) as exc:
        raise SourceError(
            name, f"invalid CSS selector {selector!r}: {exc}", "fix it in the config"
        ) from exc
    out: list[LexborNode] = []
    for node in matches:
        if node.tag == "a":
            if node.attributes.get("href"):
                out.append(node)
        else:
            out.extend(node.css("a[href]"))
    return out


def _in_chrome(node: LexborNode) -> bool:
    """Inside the site's navigation, footer, share bar or similar furniture."""
    ancestors: list[LexborNode] = []
    parent = node.parent
    while parent is not None and parent.tag not in ("body", "html"):
        ancestors.append(parent)
        parent = parent.parent
    # A site header is chrome; an article teaser's own <header> is not.
    in_article = any(a.tag == "article" for a in ancestors)
    for a in ancestors:
        attrs = a.attributes
        if a.tag in _CHROME_TAGS or (attrs.get("role") or "").lower() in _CHROME_ROLES:
            return True
        if a.tag == "header" and not in_article:
            return True
        if _CHROME_WORDS.search(f"{attrs.get('class') or ''} {attrs.get('id') or ''}"):
            return True
    return False


def _article_path(url: str) -> bool:
    path = urlsplit(url).path
    segments = [s for s in path.split("/") if s]
    if not segments or _ASSET.search(path):
        return False
    if any(_NOT_ARTICLE_SEGMENT.match(s) for s in segments):
        return False
    last = segments[-1]
    return bool(
        _SLUG.search(last)
        or _DATE_PATH.search(path)
        or _LONG_ID.search(last)
        or (last.endswith((".html", ".htm")) and len(last) > 12)
    )


def _headline(text: str) -> bool:
    """Text a headline or a teaser could be; not "More", "Share", "Next page"."""
    return len(text.split()) >= 4 or len(text) >= 25


def _content_type(fetched: Fetched) -> str:
    return next((v for k, v in fetched.headers.items() if k.lower() == "content-type"), "")
