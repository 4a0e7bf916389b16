"""The ``smtp`` transport: a pool of reused smtplib sessions, each batch driven by one
thread over all of them (``deliver.smtp_drive``, where each outcome's meaning is told).

Why smtplib sessions and not aiosmtplib: measured into Postfix's smtp-sink on this machine
(10,000 prebuilt 41 KB messages, 10 sessions, ``bench/send.py --compare-transports 10000``):
this transport (then one thread a session) 2,888 msg/s, smtplib's own ``sendmail`` in 10
threads 1,554, aiosmtplib with 10 connections 851; Postfix's C ``smtp-source`` 3,276 in the
same run. smtplib opens each session (EHLO, STARTTLS, AUTH); the messages then go over its
socket without it.

A server that cannot be reached, refuses the session (421 at connect) or the login raises
DeliveryError, and the dispatcher leaves the untried rows pending.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from digest.config import Config, SmtpConfig
from digest.deliver.base import register
from digest.deliver.smtp_drive import Drive
from digest.deliver.smtp_wire import close_quietly, reply_text
from digest.errors import DeliveryError
from digest.records import OutgoingMessage, SendResult


class SmtpSender:
    """``connections`` SMTP sessions, opened lazily and kept open across batches."""

    name = "smtp"
    wants_fields = False  # MIME bytes, as they go on the wire

    def __init__(self, settings: SmtpConfig, password: str | None) -> None:
        self.settings = settings
        self.password = password
        self._idle: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        # One thread drives a batch; the others open sessions side by side.
        self._executor = ThreadPoolExecutor(settings.connections, thread_name_prefix="smtp")

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Spread the batch over the sessions; results come back in the batch's order."""
        if not messages:
            return []
        clients = await self._sessions(min(self.settings.connections, len(messages)))
        drive = Drive(messages, clients, self._take, self._connect, self.settings.timeout_seconds)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, drive.run)
        finally:
            with self._lock:
                self._idle.extend(drive.kept)

    async def _sessions(self, count: int) -> list[smtplib.SMTP]:
        """``count`` open sessions: pooled ones first, the rest opened side by side (a TLS
        handshake each: one after another they would add up before the first message)."""
        with self._lock:
            clients = [self._idle.pop() for _ in range(min(count, len(self._idle)))]
        loop = asyncio.get_running_loop()
        opened = await asyncio.gather(
            *(
                loop.run_in_executor(self._executor, self._connect)
                for _ in range(count - len(clients))
            ),
            return_exceptions=True,
        )
        clients += [c for c in opened if isinstance(c, smtplib.SMTP)]
        for outcome in opened:
            if isinstance(outcome, BaseException):  # nothing was sent: every row stays queued
                with self._lock:
                    self._idle.extend(clients)
                raise outcome
        return clients

    def _take(self) -> smtplib.SMTP:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        where = f"{s.host}:{s.port}"
        context = ssl.create_default_context()
        if not s.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        client: smtplib.SMTP | None = None
        try:
            if s.security == "tls":
                client = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout_seconds, context=context
                )
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
            client.ehlo()
            if s.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if s.username:
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
