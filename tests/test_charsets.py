"""Which feeds lxml may read as feedparser would, and a UTF-8 feed with a few bytes that are
not UTF-8 mended before either reads it (``charsets``)."""

from __future__ import annotations

import pytest

from digest.sources.charsets import encoding_agreed, mend_utf8

UTF8 = b'<?xml version="1.0" encoding="utf-8"?>'
LATIN1 = b'<?xml version="1.0" encoding="ISO-8859-1"?>'
GOOD = "<rss><title>Zürich café, São Paulo, Genève</title></rss>".encode()


@pytest.mark.parametrize(
    ("body", "content_type", "agreed"),
    [
        (UTF8 + GOOD, "", True),
        (GOOD, "application/rss+xml; charset=UTF-8", True),  # no declaration: UTF-8
        (UTF8 + GOOD, "text/xml; charset=iso-8859-1", False),  # HTTP says otherwise
        (LATIN1 + "<rss>Zürich</rss>".encode("latin-1"), "", True),  # real Latin-1
        (LATIN1 + GOOD, "", False),  # the declaration belied by UTF-8 text
        (LATIN1 + b"<rss>Zurich</rss>", "text/xml; charset=latin1", True),
        (b'<?xml version="1.0" encoding="no-such"?><rss/>', "", False),
    ],
)
def test_lxml_reads_a_feed_only_where_its_encoding_is_agreed(
    body: bytes, content_type: str, agreed: bool
) -> None:
    assert encoding_agreed(body, content_type) is agreed


@pytest.mark.parametrize(
    ("body", "content_type", "mended", "count"),
    [
        # A few Latin-1 bytes in a UTF-8 feed: each becomes U+FFFD, the rest stays.
        (UTF8 + GOOD + b"<x>Caf\xe9</x>", "", UTF8 + GOOD + "<x>Caf\ufffd</x>".encode(), 1),
        # A U+FFFD the feed wrote itself is no byte mended.
        (
            GOOD + "<x>\ufffd</x>".encode() + b"<y>\xe9</y>",
            "text/xml; charset=utf-8",
            GOOD + "<x>\ufffd</x><y>\ufffd</y>".encode(),
            1,
        ),
        # A lead byte cut short just before one: the lead byte alone is mended.
        (GOOD + b"<x>\xe2\xef\xbf\xbd</x>", "", GOOD + "<x>\ufffd\ufffd</x>".encode(), 1),
        # Mostly not UTF-8: a Latin-1 feed that says UTF-8, left to feedparser.
        (UTF8 + "<x>Zürich café São Genève</x>".encode("latin-1") + "é".encode(), "", None, 0),
        # Nothing to mend: valid UTF-8, ASCII, or not a UTF-8 feed at all.
        (UTF8 + GOOD, "", None, 0),
        (UTF8 + b"<rss/>", "", None, 0),
        (LATIN1 + GOOD + b"\xe9", "", None, 0),
        (UTF8 + GOOD + b"\xe9", "text/xml; charset=windows-1252", None, 0),
    ],
)
def test_a_utf8_feed_has_its_few_stray_bytes_mended(
    body: bytes, content_type: str, mended: bytes | None, count: int
) -> None:
    assert mend_utf8(body, content_type) == (mended or body, count)
