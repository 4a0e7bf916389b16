"""The ``sendgrid`` transport: POST /v3/mail/send, up to 1,000 personalizations a call.

The edition's subject and bodies go once per call, with their tokens; each personalization
carries one recipient, their List-Unsubscribe header and their token values as
``substitutions``, which SendGrid puts into the content. SendGrid answers 202 for the whole
call or refuses the whole call, so every row of a call shares its fate.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

import httpx

from digest.deliver.base import register
from digest.deliver.providers._batch import BatchApiSender, Pair
from digest.deliver.providers._http import Reply
from digest.records import SendResult
from digest.states import SendStatus

BATCH = 1000
# Headers the same for every recipient go once per call; the rest per personalization.
_SHARED_HEADERS = ("List-Id", "List-Unsubscribe-Post")


class SendGridSender(BatchApiSender):
    """Sends through SendGrid's v3 mail send, one personalization per recipient."""

    name = "sendgrid"
    batch = BATCH
    shared_content = True

    async def _post(self, chunk: Sequence[Pair]) -> Reply:
        return await self.api.post("/v3/mail/send", json=_body(chunk))

    def _accepted(self, ids: Sequence[int], response: httpx.Response) -> list[SendResult]:
        detail = f"sendgrid {response.headers.get('x-message-id', '')}".strip()
        return [SendResult(i, SendStatus.SENT, detail) for i in ids]


def _mailbox(value: str) -> dict[str, str]:
    name, address = parseaddr(value)
    return {"email": address, "name": name} if name else {"email": address}


def _body(chunk: Sequence[Pair]) -> dict[str, Any]:
    first = chunk[0][1]
    body: dict[str, Any] = {
        "personalizations": [
            {
                "to": [{"email": f.to, "name": f.to_name} if f.to_name else {"email": f.to}],
                "headers": {k: v for k, v in f.headers.items() if k not in _SHARED_HEADERS},
                "substitutions": f.values,
                "custom_args": {"delivery_id": str(m.delivery_id)},
            }
            for m, f in chunk
        ],
        "from": _mailbox(first.sender),
        "subject": first.subject,
        "content": [
            {"type": "text/plain", "value": first.text},
            {"type": "text/html", "value": first.html},
        ],
        "headers": {k: v for k, v in first.headers.items() if k in _SHARED_HEADERS},
    }
    if first.reply_to:
        body["reply_to"] = _mailbox(first.reply_to)
    return body


build = register("sendgrid")(SendGridSender.build)
