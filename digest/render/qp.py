"""Quoted-printable for message bodies, in pieces that can be joined by soft line breaks.

A personalised body is static pieces and recipient values joined by ``=`` CRLF (a soft
break, which a decoder removes). The ``=`` lands at the end of the line the piece before it
ended with, so every piece leaves its last line one column short of RFC 2045's 76: joined,
no line is longer than 76. The clip guard measures the HTML with this same function.
"""

from __future__ import annotations

import binascii

CRLF = b"\r\n"
SOFT_BREAK = b"=\r\n"
MAX_LINE = 76  # RFC 2045 6.7 rule 5, the soft break's "=" included


def encode(text: str) -> bytes:
    """``text`` as UTF-8 quoted-printable with CRLF line ends; its last line has room for
    the ``=`` of a soft break after it."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    body = text.encode("utf-8")
    encoded = binascii.b2a_qp(body, istext=True)
    start = encoded.rfind(b"\n") + 1 if len(encoded) >= MAX_LINE else 0  # of the last line
    if len(encoded) - start >= MAX_LINE:
        # b2a_qp filled the last line to 76: break it earlier, never inside an "=XX" escape.
        cut = start + MAX_LINE - 2
        while b"=" in encoded[cut - 2 : cut]:
            cut -= 1
        encoded = encoded[:cut] + b"=\n" + encoded[cut:]
    return encoded.replace(b"\n", CRLF)
