"""Provider webhooks with each provider's documented payload and signature scheme.

Keys are made here (an ECDSA pair for SendGrid, an RSA certificate for SNS), so every
signature is real and checked by the same code that serves production.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from digest.app import App
from digest.clock import ManualClock
from digest.config import load_config
from digest.web import create_app
from tests.conftest import FeedServer, rss, run_cli

pytestmark = pytest.mark.asyncio
TOPIC = "arn:aws:sns:eu-west-1:123456789012:digest-ses-events"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SNS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
MAILGUN_KEY = "key-mailgun-signing-0123456789"
RESEND_SECRET = "whsec_" + base64.b64encode(b"resend-webhook-secret-32-bytes!!").decode()


def _certificate() -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(SNS_KEY.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(SNS_KEY, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def config(write_config, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = feed_server.add("/f.xml", rss([{"title": "T", "guid": "1", "link": "https://w.test/1"}]))
    path = write_config(
        [("Wire", url)],
        extra=f"""
[webhooks]
sendgrid_public_key_env = "SG_KEY"
mailgun_signing_key_env = "MG_KEY"
postmark_credentials_env = "PM_AUTH"
resend_secret_env = "RESEND_SECRET"
ses_topic_arn = "{TOPIC}"
""",
    )
    public = SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    monkeypatch.setenv("SG_KEY", base64.b64encode(public).decode())
    monkeypatch.setenv("MG_KEY", MAILGUN_KEY)
    monkeypatch.setenv("PM_AUTH", "hooks:s3cret")
    monkeypatch.setenv("RESEND_SECRET", RESEND_SECRET)
    for address in ("gone@example.org", "angry@example.org", "fine@example.org"):
        assert run_cli("--config", str(path), "subscribers", "add", address)[0] == 0
    return path


@pytest.fixture
async def client(config: Path) -> AsyncIterator[tuple[httpx.AsyncClient, App, list[str]]]:
    # A set clock, at today (the helpers sign at the wall's time): freshness is its.
    app = App.open(load_config(config), clock=ManualClock(dt.datetime.now(dt.UTC)))
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return _certificate() if url == CERT_URL else b""

    transport = httpx.ASGITransport(app=create_app(app, fetch=fetch))
    async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as c:
        yield c, app, fetched
    app.close()


def _statuses(app: App) -> dict[str, str]:
    return {s.email: s.status for s in app.store.subscribers()}


def _sendgrid(body: bytes, timestamp: str | None = None) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    signature = SENDGRID_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


async def test_sendgrid(client) -> None:
    c, app, _ = client
    body = json.dumps(
        [
            {
                "email": "gone@example.org",
                "event": "bounce",
                "type": "bounce",
                "reason": "550 5.1.1 The email account does not exist",
                "sg_event_id": "a1",
            },
            {"email": "angry@example.org", "event": "spamreport", "sg_event_id": "a2"},
            {
                "email": "fine@example.org",
                "event": "bounce",
                "type": "blocked",
                "sg_event_id": "a3",
            },
            {"email": "fine@example.org", "event": "delivered", "sg_event_id": "a4"},
        ]
    ).encode()
    ok = await c.post("/webhooks/sendgrid", content=body, headers=_sendgrid(body))
    assert ok.status_code == 200 and ok.json() == {"events": 2, "suppressed": 2}
    assert _statuses(app) == {
        "gone@example.org": "bounced",
        "angry@example.org": "complained",
        "fine@example.org": "active",
    }
    tampered = await c.post(
        "/webhooks/sendgrid", content=body.replace(b"gone", b"fine"), headers=_sendgrid(body)
    )
    assert isinstance(app.clock, ManualClock)
    signed = _sendgrid(body, str(int(app.clock.now().timestamp())))
    app.clock.advance(dt.timedelta(minutes=5, seconds=1))  # past the five minutes allowed
    stale = await c.post("/webhooks/sendgrid", content=body, headers=signed)  # a replay
    assert tampered.status_code == stale.status_code == 401
    assert _statuses(app)["fine@example.org"] == "active"


async def test_a_signed_timestamp_is_judged_by_the_apps_clock(config: Path) -> None:
    """A request signed at a set instant, far from today, is fresh while the app's clock
    is within five minutes of it and a replay once the clock has moved past them."""
    signed_at = dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC)
    clock = ManualClock(signed_at + dt.timedelta(minutes=4))
    app = App.open(load_config(config), clock=clock)
    body = json.dumps(
        [{"email": "angry@example.org", "event": "spamreport", "sg_event_id": "c1"}]
    ).encode()
    headers = _sendgrid(body, str(int(signed_at.timestamp())))
    transport = httpx.ASGITransport(app=create_app(app, fetch=lambda url: b""))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as c:
            clock.advance(dt.timedelta(minutes=2))  # six minutes after signing: too old
            assert (
                await c.post("/webhooks/sendgrid", content=body, headers=headers)
            ).status_code == 401
            assert _statuses(app)["angry@example.org"] == "active"
            clock.set(signed_at + dt.timedelta(minutes=4))
            ok = await c.post("/webhooks/sendgrid", content=body, headers=headers)
            assert ok.status_code == 200 and ok.json() == {"events": 1, "suppressed": 1}
            assert _statuses(app)["angry@example.org"] == "complained"
    finally:
        app.close()


def _mailgun(event: Mapping[str, object], key: str = MAILGUN_KEY) -> bytes:
    timestamp, token = str(int(time.time())), "f00dfeedbeef0123456789abcdef"
    digest = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {
            "signature": {"timestamp": timestamp, "token": token, "signature": digest},
            "event-data": event,
        }
    ).encode()


async def test_mailgun(client) -> None:
    c, app, _ = client
    permanent = {
        "event": "failed",
        "severity": "permanent",
        "recipient": "gone@example.org",
        "delivery-status": {"code": 550, "message": "5.1.1 No such user"},
    }
    temporary = {"event": "failed", "severity": "temporary", "recipient": "fine@example.org"}
    assert (await c.post("/webhooks/mailgun", content=_mailgun(permanent))).json()[
        "suppressed"
    ] == 1
    assert (await c.post("/webhooks/mailgun", content=_mailgun(temporary))).json()[
        "suppressed"
    ] == 0
    forged = await c.post(
        "/webhooks/mailgun",
        content=_mailgun({"event": "complained", "recipient": "fine@example.org"}, key="wrong-key"),
    )
    assert forged.status_code == 401
    assert _statuses(app)["gone@example.org"] == "bounced"
    assert _statuses(app)["fine@example.org"] == "active"


async def test_postmark(client) -> None:
    c, app, _ = client
    bounce = json.dumps(
        {
            "RecordType": "Bounce",
            "Type": "HardBounce",
            "TypeCode": 1,
            "Email": "gone@example.org",
            "Description": "The server was unable to deliver your message",
        }
    )
    soft = json.dumps({"RecordType": "Bounce", "Type": "SoftBounce", "Email": "fine@example.org"})
    auth = "Basic " + base64.b64encode(b"hooks:s3cret").decode()
    assert (
        await c.post("/webhooks/postmark", content=bounce, headers={"Authorization": auth})
    ).json()["suppressed"] == 1
    assert (
        await c.post("/webhooks/postmark", content=soft, headers={"Authorization": auth})
    ).json()["suppressed"] == 0
    wrong = "Basic " + base64.b64encode(b"hooks:guess").decode()
    assert (
        await c.post("/webhooks/postmark", content=bounce, headers={"Authorization": wrong})
    ).status_code == 401
    assert _statuses(app)["gone@example.org"] == "bounced"


def _svix(body: bytes, secret: str = RESEND_SECRET) -> dict[str, str]:
    message_id, timestamp = "msg_2Lh9K", str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "svix-id": message_id,
        "svix-timestamp": timestamp,
        "svix-signature": f"v1,bm90LXRoaXMtb25l v1,{base64.b64encode(mac).decode()}",
    }


async def test_resend(client) -> None:
    c, app, _ = client
    body = json.dumps(
        {
            "type": "email.complained",
            "created_at": "2026-11-28T07:00:00Z",
            "data": {
                "email_id": "4ef9a417",
                "to": ["angry@example.org"],
                "from": "news@example.com",
            },
        }
    ).encode()
    assert (await c.post("/webhooks/resend", content=body, headers=_svix(body))).json() == {
        "events": 1,
        "suppressed": 1,
    }
    other = "whsec_" + base64.b64encode(b"somebody-elses-secret-----------").decode()
    assert (
        await c.post("/webhooks/resend", content=body, headers=_svix(body, other))
    ).status_code == 401
    assert _statuses(app)["angry@example.org"] == "complained"


def _sns(kind: str, message: Mapping[str, object] | str, version: str = "1") -> bytes:
    envelope: dict[str, str] = {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "TopicArn": TOPIC,
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": "2026-11-28T07:00:00.000Z",
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
    }
    if kind == "SubscriptionConfirmation":
        envelope["Token"] = "2336412f37"
        envelope["SubscribeURL"] = (
            "https://sns.eu-west-1.amazonaws.com/?Action="
            "ConfirmSubscription&TopicArn=x&Token=2336412f37"
        )
    else:
        envelope["Subject"] = "Amazon SES Email Event Notification"
    fields = (
        ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
        if kind == "SubscriptionConfirmation"
        else ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
    )
    signed = "".join(f"{k}\n{envelope[k]}\n" for k in fields if k in envelope).encode()
    algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
    envelope["Signature"] = base64.b64encode(
        SNS_KEY.sign(signed, padding.PKCS1v15(), algorithm)
    ).decode()
    return json.dumps(envelope).encode()


async def test_ses_through_sns(client) -> None:
    c, app, fetched = client
    confirm = await c.post(
        "/webhooks/ses", content=_sns("SubscriptionConfirmation", "You have chosen to subscribe")
    )
    assert confirm.status_code == 200 and any("ConfirmSubscription" in u for u in fetched)
    bounce = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": "gone@example.org",
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
        },
        "mail": {"messageId": "0100017"},
    }
    complaint = {
        "eventType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": "angry@example.org"}]},
    }
    assert (await c.post("/webhooks/ses", content=_sns("Notification", bounce))).json()[
        "suppressed"
    ] == 1
    assert (await c.post("/webhooks/ses", content=_sns("Notification", complaint, "2"))).json()[
        "suppressed"
    ] == 1
    forged = _sns("Notification", bounce).replace(b"gone@example.org", b"fine@example.org")
    assert (await c.post("/webhooks/ses", content=forged)).status_code == 401
    elsewhere = json.loads(_sns("Notification", bounce))
    elsewhere["SigningCertURL"] = "https://attacker.example/cert.pem"
    assert (await c.post("/webhooks/ses", content=json.dumps(elsewhere))).status_code == 401
    assert _statuses(app) == {
        "gone@example.org": "bounced",
        "angry@example.org": "complained",
        "fine@example.org": "active",
    }


async def test_an_unconfigured_provider_is_not_served(config: Path) -> None:
    text = config.read_text().replace('resend_secret_env = "RESEND_SECRET"\n', "")
    config.write_text(text)
    app = App.open(load_config(config))
    transport = httpx.ASGITransport(app=create_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as c:
        assert (await c.post("/webhooks/resend", content=b"{}")).status_code == 404
        assert (await c.post("/webhooks/nobody", content=b"{}")).status_code == 404
    app.close()


async def test_a_malformed_event_is_refused_or_ignored_never_a_crash(client) -> None:
    c, app, _ = client
    unsigned = await c.post("/webhooks/mailgun", content=json.dumps({"signature": "x"}))
    assert unsigned.status_code == 401
    not_an_object = _mailgun("gone@example.org")  # type: ignore[arg-type]
    assert (await c.post("/webhooks/mailgun", content=not_an_object)).status_code == 200
    latin = {"Authorization": "Basic \u00e9".encode("latin-1")}
    assert (await c.post("/webhooks/postmark", content=b"{}", headers=latin)).status_code == 401
    body = json.dumps({"type": "email.bounced", "data": "gone@example.org"}).encode()
    assert (await c.post("/webhooks/resend", content=body, headers=_svix(body))).status_code == 200
    strings = {
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": ["gone@example.org"]},
    }
    for message in (strings, "[1, 2]"):
        sns = await c.post("/webhooks/ses", content=_sns("Notification", message))
        assert sns.status_code == 200
    assert set(_statuses(app).values()) == {"active"}


async def test_a_paused_reader_whose_address_bounces_is_suppressed(client) -> None:
    c, app, _ = client
    gone = app.store.subscriber_by_email("gone@example.org")
    assert gone is not None and gone.id is not None
    app.store.set_subscriber(gone.id, status="paused")
    event = {"event": "failed", "severity": "permanent", "recipient": "gone@example.org"}
    assert (await c.post("/webhooks/mailgun", content=_mailgun(event))).json()["suppressed"] == 1
    # Resuming on the preferences page later must not mail a dead address.
    assert _statuses(app)["gone@example.org"] == "bounced"


async def test_a_bounce_reported_for_the_unicode_form_of_an_address_is_matched(client) -> None:
    c, app, _ = client
    app.store.add_subscriber("ann@xn--bcher-kva.example")  # as digest stores ann@bücher.example
    event = {"event": "failed", "severity": "permanent", "recipient": "ann@bücher.example"}
    assert (await c.post("/webhooks/mailgun", content=_mailgun(event))).json()["suppressed"] == 1
    assert _statuses(app)["ann@xn--bcher-kva.example"] == "bounced"


async def test_an_address_that_is_not_text_is_ignored_never_a_500(client) -> None:
    """A verified event whose address is a number, an object or a list, or text no database
    holds (a lone surrogate, as JSON's \\udcff gives): ignored with the rest read, not a 500
    the provider retries for days."""
    c, app, _ = client
    auth = {"Authorization": "Basic " + base64.b64encode(b"hooks:s3cret").decode()}
    for address in (123, {"a": 1}, ["gone@example.org"], "gone@\udcff.example.org"):
        postmark = json.dumps({"RecordType": "SpamComplaint", "Email": address}).encode()
        answer = await c.post("/webhooks/postmark", content=postmark, headers=auth)
        assert (answer.status_code, answer.json()["suppressed"]) == (200, 0)
        event = {"event": "failed", "severity": "permanent", "recipient": address}
        answer = await c.post("/webhooks/mailgun", content=_mailgun(event))
        assert (answer.status_code, answer.json()["suppressed"]) == (200, 0)
        body = json.dumps([{"event": "spamreport", "email": address}]).encode()
        answer = await c.post("/webhooks/sendgrid", content=body, headers=_sendgrid(body))
        assert (answer.status_code, answer.json()["suppressed"]) == (200, 0)
        body = json.dumps({"type": "email.complained", "data": {"to": [address]}}).encode()
        answer = await c.post("/webhooks/resend", content=body, headers=_svix(body))
        assert (answer.status_code, answer.json()["suppressed"]) == (200, 0)
        note = {"notificationType": "Complaint",
                "complaint": {"complainedRecipients": [{"emailAddress": address}]}}  # fmt: skip
        answer = await c.post("/webhooks/ses", content=_sns("Notification", note))
        assert (answer.status_code, answer.json()["suppressed"]) == (200, 0)
    assert set(_statuses(app).values()) == {"active"}
