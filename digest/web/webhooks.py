"""Provider webhooks: verify each request as its provider documents, read bounce and
complaint events, and say which addresses to suppress.

    sendgrid   ECDSA P-256 / SHA-256 over timestamp + body (X-Twilio-Email-Event-Webhook-*)
    mailgun    HMAC-SHA256(signing key, timestamp + token), hex, inside the JSON body
    postmark   HTTP basic-auth credentials of the webhook URL
    resend     Svix: HMAC-SHA256(secret, "id.timestamp.body"), base64, in svix-signature
    ses        SNS message signature (RSA, SignatureVersion 1 = SHA1, 2 = SHA256) with the
               certificate from an https://sns.<region>.amazonaws.com URL, and the topic ARN

Verification is pure (functions of headers, body and secret); the certificate download
for SNS is injected so tests and offline installs can supply it, and is only ever asked
for an https URL on an SNS host (``sns_url_ok``), checked first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from digest.states import SubscriberStatus

MAX_AGE = 300  # seconds a signed timestamp stays acceptable (replays are refused)
_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")


class WebhookRejected(Exception):
    """The request is not from the provider (or is stale); answered 401, nothing changes."""


class WebhookMalformed(WebhookRejected):
    """The body is not what any provider sends (not JSON, nested past what a parser takes);
    answered 400, nothing changes."""


@dataclass(frozen=True)
class Suppression:
    """One address a provider reports as bounced (permanently) or complained about."""

    email: str
    kind: SubscriberStatus  # bounced | complained: the status it leaves the subscriber in
    reason: str


def _fresh(timestamp: str, now: float) -> None:
    """Refuse a signed timestamp more than ``MAX_AGE`` from ``now``: the app's clock's time
    (the receiver passes it), so a test judges freshness on a ``ManualClock``."""
    try:
        age = abs(now - int(timestamp))
    except ValueError as exc:
        raise WebhookRejected("timestamp is not a number") from exc
    if age > MAX_AGE:
        raise WebhookRejected("timestamp too old or in the future: a replay?")


# --- SendGrid ------------------------------------------------------------------------------


def verify_sendgrid(headers: Mapping[str, str], body: bytes, public_key: str, now: float) -> None:
    """ECDSA signature of timestamp + body with SendGrid's verification key."""
    signature = headers.get("x-twilio-email-event-webhook-signature", "")
    timestamp = headers.get("x-twilio-email-event-webhook-timestamp", "")
    _fresh(timestamp, now)
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key))
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(
            base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError, AssertionError) as exc:
        raise WebhookRejected("bad SendGrid signature") from exc


def sendgrid_events(body: bytes) -> list[Suppression]:
    """Bounces (not blocks: those are temporary), drops for bounced addresses, spam reports."""
    out = []
    for event in _json(body, list):
        email = _address(event.get("email")) if isinstance(event, dict) else None
        if email is None:
            continue
        kind = event.get("event")
        if kind == "bounce" and event.get("type", "bounce") == "bounce":
            out.append(Suppression(email, SubscriberStatus.BOUNCED, str(event.get("reason", ""))))
        elif kind == "spamreport":
            out.append(Suppression(email, SubscriberStatus.COMPLAINED, "spam report"))
    return out


# --- Mailgun -------------------------------------------------------------------------------


def verify_mailgun(body: bytes, signing_key: str, now: float) -> None:
    """HMAC-SHA256 of timestamp + token, as the JSON body's "signature" object carries it."""
    signature = _object(_json(body, dict).get("signature"))
    timestamp, token = str(signature.get("timestamp", "")), str(signature.get("token", ""))
    _fresh(timestamp, now)
    expected = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), str(signature.get("signature", ""))):
        raise WebhookRejected("bad Mailgun signature")


def mailgun_events(body: bytes) -> list[Suppression]:
    """Permanent failures and complaints."""
    data = _object(_json(body, dict).get("event-data"))
    recipient = _address(data.get("recipient"))
    if recipient is None:
        return []
    if data.get("event") == "failed" and data.get("severity") == "permanent":
        status = _object(data.get("delivery-status"))
        reason = (
            f"{status.get('code', '')} {status.get('message') or status.get('description', '')}"
        )
        return [Suppression(recipient, SubscriberStatus.BOUNCED, reason.strip())]
    if data.get("event") == "complained":
        return [Suppression(recipient, SubscriberStatus.COMPLAINED, "complaint")]
    return []


# --- Postmark ------------------------------------------------------------------------------


def verify_postmark(headers: Mapping[str, str], credentials: str) -> None:
    """The basic-auth user:password the webhook URL was configured with."""
    supplied = headers.get("authorization", "").encode("utf-8", "surrogateescape")
    expected = b"Basic " + base64.b64encode(credentials.encode())
    # Bytes: compare_digest refuses non-ASCII text, and a header may hold any.
    if not hmac.compare_digest(supplied, expected):
        raise WebhookRejected("bad Postmark credentials")


def postmark_events(body: bytes) -> list[Suppression]:
    """HardBounce-like bounces and spam complaints."""
    event = _json(body, dict)
    email = _address(event.get("Email"))
    if email is None:
        return []
    if event.get("RecordType") == "Bounce" and event.get("Type") in (
        "HardBounce",
        "BadEmailAddress",
        "ManuallyDeactivated",
    ):
        return [Suppression(email, SubscriberStatus.BOUNCED, str(event.get("Description", "")))]
    if event.get("RecordType") == "SpamComplaint":
        return [Suppression(email, SubscriberStatus.COMPLAINED, "spam complaint")]
    return []


