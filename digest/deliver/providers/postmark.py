"""The ``postmark`` transport: POST /email/batch, up to 500 messages a call.

Postmark answers 200 even when some messages were refused: each entry of the reply carries
its own ErrorCode (0 is accepted), in the order of the request, so each row is judged alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
from digest.records import MessageFields, OutgoingMessage, SendResult
from digest.states import SendStatus

BATCH = 500
# ErrorCodes that say the address itself is dead or unwilling: fail and suppress.
_BOUNCED = {406}  # inactive recipient: it bounced or complained before
_DEFERRED = {429}  # rate limited: the next run tries again


class PostmarkSender(BatchApiSender):
    """Sends through Postmark's batch endpoint, one message per recipient."""

    name = "postmark"
    batch = BATCH

    def __init__(self, api: ApiClient, message_stream: str) -> None:
        super().__init__(api)
        self.message_stream = message_stream

    async def _call(
        self, chunk: Sequence[tuple[OutgoingMessage, MessageFields]]
    ) -> list[SendResult]:
        ids = [m.delivery_id for m, _ in chunk]
        reply = await self.api.post("/email/batch", json=[self._email(f) for _, f in chunk])
        if reply.response is None:
            return reply.unanswered(ids)
        response = reply.response
        if not response.is_success:
            detail = f"postmark HTTP {response.status_code}: {error_text(response)}"
            return [SendResult(i, SendStatus.FAILED, detail) for i in ids]
        try:
            entries = response.json()
        except ValueError:
            entries = None
        if not isinstance(entries, list) or len(entries) != len(ids):
            # Unknown fate: deferring could send twice, so the rows fail with the reason.
            detail = "postmark answered 200 without one result per message"
            return [SendResult(i, SendStatus.FAILED, detail) for i in ids]
        return [_result(i, e) for i, e in zip(ids, entries, strict=True)]

    def _email(self, fields: MessageFields) -> dict[str, Any]:
        body: dict[str, Any] = {
            "From": fields.sender,
            "To": display(fields.to, fields.to_name),
            "Subject": fields.subject,
            "TextBody": fields.render(fields.text),
            "HtmlBody": fields.render(fields.html),
            "Headers": [{"Name": k, "Value": v} for k, v in fields.headers.items()],
            "MessageStream": self.message_stream,
        }
        if fields.reply_to:
            body["ReplyTo"] = fields.reply_to
        return body


def _result(delivery_id: int, entry: Any) -> SendResult:
    if not isinstance(entry, dict):
        return SendResult(delivery_id, SendStatus.FAILED, "postmark: malformed result")
    code = entry.get("ErrorCode", 0)
    if code == 0:
        return SendResult(
            delivery_id, SendStatus.SENT, f"postmark {entry.get('MessageID', '')}".strip()
        )
    detail = f"postmark error {code}: {entry.get('Message', '')}"
    if code in _DEFERRED:
        return SendResult(delivery_id, SendStatus.DEFERRED, detail)
    return SendResult(
        delivery_id, SendStatus.BOUNCED if code in _BOUNCED else SendStatus.FAILED, detail
    )


def build(
    config: Config, transport: httpx.AsyncBaseTransport | None = None, sleep: Sleep | None = None
) -> PostmarkSender:
    """A Postmark sender from ``[delivery.postmark]``."""
    c = config.delivery.postmark
    key = api_key("postmark", c.api_key_env)
    return PostmarkSender(
        client_from(
            "postmark",
            c,
            transport,
            sleep,
            headers={"X-Postmark-Server-Token": key, "Accept": "application/json"},
        ),
        c.message_stream,
    )


@register("postmark")
def _from_config(config: Config) -> PostmarkSender:
    return build(config)
