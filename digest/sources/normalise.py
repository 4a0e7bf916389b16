"""Pure helpers that make feed values safe and comparable: canonical URLs and plain text."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import nh3

# Query parameters that only track the reader; two URLs differing in them are one article.
_TRACKING = re.compile(
    r"^(utm_[a-z]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|_ga|ref_src|cmpid|ocid)$", re.I
)
_SPACE = re.compile(r"\s+")


def canonical_url(url: str) -> str | None:
    """Lower-case scheme and host, no fragment, no tracking parameters; None unless http(s)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if parts.port and not (
        (parts.scheme.lower() == "http" and parts.port == 80)
        or (parts.scheme.lower() == "https" and parts.port == 443)
    ):
        host = f"{host}:{parts.port}"
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING.match(k)
        ]
    )
    return urlunsplit((parts.scheme.lower(), host, parts.path or "/", query, ""))


def html_to_text(value: str, limit: int | None = None) -> str:
    """Plain text of an HTML fragment: tags and script/style bodies removed, entities decoded.

    nh3 (ammonia) does the parsing, so hostile markup can never survive as markup; the
    result is text, which the templates escape again on output.
    """
    if not value:
        return ""
    cleaned = nh3.clean(value, tags=set(), attributes={}, strip_comments=True)
    text = _SPACE.sub(" ", html.unescape(cleaned)).strip()
    if limit is not None and len(text) > limit:
        cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:.-– ")
        text = f"{cut}…"
    return text
