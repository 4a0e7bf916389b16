"""The ``smtp`` transport: a pool of reused smtplib sessions in worker threads.

Why threads and not aiosmtplib: measured into Postfix's smtp-sink on this machine (10,000
prebuilt 41 KB messages, 10 sessions, ``bench/send.py --compare-transports 10000``): this
transport 2,888 msg/s, smtplib's own ``sendmail`` in 10 threads 1,554, aiosmtplib with 10
connections 851; Postfix's C ``smtp-source`` 3,276 in the same run.

Each session sends MAIL, RCPT and DATA in one write when the server offers PIPELINING, then
the dot-stuffed body with the next message's MAIL, RCPT and DATA behind its final dot (RFC
2920: one write and one wait a message, not two). Replies are judged per message: 4xx
defers it (retried after its wait), 5xx fails it with the server's code and text, 5.1.x
marks a hard bounce. A connection that drops before the whole message is sent is reopened
and the message tried once more; if that fails too the message is deferred, never lost
(commands sent ahead on a session that closes are void: that message goes out afresh). A
server that stalls past ``timeout_seconds`` defers the message it stalled on and the run
goes on with a fresh session. Once the final dot is sent, though, the server may have
queued the message: if its reply never comes (the line drops, or the timeout passes) the
message's fate is unknown, so it fails with a reason that tells the operator to check the
server's log and ``digest retry``, and is never sent again on its own. A server that cannot
be reached, refuses the session (421 at connect) or the login raises DeliveryError, and the
dispatcher leaves the untried rows pending.
"""

from __future__ import annotations

import asyncio
import queue
import smtplib
import ssl
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from digest.config import Config, SmtpConfig
from digest.deliver.base import Answered, in_threads, register
from digest.deliver.smtp_wire import (
    FateUnknown,
    Following,
    SenderRefused,
    Stalled,
    close_quietly,
    deferred,
    reply_text,
    transaction,
)
from digest.errors import DeliveryError
from digest.records import OutgoingMessage, SendResult
from digest.states import SendStatus


