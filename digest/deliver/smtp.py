"""The ``smtp`` transport: a small pool of reused aiosmtplib connections, per-message reply codes.

4xx replies defer the message (the next run retries it); 5xx fail it with the server's
code and text. A server that cannot be reached or refuses the login raises DeliveryError.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Sequence

import aiosmtplib

from digest.config import Config, SmtpConfig
from digest.deliver.base import register
from digest.errors import DeliveryError
from digest.records import OutgoingMessage, SendResult


class SmtpSender:
    """``connections`` SMTP sessions, opened lazily and kept open across batches."""

    name = "smtp"

    def __init__(self, settings: SmtpConfig, password: str | None) -> None:
        self.settings = settings
        self.password = password
        self._idle: list[aiosmtplib.SMTP] = []

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Spread the batch over the pool; results come back in the batch's order."""
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(messages)):
            queue.put_nowait(i)
        results: list[SendResult | None] = [None] * len(messages)
        workers = min(self.settings.connections, len(messages))
        outcomes = await asyncio.gather(
            *(self._worker(queue, messages, results) for _ in range(workers)),
            return_exceptions=True,
        )
        done = [r for r in results if r is not None]
        for outcome in outcomes:
            if isinstance(outcome, DeliveryError):
                outcome.results = list(done)
                raise outcome
            if isinstance(outcome, BaseException):
                raise outcome
        return done

    async def _worker(
        self,
        queue: asyncio.Queue[int],
        messages: Sequence[OutgoingMessage],
        results: list[SendResult | None],
    ) -> None:
        client = self._idle.pop() if self._idle else await self._connect()
        while not queue.empty():
            i = queue.get_nowait()
            try:
                client, results[i] = await self._send_one(client, messages[i])
            except BaseException:
                client.close()
                raise
        self._idle.append(client)

    async def _send_one(
        self, client: aiosmtplib.SMTP, message: OutgoingMessage
    ) -> tuple[aiosmtplib.SMTP, SendResult]:
        for attempt in (1, 2):
            try:
                errors, reply = await client.sendmail(
                    message.sender, [message.recipient], message.data
                )
            except aiosmtplib.SMTPRecipientsRefused as exc:
                refused = exc.recipients[0]
                return client, _result(message, refused.code, refused.message)
            except aiosmtplib.SMTPResponseException as exc:
                return client, _result(message, exc.code, exc.message)
            except aiosmtplib.SMTPServerDisconnected:
                if attempt == 2:
                    raise DeliveryError(
                        f"the SMTP server {self.settings.host}:{self.settings.port} keeps dropping "
                        "the connection",
                        "check the server's logs and limits",
                    ) from None
                client = await self._connect()
                continue
            if errors:
                code, text = next(iter(errors.values()))
                return client, _result(message, code, text)
            return client, SendResult(message.delivery_id, "sent", reply)
        raise AssertionError("unreachable")

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        if not s.verify_certificate:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            tls_context=context,
            timeout=s.timeout_seconds,
        )
        where = f"{s.host}:{s.port}"
        try:
            await client.connect()
            if s.username:
                await client.login(s.username, self.password or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"the SMTP server {where} refused the login for {s.username!r}: "
                f"{exc.code} {exc.message}",
                f"check delivery.smtp.username and the password in ${s.password_env}",
            ) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"cannot connect to the SMTP server {where} ({s.security}): {exc}",
                "check delivery.smtp.host, port and security, and that the server is up",
            ) from None
        return client

    async def aclose(self) -> None:
        """QUIT every open session."""
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


# RFC 3463 enhanced codes that mean the address itself is dead: bad mailbox (5.1.1), bad
# address syntax (5.1.3), bad or null-MX domain (5.1.2, 5.1.10), moved (5.1.6).
_HARD_BOUNCE = re.compile(r"^5\.1\.(?:0|1|2|3|6|10)\b")


def _result(message: OutgoingMessage, code: int, text: str) -> SendResult:
    """4xx: try again next run; 5xx: failed; 5.1.x (no such user or domain): a hard bounce."""
    text = text.strip()
    if 400 <= code < 500:
        status = "deferred"
    elif code >= 500 and _HARD_BOUNCE.match(text):
        status = "bounced"
    else:
        status = "failed"
    return SendResult(message.delivery_id, status, f"{code} {text}".strip())


@register("smtp")
def _from_config(config: Config) -> SmtpSender:
    return SmtpSender(config.delivery.smtp, config.smtp_password())
