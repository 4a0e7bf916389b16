"""Bounces after the fact: read delivery status notifications (RFC 3464) from a mailbox.

A remote server that accepted a message may still refuse it later and mail back a DSN. The
per-recipient blocks of its ``message/delivery-status`` part say which address failed and
why; an address that is dead (enhanced status 5.1.x, or 5.2.1 "mailbox disabled") is
suppressed, like a hard bounce during the SMTP dialogue. Other permanent failures (policy,
full mailbox) are reported but do not suppress: they may pass another day.

Anyone can mail a DSN, so one is believed only with proof that it answers our own mail: the
VERP address it came back to (whose signed token names the reader), or the Message-ID of a
digest it quotes (``quoted_message_ids``); ``digest.deliver.inbound`` weighs that proof.
Parsing here stays pure: a Message in, plain records out.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from digest.errors import DigestError

_DEAD = re.compile(r"^5\.(?:1\.(?:0|1|2|3|6|10)|2\.1)$")
_ADDRESS = re.compile(r"^\s*(?:rfc822\s*;)?\s*<?([^<>\s;]+@[^<>\s;]+)>?\s*$", re.I)


@dataclass(frozen=True)
class Bounce:
    """One failed recipient named by a DSN."""

    address: str
    status: str  # the enhanced status code, such as 5.1.1
    diagnostic: str

    @property
    def dead(self) -> bool:
        """True when the address itself no longer exists: it should be suppressed."""
        return bool(_DEAD.match(self.status))


def verp_recipient(message: Message) -> str | None:
    """The VERP address a bounce was sent back to (its To), if it is one."""
    for header in ("Delivered-To", "X-Original-To", "To"):
        value = str(message.get(header, ""))
        match = re.search(r"bounce\+[^@\s<>]+@[^\s<>,]+", value)
        if match:
            return match.group(0)
    return None


def is_report(message: Message) -> bool:
    """True for a delivery status notification, failed or not (a "delayed" one too)."""
    return any(p.get_content_type() == "message/delivery-status" for p in message.walk())


def quoted_message_ids(message: Message) -> set[str]:
    """The Message-IDs of the returned message a DSN quotes, as ``<id>``.

    MTAs return the message (message/rfc822), its headers (text/rfc822-headers), or, the
    older ones, its headers pasted into the text: all three are read. The DSN's own
    Message-ID is not among them.
    """
    found: set[str] = set()
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            for quoted in inner if isinstance(inner, list) else []:
                if isinstance(quoted, Message) and quoted.get("Message-ID"):
                    found.add(_message_id(str(quoted["Message-ID"])))
        elif kind in ("text/rfc822-headers", "text/plain"):
            found.update(_message_id(m) for m in _QUOTED_ID.findall(part_text(part)))
    found.discard("")
    return found


_QUOTED_ID = re.compile(r"^[ \t>]*Message-ID:\s*(<[^<>\s]+>|[^\s<>]+)", re.I | re.M)


def _message_id(value: str) -> str:
    match = re.search(r"<[^<>\s]+>", value)
    if match:
        return match.group(0)
    value = value.strip()
    return f"<{value}>" if value and " " not in value else ""


def part_text(part: Message) -> str:
    """A leaf part's text, transfer-decoded; at most a megabyte of it."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data[:1_000_000].decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return data[:1_000_000].decode("utf-8", errors="replace")


def read_message(data: bytes) -> Message:
    """One message as an MTA pipes it (a leading mbox ``From `` line is fine)."""
    return email.message_from_bytes(data, policy=email.policy.compat32)


def bounces_in(message: Message) -> list[Bounce]:
    """The failed recipients a message reports; [] when it is not a DSN."""
    found = []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        for block in blocks:
            if not isinstance(block, Message):
                continue
            recipient = block.get("Final-Recipient") or block.get("Original-Recipient")
            action = str(block.get("Action", "")).strip().lower()
            status = str(block.get("Status", "")).strip().split(" ")[0]
            match = _ADDRESS.match(str(recipient or ""))
            if match and action == "failed" and status.startswith("5."):
                diagnostic = " ".join(str(block.get("Diagnostic-Code", "")).split())
                found.append(Bounce(match.group(1).lower(), status, diagnostic))
    return found


def read_mailbox(path: Path) -> Iterator[Message]:
    """Every message of a Maildir (a folder with cur/ and new/) or an mbox file; a file
    that does not start as an mbox does ("From ") is one message saved on its own (a mail
    client's .eml), read whole rather than found empty."""
    if path.is_dir():
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise DigestError(
                f"{path} is a folder but not a Maildir (no cur/ or new/)",
                "point at the Maildir that receives the bounces, or an mbox file",
            )
        box: mailbox.Mailbox[mailbox.Message] = mailbox.Maildir(
            str(path), factory=None, create=False
        )
    elif path.is_file():
        with path.open("rb") as file:
            start = file.read(5)
        if start and start != b"From ":
            yield read_message(path.read_bytes())
            return
        box = mailbox.mbox(str(path), factory=None, create=False)
    else:
        raise DigestError(f"no mailbox at {path}", "give the Maildir folder or mbox file path")
    for key in box.iterkeys():
        yield read_message(box.get_bytes(key))
