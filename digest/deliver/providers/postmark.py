"""The ``postmark`` transport: POST /email/batch, up to 500 messages a call.

Postmark answers 200 even when some messages were refused: each entry of the reply carries
its own ErrorCode (0 is accepted), in the order of the request, so each row is judged alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from digest.config.models import PostmarkConfig
from digest.deliver.base import register
from digest.deliver.providers._batch import BatchApiSender, Pair, answer_json, display, per_entry
from digest.deliver.providers._http import ApiClient, Reply
from digest.records import MessageFields, SendResult
from digest.states import SendStatus

BATCH = 500
# ErrorCodes that say the address itself is dead or unwilling: fail and suppress.
_BOUNCED = {406}  # inactive recipient: it bounced or complained before
_DEFERRED = {429}  # rate limited: the next run tries again


class PostmarkSender(BatchApiSender):
    """Sends through Postmark's batch endpoint, one message per recipient."""

    name = "postmark"
    batch = BATCH

    def __init__(self, api: ApiClient, settings: PostmarkConfig) -> None:
        super().__init__(api)
        self.message_stream = settings.message_stream

    @staticmethod
    def credentials(key: str) -> dict[str, Any]:
        """The server token in its own header."""
        return {"headers": {"X-Postmark-Server-Token": key, "Accept": "application/json"}}

    async def _post(self, chunk: Sequence[Pair]) -> Reply:
        return await self.api.post("/email/batch", json=[self._email(f) for _, f in chunk])

    def _accepted(self, ids: Sequence[int], response: httpx.Response) -> list[SendResult]:
        return per_entry("postmark", ids, answer_json(response), _result)

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


def _result(delivery_id: int, entry: dict[str, Any]) -> SendResult:
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


build = register("postmark")(PostmarkSender.build)
