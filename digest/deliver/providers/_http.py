"""What every HTTP API provider shares: one httpx client, bounded retries, header checks.

A batch call ends one of four ways: a reply to read (2xx, or a 4xx the provider explains);
a give-up after bounded retries of a call the provider surely did not take (no connection,
429), whose rows are deferred to the next run; a lost answer (a timeout, a dropped
connection or a 5xx after the request went out), when the provider may have accepted the
call; or an auth failure (401/403), which stops the run as a DeliveryError naming the env var.

A lost answer is retried only when the call carries an idempotency key (Resend), so the
provider drops the repeat. Without one (Postmark, SendGrid, Mailgun, SES: none offers one)
a retry or a deferral could send the whole batch twice, so its rows fail at once, fate
unknown, with a reason telling the operator to check the provider's log and ``digest retry``.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from digest.config.models import default
from digest.config.models.transports import _ApiConfig
from digest.errors import DeliveryError
from digest.records import SendResult
from digest.states import SendStatus

MAX_WAIT_SECONDS = 60.0  # a 429 asking for longer than this defers the batch instead
# Failures before the request left: the provider cannot have it, so a retry is always safe.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)
Sleep = Callable[[float], Awaitable[None]]
Transport = httpx.AsyncBaseTransport | None  # a test's stand-in for the network


def api_key(provider: str, env: str) -> str:
    """The key from the environment variable the config names, or a DeliveryError."""
    value = os.environ.get(env, "")
    if not value:
        raise DeliveryError(
            f"{provider}: the environment variable {env} is not set",
            f"export {env} with the {provider} API key, or name another variable in "
            f"delivery.{provider}.api_key_env",
        )
    return value


@dataclass
class Reply:
    """A batch call's end: the response to read, or why there is none.

    ``fate_unknown``: the request may have reached the provider and been accepted, so its
    rows must not be sent again on their own.
    """

    response: httpx.Response | None
    problem: str = ""
    fate_unknown: bool = False

    def unanswered(self, ids: Sequence[int]) -> list[SendResult]:
        """The rows' results when no response came: deferred to the next run when the
        provider surely did not take the call, failed when it may have."""
        status = SendStatus.FAILED if self.fate_unknown else SendStatus.DEFERRED
        return [SendResult(i, status, self.problem) for i in ids]


@dataclass
class _Attempt:
    """One POST's outcome: the reply that ends the call, or what went wrong before a retry
    (``lost``: the answer was lost, not the request; ``wait``: seconds the API asked for)."""

    reply: Reply | None = None
    problem: str = ""
    lost: bool = False
    wait: float | None = None


class ApiClient:
    """One httpx.AsyncClient for one provider, with the retry rules every provider shares."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        key_env: str,
        *,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: float = default(_ApiConfig, "timeout_seconds"),
        max_retries: int = default(_ApiConfig, "max_retries"),
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.provider = provider
        self.key_env = key_env
        self.max_retries = max_retries
        self._sleep = sleep
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            auth=auth,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    async def post(self, path: str, *, idempotency_key: str | None = None, **kwargs: Any) -> Reply:
        """POST, retrying with backoff only where a retry cannot send twice.

        Retried: a request that never left (no connection) and a 429 (as long as the API
        asks); with an ``idempotency_key`` (sent as Idempotency-Key) also a lost answer:
        a timeout, a dropped connection, a 5xx. Without one, a lost answer ends the call at
        once with ``fate_unknown``.
        """
        if idempotency_key is not None:
            kwargs["headers"] = {**kwargs.get("headers", {}), "Idempotency-Key": idempotency_key}
        problem = ""
        lost = False  # an answer was lost: the provider may hold the batch under this key
        for attempt in range(self.max_retries + 1):
            wait = min(0.5 * 2**attempt, 8.0) * (0.5 + random.random() / 2)
            outcome = await self._attempt(path, idempotency_key is not None, kwargs)
            if outcome.reply is not None:
                return outcome.reply
            problem, lost = outcome.problem, lost or outcome.lost
            if attempt < self.max_retries:
                await self._sleep(wait if outcome.wait is None else outcome.wait)
        if lost:
            # Deferred, the rows would go out next run in other batches, under other keys,
            # which the provider would not recognise as repeats.
            return self._fate_unknown(problem, "its answers were lost on every retry")
        return Reply(None, problem)

    async def _attempt(self, path: str, idempotent: bool, kwargs: dict[str, Any]) -> _Attempt:
        """One POST: its reply when that ends the call, or its problem when a retry may come."""
        try:
            response = await self.client.post(path, **kwargs)
        except _NOT_SENT as exc:
            return _Attempt(problem=f"cannot reach {self.provider}: {exc or type(exc).__name__}")
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.TimeoutException):
                problem = f"{self.provider} did not answer in time"
            else:
                problem = f"connection to {self.provider} lost: {exc or type(exc).__name__}"
            return self._lost(problem, idempotent)
        return self._answered(response, idempotent)

    def _answered(self, response: httpx.Response, idempotent: bool) -> _Attempt:
        """What an HTTP answer means for the call: done, retried, or stopped (a refused key)."""
        status = response.status_code
        if status in (401, 403):
            raise DeliveryError(
                f"{self.provider} refused the API key (HTTP {status}: {error_text(response)})",
                f"check the key in the environment variable {self.key_env}",
            )
        if status == 429:  # a refusal: the provider took nothing, a retry is safe
            problem = f"{self.provider} rate limit (HTTP 429): {error_text(response)}"
            asked = retry_after(response)
            if asked is not None and asked > MAX_WAIT_SECONDS:
                return _Attempt(Reply(None, f"{problem}; retry in {asked:.0f} s"))
            return _Attempt(problem=problem, wait=asked)
        if status >= 500:
            # No provider documents a 5xx that surely did not take the call.
            return self._lost(f"{self.provider} HTTP {status}: {error_text(response)}", idempotent)
        return _Attempt(Reply(response))

    def _lost(self, problem: str, idempotent: bool) -> _Attempt:
        """An answer lost: retried under the idempotency key, else the fate is unknown."""
        if not idempotent:
            return _Attempt(self._fate_unknown(problem))
        return _Attempt(problem=problem, lost=True)

    def _fate_unknown(self, problem: str, why: str = "") -> Reply:
        p = self.provider
        why = why or f"{p} takes no idempotency key"
        return Reply(
            None,
            f"{problem}; {p} may have accepted these messages (fate unknown; {why}), so "
            f"they are not sent again: look for them in {p}'s activity log, and if they "
            "are not there, run `digest retry` for this edition",
            fate_unknown=True,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the API asks us to wait: Retry-After (seconds or a date), or a reset header."""
    headers = response.headers
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value) if value else None
            if when is not None:
                return max(0.0, when.timestamp() - time.time())
    for name in ("ratelimit-reset", "x-ratelimit-reset"):
        value = headers.get(name)
        if value:
            try:
                seconds = float(value)
            except ValueError:
                continue
            # Some APIs send seconds to wait, some a Unix time: a Unix time is huge.
            return max(0.0, seconds - time.time()) if seconds > 1e9 else seconds
    return None


def error_text(response: httpx.Response) -> str:
    """The provider's own words about an error, from the usual JSON fields, or the body."""
    try:
        doc = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(doc, dict):
        for key in ("message", "Message", "error", "errors"):
            if key in doc:
                value = doc[key]
                if isinstance(value, list):
                    return "; ".join(
                        str(v.get("message", v)) if isinstance(v, dict) else str(v) for v in value
                    )
                return str(value)
    return str(doc)[:300]


def client_from(
    provider: str,
    settings: Any,
    transport: Transport,
    sleep: Sleep | None,
    credentials: Callable[[str], dict[str, Any]],
) -> ApiClient:
    """The ApiClient a ``[delivery.NAME]`` table describes (base_url, api_key_env, timeout,
    max_retries); ``credentials`` turns the key into the provider's ``headers=`` or ``auth=``."""
    key = api_key(provider, settings.api_key_env)
    extra: dict[str, Any] = {"sleep": sleep} if sleep else {}
    return ApiClient(
        provider,
        settings.base_url,
        settings.api_key_env,
        timeout=settings.timeout_seconds,
        max_retries=settings.max_retries,
        transport=transport,
        **credentials(key),
        **extra,
    )
