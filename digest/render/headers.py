"""Header lines of the prebuilt message: folded, RFC 2047-encoded where a client needs it,
never carrying a line break of their own.

A mailbox or list header (To, From, Reply-To, List-Id) is a phrase and an ``<address>``:
only the phrase is ever encoded, so a client still reads the address (a whole header as one
encoded word hides it). Free text (a phrase, the Subject) is encoded when it is not ASCII,
when it holds ``=?`` (else a client decodes text shaped like an encoded word, and a headline
changes the subject it shows), or when one word is too long to fold. Every line stays within
78 columns, but for a URL or address that is itself longer.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr

CRLF = b"\r\n"
_WIDTH = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters
_LONGEST_WORD = 60  # a word longer than this cannot be folded under _WIDTH: encode it


class HeaderInjection(ValueError):
    """A header value holds CR or LF: it could smuggle in headers of its own."""


class UnsendableRecipient(HeaderInjection):
    """One recipient's message cannot be built: an address that is not ASCII, say.

    It subclasses HeaderInjection because that is what the dispatcher fails a single row
    on: the row fails with this reason and the rest of the send goes on.
    """


def header(name: str, value: str, strict: bool = True) -> bytes:
    """One header line, folded at spaces near 78 columns: for a structured value (ids,
    URLs), never encoded unless it is not ASCII.

    A per-recipient value with CR or LF (a hostile name in a CSV, say) raises
    HeaderInjection before any byte of it is written, and the dispatcher fails that one row
    with the reason; an edition-wide value (``strict=False``) has its line breaks folded to
    spaces, since it comes from our own config and rendering.
    """
    value = _one_line(name, value, strict)
    return _line(name, value, encode=not value.isascii())


def text_header(name: str, value: str, strict: bool = True) -> bytes:
    """A header of free text (Subject), encoded when ``_needs_encoding`` says: a client
    shows exactly ``value``."""
    value = _one_line(name, value, strict)
    return _line(name, value, encode=_needs_encoding(value))


def address_header(name: str, phrase: str | None, address: str, strict: bool = True) -> bytes:
    """``Name: phrase <address>``, the phrase quoted or encoded as needed, the address plain.

    A recipient's address (``strict``) must be ASCII: one that is not needs SMTPUTF8, which
    digest does not speak, so UnsendableRecipient says so and that one row fails.
    """
    if strict:
        check_address(address)
    elif not address.isascii():  # our own config's: as before, the whole value encoded
        return header(name, formataddr((phrase, address), charset="utf-8"), strict)
    address = _one_line(name, address, strict)
    if not phrase:
        return _line(name, address, encode=False)
    phrase = _one_line(name, phrase, strict)
    if not _needs_encoding(phrase):
        return _line(name, formataddr((phrase, address)), encode=False)
    lines = _encoded(name, phrase).split("\r\n")
    if len(lines[-1]) + len(address) + 3 > _WIDTH:  # " <" and ">"
        lines.append("")
    lines[-1] += f" <{address}>"
    folded = "\r\n".join(lines)
    return f"{name}: {folded}".encode("ascii") + CRLF


def make_message_id(readable: str, domain: str, key: str | None = None) -> str:
    """``<readable.UNIQUE@domain>``: UNIQUE is 128 bits, random, or a hash of ``key``.

    UNIQUE is what makes the id unique and unguessable: a staging database numbers its
    editions and deliveries as production's does (and Gmail hides a message whose
    Message-ID it has seen), and a reader of one message must not work out another
    recipient's id. A ``key`` must itself be secret and unique (so hashing keeps it both);
    the same key gives the same id, so a message sent again keeps it. ``readable``
    (edition and delivery numbers, say) is for whoever reads a mail log.
    """
    unique = secrets.token_bytes(16) if key is None else hashlib.sha256(key.encode()).digest()
    token = base64.urlsafe_b64encode(unique[:16]).rstrip(b"=").decode("ascii")
    return f"<{readable}.{token}@{domain}>"


def date_now() -> str:
    """This moment as a Date header value in UTC: ``Mon, 07 Dec 2026 05:24:27 +0000``
    (RFC 5322 3.3; the ``GMT`` zone name is its obsolete form). Formatted once a second
    (a send stamps thousands of messages a second; formatting was 2 us each)."""
    second = int(time.time())
    if _DATE[0] != second:
        _DATE[:] = [second, format_datetime(datetime.fromtimestamp(second, UTC))]
    return str(_DATE[1])


_DATE: list[int | str] = [-1, ""]  # the second last formatted, and its header value


def check_address(address: str) -> None:
    """UnsendableRecipient unless ``address`` can go in a header and an SMTP envelope as is:
    a non-ASCII one needs SMTPUTF8, which digest does not speak."""
    if address.isascii():
        return
    if address.rpartition("@")[0].isascii():
        fix = "store it with its domain in ASCII (punycode) form, as input now does"
    else:
        fix = "the part before the @ has no ASCII form"
    raise UnsendableRecipient(
        f"{address!r} is not an ASCII address (sending to it needs SMTPUTF8); {fix}"
    )


def _one_line(name: str, value: str, strict: bool) -> str:
    if "\r" in value or "\n" in value:
        if strict:
            raise HeaderInjection(f"the {name} header would contain a line break: {value[:60]!r}")
        value = " ".join(value.split())
    return value


def _needs_encoding(value: str) -> bool:
    return (
        not value.isascii()
        or "=?" in value
        or (len(value) > _LONGEST_WORD and max(map(len, value.split(" "))) > _LONGEST_WORD)
    )


def _encoded(name: str, value: str) -> str:
    """RFC 2047 encoded words (base64, whole characters in each), one per line, folded so
    each line fits 78 columns after ``Name: `` or a folding space.

    Written out rather than with email.header.Header, which costs several times as much per
    recipient: a short name is one word, one b64encode.
    """
    data = value.encode("utf-8")
    room = _payload(_WIDTH - len(name) - 2)
    if len(data) <= room:
        return _word(data)
    words: list[str] = []
    chunk = b""
    for char in value:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > room:
            words.append(_word(chunk))
            chunk, room = b"", _payload(_WIDTH - 1)
        chunk += encoded
    words.append(_word(chunk))
    return "\r\n ".join(words)


def _payload(width: int) -> int:
    """How many bytes one base64 encoded word carries within ``width`` columns."""
    return (width - len("=?utf-8?b??=")) // 4 * 3


def _word(data: bytes) -> str:
    return f"=?utf-8?b?{base64.b64encode(data).decode('ascii')}?="


def _line(name: str, value: str, encode: bool) -> bytes:
    if encode:
        return f"{name}: {_encoded(name, value)}".encode("ascii") + CRLF
    if len(name) + 2 + len(value) <= _WIDTH:  # most headers: one line as it is
        return f"{name}: {value}".encode("ascii") + CRLF
    lines = [f"{name}:"]
    for word in value.split(" "):
        if len(lines[-1]) + 1 + len(word) > _WIDTH and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += f" {word}"
    return "\r\n".join(lines).encode("ascii") + CRLF
