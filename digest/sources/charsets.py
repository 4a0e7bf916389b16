"""Whether lxml, which believes the XML declaration, reads a feed's text as feedparser would.

lxml takes the declaration at its word, while feedparser weighs it against the HTTP
charset and mends text that was UTF-8 read as Latin-1. A UTF-8 feed whose declaration says
ISO-8859-1 (a common lie) would come out of lxml as "CafÃ©". So the fast path takes a feed
only when the HTTP charset, if any, names the declared encoding, and a declaration other
than UTF-8 is not belied by a body that is valid UTF-8 (real Latin-1 text with accents
never is); feedparser reads the rest.
"""

from __future__ import annotations

import codecs
import re

# The encoding an XML declaration names, and a Content-Type's charset parameter.
_DECLARED = re.compile(rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?\sencoding\s*=\s*["']([^"']*)["']""")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.I)


def encoding_agreed(body: bytes, content_type: str) -> bool:
    """True when lxml, which believes the XML declaration, reads the text as feedparser would."""
    encoding = _stated_encoding(body, content_type)
    if not encoding:
        return False
    return encoding == "utf-8" or not _utf8_beyond_ascii(body)


def mend_utf8(body: bytes, content_type: str) -> tuple[bytes, int]:
    """A UTF-8 feed with a few bytes that are not UTF-8 (a generator pasting Latin-1 into
    it), with those replaced by U+FFFD, and how many were; the body unchanged, 0, otherwise.

    Left alone, feedparser gives up on UTF-8 for the whole document and reads it as
    windows-1252: every accent of every item turns to "ZÃ¼rich", and nothing says so. A
    body whose non-ASCII text is mostly not UTF-8 is left to feedparser, which reads a
    Latin-1 feed that declares UTF-8 better than replacing all its accents would.
    """
    if _stated_encoding(body, content_type) != "utf-8" or body.isascii():
        return body, 0
    if _utf8_beyond_ascii(body):  # most feeds: UTF-8 already, one strict decode says so
        return body, 0
    text = body.decode("utf-8", "replace")
    # A U+FFFD the feed wrote is its three bytes, whole wherever they stand (their first
    # byte is no continuation byte, so no broken sequence before them takes it): the rest
    # replace bytes that are not UTF-8. None at all: the body is UTF-8, nothing to mend.
    bad = text.count("\ufffd") - body.count("\ufffd".encode())
    if not bad:
        return body, 0
    good = sum(1 for ch in text if ord(ch) > 127 and ch != "\ufffd")
    if good <= bad:
        return body, 0
    return text.encode("utf-8"), bad


def _stated_encoding(body: bytes, content_type: str) -> str:
    """The encoding the XML declaration names (UTF-8 without one), as ``_codec`` names it,
    when the HTTP charset, if any, names it too; "" when they differ or it is unknown."""
    declared = _DECLARED.match(body[:512])
    encoding = _codec(declared.group(1).decode("latin-1")) if declared else "utf-8"
    charset = _CHARSET.search(content_type)
    if charset is not None and _codec(charset.group(1)) != encoding:
        return ""
    return encoding


def _codec(name: str) -> str:
    """Python's name of an encoding ("UTF8" -> "utf-8", "latin1" -> "iso8859-1"); "" if unknown.

    ASCII counts as UTF-8: a document in one is in the other.
    """
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return ""
    return "utf-8" if codec == "ascii" else codec


def _utf8_beyond_ascii(body: bytes) -> bool:
    """Valid UTF-8 with characters beyond ASCII: UTF-8 text, whatever its declaration says."""
    if body.isascii():
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
