"""SMTP on the wire: the commands of one message, its dot-stuffed body, the replies read
from a session's bytes, and each reply judged into a message's result. Who sends what
when (the sessions of a batch, retrying on a fresh session) is ``deliver.smtp_drive``'s;
opening sessions and the pool of them is ``deliver.smtp``'s."""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl

from digest.records import OutgoingMessage, SendResult
from digest.states import SendStatus


class Stalled(Exception):
    """The server did not answer (or take our bytes) within the timeout."""


class Lost(Exception):
    """The session ended: the server closed it, the line dropped, or it answered 421."""


# What each of MAIL, RCPT and DATA must be answered with to go on.
EXPECTED = ((250,), (250, 251), (354,))
# smtplib's limit on a reply line: a longer one is not SMTP.
_MAX_LINE = 8192


def commands(message: OutgoingMessage) -> list[bytes]:
    """MAIL, RCPT and DATA of one message, each with its CRLF."""
    return [
        b"MAIL FROM:<%s>\r\n" % message.sender.encode(),
        b"RCPT TO:<%s>\r\n" % message.recipient.encode(),
        b"DATA\r\n",
    ]


def unsafe(message: OutgoingMessage) -> bool:
    """A line break would smuggle commands into the session: never put it on the wire."""
    return bool(_UNSAFE.search(message.sender + message.recipient))


_UNSAFE = re.compile(r"[\r\n<>]")


def invalid(message: OutgoingMessage) -> SendResult:
    """The result of a message whose addresses may not go on the wire."""
    return SendResult(message.delivery_id, SendStatus.FAILED, "invalid address: <, >, CR or LF")


def send(client: smtplib.SMTP, *parts: bytes) -> None:
    """Write ``parts`` on the session, one after the other (blocking, up to the session's
    timeout). On a plain socket in one ``sendmsg`` where it fits, not joined first: a 40 KB
    copy a message, made in the sessions' thread, where the allocator grew and shrank its
    heap for each (``mprotect``: a third of the thread's CPU, bench/README.md)."""
    sock = client.sock
    if sock is None:
        raise Lost("not connected")
    try:
        if isinstance(sock, ssl.SSLSocket):  # no sendmsg through TLS
            sock.sendall(b"".join(parts))
            return
        views = [memoryview(part) for part in parts if part]
        while views:
            sent = sock.sendmsg(views)
            while sent:
                first = len(views[0])
                if sent < first:
                    views[0] = views[0][sent:]
                    break
                sent -= first
                views.pop(0)
    except TimeoutError as exc:
        raise Stalled(f"sending: {exc}") from exc
    except OSError as exc:
        raise Lost(str(exc) or type(exc).__name__) from exc


def receive(client: smtplib.SMTP) -> bytes:
    """What the server sent since, once the session is readable (TLS records decrypted
    whole); raises Lost when the server closed the session."""
    sock = client.sock
    if sock is None:
        raise Lost("not connected")
    try:
        data = sock.recv(65536)
        if isinstance(sock, ssl.SSLSocket):
            while sock.pending():
                data += sock.recv(sock.pending())
    except TimeoutError as exc:  # a TLS record begun and never finished
        raise Stalled(f"waiting for a reply: {exc}") from exc
    except OSError as exc:
        raise Lost(str(exc) or type(exc).__name__) from exc
    if not data:
        raise Lost("Connection unexpectedly closed")
    return data


class Replies:
    """A session's replies, from its bytes as they come: whole replies out (code, text),
    a multi-line reply once its last line is in (its lines' texts joined by LF, as
    smtplib's ``getreply`` gives them)."""

    def __init__(self) -> None:
        self.buffer = b""
        self.texts: list[bytes] = []

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The replies completed by ``data``, in order."""
        lines = (self.buffer + data).split(b"\n")
        self.buffer = lines.pop()
        if len(self.buffer) > _MAX_LINE:
            raise Lost("a reply line longer than 8192 bytes: not an SMTP server")
        out = []
        for line in lines:
            self.texts.append(line[4:].strip(b" \t\r\n"))
            if line[3:4] == b"-":
                continue
            try:
                code = int(line[:3])
            except ValueError:
                code = -1
            out.append((code, b"\n".join(self.texts)))
            self.texts = []
        return out


def dot_stuffed(
    data: bytes, crlf: bool = False, dot_safe: bool = False, then: bytes = b""
) -> tuple[bytes, bytes]:
    """The DATA payload in two parts: the body with CRLF line ends and leading dots
    doubled, then CRLF . CRLF with ``then`` behind it (the next message's commands).
    ``crlf``: the caller vouches the line ends are CRLF already (no need to count them);
    ``dot_safe`` (with ``crlf``): and no line starts with a dot (no need to look for one):
    then the body goes out as the very bytes it was given, not a copy."""
    if not crlf and data.count(b"\n") != data.count(b"\r\n"):
        data = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
    if not (crlf and dot_safe):
        data = data.replace(b"\r\n.", b"\r\n..")
        if data.startswith(b"."):
            data = b"." + data
    end = b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"
    return data, end + then


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


def judged(message: OutgoingMessage, code: int, text: str) -> SendResult:
    """4xx: try again after the wait; 5xx: failed; 5.1.x (no such user or domain): a hard bounce."""
    text = text.strip()
    if 400 <= code < 500:
        status = SendStatus.DEFERRED
    elif code >= 500 and _HARD_BOUNCE.match(text):
        status = SendStatus.BOUNCED
    else:
        status = SendStatus.FAILED
    return SendResult(message.delivery_id, status, f"{code} {text}".strip())


def fate_unknown(message: OutgoingMessage, why: Exception, seconds: float) -> SendResult:
    """The whole message went out but the reply to its final dot never came (``why``): the
    server may have queued it, so it fails and is never sent again on its own."""
    if isinstance(why, Stalled):
        what = f"no reply within {seconds:g} s after the message was sent"
    else:
        what = f"connection lost after the message was sent ({str(why) or type(why).__name__})"
    # Sending it again could deliver it twice: the operator decides, from the log.
    return SendResult(
        message.delivery_id,
        SendStatus.FAILED,
        f"{what}; fate unknown, so it is not sent again: look for Message-ID "
        f"{message.message_id} in the SMTP server's log, and if it is not there, "
        "run `digest retry` for this edition",
    )
