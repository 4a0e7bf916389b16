"""Unsubscribe requests by mail: replies to the ``mailto:`` of List-Unsubscribe.

Every message advertises ``mailto:ADDRESS?subject=unsubscribe%20TOKEN``. A mail client
answers it with that subject (some prefix ``Re:``, some carry the words in the body), so a
request is a message sent to that address, and its token is looked for in the subject
first, then the body. The token (signed, per reader) is the only proof of who asks: the
sender's address is not, since anyone can write any From.

Mail servers and responders answer the digest's sender quoting the digest, whose header and
links carry the same token, and its subject may say "unsubscribe" (a headline). So a subject
alone makes no request; a bounce of any kind (``bounce_sign``) and an auto-reply never make
one (postmaster@ in From alone is no bounce in a reply to the mailto: a reader may have
that address); other automatic mail (``automatic_sign``) counts only by the token in its
subject, as a mail provider's one-click request sends the mailto, never by what its body
quotes.

Parsing here stays pure: a Message in, candidate strings out; ``digest.deliver.inbound``
checks the tokens and acts.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr
from urllib.parse import unquote

from digest.deliver.bounces import part_text

# A signed token as digest.links makes them: base64url payload, a dot, base64url signature.
_TOKEN = re.compile(r"(?<![\w.-])[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}(?![\w-])")
_MOST_CANDIDATES = 50  # a body full of token-shaped words costs at most this many checks
_WORD = re.compile(r"\bunsubscribe\b", re.I)
# Senders only mail servers write from: RFC 5321's postmaster, and the MAILER-DAEMON of
# Sendmail, Postfix, qmail and Gmail.
_SERVER_SENDERS = frozenset({"mailer-daemon", "mailer_daemon", "mailerdaemon", "postmaster"})
# Precedence values responders and bulk senders write (RFC 3834 section 3.1.8 reads them).
_AUTOMATIC_PRECEDENCE = frozenset({"bulk", "junk", "auto_reply"})


@dataclass(frozen=True)
class Candidates:
    """The token-shaped strings of a request: the subject's are trusted first."""

    subject: tuple[str, ...]
    body: tuple[str, ...]


def subject_of(message: Message) -> str:
    """The Subject as a person reads it (RFC 2047 words decoded)."""
    raw = str(message.get("Subject", ""))
    try:
        return str(make_header(decode_header(raw)))
    except (ValueError, LookupError):  # a broken encoded word: read it as it is
        return raw


def sender_of(message: Message) -> str:
    """The From address, for the report (never proof of anything)."""
    return parseaddr(str(message.get("From", "")))[1] or "an unknown sender"


def is_automatic_reply(message: Message) -> bool:
    """An out-of-office answer (RFC 3834 ``auto-replied``, the older X- headers, or
    ``Precedence: auto_reply``): it may quote a digest, links and all, and is never a
    request."""
    auto = str(message.get("Auto-Submitted", "")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    return (
        auto.startswith("auto-replied")
        or precedence == "auto_reply"
        or any(message.get(h) is not None for h in ("X-Autoreply", "X-Autorespond"))
    )


def bounce_sign(message: Message, mailto_reply: bool = False) -> str:
    """What shows a message that is no DSN to be a bounce ("" when nothing does): a mail
    server's sender, the null sender (``Return-Path: <>``, RFC 5321's for every
    notification), Exim's X-Failed-Recipients, or a report of another kind. Such mail
    pastes the returned digest below its text, tokens and all.

    ``mailto_reply``: the message went to the unsubscribe address with a token in its
    subject, as the mailto writes it (``is_mailto_reply``). Then a server's name in From
    says nothing on its own: postmaster@ is a mailbox people read, and subscribe with, and
    a bounce carries the returned digest's subject, never the mailto's. The other signs
    still make it a bounce."""
    sender = sender_of(message)
    if not mailto_reply and sender.rpartition("@")[0].lower() in _SERVER_SENDERS:
        return f"from {sender}"
    if str(message.get("Return-Path", "")).strip() == "<>":
        return "from the null sender"
    if message.get("X-Failed-Recipients") is not None:
        return "X-Failed-Recipients"
    if message.get_content_type() == "multipart/report":
        return "a multipart/report"
    return ""


def automatic_sign(message: Message) -> str:
    """What marks a message as sent by a program, not a person ("" when nothing does):
    ``Auto-Submitted`` other than ``no`` (RFC 3834), the older X- headers, or a
    ``Precedence`` of bulk mail or a responder."""
    auto = " ".join(str(message.get("Auto-Submitted", "")).split()).lower()
    if auto and auto.split(";")[0] != "no":
        return f"Auto-Submitted: {auto.split(';')[0]}"
    for header in ("X-Autoreply", "X-Autorespond"):
        if message.get(header) is not None:
            return header
    precedence = str(message.get("Precedence", "")).strip().lower()
    if precedence in _AUTOMATIC_PRECEDENCE:
        return f"Precedence: {precedence}"
    return ""


def is_unsubscribe_request(message: Message, unsubscribe_address: str) -> bool:
    """A message sent to the unsubscribe address: a reply to the List-Unsubscribe mailto.
    A subject that says "unsubscribe" is not enough (``says_unsubscribe``)."""
    wanted = unsubscribe_address.strip().lower()
    headers = ("To", "Cc", "Delivered-To", "X-Original-To")
    values = [str(v) for h in headers for v in message.get_all(h, [])]
    return any(address.lower() == wanted for _, address in getaddresses(values))


def is_mailto_reply(message: Message, unsubscribe_address: str) -> bool:
    """Sent to the unsubscribe address with a token in its subject: what a reply to the
    List-Unsubscribe mailto looks like (whether the token is genuine is checked later)."""
    return is_unsubscribe_request(message, unsubscribe_address) and bool(
        token_candidates(message, body=False).subject
    )


def says_unsubscribe(message: Message) -> bool:
    """The subject has the word: said of mail that was not sent to the unsubscribe address,
    so the report tells a person's misdirected request from the rest."""
    return bool(_WORD.search(subject_of(message)))


def token_candidates(message: Message, body: bool = True) -> Candidates:
    """The strings shaped like a signed token, in the subject and, unless ``body`` is
    False, in the text of the body (plain or HTML; ``%20`` and ``&amp;`` as a client may
    leave them undone)."""
    subject = _tokens(subject_of(message))
    if not body:
        return Candidates(tuple(subject), ())
    found: list[str] = []
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            found.extend(t for t in _tokens(part_text(part)) if t not in found)
        if len(found) >= _MOST_CANDIDATES:
            break
    return Candidates(tuple(subject), tuple(found[:_MOST_CANDIDATES]))


def _tokens(text: str) -> list[str]:
    text = html.unescape(unquote(text))
    found: list[str] = []
    for match in _TOKEN.finditer(text):
        if match.group(0) not in found:
            found.append(match.group(0))
        if len(found) >= _MOST_CANDIDATES:
            break
    return found
