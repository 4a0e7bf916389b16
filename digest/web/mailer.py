"""The one transactional email the web app sends: the sign-up confirmation."""

from __future__ import annotations

import dataclasses
from email.message import EmailMessage
from email.utils import parseaddr

from starlette.concurrency import run_in_threadpool

from digest.app import App
from digest.deliver.signing import make_signer
from digest.errors import DeliveryError
from digest.records import OutgoingMessage
from digest.render.headers import date_now, make_message_id


def confirmation_message(app: App, email: str, confirm_url: str) -> EmailMessage:
    """A short plain-text message with the confirmation link."""
    service = app.config.service
    message = EmailMessage()
    message["From"] = service.sender
    message["To"] = email
    message["Subject"] = f"Confirm your subscription to {service.name}"
    message["Date"] = date_now()
    domain = parseaddr(service.sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_message_id("digest.confirm", domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"Someone (we hope you) asked to receive {service.name} at this address.\n\n"
        f"To confirm, open this link within two days and press the button:\n\n{confirm_url}\n\n"
        "If it was not you, ignore this message: nothing will be sent to you.\n"
    )
    return message


async def send_confirmation(app: App, email: str, confirm_url: str) -> str:
    """Send it through the configured transport; returns the transport's status.

    DeliveryError when it did not go and may later (the server is down or deferred it):
    nothing retries a confirmation, so the reader must be told to try again.
    """
    message = confirmation_message(app, email, confirm_url)
    data = message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    outgoing = OutgoingMessage(
        0, parseaddr(app.config.service.sender)[1], email, str(message["Message-ID"]), data
    )
    async with app.sender() as sender:
        # Signed as the digests are (a DMARC policy asking for DKIM covers this mail too);
        # an API provider signs what it sends itself.
        # In a thread: the key is read from disk and RSA signing takes milliseconds, which
        # on the event loop would hold up every other request.
        signer = (
            None
            if getattr(sender, "wants_fields", False)
            else await run_in_threadpool(make_signer, app.config)
        )
        if signer is not None:
            outgoing = dataclasses.replace(outgoing, data=await run_in_threadpool(signer, data))
        results = await sender.send_batch([outgoing])
    if results and results[0].status == "deferred":
        raise DeliveryError(
            f"the confirmation to {email} was deferred: {results[0].detail}",
            "the mail server asked to try later; the reader was asked to send the form again",
        )
    return results[0].status if results else "failed"
