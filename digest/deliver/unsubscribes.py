"""Unsubscribe requests by mail: replies to the ``mailto:`` of List-Unsubscribe.

Every message advertises ``mailto:ADDRESS?subject=unsubscribe%20TOKEN``. A mail client
answers it with that subject (some prefix ``Re:``, some carry the words in the body), so a
request is a message to that address, or one whose subject says "unsubscribe", and its
token is looked for in the subject first, then the body. The token (signed, per reader) is
the only proof of who asks: the sender's address is not, since anyone can write any From.

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
    """An out-of-office answer (RFC 3834 ``auto-replied``, or the older X- headers): it may
    quote a digest, links and all, and is never a request."""
    auto = str(message.get("Auto-Submitted", "")).strip().lower()
    return auto.startswith("auto-replied") or any(
        message.get(h) is not None for h in ("X-Autoreply", "X-Autorespond")
    )


def is_unsubscribe_request(message: Message, unsubscribe_address: str) -> bool:
    """A message sent to the unsubscribe address, or whose subject asks to unsubscribe."""
    wanted = unsubscribe_address.strip().lower()
    headers = ("To", "Cc", "Delivered-To", "X-Original-To")
    values = [str(v) for h in headers for v in message.get_all(h, [])]
    if any(address.lower() == wanted for _, address in getaddresses(values)):
        return True
    return bool(_WORD.search(subject_of(message)))


def token_candidates(message: Message) -> Candidates:
    """The strings shaped like a signed token, in the subject and in the text of the body
    (plain or HTML; ``%20`` and ``&amp;`` as a client may leave them undone)."""
    subject = _tokens(subject_of(message))
    body: list[str] = []
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            body.extend(t for t in _tokens(part_text(part)) if t not in body)
        if len(body) >= _MOST_CANDIDATES:
            break
    return Candidates(tuple(subject), tuple(body[:_MOST_CANDIDATES]))


def _tokens(text: str) -> list[str]:
    text = html.unescape(unquote(text))
    found: list[str] = []
    for match in _TOKEN.finditer(text):
        if match.group(0) not in found:
            found.append(match.group(0))
        if len(found) >= _MOST_CANDIDATES:
            break
    return found
