"""What every API transport shares around its own request: unsafe rows failed first, calls
of at most ``batch`` recipients, and one reading of the answer.

A provider says only what differs: how it POSTs a chunk (``_post``) and what its 2xx answer
says about each row (``_accepted``). No answer, a refusal (a 4xx the provider explains) and
the provider's own words about it are read here, the same way for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Self

import httpx

from digest.config import Config
from digest.deliver.base import Answered
from digest.deliver.providers._http import (
    ApiClient,
    Reply,
    Sleep,
    Transport,
    client_from,
    error_text,
)
from digest.errors import DeliveryError
from digest.records import MessageFields, OutgoingMessage, SendResult
from digest.states import SendStatus

Pair = tuple[OutgoingMessage, MessageFields]


def unsafe_header(fields: MessageFields) -> str | None:
    """The name of a header field whose value holds CR or LF (header injection), if any."""
    named = {
        "From": fields.sender,
        "Reply-To": fields.reply_to or "",
        "To": fields.to,
        "To name": fields.to_name or "",
        "Subject": fields.subject,
        **fields.headers,
    }
    for name, value in named.items():
        if "\r" in value or "\n" in value:
            return name
    return None


def split_safe(
    messages: Sequence[OutgoingMessage],
) -> tuple[list[tuple[OutgoingMessage, MessageFields]], list[SendResult]]:
    """Messages fit to send, and failed results for those with CR/LF in a header value."""
    ok: list[tuple[OutgoingMessage, MessageFields]] = []
    failed: list[SendResult] = []
    for message in messages:
        if message.fields is None:
            raise DeliveryError("an API transport was handed MIME bytes instead of fields")
        bad = unsafe_header(message.fields)
        if bad:
            failed.append(
                SendResult(
                    message.delivery_id, SendStatus.FAILED, f"CR or LF in the {bad} header value"
                )
            )
        else:
            ok.append((message, message.fields))
    return ok, failed


def display(address: str, name: str | None) -> str:
    """``Name <address>`` for JSON APIs that take one string (no RFC 2047 encoding)."""
    if not name:
        return address
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>'


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` in slices of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


class BatchApiSender:
    """What every API transport shares: rows with unsafe headers fail first, the rest go in
    calls of at most ``batch`` (grouped by content when one call carries one content, as
    with substitution-based APIs), and the client is closed once.
    """

    name = "api"
    wants_fields = True  # every provider builds its own MIME from MessageFields
    batch = 100
    shared_content = False  # True: a call's recipients must share subject, text and html

    def __init__(self, api: ApiClient, settings: Any = None) -> None:
        self.api = api

    @classmethod
    def build(cls, config: Config, transport: Transport = None, sleep: Sleep | None = None) -> Self:
        """A sender from the ``[delivery.NAME]`` table, its key read from the environment
        variable the table names (a test hands in an HTTP transport and a sleep)."""
        settings = getattr(config.delivery, cls.name)
        cls.check(settings)
        return cls(client_from(cls.name, settings, transport, sleep, cls.credentials), settings)

    @classmethod
    def check(cls, settings: Any) -> None:
        """Refuse a table the provider cannot work with, before its key is read."""

    @staticmethod
    def credentials(key: str) -> dict[str, Any]:
        """The key as the provider takes it: ``Authorization: Bearer`` unless it says other."""
        return {"headers": {"Authorization": f"Bearer {key}"}}

    async def send_batch(
        self, messages: Sequence[OutgoingMessage], answered: Answered | None = None
    ) -> list[SendResult]:
        """One result per message, calls of at most ``batch`` recipients; each call's
        results to ``answered`` as its answer comes (a call is taken whole or not at all).

        A DeliveryError from a later call (the key refused) carries the results of the calls
        before it, so the dispatcher records the rows the provider took instead of queuing
        them to be sent again.
        """
        ok, results = split_safe(messages)
        groups: list[list[Pair]] = [list(ok)]
        if self.shared_content:  # recipients of other segments cannot share a call
            by_content: dict[tuple[str, str, str], list[Pair]] = {}
            for pair in ok:
                fields = pair[1]
                by_content.setdefault((fields.subject, fields.text, fields.html), []).append(pair)
            groups = list(by_content.values())
        for group in groups:
            for chunk in chunks(group, self.batch):
                try:
                    answers = await self._call(chunk)
                except DeliveryError as exc:
                    exc.results = results + list(exc.results)
                    raise
                results.extend(answers)
                if answered is not None:
                    sent = {m.delivery_id: m for m, _ in chunk}
                    for answer in answers:
                        answered(sent[answer.delivery_id], answer)
        return results

    async def _call(self, chunk: Sequence[Pair]) -> list[SendResult]:
        """One API call: the provider's request, then the answer read row by row."""
        ids = [m.delivery_id for m, _ in chunk]
        reply = await self._post(chunk)
        if reply.response is None:
            return reply.unanswered(ids)
        if not reply.response.is_success:
            return failed(ids, self._refusal(reply.response))
        return self._accepted(ids, reply.response)

    async def _post(self, chunk: Sequence[Pair]) -> Reply:
        """The provider's request for ``chunk``, through ``self.api``."""
        raise NotImplementedError

    def _refusal(self, response: httpx.Response) -> str:
        """Why the provider refused the whole call, in its own words."""
        return f"{self.name} HTTP {response.status_code}: {error_text(response)}"

    def _accepted(self, ids: Sequence[int], response: httpx.Response) -> list[SendResult]:
        """Each row's result from the provider's 2xx answer."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.api.aclose()


def failed(ids: Sequence[int], detail: str) -> list[SendResult]:
    """Every row of a call failed for one reason."""
    return [SendResult(i, SendStatus.FAILED, detail) for i in ids]


def answer_json(response: httpx.Response) -> Any:
    """The answer's JSON document, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def per_entry(
    provider: str,
    ids: Sequence[int],
    entries: Any,
    judge: Callable[[int, dict[str, Any]], SendResult],
    unit: str = "message",
) -> list[SendResult]:
    """Rows judged one by one from a 2xx answer that lists one entry per row, in order.

    An answer without one entry per row leaves each row's fate unknown: deferring could send
    twice, so the rows fail with the reason.
    """
    if not isinstance(entries, list) or len(entries) != len(ids):
        return failed(ids, f"{provider} answered 200 without one result per {unit}")
    return [
        judge(i, e)
        if isinstance(e, dict)
        else SendResult(i, SendStatus.FAILED, f"{provider}: malformed result")
        for i, e in zip(ids, entries, strict=True)
    ]


def with_placeholders(
    body: str, tokens: Sequence[str], literal: Callable[[str], str], slot: Callable[[str], str]
) -> str:
    """``body`` made ``literal`` for the provider's template language, then each token put
    in the provider's ``slot`` for a recipient's value."""
    body = literal(body)
    for token in tokens:
        body = body.replace(token, slot(token))
    return body
