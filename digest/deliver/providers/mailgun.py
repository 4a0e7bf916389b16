"""The ``mailgun`` transport: POST /v3/{domain}/messages, up to 1,000 recipients a call.

One call carries the edition's subject and bodies once, every recipient in ``to``, and each
recipient's values in ``recipient-variables``; Mailgun sends each recipient their own copy
with ``%recipient.NAME%`` replaced. The form goes as multipart/form-data, as the spec says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import httpx

from digest.config import Config
from digest.deliver.base import register
from digest.deliver.providers._http import (
    ApiClient,
    BatchApiSender,
    Sleep,
    api_key,
    client_from,
    display,
    error_text,
)
from digest.errors import DeliveryError
from digest.records import MessageFields, OutgoingMessage, SendResult
from digest.states import SendStatus

BATCH = 1000
_UNSUBSCRIBE = "list_unsubscribe"  # the recipient variable holding List-Unsubscribe
# Mailgun fills %recipient.NAME% (and its own %recipient_...% and %unsubscribe_url% kinds)
# anywhere in the subject and bodies: text from a feed must never name one, or each reader's
# List-Unsubscribe value lands in a link of the feed's choosing.
_VARIABLE = re.compile(r"%(?=recipient|[a-z_]*unsubscribe_url%)", re.IGNORECASE)


class MailgunSender(BatchApiSender):
    """Sends through Mailgun's messages endpoint with recipient-variables."""

    name = "mailgun"
    batch = BATCH
    shared_content = True

    def __init__(self, api: ApiClient, domain: str) -> None:
        super().__init__(api)
        self.domain = domain

    async def _call(
        self, chunk: Sequence[tuple[OutgoingMessage, MessageFields]]
    ) -> list[SendResult]:
        ids = [m.delivery_id for m, _ in chunk]
        # (None, value): a plain form field in a multipart body, no file name.
        form = [(name, (None, value)) for name, value in _form(chunk)]
        reply = await self.api.post(f"/v3/{self.domain}/messages", files=form)
        if reply.response is None:
            return reply.unanswered(ids)
        response = reply.response
        if not response.is_success:
            detail = f"mailgun HTTP {response.status_code}: {error_text(response)}"
            return [SendResult(i, SendStatus.FAILED, detail) for i in ids]
        try:
            queued = str(response.json().get("id", ""))
        except (ValueError, AttributeError):
            queued = ""
        if not queued:
            # A wrong domain or base URL can land on Mailgun's 200 "Magnificent API" page.
            detail = "mailgun answered 200 without a message id; check domain and base_url"
            return [SendResult(i, SendStatus.FAILED, detail) for i in ids]
        return [SendResult(i, SendStatus.SENT, f"mailgun {queued}") for i in ids]


def _literal(text: str) -> str:
    """``text`` with nothing Mailgun reads as a variable: such a "%" is written "%25"."""
    return _VARIABLE.sub("%25", text)


def _placeholders(body: str, tokens: Sequence[str]) -> str:
    body = _literal(body)
    for token in tokens:
        body = body.replace(token, f"%recipient.{token}%")
    return body


def _form(chunk: Sequence[tuple[OutgoingMessage, MessageFields]]) -> list[tuple[str, str]]:
    first = chunk[0][1]
    tokens = list(first.values)
    form = [
        ("from", first.sender),
        *(("to", display(f.to, f.to_name)) for _, f in chunk),
        ("subject", _literal(first.subject)),
        ("text", _placeholders(first.text, tokens)),
        ("html", _placeholders(first.html, tokens)),
        (
            "recipient-variables",
            json.dumps(
                {
                    f.to: {
                        **f.values,
                        _UNSUBSCRIBE: f.headers["List-Unsubscribe"],
                        "id": m.delivery_id,
                    }
                    for m, f in chunk
                }
            ),
        ),
        ("h:List-Unsubscribe", f"%recipient.{_UNSUBSCRIBE}%"),
    ]
    form += [(f"h:{k}", v) for k, v in first.headers.items() if k != "List-Unsubscribe"]
    if first.reply_to:
        form.append(("h:Reply-To", first.reply_to))
    form.append(("v:delivery_id", "%recipient.id%"))
    return form


def build(
    config: Config, transport: httpx.AsyncBaseTransport | None = None, sleep: Sleep | None = None
) -> MailgunSender:
    """A Mailgun sender from ``[delivery.mailgun]``."""
    c = config.delivery.mailgun
    if not c.domain:
        raise DeliveryError(
            "mailgun: no sending domain", "set delivery.mailgun.domain, such as mg.example.org"
        )
    key = api_key("mailgun", c.api_key_env)
    return MailgunSender(
        client_from("mailgun", c, transport, sleep, auth=("api", key)),
        c.domain,
    )


@register("mailgun")
def _from_config(config: Config) -> MailgunSender:
    return build(config)
