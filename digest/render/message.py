"""Build the MIME message once per edition; make each recipient's bytes by substitution.

``build_template`` renders the whole body once: both parts quoted-printable encoded, split
at the personalisation tokens. ``personalise`` then joins those prebuilt byte strings with
the recipient's few encoded values between them, behind soft line breaks (``=`` CRLF, which
a QP decoder removes), so no line passes RFC 2045's 76 columns whatever the values' length.
No template render, CSS inlining, body encoding or EmailMessage build happens per recipient.
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass
from email.errors import MessageError
from email.utils import formataddr, parseaddr

from digest.records import MessageFields, Recipient, RenderedEdition
from digest.render import qp
from digest.render.headers import (
    HeaderInjection,
    UnsendableRecipient,
    address_header,
    check_address,
    date_now,
    header,
    make_message_id,
    text_header,
)
from digest.render.i18n import DEFAULT_LOCALE, Localizer, first_name
from digest.render.qp import CRLF, SOFT_BREAK
from digest.render.tokens import GREETING, PATTERN, PREFERENCES_URL, UNSUBSCRIBE_URL, defuse

# A slot is (token, is_html): where one recipient value goes, and whether it is HTML-escaped.
Slot = tuple[str, bool]


@dataclass(frozen=True)
class MessageTemplate:
    """One edition's message, ready to personalise: static bytes with slots between them."""

    sender: str
    domain: str
    common_headers: bytes
    pieces: tuple[bytes, ...]
    slots: tuple[Slot, ...]
    message_id_prefix: str
    locale: str = DEFAULT_LOCALE  # language of the greeting
    message_key: str = ""  # the edition's random key ("": an edition built without one)
    # The same message as fields, for HTTP APIs (``fields``); bodies keep their tokens.
    from_header: str = ""
    reply_to: str | None = None
    subject: str = ""
    text: str = ""
    html: str = ""  # its tokens spelled as html_token(token)
    list_id: str = ""
    # No line of the template's own bytes starts with a dot (qp.encode escapes them), so
    # neither does a personalised message's: the SMTP transport need not dot-stuff it.
    dot_safe: bool = False

    def message_id(self, recipient: Recipient, delivery_id: int) -> str:
        """The Message-ID of one delivery: ``<digest.EDITION.DELIVERY.UNIQUE@domain>``.

        UNIQUE hashes the delivery with the recipient's unsubscribe link, which only the
        service secret and their random public id make (no reader has it), and with the
        edition's random key, so a copy of the database with the same secret (a staging
        install) does not repeat the ids of editions it builds after the copy. Every
        attempt at one delivery row gets the same id, so a message sent again after a crash
        keeps its id (a client shows one copy, and a bounce of either copy matches the id
        stored on the row).
        """
        readable = f"{self.message_id_prefix}.{delivery_id}"
        # An edition built before editions had a key has none: its ids stay as they were.
        edition = f"{self.message_key}\n" if self.message_key else ""
        key = f"{readable}\n{edition}{recipient.unsubscribe_url}"
        return make_message_id(readable, self.domain, key)

    def fields(self, recipient: Recipient) -> MessageFields:
        """One recipient's message as fields, with each token's value for them."""
        with _OneRecipient(recipient):
            check_address(recipient.email)
            raw = token_values(self.locale, recipient)
        values = dict(raw)
        values.update({html_token(t): html.escape(v) for t, v in raw.items()})
        return MessageFields(
            sender=self.from_header,
            reply_to=self.reply_to,
            to=recipient.email,
            to_name=recipient.name,
            subject=self.subject,
            text=self.text,
            html=self.html,
            headers={
                "List-Unsubscribe": (
                    f"<{recipient.unsubscribe_url}>, <{recipient.unsubscribe_mailto}>"
                ),
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "List-Id": self.list_id,
            },
            values=values,
        )

    def personalise(self, recipient: Recipient, delivery_id: int) -> tuple[str, bytes]:
        """(Message-ID, message bytes with CRLF line ends) for one recipient."""
        message_id = self.message_id(recipient, delivery_id)
        with _OneRecipient(recipient):
            values = {}
            for token, value in token_values(self.locale, recipient).items():
                plain = SOFT_BREAK + qp.encode(value) + SOFT_BREAK
                escaped = html.escape(value)  # a URL or a plain name: the same, encoded once
                values[token, False] = plain
                values[token, True] = (
                    plain if escaped == value else SOFT_BREAK + qp.encode(escaped) + SOFT_BREAK
                )
            personal = [
                address_header("To", recipient.name, recipient.email),
                header("Message-ID", message_id),
                header("Date", date_now()),
                header(
                    "List-Unsubscribe",
                    f"<{recipient.unsubscribe_url}>, <{recipient.unsubscribe_mailto}>",
                ),
            ]
        out = [*personal, self.common_headers, self.pieces[0]]
        for slot, piece in zip(self.slots, self.pieces[1:], strict=True):
            out.append(values[slot])
            out.append(piece)
        return message_id, b"".join(out)


class _OneRecipient:
    """Turns an error from one recipient's data into UnsendableRecipient: that row fails with
    the reason and the send goes on. ValueError (UnicodeError among them) and the email
    package's errors come from the data; anything else is a bug, and stops the send.

    A class, not @contextmanager: it runs once per message, and a generator costs more.
    """

    def __init__(self, recipient: Recipient) -> None:
        self.email = recipient.email

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _: object
    ) -> None:
        if exc is None or isinstance(exc, HeaderInjection):
            return
        if isinstance(exc, ValueError | MessageError):
            raise UnsendableRecipient(
                f"the message to {self.email!r} cannot be built: {exc}"
            ) from exc


