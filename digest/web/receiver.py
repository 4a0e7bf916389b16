"""The webhook endpoint: which provider, its configured secret, verification, suppression.

Verification (with the SNS certificate download) and the store calls run in a worker
thread: both block, and on the event loop they would stall every other request.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from digest.app import App
from digest.subscribers import stored_form
from digest.web import webhooks as hooks
from digest.web.webhooks import Suppression, WebhookMalformed, WebhookRejected

log = logging.getLogger("digest.web.webhooks")
_KEPT_CERTIFICATES = 16  # SNS signs with one certificate a region for months
_FAILED_FOR = 60.0  # seconds a URL whose download failed is refused without a new try


def https_get(url: str) -> bytes:
    """Fetch an SNS certificate or confirmation URL (only SNS hosts: the caller checks)."""
    response = httpx.get(url, timeout=5.0, follow_redirects=False)
    response.raise_for_status()
    return response.content


class WebhookReceiver:
    """Verifies a provider's request and suppresses the addresses it reports."""

    def __init__(self, app: App, fetch: Callable[[str], bytes]) -> None:
        self.app, self.fetch = app, fetch
        self._certificates: OrderedDict[str, bytes] = OrderedDict()
        self._failed: dict[str, float] = {}
        self._lock = threading.Lock()  # one download at a time; the others find it cached

    def _secret(self, env: str | None) -> str | None:
        return os.environ.get(env) if env else None

    def _certificate(self, url: str) -> bytes:
        """The certificate at ``url`` (an SNS host: verify_sns checked), kept once fetched."""
        with self._lock:
            if url in self._certificates:
                return self._certificates[url]
            if self.app.clock.monotonic() - self._failed.get(url, -_FAILED_FOR) < _FAILED_FOR:
                raise WebhookRejected(f"the SNS certificate {url} failed to download just now")
            try:
                certificate = self._get(url)
            except WebhookRejected:
                self._failed[url] = self.app.clock.monotonic()
                raise
            self._certificates[url] = certificate
            while len(self._certificates) > _KEPT_CERTIFICATES:
                self._certificates.popitem(last=False)
            return certificate

    def _get(self, url: str) -> bytes:
        try:
            return self.fetch(url)
        except (httpx.HTTPError, OSError, ValueError) as exc:
            raise WebhookRejected(f"GET {url} failed: {exc or type(exc).__name__}") from exc

    async def receive(self, provider: str, request: Request) -> Response:
        """200 with what was suppressed; 401 for a request that fails verification."""
        settings = self.app.config.webhooks
        env = {
            "sendgrid": settings.sendgrid_public_key_env,
            "mailgun": settings.mailgun_signing_key_env,
            "postmark": settings.postmark_credentials_env,
            "resend": settings.resend_secret_env,
        }
        configured = env.get(provider) if provider != "ses" else settings.ses_topic_arn
        if not configured:
            return JSONResponse({"error": f"no webhook for {provider!r} is configured"}, 404)
        secret = self._secret(env.get(provider)) if provider != "ses" else configured
        if not secret:
            log.error(
                "webhook %s: $%s is not set; set it in the service's environment",
                provider,
                env.get(provider),
            )
            return JSONResponse({"error": "webhook secret not set on the server"}, 503)
        body = await request.body()  # at most service.max_body_bytes: BodyLimit holds it
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            found = await run_in_threadpool(self._verified_events, provider, headers, body, secret)
        except WebhookMalformed as exc:
            log.warning("webhook %s refused: %s", provider, exc)
            return JSONResponse({"error": f"bad request: {exc}"}, 400)
        except WebhookRejected as exc:
            log.warning("webhook %s rejected: %s", provider, exc)
            return JSONResponse({"error": "verification failed"}, 401)
        suppressed = await run_in_threadpool(self._suppress, provider, found)
        return JSONResponse({"events": len(found), "suppressed": suppressed})

    def _suppress(self, provider: str, found: list[Suppression]) -> int:
        suppressed = 0
        for event in found:
            subscriber = self.app.store.subscriber_by_email(stored_form(event.email))
            if subscriber is None or subscriber.id is None:
                log.info("webhook %s: %s is not a subscriber; ignored", provider, event.email)
                continue
            if self.app.store.suppress_subscriber(
                subscriber.id, event.kind, f"the {provider} webhook"
            ):
                suppressed += 1
                log.warning(
                    "webhook %s: %s %s (%s); suppressed",
                    provider,
                    event.email,
                    event.kind,
                    event.reason or "no reason given",
                )
        return suppressed

    def _verified_events(
        self, provider: str, headers: dict[str, str], body: bytes, secret: str
    ) -> list[Suppression]:
        now = self.app.clock.now().timestamp()  # how old a signed timestamp may be
        if provider == "sendgrid":
            hooks.verify_sendgrid(headers, body, secret, now)
            return hooks.sendgrid_events(body)
        if provider == "mailgun":
            hooks.verify_mailgun(body, secret, now)
            return hooks.mailgun_events(body)
        if provider == "postmark":
            hooks.verify_postmark(headers, secret)
            return hooks.postmark_events(body)
        if provider == "resend":
            hooks.verify_resend(headers, body, secret, now)
            return hooks.resend_events(body)
        envelope = hooks.verify_sns(body, secret, self._certificate)
        if envelope["Type"] == "SubscriptionConfirmation":
            url = str(envelope.get("SubscribeURL", ""))
            if not hooks.sns_url_ok(url):
                raise WebhookRejected(f"SubscribeURL {url!r} is not on an SNS host")
            self._get(url)
            log.warning("webhook ses: subscription to %s confirmed", envelope["TopicArn"])
            return []
        return hooks.ses_events(envelope)
