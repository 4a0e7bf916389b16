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

from digest.config import Config
from digest.deliver.base import register
from digest.deliver.providers._http import (
    BatchApiSender,
    Sleep,
    api_key,
    client_from,
    display,
    error_text,
)
from digest.records import MessageFields, OutgoingMessage, SendResult
from digest.states import SendStatus

BATCH = 100


class ResendSender(BatchApiSender):
    """Sends through Resend's batch endpoint."""

    name = "resend"
    batch = BATCH

    async def _call(
        self, chunk: Sequence[tuple[OutgoingMessage, MessageFields]]
    ) -> list[SendResult]:
        ids = [m.delivery_id for m, _ in chunk]
        key = hashlib.sha256("\n".join(m.message_id for m, _ in chunk).encode()).hexdigest()
        reply = await self.api.post(
            "/emails/batch", json=[_email(f) for _, f in chunk], idempotency_key=f"digest-{key}"
        )
        if reply.response is None:
            return reply.unanswered(ids)
        response = reply.response
        if not response.is_success:
            detail = f"resend HTTP {response.status_code}: {error_text(response)}"
            return [SendResult(i, SendStatus.FAILED, detail) for i in ids]
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
    try:
        doc = response.json()
        return [str(d.get("id", "")) for d in doc.get("data", [])]
    except (ValueError, AttributeError):
        return []


def build(
    config: Config, transport: httpx.AsyncBaseTransport | None = None, sleep: Sleep | None = None
) -> ResendSender:
    """A Resend sender from ``[delivery.resend]``."""
    c = config.delivery.resend
    key = api_key("resend", c.api_key_env)
    return ResendSender(
        client_from("resend", c, transport, sleep, headers={"Authorization": f"Bearer {key}"})
    )


@register("resend")
def _from_config(config: Config) -> ResendSender:
    return build(config)
