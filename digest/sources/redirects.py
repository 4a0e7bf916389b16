"""An item's link as the article's own address: FeedBurner's ``origLink``, or the target a
known redirector's link names in full.

A reader clicking a FeedBurner or redirector link takes a tracking hop first, and
FeedBurner's links die with the service; two feeds' copies of one article match by URL
only when both give its own address. So every feed reader (feedparser's entries, the fast
path's, JSON Feed's) shows an item's link through ``article_url``: one rule for all.

Conservative: a link is unwrapped only when it names its target in full, an http(s) URL
with a host, and the redirector is one listed in ``_WRAPPERS``; anything else stays as the
feed wrote it. Not decodable offline, so left as they are: news.google.com's article
links (an opaque id), FeedBurner's own links without an origLink (feeds.feedburner.com,
feedproxy.google.com, feeds.<site>/~r/...: the slug names no host), t.co, bit.ly and the
like (a short code).

The link as the feed wrote it stays the item's identity where the feed gives no id
(``entries``, ``jsonfeed``): an install that stored the FeedBurner link knows the item
again by it and updates its link in place, rather than storing and mailing it again.
``item_links`` gives both, and the ``feed_link`` that matches the old copy, to every reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from digest.sources.normalise import canonical_url

# A target after a redirector's path ("/redir/online/poder/rss091/*https://..."): "*" and a
# complete http(s) scheme, as written (a percent-encoded one is not taken).
_STAR_TARGET = re.compile(r"\*(https?://.+)$", re.I)
# Redirectors wrapped in redirectors (a Google Alerts link to a Folha redirect): a few
# layers, then the link stays as it is.
_MAX_LAYERS = 3


@dataclass(frozen=True)
class _Wrapper:
    """A redirector whose links carry their target: its host(s), the path its redirects
    take, and where the target is (the query parameters tried in turn, or after "*")."""

    host: re.Pattern[str]
    path: re.Pattern[str]
    params: tuple[str, ...] = ()  # () : the target follows "*" in the link itself


# Each entry is a redirector seen in feeds or in the links they carry; add one only when
# its link states the whole target (no id to look up, no base64 to decode).
_WRAPPERS = (
    # Folha de S.Paulo's click counter (UOL's feeds carry it): /redir/<section>/*<target>.
    _Wrapper(re.compile(r"redir\.folha\.com\.br"), re.compile(r"/redir/")),
    # Google's link redirect: Google Alerts feeds link every result as /url?url=<target>,
    # search results as /url?q=<target>.
    _Wrapper(re.compile(r"(?:www\.)?google\.com"), re.compile(r"/url$"), ("url", "q")),
    # Facebook's (and Messenger's) link shim: l.php?u=<target>.
    _Wrapper(
        re.compile(r"(?:l|lm)\.facebook\.com|l\.messenger\.com"), re.compile(r"/l\.php$"), ("u",)
    ),
    # YouTube's redirect for links in video descriptions: /redirect?q=<target>.
    _Wrapper(re.compile(r"(?:www\.|m\.)?youtube\.com"), re.compile(r"/redirect$"), ("q",)),
    # Outlook's Safe Links, in newsletters turned into feeds: /?url=<target>.
    _Wrapper(
        re.compile(r"[a-z0-9-]+\.safelinks\.protection\.outlook\.com"),
        re.compile(r"/$"),
        ("url",),
    ),
    # LinkedIn's external-link redirect: /redir/redirect?url=<target>.
    _Wrapper(re.compile(r"(?:www\.)?linkedin\.com"), re.compile(r"/redir/redirect/?$"), ("url",)),
)


@dataclass(frozen=True)
class ItemLinks:
    """An item's two links: the one it is known by and the one it is shown by."""

    # The link as the feed wrote it (canonical), else the article's: the item's guid where
    # the feed gives it no id, as it was before origLinks and redirectors were read.
    identity: str
    # The article's own address (``article_url``): the link shown and matched across feeds.
    url: str

    @property
    def feed_link(self) -> str | None:
        """``FeedItem.feed_link``: the link as written when it is not the article's, by
        which an article stored under it is found again; None when the two are one."""
        return self.identity if self.identity != self.url else None


def item_links(link: str, orig_link: object = None) -> ItemLinks | None:
    """The links of an item whose feed links it to ``link`` (resolved, as written) and
    perhaps gives a ``feedburner:origLink``; None when it has no http(s) link to show."""
    written = canonical_url(link)
    url = article_url(written, orig_link)
    if url is None:
        return None
    return ItemLinks(written or url, url)


def article_url(link: str | None, orig_link: object = None) -> str | None:
    """The address an item is shown and matched by, canonical: its ``orig_link`` (the
    feed's ``feedburner:origLink``) when that is an http(s) URL, else ``link`` (canonical
    already, or None); either with a known redirector's wrapping taken off."""
    chosen = _complete(orig_link) or link
    return unwrapped(chosen) if chosen else None


def unwrapped(url: str) -> str:
    """``url`` (canonical) without the known redirectors around it, when each names its
    target in full as an http(s) URL; else ``url`` as it is."""
    for _ in range(_MAX_LAYERS):
        target = _target(url)
        if target is None:
            break
        url = target
    return url


# A link on the host of one of _WRAPPERS: the host as ``urlsplit`` finds it (after any
# user info, before any port), tried before the full parse that almost every link fails.
_WRAPPER_HOST = re.compile(
    r"https?://(?:[^/?#]*@)?(?:"
    + "|".join(f"(?:{wrapper.host.pattern})" for wrapper in _WRAPPERS)
    + r")(?::[^/?#]*)?(?:[/?#]|$)",
    re.I,
)


def _target(url: str) -> str | None:
    """The canonical target of a known redirector's link; None for any other link."""
    if not _WRAPPER_HOST.match(url):  # most links: no split, no pattern per redirector
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    for wrapper in _WRAPPERS:
        if not (wrapper.host.fullmatch(host) and wrapper.path.match(parts.path)):
            continue
        if not wrapper.params:
            # After the host: the target's own query, if any, is the link's query here.
            star = _STAR_TARGET.search(url, len(parts.scheme) + 3 + len(parts.netloc))
            return _complete(star[1]) if star else None
        values = dict(parse_qsl(parts.query))
        for name in wrapper.params:
            if name in values:
                return _complete(values[name])
        return None
    return None


def _complete(value: object) -> str | None:
    """``value`` canonical when it is a complete http(s) URL: a scheme, a host with a dot,
    nothing that would not survive in a link (spaces, control characters); else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text.lower().startswith(("https://", "http://")) or any(c <= " " for c in text):
        return None
    canonical = canonical_url(text)
    if canonical is None or "." not in (urlsplit(canonical).hostname or ""):
        return None
    return canonical
