"""Build the MIME message once per edition; make each recipient's bytes by substitution.

``MessageTemplate`` holds the edition's headers and both bodies with tokens still in them.
``personalise`` swaps the tokens, quoted-printable encodes the two parts (C speed) and
joins prebuilt byte strings: no EmailMessage is built per recipient.
"""

from __future__ import annotations

import binascii
import html
import secrets
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr

from digest.records import Recipient, RenderedEdition
from digest.render.edition import PREFERENCES_URL, RECIPIENT_NAME, UNSUBSCRIBE_URL

CRLF = b"\r\n"


@dataclass(frozen=True)
class MessageTemplate:
    """One edition's message, ready to personalise."""

    sender: str
    domain: str
    common_headers: bytes
    boundary: bytes
    text: str
    html: str
    message_id_prefix: str

    def personalise(self, recipient: Recipient, delivery_id: int) -> tuple[str, bytes]:
        """(Message-ID, message bytes with CRLF line ends) for one recipient."""
        message_id = f"<{self.message_id_prefix}.{delivery_id}@{self.domain}>"
        text = substitute(self.text, recipient, is_html=False)
        body_html = substitute(self.html, recipient, is_html=True)
        headers = b"".join(
            (
                _header("To", _address(recipient.name, recipient.email)),
                _header("Message-ID", message_id),
                _header("Date", formatdate(localtime=False, usegmt=True)),
                _header(
                    "List-Unsubscribe",
                    f"<{recipient.unsubscribe_url}>, <{recipient.unsubscribe_mailto}>",
                ),
                self.common_headers,
            )
        )
        b = self.boundary
        data = b"".join(
            (
                headers,
                CRLF,
                b"--",
                b,
                CRLF,
                b'Content-Type: text/plain; charset="utf-8"',
                CRLF,
                b"Content-Transfer-Encoding: quoted-printable",
                CRLF,
                CRLF,
                _qp(text),
                CRLF,
                b"--",
                b,
                CRLF,
                b'Content-Type: text/html; charset="utf-8"',
                CRLF,
                b"Content-Transfer-Encoding: quoted-printable",
                CRLF,
                CRLF,
                _qp(body_html),
                CRLF,
                b"--",
                b,
                b"--",
                CRLF,
            )
        )
        return message_id, data


def substitute(body: str, recipient: Recipient, *, is_html: bool) -> str:
    """Put one recipient's links and name where the edition's tokens stand."""
    quote = html.escape if is_html else str
    return (
        body.replace(UNSUBSCRIBE_URL, quote(recipient.unsubscribe_url))
        .replace(PREFERENCES_URL, quote(recipient.preferences_url))
        .replace(RECIPIENT_NAME, quote(recipient.name or ""))
    )


def build_template(
    rendered: RenderedEdition,
    *,
    sender: str,
    reply_to: str | None,
    list_name: str,
    list_id: str,
    message_id_prefix: str,
) -> MessageTemplate:
    """The per-edition part of every message: From, Subject, List-* headers, both bodies."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    boundary = f"=_digest_{secrets.token_hex(12)}".encode()
    headers = [
        _header("From", _format_sender(sender)),
        _header("Subject", rendered.subject),
        _header("List-Id", f"{_quote_phrase(list_name)} <{list_id}>"),
        _header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        _header("Precedence", "bulk"),
        _header("Auto-Submitted", "auto-generated"),
        _header("MIME-Version", "1.0"),
    ]
    if reply_to:
        headers.append(_header("Reply-To", _format_sender(reply_to)))
    headers.append(
        _header("Content-Type", f'multipart/alternative; boundary="{boundary.decode()}"')
    )
    return MessageTemplate(
        sender=parseaddr(sender)[1],
        domain=domain,
        common_headers=b"".join(headers),
        boundary=boundary,
        text=rendered.text,
        html=rendered.html,
        message_id_prefix=message_id_prefix,
    )


def _header(name: str, value: str) -> bytes:
    """One header line, folded at spaces near 78 columns; non-ASCII values RFC 2047-encoded."""
    if not value.isascii():
        encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
        return f"{name}: {encoded}".encode("ascii") + CRLF
    lines = [f"{name}:"]
    for word in value.split(" "):
        if len(lines[-1]) + 1 + len(word) > 78 and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += f" {word}"
    return "\r\n".join(lines).encode("ascii") + CRLF


def _qp(text: str) -> bytes:
    body = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(body, istext=True).replace(b"\n", CRLF)


def _address(name: str | None, email: str) -> str:
    return formataddr((name, email), charset="utf-8") if name else email


def _format_sender(value: str) -> str:
    name, addr = parseaddr(value)
    return _address(name or None, addr)


def _quote_phrase(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