class SmtpSender:
    """``connections`` SMTP sessions, opened lazily and kept open across batches."""

    name = "smtp"
    wants_fields = False  # MIME bytes, as they go on the wire

    def __init__(self, settings: SmtpConfig, password: str | None) -> None:
        self.settings = settings
        self.password = password
        self._idle: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        self._tls_context: ssl.SSLContext | None = None
        self._executor = ThreadPoolExecutor(settings.connections, thread_name_prefix="smtp")

    async def send_batch(
        self, messages: Sequence[OutgoingMessage], answered: Answered | None = None
    ) -> list[SendResult]:
        """Spread the batch over the pool; results come back in the batch's order, and each
        to ``answered`` from its session's thread as the server's reply comes."""
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in range(len(messages)):
            todo.put(i)
        results: list[SendResult | None] = [None] * len(messages)
        stop = threading.Event()
        workers = min(self.settings.connections, len(messages))
        work = partial(self._worker, todo, messages, results, stop, answered)
        outcomes = await in_threads(self._executor, [work] * workers, stop)
        done = [r for r in results if r is not None]
        for outcome in outcomes:
            if isinstance(outcome, DeliveryError):
                outcome.results = list(done)
                raise outcome
            if isinstance(outcome, BaseException):
                raise outcome
        return done

    def _worker(
        self,
        todo: queue.SimpleQueue[int],
        messages: Sequence[OutgoingMessage],
        results: list[SendResult | None],
        stop: threading.Event,
        answered: Answered | None,
    ) -> None:
        client: smtplib.SMTP | None = None
        # The message taken to go behind the current one's final dot; once taken it is this
        # session's to finish, a stop notwithstanding (its result must come back).
        taken: list[int] = []
        live = False  # its MAIL, RCPT and DATA went out on ``client``: replies pending

        def following() -> OutgoingMessage | None:
            if not taken:
                if stop.is_set():
                    return None
                try:
                    taken.append(todo.get_nowait())
                except queue.Empty:
                    return None
            return messages[taken[0]]

        try:
            while True:
                if taken:
                    i = taken.pop()
                else:
                    if stop.is_set():
                        break
                    try:
                        i = todo.get_nowait()
                    except queue.Empty:
                        break
                    live = False
                if client is None:
                    client, live = self._take(), False
                client, result, live = self._send_one(client, messages[i], live, following)
                results[i] = result
                if answered is not None:
                    answered(messages[i], result)
        except BaseException:
            stop.set()  # the other workers finish their message and stop
            raise
        if client is not None:
            with self._lock:
                self._idle.append(client)

    def _take(self) -> smtplib.SMTP:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _send_one(
        self, client: smtplib.SMTP, message: OutgoingMessage, sent: bool, following: Following
    ) -> tuple[smtplib.SMTP | None, SendResult, bool]:
        """Send on ``client`` (``sent``: its MAIL, RCPT and DATA are out already); returns
        the session to keep using (None: open a new one), the result, and whether the
        ``following`` message's commands went out on that session behind this one.

        When the session is closed, commands sent ahead on it are void: the server got no
        message from them, and the following message goes out afresh."""
        try:
            return self._attempt(client, message, sent, following)
        except Stalled as exc:
            close_quietly(client)
            return (
                None,
                deferred(message, f"timed out after {self.settings.timeout_seconds:g} s: {exc}"),
                False,
            )
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            close_quietly(client)
            first = str(exc) or type(exc).__name__
        # The connection dropped before the final dot was sent (or the server answered 421):
        # the server kept nothing, so one more try on a fresh session. DeliveryError from
        # _connect stops the run, and the dispatcher leaves this message's row pending with
        # the others not tried.
        client = self._connect()
        try:
            return self._attempt(client, message, False, following)
        except (Stalled, smtplib.SMTPServerDisconnected, OSError) as exc:
            close_quietly(client)
            why = f"connection lost twice ({first}; then {exc or type(exc).__name__})"
            return None, deferred(message, why), False

    def _attempt(
        self, client: smtplib.SMTP, message: OutgoingMessage, sent: bool, following: Following
    ) -> tuple[smtplib.SMTP | None, SendResult, bool]:
        """One transaction; a message whose reply to the final dot never came fails."""
        try:
            result, ahead = transaction(client, message, sent, following)
            return client, result, ahead
        except SenderRefused as exc:
            s = self.settings
            hint = (
                "the server wants a login: set delivery.smtp.username, and password_env to "
                "the environment variable that holds the password"
                if not s.username
                else "ask the server's admin to let this login send as that address, or "
                "set [service] sender to one it may use"
            )
            raise DeliveryError(
                f"the SMTP server {s.host}:{s.port} refused the sender <{exc.sender}>: "
                f"{exc.reply}; nothing more is sent until that is fixed",
                hint,
            ) from exc
        except FateUnknown as exc:
            close_quietly(client)
            cause, seconds = exc.__cause__, self.settings.timeout_seconds
            if isinstance(cause, Stalled):
                what = f"no reply within {seconds:g} s after the message was sent"
            else:
                lost = str(cause) or type(cause).__name__
                what = f"connection lost after the message was sent ({lost})"
            # Sending it again could deliver it twice: the operator decides, from the log.
            return (
                None,
                SendResult(
                    message.delivery_id,
                    SendStatus.FAILED,
                    f"{what}; fate unknown, so it is not sent again: look for Message-ID "
                    f"{message.message_id} in the SMTP server's log, and if it is not there, "
                    "run `digest retry` for this edition",
                ),
                False,
            )

    def _tls(self) -> ssl.SSLContext:
        """The sessions' TLS settings, made once (under a lock: the sessions open at once
        from their threads): loading the system's CA certificates takes ~10 ms of CPU, and
        made for each session it held up the first batch of a run (ten sessions opening at
        once) by ~100 ms. Only a session that starts TLS asks for it."""
        with self._lock:
            if self._tls_context is None:
                try:
                    context = ssl.create_default_context()
                except (ssl.SSLError, OSError) as exc:
                    raise DeliveryError(
                        f"cannot load this machine's CA certificates for TLS to the SMTP "
                        f"server: {exc}",
                        "check SSL_CERT_FILE / SSL_CERT_DIR if set, and that the "
                        "ca-certificates package is installed",
                    ) from exc
                if not self.settings.verify_certificate:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                self._tls_context = context
            return self._tls_context

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        where = f"{s.host}:{s.port}"
        client: smtplib.SMTP | None = None
        try:
            if s.security == "tls":
                client = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout_seconds, context=self._tls()
                )
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
            client.ehlo()
            if s.security == "starttls":
                client.starttls(context=self._tls())
                client.ehlo()
            if s.username:
                if not client.has_extn("auth"):
                    close_quietly(client)
                    raise _no_login_offered(s)
                client.login(s.username, self.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            close_quietly(client)
            raise DeliveryError(
                f"the SMTP server {where} refused the login for {s.username!r}: "
                f"{exc.smtp_code} {reply_text(exc.smtp_error)}",
                f"check delivery.smtp.username and the password in ${s.password_env}",
            ) from exc
        except smtplib.SMTPResponseException as exc:
            close_quietly(client)
            raise DeliveryError(
                f"the SMTP server {where} refused the session: "
                f"{exc.smtp_code} {reply_text(exc.smtp_error)}",
                "the server is busy or limits connections: try again later, or lower "
                "delivery.smtp.connections",
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            close_quietly(client)
            raise DeliveryError(
                f"cannot connect to the SMTP server {where} (security {s.security}): {exc}",
                _connect_hint(s.port, s.security, exc),
            ) from exc
        return client

    def check_connection(self) -> str:
        """Connect, say EHLO, start TLS and log in as a send would, then QUIT: nothing is
        sent. What the server said, or DeliveryError with the hint a send would give."""
        client = self._connect()
        try:
            features = ", ".join(sorted(client.esmtp_features)) or "none"
            client.quit()
        except (smtplib.SMTPException, OSError):
            close_quietly(client)
        s = self.settings
        login = f"logged in as {s.username}" if s.username else "no login configured"
        return (
            f"{s.host}:{s.port} answered (security {s.security}, {login}; extensions: {features})"
        )

    async def aclose(self) -> None:
        """QUIT every open session and stop the worker threads."""
        with self._lock:
            idle, self._idle = self._idle, []

        def quit_all() -> None:
            for client in idle:
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError):
                    close_quietly(client)

        await asyncio.get_running_loop().run_in_executor(self._executor, quit_all)
        self._executor.shutdown(wait=False)


@register("smtp")
def _from_config(config: Config) -> SmtpSender:
    return SmtpSender(config.delivery.smtp, config.smtp_password())


def _no_login_offered(s: SmtpConfig) -> DeliveryError:
    """A server that offers no login while the config has one: no connection problem (the
    host, port and up-ness the generic hint names are fine), but a login asked of a server
    that takes none here, or takes one only once TLS is on."""
    if s.security == "none":
        hint = (
            'most servers offer a login only over TLS: set security = "starttls" (port 587) '
            'or "tls" (port 465); for a relay that takes mail without a login, remove '
            "delivery.smtp.username and password_env"
        )
    else:
        hint = (
            "for a relay that takes mail without a login, remove delivery.smtp.username and "
            "password_env; otherwise check that host and port name the server your login is for"
        )
    return DeliveryError(
        f"the SMTP server {s.host}:{s.port} (security {s.security}) offers no login (no AUTH "
        f"in its EHLO reply), but delivery.smtp.username is set",
        hint,
    )


def _connect_hint(port: int, security: str, exc: Exception) -> str:
    """What to change when a session cannot start: the usual mix-up of port and security
    named, else where to look."""
    if isinstance(exc, ssl.SSLError) and "WRONG_VERSION_NUMBER" in str(exc):
        return (
            f'the server on port {port} answered in plain text, not TLS: security = "tls" '
            'is for port 465; for port 587 (or 25) set security = "starttls"'
        )
    if port == 465 and security != "tls":
        return (
            'port 465 wants security = "tls" (TLS from the first byte); "starttls" is for port 587'
        )
    return "check delivery.smtp.host, port and security, and that the server is up"
