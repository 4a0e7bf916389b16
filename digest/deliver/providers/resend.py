"""The ``resend`` transport: POST /emails/batch, up to 100 messages a call, one per recipient.

Resend has no per-recipient substitution in a batch, so each recipient's message is rendered
here from the edition's fields. Every call carries an Idempotency-Key made from its
Message-IDs, so a retried call (a timeout after Resend had accepted it) is not sent twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import httpx

from digest.deliver.base import register
from digest.deliver.providers._batch import BatchApiSender, Pair, answer_json, display
from digest.deliver.providers._http import Reply
from digest.records import MessageFields, SendResult
from digest.states import SendStatus

BATCH = 100


class ResendSender(BatchApiSender):
    """Sends through Resend's batch endpoint."""

    name = "resend"
    batch = BATCH

    async def _post(self, chunk: Sequence[Pair]) -> Reply:
        key = hashlib.sha256("\n".join(m.message_id for m, _ in chunk).encode()).hexdigest()
        return await self.api.post(
            "/emails/batch", json=[_email(f) for _, f in chunk], idempotency_key=f"digest-{key}"
        )

    def _accepted(self, ids: Sequence[int], response: httpx.Response) -> list[SendResult]:
        data = _data(response)
        return [
            SendResult(i, SendStatus.SENT, f"resend {data[n]}" if n < len(data) else "resend")
            for n, i in enumerate(ids)
        ]


def _email(fields: MessageFields) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": fields.sender,
        "to": [display(fields.to, fields.to_name)],
        "subject": fields.subject,
        "text": fields.render(fields.text),
        "html": fields.render(fields.html),
        "headers": dict(fields.headers),
    }
    if fields.reply_to:
        body["reply_to"] = fields.reply_to
    return body


def _data(response: httpx.Response) -> list[str]:
    """The ids Resend gave the messages, in order; none from an answer of another shape."""
    doc = answer_json(response)
    data = doc.get("data", []) if isinstance(doc, dict) else []
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        return []
    return [str(d.get("id", "")) for d in data]


build = register("resend")(ResendSender.build)
