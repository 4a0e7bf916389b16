"""The ``ses`` transport: Amazon SES v2 SendBulkEmail, up to 50 destinations a call.

The edition's subject and bodies go once per call as an inline template whose tokens are
``{{{TOKEN}}}`` (raw: the HTML values are escaped already); each entry carries one
recipient, their List-Unsubscribe header and their values as ReplacementTemplateData. SES
answers 200 with one status per entry, in order. Requests are signed with SigV4 by
botocore's signer, re-signed on each retry (the signature holds the time).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Generator, Sequence
from typing import Any, Self

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from digest.config import Config
from digest.deliver.base import register
from digest.deliver.providers._batch import (
    BatchApiSender,
    Pair,
    answer_json,
    display,
    per_entry,
    with_placeholders,
)
from digest.deliver.providers._http import ApiClient, Reply, Sleep, Transport, error_text
from digest.errors import DeliveryError
from digest.records import SendResult
from digest.states import SendStatus

BATCH = 50
PATH = "/v2/email/outbound-bulk-emails"
_DEFERRED = {"ACCOUNT_THROTTLED", "TRANSIENT_FAILURE", "ACCOUNT_DAILY_QUOTA_EXCEEDED"}
# Recipient-level refusals; the rest (paused account, unverified domain) fail the row too,
# but they are the sender's problem, and the error budget pauses the edition on them.
_SHARED_HEADERS = ("List-Id", "List-Unsubscribe-Post")


class SigV4(httpx.Auth):
    """httpx auth that signs each request with AWS Signature Version 4 (botocore's signer)."""

    requires_request_body = True

    def __init__(self, credentials: Credentials, region: str, service: str = "ses") -> None:
        self.signer = SigV4Auth(credentials, service, region)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign the request's method, URL, headers and body."""
        headers = {
            k: v for k, v in request.headers.items() if k.lower() in ("content-type", "host")
        }
        aws = AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=headers
        )
        self.signer.add_auth(aws)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in aws.headers:
                request.headers[name] = aws.headers[name]
        yield request


class SesSender(BatchApiSender):
    """Sends through SES v2 SendBulkEmail with an inline template."""

    name = "ses"
    batch = BATCH
    shared_content = True

    def __init__(self, api: ApiClient, configuration_set: str | None = None) -> None:
        super().__init__(api)
        self.configuration_set = configuration_set

    @classmethod
    def build(cls, config: Config, transport: Transport = None, sleep: Sleep | None = None) -> Self:
        """An SES sender from ``[delivery.ses]``: an AWS key pair signing each request
        (SigV4), not one API key in a header."""
        c = config.delivery.ses
        envs = f"{c.access_key_id_env} and {c.secret_access_key_env}"
        key_id = os.environ.get(c.access_key_id_env, "")
        secret = os.environ.get(c.secret_access_key_env, "")
        if not key_id or not secret:
            raise DeliveryError(
                f"ses: the environment variables {envs} are not both set",
                "export the AWS access key of an IAM user allowed ses:SendBulkEmail",
            )
        token = os.environ.get(c.session_token_env, "") if c.session_token_env else ""
        auth = SigV4(Credentials(key_id, secret, token or None), c.region)
        extra: dict[str, Any] = {"sleep": sleep} if sleep else {}
        return cls(
            ApiClient(
                "ses",
                c.base_url or f"https://email.{c.region}.amazonaws.com",
                envs,
                auth=auth,
                timeout=c.timeout_seconds,
                max_retries=c.max_retries,
                transport=transport,
                **extra,
            ),
            c.configuration_set,
        )

    async def _post(self, chunk: Sequence[Pair]) -> Reply:
        body = json.dumps(self.request(chunk)).encode()
        return await self.api.post(PATH, content=body, headers={"Content-Type": "application/json"})

    def _refusal(self, response: httpx.Response) -> str:
        kind = response.headers.get("x-amzn-errortype", "").split(":")[0]
        return f"ses HTTP {response.status_code} {kind}: {error_text(response)}".strip()

    def _accepted(self, ids: Sequence[int], response: httpx.Response) -> list[SendResult]:
        doc = answer_json(response)
        entries = doc.get("BulkEmailEntryResults") if isinstance(doc, dict) else None
        return per_entry("ses", ids, entries, _result, unit="destination")

    def request(self, chunk: Sequence[Pair]) -> dict[str, Any]:
        """The SendBulkEmail input for one call."""
        first = chunk[0][1]
        tokens = list(first.values)
        request: dict[str, Any] = {
            "FromEmailAddress": first.sender,
            "DefaultContent": {
                "Template": {
                    "TemplateContent": {
                        "Subject": _literal(first.subject),
                        "Text": _placeholders(first.text, tokens),
                        "Html": _placeholders(first.html, tokens),
                    },
                    "TemplateData": json.dumps({t: "" for t in tokens}),
                    "Headers": [
                        {"Name": k, "Value": v}
                        for k, v in first.headers.items()
                        if k in _SHARED_HEADERS
                    ],
                }
            },
            "BulkEmailEntries": [
                {
                    "Destination": {"ToAddresses": [display(f.to, f.to_name)]},
                    "ReplacementEmailContent": {
                        "ReplacementTemplate": {"ReplacementTemplateData": json.dumps(f.values)}
                    },
                    "ReplacementHeaders": [
                        {"Name": k, "Value": v}
                        for k, v in f.headers.items()
                        if k not in _SHARED_HEADERS
                    ],
                }
                for _, f in chunk
            ],
        }
        if first.reply_to:
            request["ReplyToAddresses"] = [first.reply_to]
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        return request


# SES renders the subject and bodies as Handlebars: a "{{" from a feed could print any
# template data ("{{#each this}}{{this}}{{/each}}" prints each reader's links) or fail the
# render. A zero-width space between two braces leaves no "{{" and reads the same.
_OPENING = re.compile(r"\{(?=\{)")


def _literal(text: str) -> str:
    """``text`` with nothing Handlebars reads as an expression."""
    return _OPENING.sub("{\u200b", text)


def _placeholders(body: str, tokens: Sequence[str]) -> str:
    return with_placeholders(body, tokens, _literal, lambda token: "{{{" + token + "}}}")


def _result(delivery_id: int, entry: dict[str, Any]) -> SendResult:
    status = entry.get("Status", "")
    if status == "SUCCESS":
        return SendResult(delivery_id, SendStatus.SENT, f"ses {entry.get('MessageId', '')}".strip())
    detail = f"ses {status}: {entry.get('Error', '')}"
    return SendResult(
        delivery_id, SendStatus.DEFERRED if status in _DEFERRED else SendStatus.FAILED, detail
    )


build = register("ses")(SesSender.build)
