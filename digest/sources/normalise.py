"""Pure helpers that make feed values safe and comparable: canonical URLs and plain text."""

from __future__ import annotations

import html
import html.entities
import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

import nh3

from digest.records import invisible_encoded, strip_invisible
from digest.sentences import language_code
from digest.sources.hosts import host_words, web_host

# Query parameters that only track the reader; two URLs differing in them are one article.
_TRACKING = re.compile(
    r"^(utm_[a-z]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|_ga|ref_src|cmpid|ocid"
    r"|wt_mc|wt_zmc)$",
    re.I,
)
_SPACE = re.compile(r"\s+")
# The longest link or picture address kept, in UTF-8 bytes: the sitemap protocol's limit,
# which real articles keep well under. A feed's link of tens of kilobytes is a broken or
# hostile generator's, and PostgreSQL cannot index one past ~2,700 bytes: the insert of
# its source's items failed whole.
URL_LIMIT = 2048
# A netloc that is only a host name (if ASCII): no user, port, brackets, "%", nor a
# character no host holds (hosts.web_host refuses what the standard forbids).
_PLAIN_HOST = re.compile(r"[^@:\[\]%\\\x00-\x20<>^|\x7f]+")
# Elements whose text is never prose (code, frames, fallbacks): dropped with their content.
_DROP_WITH_CONTENT = {"script", "style", "iframe", "noscript", "template", "object"}
# Elements that end a line or a block: a space goes in before each of their tags, so
# "<p>One</p><p>Two</p>" reads "One Two", not "OneTwo". Adding a space to the input is safe
# wherever it lands (in text, an attribute or a script body); nh3 still parses all of it.
_BREAKS = (
    "p|br|div|li|ul|ol|dd|dt|tr|td|th|table|blockquote|h[1-6]|hr|pre|figure|figcaption"
    "|section|article|header|footer|aside"
)
_BREAK_TAG = re.compile(rf"(?=</?(?:{_BREAKS})\b)", re.I)
# nh3's sanitiser keeping no tag or attribute, built once: nh3.clean() builds its settings
# on every call, which cost as much as the cleaning of a summary.
_TEXT_ONLY = nh3.Cleaner(
    tags=set(), clean_content_tags=_DROP_WITH_CONTENT, attributes={}, strip_comments=True
)
# Text nh3 passes through as it is: no markup or entity, no NUL, no leading byte-order mark.
_PLAIN = re.compile(r"(?!\ufeff)[^<&\x00]*")
# How deep HTML may nest before it is read as hostile. Browsers stop nesting at 512 too;
# past it, parsers (nh3, lexbor) and any walk up a node's ancestors slow down steeply: a
# page of 20,000 nested <div>s or a summary of them took seconds to minutes of CPU, in a
# thread no deadline can stop.
MAX_NESTING = 512
# A start or end tag (a comment, doctype or stray "<" is none): group 1 is "/" for an end
# tag, group 2 the name, group 3 "/" for a self-closing tag.
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)(?:\s[^<>]*?)?(/?)>")
# Elements that never hold content: their start tag opens nothing.
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)


def canonical_url(url: str) -> str | None:
    """Lower-case scheme and host, no fragment, no tracking parameters; None unless http(s).

    The rest of the query is kept byte for byte and in order: the result is also the link
    the digest prints, so it must still open the same page.
    """
    url = invisible_encoded(url.strip())
    try:
        parts = urlsplit(url)
    except ValueError:  # unbalanced IPv6 brackets
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return None
    host = parts.netloc
    if "\\" in host:  # browsers end the host at it (as at "/"); urlsplit does not
        return None
    if host.isascii() and _PLAIN_HOST.fullmatch(host):
        # No user, port, brackets, zone, "%" or other than ASCII: the host is the netloc
        # (hostname and port would each split it again; a feed's every link and image
        # comes through here), as every reader's client reads it.
        host = host.lower()
    else:
        try:
            port = parts.port
        except ValueError:  # a port that is not a number
            return None
        if not parts.hostname:
            return None
        if ":" in parts.hostname:
            if "%" in parts.hostname:  # an IPv6 zone: no browser reads one
                return None
            host = f"[{parts.hostname.lower()}]"
        else:
            read = web_host(parts.hostname)
            if read is None:
                return None
            host = read
        if port and (scheme, port) not in (("http", 80), ("https", 443)):
            host = f"{host}:{port}"
    query = "&".join(pair for pair in parts.query.split("&") if pair and not _tracking(pair))
    canonical = urlunsplit((scheme, host, parts.path or "/", query, ""))
    if len(canonical) > URL_LIMIT // 4 and too_long(canonical):
        return None
    return canonical


def too_long(url: str) -> bool:
    """Whether ``url`` is past ``URL_LIMIT`` (``canonical_url`` refuses it)."""
    return len(url.encode("utf-8", "surrogatepass")) > URL_LIMIT


