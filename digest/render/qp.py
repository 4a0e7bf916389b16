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
    the ``=`` of a soft break after it, and no line starts with a dot.

    A dot at a line's start is written ``=2E`` (the same text once decoded): SMTP would
    have to double it (dot-stuffing), and a message none of whose lines starts with one
    goes on the wire as it is. The SMTP transport's scan for them was half its CPU per
    41 KB message (bench/README.md, scale.py).
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    body = text.encode("utf-8")
    encoded = binascii.b2a_qp(body, istext=True)
    start = encoded.rfind(b"\n") + 1 if len(encoded) >= MAX_LINE else 0  # of the last line
    if len(encoded) - start >= MAX_LINE or encoded.startswith(b".") or b"\n." in encoded:
        encoded = b"\n".join(_fitted(encoded.split(b"\n")))
    return encoded.replace(b"\n", CRLF)


def _fitted(lines: list[bytes]) -> list[bytes]:
    """The lines with a leading dot escaped, each within 76 columns and the last within 75
    (room for a soft break's ``=``): a line made too long is broken by a soft break, never
    inside an ``=XX`` escape (b2a_qp fills a line to 76, and may put a dot first)."""
    out: list[bytes] = []
    last = len(lines) - 1
    for i, line in enumerate(lines):
        limit = MAX_LINE - 1 if i == last else MAX_LINE
        while True:
            if line.startswith(b"."):
                line = b"=2E" + line[1:]
            if len(line) <= limit:
                break
            cut = MAX_LINE - 2
            while b"=" in line[cut - 2 : cut]:
                cut -= 1
            out.append(line[:cut] + b"=")
            line = line[cut:]
        out.append(line)
    return out
