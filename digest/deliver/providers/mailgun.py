"""The ``mailgun`` transport: POST /v3/{domain}/messages, up to 1,000 recipients a call.

One call carries the edition's subject and bodies once, every recipient in ``to``, and each
recipient's values in ``recipient-variables``; Mailgun sends each recipient their own copy
with ``%recipient.NAME%`` replaced. The form goes as multipart/form-data, as the spec says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import httpx

from digest.config.models import MailgunConfig
from digest.deliver.base import register
from digest.deliver.providers._batch import (
    BatchApiSender,
    Pair,
    answer_json,
    display,
    failed,
    with_placeholders,
)
from digest.deliver.providers._http import ApiClient, Reply
from digest.errors import DeliveryError
from digest.records import SendResult
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

    def __init__(self, api: ApiClient, settings: MailgunConfig) -> None:
        super().__init__(api)
        self.domain = settings.domain

    @classmethod
    def check(cls, settings: MailgunConfig) -> None:
        """Mailgun's endpoint names the sending domain."""
        if not settings.domain:
            raise DeliveryError(
                "mailgun: no sending domain", "set delivery.mailgun.domain, such as mg.example.org"
            )

    @staticmethod
    def credentials(key: str) -> dict[str, Any]:
        """Basic auth as the user ``api``."""
        return {"auth": ("api", key)}

    async def _post(self, chunk: Sequence[Pair]) -> Reply:
        # (None, value): a plain form field in a multipart body, no file name.
        form = [(name, (None, value)) for name, value in _form(chunk)]
        return await self.api.post(f"/v3/{self.domain}/messages", files=form)

    def _accepted(self, ids: Sequence[int], response: httpx.Response) -> list[SendResult]:
        doc = answer_json(response)
        queued = str(doc.get("id", "")) if isinstance(doc, dict) else ""
        if not queued:
            # A wrong domain or base URL can land on Mailgun's 200 "Magnificent API" page.
            return failed(
                ids, "mailgun answered 200 without a message id; check domain and base_url"
            )
        return [SendResult(i, SendStatus.SENT, f"mailgun {queued}") for i in ids]


def _literal(text: str) -> str:
    """``text`` with nothing Mailgun reads as a variable: such a "%" is written "%25"."""
    return _VARIABLE.sub("%25", text)


def _placeholders(body: str, tokens: Sequence[str]) -> str:
    return with_placeholders(body, tokens, _literal, lambda token: f"%recipient.{token}%")


def _form(chunk: Sequence[Pair]) -> list[tuple[str, str]]:
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


build = register("mailgun")(MailgunSender.build)