def refused_words(url: str) -> str | None:
    """For an http(s) address ``canonical_url`` refuses, why, as a note on the item says it
    after "has a link" or "its picture's address is": "12,034 bytes long ('https://...'...),
    past the 2,048 digest keeps", or "written with a host mail clients may read as another
    ('%31%39%32%2e...')"; None for any other address. The one rule of every kind of
    source's notes on a link or picture left out."""
    if not url.lower().startswith(("http://", "https://")):
        return None
    if not too_long(url):
        return host_words(url)
    size = len(url.encode("utf-8", "surrogatepass"))
    return f"{size:,} bytes long ({url[:60]!r}...), past the {URL_LIMIT:,} digest keeps"


def _tracking(pair: str) -> bool:
    """True for a query parameter that only tracks the reader (utm_source=..., fbclid=...)."""
    name = pair.split("=", 1)[0]
    if "%" in name or "+" in name:
        name = unquote_plus(name)
    return _TRACKING.match(name) is not None


def nesting_depth(value: str) -> int:
    """How deep the HTML in ``value`` nests: the most elements open at once, counted in one
    linear pass over its tags (end tags close one level; void and self-closing tags none).

    Cheap for ordinary text: with fewer tags than MAX_NESTING, the count of "<" is the
    answer's upper bound and nothing is scanned.
    """
    if value.count("<") <= MAX_NESTING:
        return min(value.count("<"), MAX_NESTING)
    depth = deepest = 0
    for end, name, closed in _TAG.findall(value):
        if end:
            depth = max(depth - 1, 0)
        elif not closed and name.lower() not in _VOID:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def too_deep(value: str) -> bool:
    """True for HTML nested deeper than MAX_NESTING: hostile, never handed to a parser."""
    return nesting_depth(value) > MAX_NESTING


# What to do about a page nested past MAX_NESTING (the hint of a listing page's error).
TOO_DEEP_HINT = f"no real page nests past {MAX_NESTING} levels; check the URL, or tell the site"


def unread_page(page: str) -> str:
    """Why a whole page is not parsed ("" when it may be): HTML nested past MAX_NESTING.
    The words a listing page's error and an article page's note share."""
    depth = nesting_depth(page)
    return f"the page nests its HTML {depth} levels deep; not read" if depth > MAX_NESTING else ""


def strip_tags(value: str) -> str:
    """The text of HTML too deep to parse (``too_deep``): its tags cut out by a pattern, in
    linear time, decoded as ``html_to_text`` decodes; what still reads as a tag is dropped,
    so no markup survives here either."""
    text = value
    for _ in range(3):
        decoded = html.unescape(_TAG.sub(" ", text))
        if decoded == text or not _TAG.search(decoded):
            text = decoded
            break
        text = decoded
    return _SPACE.sub(" ", _TAG.sub(" ", text).replace("\x00", ""))


def html_to_text(value: str, limit: int | None = None, *, markup: bool = True) -> str:
    """Plain text of an HTML fragment: tags and script/style bodies removed, entities decoded.

    nh3 (ammonia) does the parsing, so hostile markup can never survive as markup; the
    result is text, which the templates escape again on output. With ``limit``, the text
    is cut at a word boundary and ends in an ellipsis, ``limit`` characters at most.

    ``markup=False`` says the value is text already (an Atom ``type="text"`` construct, an
    RSS title without markup): only its spaces are tidied. "Vec<T>" or "the <blink> tag"
    in text is what the author wrote; read as HTML, the "tag" would vanish.
    """
    if not value:
        return ""
    if not markup:
        value = value.replace("\x00", "")
    if not markup or _PLAIN.fullmatch(value):
        # No tag, entity or character the parser would drop: nh3 would return it unchanged.
        # Most titles, authors and alt texts are like this; nh3 is most of a feed's parse.
        return _shorten(_SPACE.sub(" ", value).strip(), limit)
    if too_deep(value):
        # Nested past any real page: its text by a plain tag strip, not nh3's parse.
        return _shorten(_SPACE.sub(" ", strip_tags(value)).strip(), limit)
    text = value
    # Feeds that escape their HTML twice deliver "&lt;script&gt;" which decodes to markup
    # again; clean until nothing changes (a few rounds at most) so no markup survives.
    for _ in range(3):
        cleaned = _TEXT_ONLY.clean(_BREAK_TAG.sub(" ", text))
        decoded = html.unescape(cleaned)
        if decoded == text or "<" not in decoded:
            text = decoded
            break
        text = decoded
    return _shorten(_SPACE.sub(" ", text).strip(), limit)


def _shorten(text: str, limit: int | None) -> str:
    """``text`` cut at a word boundary to ``limit`` characters, ending in an ellipsis."""
    if limit is not None and len(text) > limit:
        cut = text[: limit - 1]
        if " " in cut:
            cut = cut.rsplit(" ", 1)[0]
        text = f"{cut.rstrip(',;:.-– ')}…"
    return text


