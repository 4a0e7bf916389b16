"""One thread drives every SMTP session of a batch: it writes each session's next commands
and message, waits on all of them at once (``selectors``) and handles whichever answers.

Why one thread and not one a session: into Postfix's smtp-sink, 10 sessions in 10 threads
took 35-42 us of CPU a message, one thread 13-14 us (bench/README.md, "One thread for every
session"): ten threads hand the GIL to each other at every read and write, and on two cores
shared with the sink and the database that CPU is what a send waits for.

Each session (a ``_Lane``, as a thread was) sends a message's MAIL, RCPT and DATA in one
write when the server offers PIPELINING (one at a time otherwise), then the dot-stuffed
body with the next message's MAIL, RCPT and DATA behind its final dot (RFC 2920: one write
and one wait a message). What each outcome means, unchanged from the session-per-thread
transport:

- a refused MAIL, RCPT or DATA is that message's result (4xx deferred, 5xx failed, 5.1.x a
  hard bounce); the session is RSET (or closed, when a pipelining server took DATA anyway);
- the session ends before the final dot is sent (the line drops, the server closes it or
  answers 421): the server kept nothing, so the message is tried once more on a fresh
  session, and deferred if that ends too ("connection lost twice");
- no answer (or our bytes not taken) within ``timeout_seconds`` before the final dot: the
  message is deferred and the session closed;
- after the final dot, no reply (the line drops, or the timeout passes): the server may have
  queued it, so it fails as "fate unknown", never sent again on its own; a 421 there is the
  server's refusal: tried once more on a fresh session;
- commands sent ahead on a session that ends are void: that message goes out afresh;
- a session that cannot be opened (DeliveryError) stops the batch: the other sessions
  finish the messages they hold, and the error carries every result so far.
"""

from __future__ import annotations

import contextlib
import selectors
import smtplib
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from enum import Enum, auto

from digest.deliver.smtp_wire import (
    EXPECTED,
    Lost,
    Replies,
    Stalled,
    close_quietly,
    commands,
    deferred,
    dot_stuffed,
    fate_unknown,
    invalid,
    judged,
    receive,
    reply_text,
    send,
    unsafe,
)
from digest.errors import DeliveryError
from digest.records import OutgoingMessage, SendResult
from digest.states import SendStatus


class _Wait(Enum):
    """What a session waits for."""

    NOTHING = auto()  # no message in flight
    COMMANDS = auto()  # the replies to MAIL, RCPT and DATA
    DOT = auto()  # the reply to the final dot
    RESET = auto()  # the reply to RSET


class _Lane:
    """One session's share of the batch, as one thread's was: the session, the message it
    sends, and the one taken to go behind its final dot (``taken``: once taken, this
    lane's to finish, a stop notwithstanding)."""

    def __init__(self) -> None:
        self.client: smtplib.SMTP | None = None
        self.sock: socket.socket | None = None  # the client's, kept to unregister it
        self.pipelining = False
        self.replies = Replies()
        self.wait = _Wait.NOTHING
        self.index = -1  # the message in flight
        self.got: list[tuple[int, bytes]] = []  # its replies so far
        self.left: list[bytes] = []  # its commands not yet sent (no pipelining)
        self.taken: int | None = None
        self.ahead = False  # the taken message's commands went out behind the dot
        self.attempt = 1  # 2: the message is on its second session
        self.first = ""  # why its first session ended
        self.deadline = 0.0
        self.done = False


