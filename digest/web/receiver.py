"""The webhook endpoint: which provider, its configured secret, verification, suppression."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from digest.app import App
from digest.subscribers import stored_form
from digest.web import webhooks as hooks
from digest.web.webhooks import Suppression, WebhookRejected

log = logging.getLogger("digest.web.webhooks")


def https_get(url: str) -> bytes:
    """Fetch an SNS certificate or confirmation URL (hosts are checked by the caller)."""
    response = httpx.get(url, timeout=10.0, follow_redirects=False)
    response.raise_for_status()
    return response.content


class WebhookReceiver:
    """Verifies a provider's request and suppresses the addresses it reports."""

    def __init__(self, app: App, fetch: Callable[[str], bytes]) -> None:
        self.app, self.fetch = app, fetch
        self._certificates: dict[str, bytes] = {}

    def _secret(self, env: str | None) -> str | None:
        return os.environ.get(env) if env else None

    def _certificate(self, url: str) -> bytes:
        if url not in self._certificates:
            self._certificates[url] = self.fetch(url)
        return self._certificates[url]

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
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            found = self._verified_events(provider, headers, body, secret)
        except WebhookRejected as exc:
            log.warning("webhook %s rejected: %s", provider, exc)
            return JSONResponse({"error": "verification failed"}, 401)
        suppressed = 0
        for event in found:
            subscriber = self.app.store.subscriber_by_email(stored_form(event.email))
            if subscriber is None or subscriber.id is None:
                log.info("webhook %s: %s is not a subscriber; ignored", provider, event.email)
                continue
            if self.app.store.suppress_subscriber(subscriber.id, event.kind):
                suppressed += 1
                log.warning(
                    "webhook %s: %s %s (%s); suppressed",
                    provider,
                    event.email,
                    event.kind,
                    event.reason or "no reason given",
                )
        return JSONResponse({"events": len(found), "suppressed": suppressed})

    def _verified_events(
        self, provider: str, headers: dict[str, str], body: bytes, secret: str
    ) -> list[Suppression]:
        if provider == "sendgrid":
            hooks.verify_sendgrid(headers, body, secret)
            return hooks.sendgrid_events(body)
        if provider == "mailgun":
            hooks.verify_mailgun(body, secret)
            return hooks.mailgun_events(body)
        if provider == "postmark":
            hooks.verify_postmark(headers, secret)
            return hooks.postmark_events(body)
        if provider == "resend":
            hooks.verify_resend(headers, body, secret)
            return hooks.resend_events(body)
        envelope = hooks.verify_sns(body, secret, self._certificate)
        if envelope["Type"] == "SubscriptionConfirmation":
            url = str(envelope.get("SubscribeURL", ""))
            parts = urlsplit(url)
            if parts.scheme == "https" and (parts.hostname or "").endswith(".amazonaws.com"):
                self.fetch(url)
                log.warning("webhook ses: subscription to %s confirmed", envelope["TopicArn"])
            return []
        return hooks.ses_events(envelope)