# --- Resend (Svix) -------------------------------------------------------------------------


def verify_resend(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> None:
    """Svix: base64 HMAC-SHA256 of "id.timestamp.body" with the decoded whsec_ secret."""
    message_id = headers.get("svix-id", "")
    timestamp = headers.get("svix-timestamp", "")
    _fresh(timestamp, now)
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"))
    except ValueError as exc:
        raise WebhookRejected("the Resend secret is not base64") from exc
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.partition(",")[2] for s in headers.get("svix-signature", "").split()]
    if not any(hmac.compare_digest(expected, candidate) for candidate in offered):
        raise WebhookRejected("bad Resend signature")


def resend_events(body: bytes) -> list[Suppression]:
    """email.bounced (permanent) and email.complained."""
    event = _json(body, dict)
    data = _object(event.get("data"))
    listed = data.get("to") or []
    addresses = [_address(r) for r in (listed if isinstance(listed, list) else [listed])]
    recipients = [r for r in addresses if r is not None]
    if event.get("type") == "email.bounced":
        bounce = _object(data.get("bounce"))
        if str(bounce.get("type", "Permanent")).lower() != "permanent":
            return []
        reason = str(bounce.get("message", ""))
        return [Suppression(r, SubscriberStatus.BOUNCED, reason) for r in recipients]
    if event.get("type") == "email.complained":
        return [Suppression(r, SubscriberStatus.COMPLAINED, "complaint") for r in recipients]
    return []


# --- Amazon SES via SNS --------------------------------------------------------------------

_SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}


def verify_sns(
    body: bytes, topic_arn: str, fetch_certificate: Callable[[str], bytes]
) -> dict[str, Any]:
    """The SNS envelope, once its signature and topic are checked."""
    message = _json(body, dict)
    fields = _SNS_FIELDS.get(str(message.get("Type")))
    if fields is None:
        raise WebhookRejected("not an SNS notification or subscription confirmation")
    if message.get("TopicArn") != topic_arn:
        raise WebhookRejected("notification from another SNS topic")
    cert_url = str(message.get("SigningCertURL", ""))
    if not sns_url_ok(cert_url) or not urlsplit(cert_url).path.endswith(".pem"):
        raise WebhookRejected(f"signing certificate {cert_url!r} is not on an SNS host")
    signed = "".join(f"{k}\n{message[k]}\n" for k in fields if k in message).encode()
    algorithm = hashes.SHA256() if str(message.get("SignatureVersion")) == "2" else hashes.SHA1()
    try:
        certificate = x509.load_pem_x509_certificate(fetch_certificate(cert_url))
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise WebhookRejected("the SNS certificate does not hold an RSA key")
        signature = base64.b64decode(str(message.get("Signature", "")))
        key.verify(signature, signed, padding.PKCS1v15(), algorithm)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise WebhookRejected("bad SNS signature") from exc
    return message


def sns_url_ok(url: str) -> bool:
    """An https URL on an SNS host (sns.<region>.amazonaws.com), default port, no user part:
    the only place digest fetches a certificate or a subscription confirmation from."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and port in (None, 443)
        and "@" not in parts.netloc
        and bool(_SNS_HOST.match(parts.hostname or ""))
    )


def ses_events(envelope: Mapping[str, Any]) -> list[Suppression]:
    """Permanent bounces and complaints from an SES notification inside an SNS envelope."""
    try:
        note = _object(json.loads(str(envelope.get("Message", ""))))
    except (ValueError, RecursionError):
        return []
    kind = note.get("notificationType") or note.get("eventType")
    bounce = _object(note.get("bounce"))
    if kind == "Bounce" and bounce.get("bounceType") == "Permanent":
        return [
            Suppression(email, SubscriberStatus.BOUNCED, str(r.get("diagnosticCode", "")))
            for r in _objects(bounce.get("bouncedRecipients"))
            if (email := _address(r.get("emailAddress"))) is not None
        ]
    if kind == "Complaint":
        return [
            Suppression(email, SubscriberStatus.COMPLAINED, "complaint")
            for r in _objects(_object(note.get("complaint")).get("complainedRecipients"))
            if (email := _address(r.get("emailAddress"))) is not None
        ]
    return []


def _object(value: object) -> dict[str, Any]:
    """A JSON object inside an event, or {} when the field is missing or not an object:
    a malformed event is refused or ignored, never a crash (a 500 the provider retries)."""
    return value if isinstance(value, dict) else {}


def _address(value: object) -> str | None:
    """An event's address, or None when it is none: not text (a number, an object, a list),
    empty, or text no database holds (a lone surrogate, which JSON's ``\\udcff`` gives).
    Such an event is left out, not a crash: a 500 the provider retries for days."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def _objects(value: object) -> list[dict[str, Any]]:
    """The JSON objects of a list field (others, and a field that is not a list, skipped)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _json(body: bytes, kind: type) -> Any:
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise WebhookMalformed("the body is not JSON") from exc
    except RecursionError as exc:  # [[[[... a thousand deep: the parser gives up, not digest
        raise WebhookMalformed("the body's JSON is nested too deep") from exc
    if not isinstance(value, kind):
        raise WebhookRejected(f"expected a JSON {kind.__name__}")
    return value
