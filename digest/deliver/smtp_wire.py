"""One SMTP transaction on the wire: MAIL, RCPT, DATA (pipelined when the server offers
it, the next message's commands behind the final dot), the dot-stuffed body and the
replies, each judged into a message's result. The session's life (connecting, retrying
on a fresh session, the pool of sessions) is ``deliver.smtp``'s."""

from __future__ import annotations

import contextlib
import re
import smtplib
from collections.abc import Callable

from digest.records import OutgoingMessage, SendResult
from digest.states import SendStatus


class Stalled(Exception):
    """The server did not answer within the timeout."""


class FateUnknown(Exception):
    """The whole message was sent, but the reply to its final dot never came (the cause says
    why): the server may have queued it."""


class SenderRefused(Exception):
    """The server refused MAIL FROM for a reason that holds for every message of the run,
    not for this one's reader: it wants a login (530), or does not let this client send as
    this sender (5.7.x). Every message would fail the same way; the run stops instead and
    leaves them queued for when the cause is fixed."""

    def __init__(self, sender: str, reply: str) -> None:
        super().__init__(reply)
        self.sender = sender
        self.reply = reply


# 530: authentication required (RFC 4954); 5.7.x on MAIL FROM: the sender or this client is
# not allowed (RFC 3463: security or policy status), e.g. "5.7.1 Relaying denied".
_POLICY = re.compile(r"^5\.7\.\d+\b")


def _refuses_the_sender(code: int, text: str) -> bool:
    return code == 530 or (500 <= code < 600 and bool(_POLICY.match(text.strip())))


# The message a session may send next, taken from the batch (None: none left, or stopping).
Following = Callable[[], OutgoingMessage | None]


def _commands(message: OutgoingMessage) -> list[bytes]:
    return [
        f"MAIL FROM:<{message.sender}>".encode(),
        f"RCPT TO:<{message.recipient}>".encode(),
        b"DATA",
    ]


def _unsafe(message: OutgoingMessage) -> bool:
    """A line break would smuggle commands into the session: never put it on the wire."""
    return bool(_UNSAFE.search(message.sender + message.recipient))


def transaction(
    client: smtplib.SMTP,
    message: OutgoingMessage,
    sent: bool = False,
    following: Following | None = None,
) -> tuple[SendResult, bool]:
    """One MAIL/RCPT/DATA exchange; pipelined when the server offers it, the next
    message's commands behind the final dot. ``sent``: this message's commands went out
    behind the last one's. Returns the result and whether the next message's did."""
    if _unsafe(message):
        failed = "invalid address: <, >, CR or LF"
        return SendResult(message.delivery_id, SendStatus.FAILED, failed), False
    pipelining = client.has_extn("pipelining")
    replies = _envelope(client, message, pipelining, sent)
    refused = _refused(client, message, replies)
    if refused is not None:
        return refused, False
    after = following() if pipelining and following is not None else None
    if after is not None and _unsafe(after):
        after = None  # it goes out alone next, and fails there with the reason
    then = b"".join(c + b"\r\n" for c in _commands(after)) if after is not None else b""
    _send(client, _dot_stuffed(message.data, message.crlf, message.dot_safe, then))
    try:
        code, text = _reply(client)
    except (Stalled, smtplib.SMTPServerDisconnected, OSError) as exc:
        raise FateUnknown from exc
    if code == 421:  # an answer: the server refuses the message and closes the session
        raise smtplib.SMTPServerDisconnected(f"421 {reply_text(text)}")
    if code != 250:
        return _result(message, code, reply_text(text)), after is not None
    sent_ok = SendResult(message.delivery_id, SendStatus.SENT, f"{code} {reply_text(text)}")
    return sent_ok, after is not None


# What MAIL, RCPT and DATA are answered when they go through.
_EXPECTED = ((250,), (250, 251), (354,))


