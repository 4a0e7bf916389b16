"""The web app's own emails: the sign-up confirmation, and the console's "send me a test".

The app owns one ``Mailer``, and the mailer one sender, built on the first message and
closed when the app shuts down: an SMTP sender keeps its sessions and worker threads across
messages, so building one per confirmation would open a thread pool and a connection for
every reader who signs up. A sender left idle for ``IDLE_SECONDS`` is closed and the next
confirmation builds a fresh one: a mail server (or a NAT on the way) drops an idle session
after a few minutes, and a silently dropped one would cost a reader a timeout. A config
reloaded from the console (a new transport, say) is likewise sent by a fresh sender.
"""

from __future__ import annotations

import dataclasses
from email.message import EmailMessage
from email.utils import parseaddr

from starlette.concurrency import run_in_threadpool

from digest.app import App
from digest.config import Config
from digest.deliver import Sender, build_sender
from digest.deliver.signing import make_signer
from digest.errors import DeliveryError
from digest.records import OutgoingMessage, SendResult
from digest.render.headers import date_now, make_message_id
from digest.render.i18n import Localizer, page_locale
from digest.states import SendStatus

IDLE_SECONDS = 60.0  # well under Postfix's smtpd_timeout (300 s) and common NAT timeouts


def confirmation_message(
    config: Config, email: str, confirm_url: str, tr: Localizer | None = None
) -> EmailMessage:
    """A short plain-text message with the confirmation link, in ``tr``'s language (the
    reader's, as the page it links to; by default the service's)."""
    service = config.service
    tr = tr or Localizer(page_locale(service.locale))
    message = EmailMessage()
    message["From"] = service.sender
    message["To"] = email
    message["Subject"] = tr.gettext("Confirm your subscription to {service}", service=service.name)
    message["Date"] = date_now()
    domain = parseaddr(service.sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_message_id("digest.confirm", domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        tr.gettext(
            "Someone (we hope you) asked to receive {service} at this address.",
            service=service.name,
        )
        + "\n\n"
        + tr.gettext("To confirm, open this link within two days and press the button:")
        + f"\n\n{confirm_url}\n\n"
        + tr.gettext("If it was not you, ignore this message: nothing will be sent to you.")
        + "\n"
    )
    return message


class Mailer:
    """Sends through one sender, built on first use and kept until ``aclose``."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._config = app.config  # what the sender was built from
        self._sender: Sender | None = None
        self._used = 0.0  # the app clock's monotonic() at the last send

    async def sender(self) -> Sender:
        """The sender the next message goes through (built now if there is none, or the one
        there was sat idle too long or belongs to a config since reloaded)."""
        now = self._app.clock.monotonic()
        stale = now - self._used > IDLE_SECONDS or self._config is not self._app.config
        if self._sender is not None and stale:
            await self.aclose()
        self._used = now
        # No await between the test and the assignment: two sign-ups at once share one.
        if self._sender is None:
            self._config = self._app.config
            self._sender = build_sender(self._config)
        return self._sender

    async def send_one(self, message: OutgoingMessage) -> SendResult | None:
        """Send one message, its bytes DKIM-signed as the digests' are (a DMARC policy asking
        for DKIM covers this mail too; an API provider, sent fields, signs itself); what the
        transport said, None when it said nothing."""
        sender = await self.sender()
        if message.fields is None and not getattr(sender, "wants_fields", False):
            # In a thread: the key is read from disk and RSA signing takes milliseconds,
            # which on the event loop would hold up every other request.
            signer = await run_in_threadpool(make_signer, self._config)
            if signer is not None:
                signed = await run_in_threadpool(signer, message.data)
                message = dataclasses.replace(message, data=signed)
        results = await sender.send_batch([message])
        return results[0] if results else None

    async def send(self, email: str, confirm_url: str, tr: Localizer | None = None) -> str:
        """Send one confirmation (in ``tr``'s language); returns the transport's status.

        DeliveryError when it did not go and may later (the server is down or deferred it):
        nothing retries a confirmation, so the reader must be told to try again.
        """
        config = self._app.config
        message = confirmation_message(config, email, confirm_url, tr)
        data = message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        outgoing = OutgoingMessage(
            0, parseaddr(config.service.sender)[1], email, str(message["Message-ID"]), data
        )
        result = await self.send_one(outgoing)
        if result is not None and result.status == SendStatus.DEFERRED:
            raise DeliveryError(
                f"the confirmation to {email} was deferred: {result.detail}",
                "the mail server asked to try later; the reader was asked to send the form again",
            )
        return result.status if result is not None else SendStatus.FAILED

    async def aclose(self) -> None:
        """Close the sender (QUIT its sessions, stop its threads), if one was built."""
        sender, self._sender = self._sender, None
        if sender is not None:
            await sender.aclose()


async def send_confirmation(app: App, email: str, confirm_url: str) -> str:
    """One confirmation through a sender of its own, closed after it (the web app keeps one
    ``Mailer`` for all of them instead)."""
    mailer = Mailer(app)
    try:
        return await mailer.send(email, confirm_url)
    finally:
        await mailer.aclose()
