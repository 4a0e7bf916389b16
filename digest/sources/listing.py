"""A listing page's article links: the ones a configured selector picks, else the ones that
look like articles (on the site, an article-like path, headline-like text, outside the
site's chrome), and the ones it marks as breaking (``breaking.BreakingDetector``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from digest.config import SourceConfig
from digest.errors import SourceError
from digest.sources.breaking import BreakingDetector, anchor_text
from digest.sources.metadata import decode_html
from digest.sources.normalise import TOO_DEEP_HINT, canonical_url, unread_page
from digest.sources.site import Site

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
    page = decode_html(body, content_type)
    if refused := unread_page(page):
        # Parsing and walking such a tree takes seconds to minutes in a thread no deadline
        # stops; no real page nests past the browsers' own limit.
        raise SourceError(source.name, refused, TOO_DEEP_HINT)
    try:
        tree = LexborHTMLParser(page)
    except (SelectolaxError, ValueError) as exc:
        raise SourceError(source.name, f"cannot parse the listing page: {exc}") from exc
    links = _Links(tree, base_url)
    anchors = links.articles(source)
    if source.links and not links.found:
        # The admin's selector finds nothing: an error to fix, even when breaking detection
        # would find links (the Latest column it names is what the admin wants read).
        raise SourceError(
            source.name,
            "no article links found on the listing page",
            f"the selector links = {source.links!r} matches no article link; check it",
        )
    if source.breaking:
        links.selected_breaking(_selected(tree, source.breaking, source.name))
    else:
        links.detected_breaking(anchors)
    notes = [
        f"{n} breaking link{'s' if n != 1 else ''} left out: {why}"
        for why, n in sorted(links.left_out.items())
    ]
    return list(links.found.values()), notes


class _Links:
    """The links found on one listing page so far, one per canonical URL, in page order."""

    def __init__(self, tree: LexborHTMLParser, base_url: str) -> None:
        self.tree = tree
        # The site is where the listing came from, never what its <base> claims: links are
        # only followed within it, so a page cannot send the gatherer to other (or internal)
        # hosts.
        self.site = Site.of(base_url)
        self.listing = canonical_url(base_url)
        base = tree.css_first("base[href]")
        if base is not None:
            base_url = urljoin(base_url, base.attributes.get("href") or "")
        self.base_url = base_url
        self.every = tree.css("a[href]")
        self.found: dict[str, ListingLink] = {}
        self.left_out: Counter[str] = Counter()

    def resolve(self, anchor: LexborNode) -> str | None:
        return canonical_url(urljoin(self.base_url, anchor.attributes.get("href") or ""))

    def add(self, url: str, text: str) -> ListingLink:
        link = self.found.setdefault(url, ListingLink(url, text))
        if len(text) > len(link.text):
            link.text = text  # "Read more" and the headline share a URL; keep the headline
        return link

    def articles(self, source: SourceConfig) -> list[LexborNode]:
        """Add the article links (the `links` selector's, else those that look like
        articles outside the chrome); returns the anchors that were asked."""
        anchors = (
            _selected(self.tree, source.links, source.name)
            if source.links
            else [a for a in self.every if not _in_chrome(a)]
        )
        for anchor in anchors:
            url = self.resolve(anchor)
            if url is None or not self.site.holds(url):
                continue
            text = anchor_text(anchor)
            if source.links is None and not (article_path(url) and _headline(text)):
                continue
            self.add(url, text)
        return anchors

    def selected_breaking(self, anchors: list[LexborNode]) -> None:
        """Add the `breaking` selector's links as breaking (any address on the site)."""
        for anchor in anchors:
            url = self.resolve(anchor)
            why = _not_followed(url, self.site, any_path=True)
            if why:
                self.left_out[why] += 1
            elif url is not None and url != self.listing:
                self.add(url, anchor_text(anchor)).breaking = True

    def detected_breaking(self, asked: list[LexborNode]) -> None:
        """Add the links automatic detection finds breaking.

        Every link on the page is asked, so a breaking banner in the site header or a
        ticker's short labels are not lost, with a `links` selector too (it names the
        Latest column; only a `breaking` selector replaces this detection).
        """
        looks_breaking = BreakingDetector(set(self.found))
        outside = {a.mem_id for a in asked}
        for anchor in self.every:
            url = self.resolve(anchor)
            link = self.found.get(url) if url is not None else None
            if link is not None and link.breaking:
                continue
            if anchor.mem_id not in outside and not (url and article_path(url)):
                continue  # a menu's section links: chrome, whatever badge sits beside them
            if url == self.listing or not looks_breaking(anchor):
                continue  # (a breaking banner's "#top" or close link is the listing itself)
            why = _not_followed(url, self.site, any_path=link is not None)
            if why:
                self.left_out[why] += 1
            elif url is not None:
                self.add(url, anchor_text(anchor)).breaking = True


def _not_followed(url: str | None, site: Site, *, any_path: bool) -> str:
    """Why a breaking link is not fetched; "" when it is.

    ``any_path``: the admin's selector chose it, so any address on the site is an article.
    """
    if url is None:
        return "not a web address"
    if not site.holds(url):
        return "on another site"
    if not any_path and not article_path(url):
        return "not an article address (a section, tag or account page)"
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


def article_path(url: str) -> bool:
    """True when ``url`` looks like an article's: a slug, a date, a long id, a named page."""
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