def _envelope(
    client: smtplib.SMTP, message: OutgoingMessage, pipelining: bool, sent: bool
) -> list[tuple[int, bytes]]:
    """The replies to the message's MAIL, RCPT and DATA: sent in one write with
    PIPELINING (``sent``: they went out behind the last message's final dot), else one by
    one until one is refused."""
    commands = _commands(message)
    if pipelining:
        if not sent:
            _send(client, b"".join(c + b"\r\n" for c in commands))
        return [_reply(client) for _ in commands]
    replies: list[tuple[int, bytes]] = []
    for command, ok in zip(commands, _EXPECTED, strict=True):
        _send(client, command + b"\r\n")
        replies.append(_reply(client))
        if replies[-1][0] not in ok:
            break
    return replies


def _refused(
    client: smtplib.SMTP,
    message: OutgoingMessage,
    replies: list[tuple[int, bytes]],
) -> SendResult | None:
    """The message's result if a reply to MAIL, RCPT or DATA refused it (the session left
    ready for the next), None if all three went through. A refusal that holds for the
    session or every message is raised: 421 (closing), the sender refused."""
    for n, ((code, text), ok) in enumerate(zip(replies, _EXPECTED, strict=False)):
        if code in ok:
            continue
        if code == 421:  # the server is closing this session
            raise smtplib.SMTPServerDisconnected(f"421 {reply_text(text)}")
        if n == 0 and _refuses_the_sender(code, reply_text(text)):
            close_quietly(client)  # replies to the commands behind MAIL stay unread
            raise SenderRefused(message.sender, f"{code} {reply_text(text).strip()}")
        if replies[-1][0] == 354:  # a pipelining server that took DATA anyway
            client.close()
        else:
            _reset(client)
        return _result(message, code, reply_text(text))
    return None


_UNSAFE = re.compile(r"[\r\n<>]")


def _send(client: smtplib.SMTP, data: bytes) -> None:
    if client.sock is None:
        raise smtplib.SMTPServerDisconnected("not connected")
    try:
        client.sock.sendall(data)
    except TimeoutError as exc:
        raise Stalled(f"sending: {exc}") from exc


def _reply(client: smtplib.SMTP) -> tuple[int, bytes]:
    try:
        return client.getreply()
    except smtplib.SMTPServerDisconnected as exc:
        # smtplib turns a read timeout into a disconnect; tell the two apart.
        if "timed out" in str(exc):
            raise Stalled("waiting for a reply") from exc
        raise


def _dot_stuffed(
    data: bytes, crlf: bool = False, dot_safe: bool = False, then: bytes = b""
) -> bytes:
    """The DATA payload: CRLF line ends, leading dots doubled, ended by CRLF . CRLF, and
    ``then`` behind it (the next message's commands), in one copy.
    ``crlf``: the caller vouches the line ends are CRLF already (no need to count them);
    ``dot_safe`` (with ``crlf``): and no line starts with a dot (no need to look for one)."""
    if not crlf and data.count(b"\n") != data.count(b"\r\n"):
        data = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
    if not (crlf and dot_safe):
        data = data.replace(b"\r\n.", b"\r\n..")
        if data.startswith(b"."):
            data = b"." + data
    end = b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"
    return b"".join((data, end, then))


def _reset(client: smtplib.SMTP) -> None:
    try:
        client.rset()
    except (smtplib.SMTPException, OSError):
        close_quietly(client)


def close_quietly(client: smtplib.SMTP | None) -> None:
    if client is not None:
        with contextlib.suppress(OSError):
            client.close()


def reply_text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def deferred(message: OutgoingMessage, why: str) -> SendResult:
    return SendResult(message.delivery_id, SendStatus.DEFERRED, why)


# RFC 3463 enhanced codes that mean the address itself is dead: bad mailbox (5.1.1), bad
# address syntax (5.1.3), bad or null-MX domain (5.1.2, 5.1.10), moved (5.1.6).
_HARD_BOUNCE = re.compile(r"^5\.1\.(?:0|1|2|3|6|10)\b")


def _result(message: OutgoingMessage, code: int, text: str) -> SendResult:
    """4xx: try again after the wait; 5xx: failed; 5.1.x (no such user or domain): a hard bounce."""
    text = text.strip()
    if 400 <= code < 500:
        status = SendStatus.DEFERRED
    elif code >= 500 and _HARD_BOUNCE.match(text):
        status = SendStatus.BOUNCED
    else:
        status = SendStatus.FAILED
    return SendResult(message.delivery_id, status, f"{code} {text}".strip())