def html_token(token: str) -> str:
    """The HTML body's spelling of a token: never contains the text spelling, so a
    provider's substitution of one cannot touch the other."""
    return token.replace("DIGESTx", "DIGESTxHx", 1)


def _encode_part(body: str, is_html: bool) -> tuple[list[bytes], list[Slot]]:
    """QP-encode one part between its tokens: n+1 static pieces around n slots."""
    parts = PATTERN.split(body.replace("\r\n", "\n").replace("\r", "\n"))
    pieces = [qp.encode(text) for text in parts[0::2]]
    slots = [(token, is_html) for token in parts[1::2]]
    return pieces, slots


def _body(text: str, body_html: str, boundary: bytes) -> tuple[tuple[bytes, ...], tuple[Slot, ...]]:
    """Both parts of multipart/alternative as static pieces and slots."""
    pieces: list[bytes] = [b""]
    slots: list[Slot] = []
    for subtype, body, is_html in (("plain", text, False), ("html", body_html, True)):
        part_pieces, part_slots = _encode_part(body, is_html)
        pieces[-1] += b"".join(
            (
                CRLF,  # ends the headers, or the previous part
                b"--",
                boundary,
                CRLF,
                f'Content-Type: text/{subtype}; charset="utf-8"'.encode(),
                CRLF,
                b"Content-Transfer-Encoding: quoted-printable",
                CRLF,
                CRLF,
                part_pieces[0],
            )
        )
        pieces.extend(part_pieces[1:])
        slots.extend(part_slots)
    pieces[-1] += CRLF + b"--" + boundary + b"--" + CRLF
    return tuple(pieces), tuple(slots)


def greeting(locale: str, recipient: Recipient) -> str:
    """``Hello Ada,`` in the recipient's language (``first_name``: not "Hello Ada
    Lovelace,"), or ``Hello,`` without a name.

    A name that spells a token is defused: a provider that substitutes its values more than
    once, or one token after another, never finds a token inside the greeting.
    """
    loc = Localizer(locale)
    name = first_name(recipient.name) if recipient.name else ""
    return loc.gettext("Hello {name},", name=defuse(name)) if name else loc.gettext("Hello,")


def substitute(
    body: str, recipient: Recipient, *, is_html: bool, locale: str = DEFAULT_LOCALE
) -> str:
    """Put one recipient's links and name where the edition's tokens stand."""
    quote = html.escape if is_html else str
    values = token_values(locale, recipient)
    return PATTERN.sub(lambda m: quote(values[m.group(0)]), body)


def token_values(locale: str, recipient: Recipient) -> dict[str, str]:
    """What each token stands for in one recipient's message."""
    return {
        UNSUBSCRIBE_URL: recipient.unsubscribe_url,
        PREFERENCES_URL: recipient.preferences_url,
        GREETING: greeting(locale, recipient),
    }


def build_template(
    rendered: RenderedEdition,
    *,
    sender: str,
    reply_to: str | None,
    list_name: str,
    list_id: str,
    message_id_prefix: str,
    locale: str = DEFAULT_LOCALE,
    message_key: str = "",
) -> MessageTemplate:
    """The per-edition part of every message: From, Subject, List-* headers, both bodies."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    boundary = f"=_digest_{secrets.token_hex(12)}".encode()
    headers = [
        address_header("From", *parseaddr(sender), strict=False),
        text_header("Subject", rendered.subject, strict=False),
        address_header("List-Id", list_name, list_id, strict=False),
        header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        header("Precedence", "bulk"),
        header("Auto-Submitted", "auto-generated"),
        # Gmail's feedback loop groups complaints by these ids: edition, list, sender.
        header("Feedback-ID", f"{message_id_prefix.replace('.', '-')}:{list_id}:digest:{domain}"),
        header("MIME-Version", "1.0"),
    ]
    if reply_to:
        headers.append(address_header("Reply-To", *parseaddr(reply_to), strict=False))
    headers.append(header("Content-Type", f'multipart/alternative; boundary="{boundary.decode()}"'))
    pieces, slots = _body(rendered.text, rendered.html, boundary)
    common = b"".join(headers)
    return MessageTemplate(
        sender=parseaddr(sender)[1],
        domain=domain,
        common_headers=common,
        pieces=pieces,
        slots=slots,
        message_id_prefix=message_id_prefix,
        locale=locale,
        message_key=message_key,
        from_header=_format_sender(sender),
        reply_to=_format_sender(reply_to) if reply_to else None,
        subject=rendered.subject,
        text=rendered.text,
        html=PATTERN.sub(lambda m: html_token(m.group(0)), rendered.html),
        list_id=f"{_quote_phrase(list_name)} <{list_id}>",
        dot_safe=not any(_dot_first(part) for part in (common, *pieces)),
    )


def _dot_first(data: bytes) -> bool:
    """Some line of ``data`` may start with a dot (its first counts: it may follow a line
    end)."""
    return data.startswith(b".") or b"\n." in data


def _format_sender(value: str) -> str:
    """``Name <address>`` for an API's From or Reply-To field, the name RFC 2047-encoded."""
    name, addr = parseaddr(value)
    return formataddr((name, addr), charset="utf-8") if name else addr


def _quote_phrase(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