# Titles that say there is none: a generator's placeholder, never a headline.
_NO_TITLE = frozenset(
    {
        "untitled",
        "(untitled)",
        "[untitled]",
        "no title",
        "(no title)",
        "[no title]",
        "null",
        "none",
        "(none)",
        "undefined",
    }
)
# An entity reference html.unescape left as it was: a name HTML does not know (``&l7;``),
# which a broken generator wrote; it is no text, so it is dropped from a headline.
_ENTITY_LEFT = re.compile(r"&([A-Za-z][A-Za-z0-9]{0,31});")
_SENTENCE_END = re.compile(r"[.!?。！？](?=\s|$)")
HEADLINE_FROM_SUMMARY = 120  # characters of a summary's start that stand in for a title


def headline(title: str, summary: str = "") -> str:
    """An item's headline: its title (plain text, from ``html_to_text``), else the start of
    its summary (its first sentence, or its first words); "" when it has neither.

    A reader would rather see what an item is about than "(untitled)" or a broken entity
    name, in the digest and in a subject line; an item with no words at all is skipped by
    the caller, with a note, rather than mailed as nothing.
    """
    text = _readable(title)
    if _has_words(text):
        return text
    start = _readable(summary)
    if not _has_words(start):
        return ""
    end = _SENTENCE_END.search(start, 11)  # "U.S. troops ...": not a sentence of its own
    if end is not None and end.end() <= HEADLINE_FROM_SUMMARY:
        return start[: end.end()]
    return _shorten(start, HEADLINE_FROM_SUMMARY)


def _readable(text: str) -> str:
    """Text without its invisible characters and the entity names no one could expand."""
    text = strip_invisible(text)
    if "&" in text:
        text = _SPACE.sub(" ", _ENTITY_LEFT.sub(_known_entity, text)).strip()
    return text


def _known_entity(match: re.Match[str]) -> str:
    """The reference as it stands when HTML names it (a doubly escaped one); else nothing."""
    return match[0] if f"{match[1]};" in html.entities.html5 else ""


def _has_words(text: str) -> bool:
    """Text a reader can read as a headline: a letter or digit, and no placeholder."""
    return any(c.isalnum() for c in text) and text.casefold() not in _NO_TITLE


# Languages written in a script other than Latin, by their primary subtag: text in one of
# them holds letters of that script. (Serbian, Azerbaijani, Uzbek and the like are written
# in Latin too, so they are not here.)
_NON_LATIN = """
am ar as be bg bn bo chr dv el fa gu he hi hy iu ja ka kk km kn ko ky lo mk ml mn mr my ne
or pa ps ru sa si ta te tg th ti uk ur yi zh
"""
_NON_LATIN_LANGUAGES = frozenset(_NON_LATIN.split())


def fitting_language(tag: str | None, *texts: str) -> str | None:
    """``tag``, unless it names a language written in another script than Latin while not
    one letter of ``texts`` (the item's title and summary) is outside Latin: then None.

    A feed declares one language for all its items, and a Kannada news portal's feed of
    its English section says "kn": each English headline would be marked lang="kn" in the
    email, which a screen reader reads in a Kannada voice, and ranked as Kannada. Unknown
    is the truth there; which language it is instead is not guessed.
    """
    if not tag or language_code(tag) not in _NON_LATIN_LANGUAGES:
        return tag
    letters = [c for text in texts for c in text if c.isalpha()]
    if any(not _latin(c) for c in letters) or not letters:
        return tag
    return None


def _latin(letter: str) -> bool:
    """True for a letter of the Latin script (ASCII, its accented and extended forms)."""
    code = ord(letter)
    return code < 0x2B0 or 0x1E00 <= code < 0x1F00 or 0xFF21 <= code <= 0xFF5A


# A picture's side as a source states it: "1200", 1200, "1200px", 1200.0.
# "(?:\s*px)?\s*$", not "\s*(?:px)?\s*$": two runs of spaces side by side are read in
# quadratic time, minutes for a hostile attribute of 200,000 spaces and a letter.
_PIXELS = re.compile(r"^\s*(\d{1,5})(?:\.0+)?(?:\s*px)?\s*$", re.I)
_LARGEST_SIDE = 20_000


def image_size(width: object, height: object) -> tuple[int | None, int | None]:
    """A picture's width and height in pixels as its source states them (media:content's
    attributes, og:image:width, a JSON-LD ImageObject's), when both are whole numbers from
    1 to 20,000; else neither: its shape is known only from both."""
    sides: list[int] = []
    for value in (width, height):
        if isinstance(value, dict):  # JSON-LD's QuantitativeValue: {"value": 1200}
            value = value.get("value")
        match = _PIXELS.match(str(value)) if isinstance(value, str | int | float) else None
        side = int(match.group(1)) if match and not isinstance(value, bool) else 0
        if not 0 < side <= _LARGEST_SIDE:
            return None, None
        sides.append(side)
    return sides[0], sides[1]