class Drive:
    """Sends one batch over ``clients`` (one lane each). A lane whose session ended takes
    another (``take``: a pooled one or a new one) for its next message; a message tried
    again goes out on a new one (``connect``); either may raise DeliveryError, which stops
    the batch. ``run`` returns the results in the batch's order, or raises the error that
    stopped it; ``kept`` is then the sessions still open, for the pool."""

    def __init__(
        self,
        messages: Sequence[OutgoingMessage],
        clients: list[smtplib.SMTP],
        take: Callable[[], smtplib.SMTP],
        connect: Callable[[], smtplib.SMTP],
        timeout: float,
    ) -> None:
        self.messages = messages
        self.take = take
        self.connect = connect
        self.kept: list[smtplib.SMTP] = []
        self.timeout = timeout
        self.todo = deque(range(len(messages)))
        self.results: list[SendResult | None] = [None] * len(messages)
        self.stopping = False
        self.error: BaseException | None = None
        self.selector = selectors.DefaultSelector()
        self.lanes = [_Lane() for _ in clients]
        for lane, client in zip(self.lanes, clients, strict=True):
            self._use(lane, client)

    def run(self) -> list[SendResult]:
        """Every message sent (or the batch stopped): the results, in the batch's order."""
        try:
            for lane in self.lanes:
                self._guarded(lane, lambda lane: None)
            while any(lane.wait is not _Wait.NOTHING for lane in self.lanes):
                self._round()
        finally:
            self.selector.close()
            self.kept = [lane.client for lane in self.lanes if lane.client is not None]
        done = [r for r in self.results if r is not None]
        if self.error is not None:
            if isinstance(self.error, DeliveryError):
                self.error.results = list(done)
            raise self.error
        return done

    # --- the loop ---------------------------------------------------------------------------

    def _round(self) -> None:
        """Wait for any session's bytes (or the nearest deadline); handle what came."""
        waiting = [lane for lane in self.lanes if lane.wait is not _Wait.NOTHING]
        wait = min(lane.deadline for lane in waiting) - time.monotonic()
        ready = {key.data for key, _ in self.selector.select(max(0.0, wait))}
        for lane in ready:
            self._guarded(lane, self._readable)
        now = time.monotonic()
        for lane in waiting:
            if lane in ready or lane.wait is _Wait.NOTHING or lane.deadline > now:
                continue
            # A write that blocked may have kept the loop from this session's reply: a
            # stall only when nothing has come.
            if not self._has_bytes(lane):
                self._guarded(lane, lambda lane: self._failed(lane, Stalled("waiting for a reply")))

    def _has_bytes(self, lane: _Lane) -> bool:
        sock = lane.sock
        if sock is None:
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True
        probe = selectors.DefaultSelector()
        try:
            probe.register(sock, selectors.EVENT_READ)
            return bool(probe.select(0))
        finally:
            probe.close()

    def _guarded(self, lane: _Lane, step: Callable[[_Lane], None]) -> None:
        """One step of one lane, then its next message out if it has none in flight; an
        error that stops the batch stops this lane at once and the others after the
        messages they hold."""
        try:
            step(lane)
            self._advance(lane)
        except BaseException as exc:
            self.stopping = True
            if self.error is None:
                self.error = exc
            self._close(lane)
            lane.wait, lane.done = _Wait.NOTHING, True

    def _readable(self, lane: _Lane) -> None:
        client = lane.client
        assert client is not None
        if lane.wait is _Wait.NOTHING:
            # Done with its messages, the session spoke (the server closed it, most
            # likely): it is not fit for the pool, and no message's result changes.
            self._close(lane)
            return
        try:
            replies = lane.replies.feed(receive(client))
        except (Stalled, Lost) as exc:
            self._failed(lane, exc)
            return
        lane.deadline = time.monotonic() + self.timeout
        for code, text in replies:
            self._advance(lane)  # the message whose commands went behind the last dot
            if lane.client is not client or lane.wait is _Wait.NOTHING:
                return  # the session ended on an earlier reply: the rest are void
            self._reply(lane, code, text)

    # --- one lane ---------------------------------------------------------------------------

    def _next(self) -> int | None:
        """The next message of the batch for a lane (None: none left, or stopping)."""
        if self.stopping or not self.todo:
            return None
        return self.todo.popleft()

    def _advance(self, lane: _Lane) -> None:
        """The lane's next message on the wire, or the lane done (its session kept)."""
        while lane.wait is _Wait.NOTHING and not lane.done:
            sent = False
            if lane.taken is not None:
                index, sent, lane.taken, lane.ahead = lane.taken, lane.ahead, None, False
            else:
                next_index = self._next()
                if next_index is None:
                    lane.done = True
                    return
                index = next_index
            if lane.client is None:
                sent = False
                self._use(lane, self.take())
            lane.attempt, lane.first = 1, ""
            self._begin(lane, index, sent)

    def _use(self, lane: _Lane, client: smtplib.SMTP) -> None:
        lane.client, lane.sock = client, client.sock
        lane.pipelining = client.has_extn("pipelining")
        lane.replies = Replies()
        assert client.sock is not None
        self.selector.register(client.sock, selectors.EVENT_READ, lane)

    def _close(self, lane: _Lane) -> None:
        """End the lane's session (commands sent ahead on it are void)."""
        client, sock, lane.client, lane.sock = lane.client, lane.sock, None, None
        lane.ahead = False
        if client is None:
            return
        if sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(sock)
        close_quietly(client)

    def _begin(self, lane: _Lane, index: int, sent: bool) -> None:
        """The message's MAIL, RCPT and DATA on the wire (``sent``: they went out already,
        behind the message before)."""
        message = self.messages[index]
        lane.index, lane.got = index, []
        if unsafe(message):
            self.results[index] = invalid(message)
            return
        client = lane.client
        assert client is not None
        lane.wait = _Wait.COMMANDS
        lane.deadline = time.monotonic() + self.timeout
        try:
            if lane.pipelining:
                lane.left = []
                if not sent:
                    send(client, b"".join(commands(message)))
            else:
                first, *lane.left = commands(message)
                send(client, first)
        except (Stalled, Lost) as exc:
            self._failed(lane, exc)

    def _reply(self, lane: _Lane, code: int, text: bytes) -> None:
        if lane.wait is _Wait.COMMANDS:
            self._command_reply(lane, code, text)
        elif lane.wait is _Wait.DOT:
            self._dot_reply(lane, code, text)
        else:  # RSET answered: the session is clean for the next message
            lane.wait = _Wait.NOTHING

    def _command_reply(self, lane: _Lane, code: int, text: bytes) -> None:
        lane.got.append((code, text))
        ok = EXPECTED[len(lane.got) - 1]
        if lane.pipelining and len(lane.got) < len(EXPECTED):
            return
        if not lane.pipelining and code in ok and lane.left:
            self._write(lane, lane.left.pop(0))
            return
        message = self.messages[lane.index]
        for (got, said), wanted in zip(lane.got, EXPECTED, strict=False):
            if got in wanted:
                continue
            if got == 421:  # the server is closing this session
                self._failed(lane, Lost(f"421 {reply_text(said)}"))
                return
            self.results[lane.index] = judged(message, got, reply_text(said))
            if lane.got[-1][0] == 354:  # a pipelining server that took DATA anyway
                self._close(lane)
                lane.wait = _Wait.NOTHING
            else:
                lane.wait = _Wait.RESET
                self._write(lane, b"RSET\r\n")
            return
        # Every command taken: the body, and the next message's commands behind its dot.
        if lane.pipelining and lane.taken is None:
            lane.taken = self._next()
        after = self.messages[lane.taken] if lane.pipelining and lane.taken is not None else None
        if after is not None and unsafe(after):
            after = None  # it goes out alone next, and fails there with the reason
        then = b"".join(commands(after)) if after is not None else b""
        lane.wait = _Wait.DOT
        lane.deadline = time.monotonic() + self.timeout
        client = lane.client
        assert client is not None
        try:
            send(client, *dot_stuffed(message.data, message.crlf, message.dot_safe, then))
        except (Stalled, Lost) as exc:
            lane.wait = _Wait.COMMANDS  # not all of it went out: the server kept nothing
            self._failed(lane, exc)
            return
        lane.ahead = after is not None

    def _dot_reply(self, lane: _Lane, code: int, text: bytes) -> None:
        message = self.messages[lane.index]
        if code == 421:  # an answer: the server refuses the message and closes the session
            lane.wait = _Wait.COMMANDS  # tried once more, as one never sent
            self._failed(lane, Lost(f"421 {reply_text(text)}"))
            return
        if code != 250:
            self.results[lane.index] = judged(message, code, reply_text(text))
        else:
            self.results[lane.index] = SendResult(
                message.delivery_id, SendStatus.SENT, f"{code} {reply_text(text)}"
            )
        lane.wait = _Wait.NOTHING

    def _write(self, lane: _Lane, data: bytes) -> None:
        """A command on the lane's session; a failure ends the session."""
        client = lane.client
        assert client is not None
        try:
            send(client, data)
        except (Stalled, Lost) as exc:
            if lane.wait is _Wait.RESET:  # the message has its result: only the session ends
                self._close(lane)
                lane.wait = _Wait.NOTHING
            else:
                self._failed(lane, exc)

    def _failed(self, lane: _Lane, exc: Stalled | Lost) -> None:
        """The session ended (or stalled) while waiting: what that means for its message
        depends on how far it got (see the module's docstring)."""
        waited = lane.wait
        self._close(lane)
        lane.wait = _Wait.NOTHING
        message = self.messages[lane.index]
        if waited in (_Wait.RESET, _Wait.NOTHING):
            pass  # the message has its result
        elif waited is _Wait.DOT:
            self.results[lane.index] = fate_unknown(message, exc, self.timeout)
        elif lane.attempt == 2:
            why = f"connection lost twice ({lane.first}; then {exc or type(exc).__name__})"
            self.results[lane.index] = deferred(message, why)
        elif isinstance(exc, Stalled):
            why = f"timed out after {self.timeout:g} s: {exc}"
            self.results[lane.index] = deferred(message, why)
        else:
            # The server kept nothing: one more try on a fresh session. DeliveryError from
            # connect stops the batch, and this message's row stays pending.
            first = str(exc) or type(exc).__name__
            self._use(lane, self.connect())
            lane.attempt, lane.first = 2, first
            self._begin(lane, lane.index, False)
