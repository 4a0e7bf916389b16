"""HTTP API providers: every request they build is validated against the provider's own spec.

The provider's API is the only thing mocked (an httpx.MockTransport, or a real local HTTP
server for the end-to-end runs through the CLI), and it answers with documented responses.
The specs live in the shared data (``SHARED / "specs"``: ../shared, or $DIGEST_SHARED); without
them these tests skip.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from digest.app import App
from digest.config import Config, load_config
from digest.deliver import Sender
from digest.deliver.base import Answered
from digest.deliver.providers import mailgun, postmark, resend, sendgrid, ses
from digest.deliver.providers._http import retry_after
from digest.errors import DeliveryError
from digest.records import OutgoingMessage, Recipient, RenderedEdition, SendResult
from digest.render import build_template
from digest.render.edition import GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL
from tests.conftest import SHARED, FeedServer, rss, run_cli, write_config  # noqa: F401

SPECS = SHARED / "specs"
openapi_core = pytest.importorskip("openapi_core")
yaml = pytest.importorskip("yaml")
pytestmark = pytest.mark.skipif(
    not SPECS.is_dir(), reason=f"the shared specs are not here ({SPECS})"
)

from openapi_core import OpenAPI  # noqa: E402
from openapi_core.datatypes import RequestParameters  # noqa: E402
from openapi_core.templating.responses.exceptions import ResponseNotFound  # noqa: E402
from werkzeug.datastructures import Headers, ImmutableMultiDict  # noqa: E402

SPEC_FILES = {
    "resend": "resend/resend.yaml",
    "postmark": "postmark/server.oas3.yml",
    "sendgrid": "sendgrid/tsg_mail_v3.yaml",
    "mailgun": "mailgun/openapi.yaml",
}
BASE_URLS = {
    "resend": "https://api.resend.com",
    "postmark": "https://api.postmarkapp.com",
    "sendgrid": "https://api.sendgrid.com",
    "mailgun": "https://api.mailgun.net",
    "ses": "https://email.us-east-1.amazonaws.com",
}
_loaded: dict[str, OpenAPI] = {}


def spec(provider: str) -> OpenAPI:
    """The provider's OpenAPI document, its server set to the address the client uses."""
    if provider not in _loaded:
        doc = yaml.safe_load((SPECS / SPEC_FILES[provider]).read_text(encoding="utf-8"))
        doc["servers"] = [{"url": BASE_URLS[provider]}]
        _loaded[provider] = OpenAPI.from_dict(doc)
    return _loaded[provider]


# --- openapi-core adapters for plain requests and responses ---------------------------------


@dataclass
class _Request:
    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters


@dataclass
class _Response:
    data: bytes
    status_code: int
    content_type: str
    headers: Headers


def _openapi_request(method: str, url: str, headers: dict[str, str], body: bytes) -> _Request:
    parts = urlsplit(url)
    return _Request(
        host_url=f"{parts.scheme}://{parts.netloc}",
        path=parts.path,
        method=method.lower(),
        body=body,
        content_type=headers.get("content-type", ""),
        parameters=RequestParameters(
            query=ImmutableMultiDict(parse_qs(parts.query)), header=Headers(headers)
        ),
    )


def _decode(content_type: str, body: bytes) -> Any:
    """A JSON body, or a multipart form as (name, value) pairs in order."""
    if not body:
        return None
    if content_type.startswith("multipart/form-data"):
        import email.parser
        import email.policy

        raw = f"Content-Type: {content_type}\r\n\r\n".encode() + body
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
        pairs = []
        for part in message.iter_parts():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            pairs.append((part.get_param("name", header="content-disposition"), payload.decode()))
        return pairs
    return json.loads(body)


_ses: list[Any] = []


def ses_model() -> Any:
    """botocore's SES v2 service model, from ../shared/specs."""
    if not _ses:
        from botocore.model import ServiceModel

        path = SPECS / "ses" / "sesv2-2019-09-27.service-2.json"
        _ses.append(ServiceModel(json.loads(path.read_text(encoding="utf-8")), "sesv2"))
    return _ses[0]


def _shape_errors(where: str, value: Any, shape: Any) -> list[str]:
    from botocore.validate import ParamValidator

    report = ParamValidator().validate(value, shape)
    return [f"{where}: {report.generate_report()}"] if report.has_errors() else []


@dataclass
class Answer:
    """One documented reply: status, JSON body, headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Api:
    """A provider's API as the tests play it: validates each request, answers from ``reply``."""

    provider: str
    reply: Callable[[Any], Answer]
    requests: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def handle(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Answer:
        """Validate the request against the spec, record it, and answer."""
        if self.provider == "ses":
            return self._handle_ses(method, url, headers, body)
        api = spec(self.provider)
        request = _openapi_request(method, url, headers, body)
        try:
            api.validate_request(request)
        except Exception as exc:  # the validator's errors carry the schema path
            self.problems.append(f"request: {exc!r}: {getattr(exc, '__cause__', '')!r}")
        doc = _decode(headers.get("content-type", ""), body)
        self.requests.append((headers, doc))
        answer = self.reply(doc)
        if answer.status < 500 and answer.status != 429:  # the specs document these
            data = b"" if answer.body is None else json.dumps(answer.body).encode()
            response = _Response(data, answer.status, "application/json", Headers())
            try:
                api.validate_response(request, response)
            except ResponseNotFound:
                pass  # a status the spec leaves out (Resend's 422): its docs give the shape
            except Exception as exc:
                self.problems.append(f"response {answer.status}: {exc!r}")
        return answer

    def _handle_ses(self, method: str, url: str, headers: dict[str, str], body: bytes) -> Answer:
        """SES has no OpenAPI: check the request against botocore's service model."""
        operation = ses_model().operation_model("SendBulkEmail")
        if (method, urlsplit(url).path) != (operation.http["method"], operation.http["requestUri"]):
            self.problems.append(f"request: {method} {url} is not SendBulkEmail")
        auth = headers.get("authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") or (
            "/us-east-1/ses/aws4_request, SignedHeaders=" not in auth
        ):
            self.problems.append(f"request: not SigV4-signed for ses: {auth!r}")
        if "x-amz-date" not in headers:
            self.problems.append("request: no X-Amz-Date")
        doc = json.loads(body)
        self.problems += _shape_errors("request", doc, operation.input_shape)
        self.requests.append((headers, doc))
        answer = self.reply(doc)
        if answer.status == 200:
            self.problems += _shape_errors("response", answer.body, operation.output_shape)
        return answer

    def transport(self) -> httpx.MockTransport:
        """An httpx transport that plays this API."""

        def handler(request: httpx.Request) -> httpx.Response:
            headers = {k.lower(): v for k, v in request.headers.items()}
            answer = self.handle(request.method, str(request.url), headers, request.content)
            if answer.body is None:
                return httpx.Response(answer.status, headers=answer.headers)
            return httpx.Response(answer.status, json=answer.body, headers=answer.headers)

        return httpx.MockTransport(handler)


# --- messages ------------------------------------------------------------------------------


RENDERED = RenderedEdition(
    subject="Daily Test, 28 November: Bridge collapse",
    html=f"<p>{GREETING}</p><p>News &amp; more</p>"
    f'<a href="{UNSUBSCRIBE_URL}">Unsubscribe</a> <a href="{PREFERENCES_URL}">Prefs</a>',
    text=f"{GREETING}\n\nNews & more\n\nUnsubscribe: {UNSUBSCRIBE_URL}\n",
)


def messages(count: int, *, subject: str | None = None) -> list[OutgoingMessage]:
    """``count`` messages as the dispatcher hands them to a fields-wanting transport."""
    template = build_template(
        RENDERED if subject is None else RenderedEdition(subject, RENDERED.html, RENDERED.text),
        sender="Test Desk <news@example.com>",
        reply_to="desk@example.com",
        list_name="Daily Test (Test Desk)",
        list_id="daily.digest.test",
        message_id_prefix="digest.1",
    )
    out = []
    for n in range(1, count + 1):
        recipient = Recipient(
            n,
            f"reader{n}@example.org",
            "Ada & Co" if n == 1 else None,
            f"https://digest.test/unsubscribe/tok{n}",
            f"mailto:unsubscribe@example.com?subject=unsubscribe%20tok{n}",
            f"https://digest.test/preferences/tok{n}",
        )
        out.append(
            OutgoingMessage(
                n,
                template.sender,
                recipient.email,
                template.message_id(recipient, n),
                b"",
                template.fields(recipient),
            )
        )
    return out


# Each provider's key, in the environment variable the example config names.
API_KEYS = {
    "RESEND_API_KEY": "re_test_key",
    "POSTMARK_SERVER_TOKEN": "pm-test-token",
    "SENDGRID_API_KEY": "SG.test-key",
    "MAILGUN_API_KEY": "key-test",
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
}


def set_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in API_KEYS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("DIGEST_SECRET", "test-secret-0123456789-abcdefghij")
    set_api_keys(monkeypatch)
    from tests.conftest import config_text

    path = tmp_path / "digest.toml"
    extra = '\n[delivery.mailgun]\ndomain = "mg.example.org"\n'
    path.write_text(config_text([("One", "https://one.test/feed")], extra=extra), encoding="utf-8")
    return load_config(path)


async def _no_wait(seconds: float) -> None:
    waits.append(seconds)


waits: list[float] = []

BUILDERS: dict[str, Callable[..., Sender]] = {
    "resend": resend.build,
    "postmark": postmark.build,
    "sendgrid": sendgrid.build,
    "mailgun": mailgun.build,
    "ses": ses.build,
}


def send(
    provider: str,
    api: Api,
    config: Config,
    batch: list[OutgoingMessage],
    answered: Answered | None = None,
) -> list[SendResult]:
    """Run one send_batch of ``provider`` against ``api``."""
    waits.clear()

    async def run() -> list[SendResult]:
        sender = BUILDERS[provider](config, api.transport(), _no_wait)
        try:
            return await sender.send_batch(batch, answered)
        finally:
            await sender.aclose()

    return asyncio.run(run())


def accepted(
    provider: str, config: Config, answer: Callable[[Any], Answer] | None = None, count: int = 2
) -> tuple[Api, list[SendResult]]:
    """Send ``count`` messages to an API that takes the call and answers ``answer`` (by
    default, that it took every message); every request valid per spec. The API (its
    requests) and the results."""
    api = Api(provider, answer or OK[provider])
    results = send(provider, api, config, messages(count))
    assert api.problems == []
    return api, results


def refused(provider: str, config: Config, answer: Callable[[Any], Answer]) -> str:
    """Send two messages to an API that refuses the call with ``answer`` (a documented
    reply, valid per spec): both rows fail for one reason, which is returned."""
    api = Api(provider, answer)
    results = send(provider, api, config, messages(2))
    assert api.problems == []
    assert [r.status for r in results] == ["failed", "failed"]
    assert results[0].detail == results[1].detail
    return results[0].detail


# --- documented replies ----------------------------------------------------------------------


def resend_ok(doc: Any) -> Answer:
    return Answer(
        200, {"data": [{"id": f"4ef9a417-02e9-4d39-ad75-{n:012d}"} for n in range(len(doc))]}
    )


def postmark_ok(doc: Any) -> Answer:
    return Answer(
        200,
        [
            {
                "ErrorCode": 0,
                "Message": "OK",
                "MessageID": f"b7bc2f4a-e38e-4336-af7d-{n:012d}",
                "SubmittedAt": "2026-11-28T14:00:00.0000000-05:00",
                "To": m["To"],
            }
            for n, m in enumerate(doc)
        ],
    )


def sendgrid_ok(doc: Any) -> Answer:
    return Answer(202, None, {"X-Message-Id": "W86EgYT6SQKk0lRflfLRsA"})


def mailgun_ok(doc: Any) -> Answer:
    return Answer(
        200, {"id": "<20261128140000.1.1@mg.example.org>", "message": "Queued. Thank you."}
    )


def ses_ok(doc: Any) -> Answer:
    entries = doc["BulkEmailEntries"]
    return Answer(
        200,
        {
            "BulkEmailEntryResults": [
                {"Status": "SUCCESS", "MessageId": f"0100018c-0000-0000-0000-{n:012d}-000000"}
                for n in range(len(entries))
            ]
        },
    )


OK = {
    "resend": resend_ok,
    "postmark": postmark_ok,
    "sendgrid": sendgrid_ok,
    "mailgun": mailgun_ok,
    "ses": ses_ok,
}
LIMITS = {"resend": 100, "postmark": 500, "sendgrid": 1000, "mailgun": 1000, "ses": 50}
ENV = {
    "resend": "RESEND_API_KEY",
    "postmark": "POSTMARK_SERVER_TOKEN",
    "sendgrid": "SENDGRID_API_KEY",
    "mailgun": "MAILGUN_API_KEY",
    "ses": "AWS_ACCESS_KEY_ID",
}
PROVIDERS = list(OK)


def size(doc: Any) -> int:
    """How many recipients one request carries."""
    if isinstance(doc, dict):
        return len(doc.get("personalizations") or doc["BulkEmailEntries"])
    if doc and isinstance(doc[0], tuple):  # a form: one ``to`` per recipient
        return sum(1 for name, _ in doc if name == "to")
    return len(doc)


# --- contract: full batches ----------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_full_batch_is_valid_per_spec_and_split_at_the_provider_limit(
    provider: str, config: Config
) -> None:
    limit = LIMITS[provider]
    api = Api(provider, OK[provider])
    # Each answer, and how many calls had been made when it came: a call's rows are kept
    # in the batch's progress as its answer comes, before the next call goes.
    answers: list[tuple[int, str, int]] = []
    results = send(
        provider,
        api,
        config,
        messages(limit + 1),
        lambda m, r: answers.append((m.delivery_id, r.status, len(api.requests))),
    )
    assert api.problems == []
    assert [size(doc) for _, doc in api.requests] == [limit, 1]
    assert [r.status for r in results] == ["sent"] * (limit + 1)
    assert sorted(r.delivery_id for r in results) == list(range(1, limit + 2))
    assert sorted(answers) == [(i, "sent", 1 if i <= limit else 2) for i in range(1, limit + 2)]


@pytest.mark.parametrize(
    ("provider", "path", "body"),
    [
        ("resend", "/emails/batch", [{"to": ["a@example.org"], "subject": "no from"}]),
        ("postmark", "/email/batch", {"From": "not a list"}),
    ],
)
def test_the_contract_check_itself_catches_a_bad_request(
    provider: str, path: str, body: Any
) -> None:
    api = Api(provider, lambda doc: Answer(500, {}))
    headers = {
        "content-type": "application/json",
        "authorization": "Bearer k",
        "x-postmark-server-token": "k",
    }
    api.handle("POST", BASE_URLS[provider] + path, headers, json.dumps(body).encode())
    assert len(api.problems) == 1 and api.problems[0].startswith("request:")


def test_resend_request_carries_each_recipients_values_and_an_idempotency_key(
    config: Config,
) -> None:
    api = Api("resend", resend_ok)
    send("resend", api, config, messages(2))
    send("resend", api, config, messages(2))
    (headers, doc), (again, _) = api.requests
    assert headers["authorization"] == "Bearer re_test_key"
    assert headers["idempotency-key"] == again["idempotency-key"], "a retry must reuse the key"
    first, second = doc
    assert first["from"] == "Test Desk <news@example.com>"
    assert first["to"] == ['"Ada & Co" <reader1@example.org>']
    assert first["reply_to"] == "desk@example.com"
    assert first["subject"] == RENDERED.subject
    assert first["text"].startswith("Hello Ada,")
    assert "https://digest.test/unsubscribe/tok1" in first["text"]
    assert "<p>Hello Ada,</p>" in first["html"]
    assert 'href="https://digest.test/preferences/tok1"' in first["html"]
    assert "DIGESTx" not in first["text"] + first["html"] + second["text"] + second["html"]
    assert first["headers"] == {
        "List-Unsubscribe": "<https://digest.test/unsubscribe/tok1>, "
        "<mailto:unsubscribe@example.com?subject=unsubscribe%20tok1>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": '"Daily Test (Test Desk)" <daily.digest.test>',
    }
    assert second["to"] == ["reader2@example.org"]
    assert "tok2" in second["headers"]["List-Unsubscribe"]


def test_postmark_request_carries_each_recipients_values_as_header_list(config: Config) -> None:
    api = Api("postmark", postmark_ok)
    send("postmark", api, config, messages(2))
    ((headers, doc),) = api.requests
    assert headers["x-postmark-server-token"] == "pm-test-token"
    first = doc[0]
    assert first["To"] == '"Ada & Co" <reader1@example.org>'
    assert first["MessageStream"] == "broadcast"
    assert first["ReplyTo"] == "desk@example.com"
    assert {h["Name"]: h["Value"] for h in first["Headers"]}["List-Unsubscribe-Post"] == (
        "List-Unsubscribe=One-Click"
    )
    assert "https://digest.test/unsubscribe/tok1" in first["TextBody"]
    assert "Hello Ada," in first["HtmlBody"]


def test_sendgrid_sends_the_content_once_with_substitutions_per_recipient(config: Config) -> None:
    api, results = accepted("sendgrid", config)
    assert [r.detail for r in results] == ["sendgrid W86EgYT6SQKk0lRflfLRsA"] * 2
    ((headers, doc),) = api.requests
    assert headers["authorization"] == "Bearer SG.test-key"
    assert doc["from"] == {"email": "news@example.com", "name": "Test Desk"}
    assert doc["reply_to"] == {"email": "desk@example.com"}
    assert doc["subject"] == RENDERED.subject
    text, html = doc["content"]
    assert text["type"] == "text/plain" and html["type"] == "text/html"
    assert GREETING in text["value"] and GREETING not in html["value"]
    assert doc["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    first, second = doc["personalizations"]
    assert first["to"] == [{"email": "reader1@example.org", "name": "Ada & Co"}]
    assert first["custom_args"] == {"delivery_id": "1"}
    assert "tok1" in first["headers"]["List-Unsubscribe"]
    assert "tok2" in second["headers"]["List-Unsubscribe"]
    # Each recipient's values, put into both parts by SendGrid: escaped for the HTML part.
    rendered_text = text["value"]
    rendered_html = html["value"]
    for token, value in first["substitutions"].items():
        rendered_text = rendered_text.replace(token, value)
        rendered_html = rendered_html.replace(token, value)
    assert rendered_text.startswith("Hello Ada,")
    assert "<p>Hello Ada,</p>" in rendered_html
    assert "DIGESTx" not in rendered_text + rendered_html


def test_sendgrid_rejected_batch_fails_every_row_with_its_errors(config: Config) -> None:
    errors = [
        {"message": "The from address does not match a verified Sender Identity.", "field": "from"}
    ]
    detail = refused("sendgrid", config, lambda doc: Answer(400, {"errors": errors}))
    assert "verified Sender Identity" in detail


def test_mailgun_sends_the_content_once_with_recipient_variables(config: Config) -> None:
    api, results = accepted("mailgun", config)
    assert [r.status for r in results] == ["sent", "sent"]
    ((headers, form),) = api.requests
    assert headers["authorization"].startswith("Basic ")
    assert headers["content-type"].startswith("multipart/form-data")
    fields = dict(form)
    assert [v for k, v in form if k == "to"] == [
        '"Ada & Co" <reader1@example.org>',
        "reader2@example.org",
    ]
    assert fields["from"] == "Test Desk <news@example.com>"
    assert fields["h:Reply-To"] == "desk@example.com"
    assert fields["h:List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert fields["h:List-Unsubscribe"] == "%recipient.list_unsubscribe%"
    variables = json.loads(fields["recipient-variables"])
    assert set(variables) == {"reader1@example.org", "reader2@example.org"}
    assert "tok2" in variables["reader2@example.org"]["list_unsubscribe"]

    def as_mailgun_sends(body: str, address: str) -> str:
        for name, value in variables[address].items():
            body = body.replace(f"%recipient.{name}%", str(value))
        return body

    text = as_mailgun_sends(fields["text"], "reader1@example.org")
    html = as_mailgun_sends(fields["html"], "reader1@example.org")
    assert text.startswith("Hello Ada,") and "<p>Hello Ada,</p>" in html
    assert "https://digest.test/unsubscribe/tok1" in text
    assert "DIGESTx" not in text + html and "%recipient" not in text + html


def test_mailgun_rejected_batch_fails_every_row(config: Config) -> None:
    message = "'to' parameter is not a valid address. please check documentation"
    detail = refused("mailgun", config, lambda doc: Answer(400, {"message": message}))
    assert "not a valid address" in detail


def test_ses_sends_an_inline_template_with_each_recipients_data(config: Config) -> None:
    api, results = accepted("ses", config)
    assert [r.detail for r in results] == [
        "ses 0100018c-0000-0000-0000-000000000000-000000",
        "ses 0100018c-0000-0000-0000-000000000001-000000",
    ]
    ((_headers, doc),) = api.requests
    assert doc["FromEmailAddress"] == "Test Desk <news@example.com>"
    assert doc["ReplyToAddresses"] == ["desk@example.com"]
    template = doc["DefaultContent"]["Template"]
    content = template["TemplateContent"]
    assert content["Subject"] == RENDERED.subject
    assert {h["Name"] for h in template["Headers"]} == {"List-Id", "List-Unsubscribe-Post"}
    first, second = doc["BulkEmailEntries"]
    assert first["Destination"] == {"ToAddresses": ['"Ada & Co" <reader1@example.org>']}
    assert "tok1" in first["ReplacementHeaders"][0]["Value"]
    assert "tok2" in second["ReplacementHeaders"][0]["Value"]
    data = json.loads(
        first["ReplacementEmailContent"]["ReplacementTemplate"]["ReplacementTemplateData"]
    )

    def as_ses_renders(body: str) -> str:
        for name, value in data.items():
            body = body.replace("{{{" + name + "}}}", value)
        return body

    text, html = as_ses_renders(content["Text"]), as_ses_renders(content["Html"])
    assert text.startswith("Hello Ada,") and "<p>Hello Ada,</p>" in html
    assert "DIGESTx" not in text + html and "{{" not in text + html


def test_ses_judges_each_entry_of_a_200_reply(config: Config) -> None:
    def mixed(doc: Any) -> Answer:
        answer = ses_ok(doc)
        answer.body["BulkEmailEntryResults"][1] = {
            "Status": "MESSAGE_REJECTED",
            "Error": "Email address is not verified.",
        }
        answer.body["BulkEmailEntryResults"][2] = {"Status": "ACCOUNT_THROTTLED"}
        return answer

    _, results = accepted("ses", config, mixed, count=3)
    assert [r.status for r in results] == ["sent", "failed", "deferred"]
    assert "not verified" in results[1].detail


def test_ses_rejected_batch_fails_every_row(config: Config) -> None:
    def reject(doc: Any) -> Answer:
        return Answer(
            400,
            {"message": "Template data is not valid JSON."},
            {"x-amzn-ErrorType": "BadRequestException:http://internal.amazon.com/"},
        )

    detail = refused("ses", config, reject)
    assert "BadRequestException" in detail and "not valid JSON" in detail


def test_ses_batches_hold_at_most_50_destinations(config: Config) -> None:
    api = Api("ses", ses_ok)
    send("ses", api, config, messages(101))
    assert [size(doc) for _, doc in api.requests] == [50, 50, 1]
    assert api.problems == []


def test_the_contract_check_catches_a_bad_ses_request() -> None:
    errors = _shape_errors(
        "request",
        {"BulkEmailEntries": [{"Destination": {"ToAddresses": "not-a-list"}}]},
        ses_model().operation_model("SendBulkEmail").input_shape,
    )
    assert errors and "DefaultContent" in errors[0] and "ToAddresses" in errors[0]


# --- contract: rejected batches ------------------------------------------------------------


def test_resend_rejected_batch_fails_every_row_with_resends_message(config: Config) -> None:
    def reject(doc: Any) -> Answer:
        return Answer(
            422,
            {"statusCode": 422, "name": "validation_error", "message": "Invalid `from` field."},
        )

    api = Api("resend", reject)
    results = send("resend", api, config, messages(3))
    assert [r.status for r in results] == ["failed"] * 3
    assert all("Invalid `from` field." in r.detail for r in results)
    assert len(api.requests) == 1, "a 4xx is not retried"


def test_postmark_judges_each_result_of_a_200_reply(config: Config) -> None:
    def mixed(doc: Any) -> Answer:
        answer = postmark_ok(doc)
        answer.body[1] = {
            "ErrorCode": 406,
            "Message": "You tried to send to a recipient that has been marked as inactive.",
            "To": doc[1]["To"],
        }
        answer.body[2] = {"ErrorCode": 300, "Message": "Invalid 'To' address.", "To": doc[2]["To"]}
        return answer

    _, results = accepted("postmark", config, mixed, count=3)
    assert [r.status for r in results] == ["sent", "bounced", "failed"]
    assert "marked as inactive" in results[1].detail
    assert "Invalid 'To' address." in results[2].detail


def test_postmark_rejected_batch_fails_every_row(config: Config) -> None:
    reply = Answer(422, {"ErrorCode": 300, "Message": "Invalid JSON"})
    assert "Invalid JSON" in refused("postmark", config, lambda doc: reply)


# --- errors shared by every provider ----------------------------------------------------------


class FirstThenOk:
    """An API whose first call ends with ``first`` (an answer, or what it raises), and every
    later one as the provider answers a good request; it counts the calls."""

    def __init__(self, provider: str, first: Callable[[], Answer]) -> None:
        self.provider, self.first, self.calls = provider, first, 0

    def __call__(self, doc: Any) -> Answer:
        self.calls += 1
        return self.first() if self.calls == 1 else OK[self.provider](doc)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_waits_as_asked_then_succeeds(provider: str, config: Config) -> None:
    limited = FirstThenOk(
        provider, lambda: Answer(429, {"message": "Too many requests"}, {"Retry-After": "2"})
    )
    api = Api(provider, limited)
    results = send(provider, api, config, messages(2))
    assert waits == [2.0]
    assert [r.status for r in results] == ["sent", "sent"]


# A 5xx or a timeout may follow acceptance: only Resend's Idempotency-Key makes a retry safe.
# The others fail the rows at once, fate unknown (more in test_unknown_fate.py).


@pytest.mark.parametrize("provider", PROVIDERS)
def test_5xx_is_retried_with_backoff_only_with_an_idempotency_key(
    provider: str, config: Config
) -> None:
    api = Api(provider, lambda doc: Answer(503, {"message": "unavailable"}))
    results = send(provider, api, config, messages(2))
    assert "503" in results[0].detail
    if provider != "resend":
        assert len(api.requests) == 1 and waits == []
        assert [r.status for r in results] == ["failed", "failed"]
        assert "fate unknown" in results[0].detail
        return
    assert len(api.requests) == 4  # one try and max_retries = 3 retries
    assert len(waits) == 3 and waits[0] < waits[1] < waits[2]
    assert len({headers["idempotency-key"] for headers, _ in api.requests}) == 1
    # Then failed, not deferred: a later run would batch the rows under other keys.
    assert [r.status for r in results] == ["failed", "failed"]
    assert "its answers were lost on every retry" in results[0].detail


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_timeout_is_retried_only_with_an_idempotency_key(provider: str, config: Config) -> None:

    def time_out() -> Answer:
        raise httpx.ReadTimeout("timed out")

    slow_once = FirstThenOk(provider, time_out)
    api = Api(provider, slow_once)
    results = send(provider, api, config, messages(1))
    if provider != "resend":
        assert [r.status for r in results] == ["failed"]
        assert slow_once.calls == 1
        assert "fate unknown" in results[0].detail
        return
    assert [r.status for r in results] == ["sent"]
    assert slow_once.calls == 2
    (first, _), (again, _) = api.requests
    assert first["idempotency-key"] == again["idempotency-key"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_refused_key_stops_the_run_naming_the_env_var(provider: str, config: Config) -> None:
    api = Api(provider, lambda doc: Answer(401, {"ErrorCode": 10, "message": "bad key"}))
    with pytest.raises(DeliveryError) as caught:
        send(provider, api, config, messages(1))
    env = ENV[provider]
    assert env in caught.value.hint


@pytest.mark.parametrize("provider", PROVIDERS)
def test_missing_key_is_a_delivery_error_naming_the_env_var(
    provider: str, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = ENV[provider]
    monkeypatch.delenv(env)
    with pytest.raises(DeliveryError, match=env):
        BUILDERS[provider](config)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_cr_or_lf_in_a_header_value_is_refused_before_any_request(
    provider: str, config: Config
) -> None:
    api = Api(provider, OK[provider])
    results = send(provider, api, config, messages(2, subject="Hi\r\nBcc: victim@example.org"))
    assert api.requests == []
    assert [r.status for r in results] == ["failed", "failed"]
    assert "Subject" in results[0].detail


def test_retry_after_reads_seconds_dates_and_reset_headers() -> None:
    def response(**headers: str) -> httpx.Response:
        return httpx.Response(429, headers=headers)

    assert retry_after(response(**{"Retry-After": "3"})) == 3.0
    assert retry_after(response(**{"ratelimit-reset": "5"})) == 5.0
    assert retry_after(response(**{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after(response()) is None


# --- end to end through the CLI, against a real local HTTP server ------------------------------


class ApiServer:
    """A real HTTP server on 127.0.0.1 that plays ``api``."""

    def __init__(self, api: Api) -> None:
        outer = api

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                url = BASE_URLS[outer.provider] + self.path
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = outer.handle("POST", url, headers, body)
                data = b"" if answer.body is None else json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feeds(feed_server: FeedServer) -> list[tuple[str, str]]:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    date = format_datetime(datetime.now(UTC) - timedelta(minutes=30))
    items = [{"title": "Bridge closes", "guid": "w1", "link": "https://wire.test/b", "date": date}]
    return [("Wire", feed_server.add("/wire.xml", rss(items)))]


def _statuses(config_path: Path) -> dict[str, str]:
    app = App.open(load_config(config_path))
    try:
        (edition,) = app.store.editions()
        assert edition.id is not None
        return {s.email: d.status for d, s in app.store.deliveries(edition.id)}
    finally:
        app.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_send_through_the_cli_records_each_row_and_never_sends_twice(
    provider: str,
    feeds: list[tuple[str, str]],
    write_config: Callable[..., Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_api_keys(monkeypatch)

    def reply(doc: Any) -> Answer:
        # The refused address: one message of the batch for Postmark, a whole batch for Resend.
        if provider == "postmark":
            answer = postmark_ok(doc)
            for n, m in enumerate(doc):
                if m["To"].startswith("bad@"):
                    answer.body[n] = {"ErrorCode": 300, "Message": "Invalid 'To' address."}
            return answer
        if provider == "ses":
            answer = ses_ok(doc)
            for n, entry in enumerate(doc["BulkEmailEntries"]):
                if entry["Destination"]["ToAddresses"][0].startswith("bad@"):
                    answer.body["BulkEmailEntryResults"][n] = {
                        "Status": "MESSAGE_REJECTED",
                        "Error": "Email address is not verified.",
                    }
            return answer
        if provider == "mailgun":
            if any(v.startswith("bad@") for k, v in doc if k == "to"):
                message = "'to' parameter is not a valid address. please check documentation"
                return Answer(400, {"message": message})
            return mailgun_ok(doc)
        if provider == "sendgrid":
            if any(p["to"][0]["email"].startswith("bad@") for p in doc["personalizations"]):
                errors = [{"message": "Does not contain a valid address.", "field": "to"}]
                return Answer(400, {"errors": errors})
            return sendgrid_ok(doc)
        if any(m["to"][0].startswith("bad@") for m in doc):
            return Answer(422, {"statusCode": 422, "name": "validation_error", "message": "bad to"})
        return resend_ok(doc)

    api = Api(provider, reply)
    server = ApiServer(api)
    try:
        extra = f'\n[delivery.{provider}]\nbase_url = "{server.url}"\n'
        if provider == "mailgun":
            extra += 'domain = "mg.example.org"\n'
        config = write_config(feeds, transport=provider, extra=extra)
        # batch_size 2: for Resend, the refused address goes in a call of its own.
        text = config.read_text().replace("[delivery]\n", "[delivery]\nbatch_size = 2\n", 1)
        config.write_text(text)
        for address in ("ana@example.org", "zoe@example.org", "bad@example.org"):
            assert run_cli("--config", str(config), "subscribers", "add", address)[0] == 0
        code, _, err = run_cli("--config", str(config), "send", "--gather")
        assert code == 0, err
        assert api.problems == []
        assert _statuses(config) == {
            "ana@example.org": "sent",
            "zoe@example.org": "sent",
            "bad@example.org": "failed",
        }
        sent = len(api.requests)
        code, _, err = run_cli("--config", str(config), "send")
        assert code == 0, err
        assert len(api.requests) == sent, "a re-run called the API again"
    finally:
        server.close()


def test_the_contract_check_catches_a_mailgun_form_without_from() -> None:
    api = Api("mailgun", lambda doc: Answer(500, {}))
    request = httpx.Request(
        "POST",
        BASE_URLS["mailgun"] + "/v3/mg.example.org/messages",
        files=[("to", (None, "a@example.org")), ("subject", (None, "no from"))],
        headers={"authorization": "Basic YXBpOmtleQ=="},
    )
    headers = {k.lower(): v for k, v in request.headers.items()}
    api.handle("POST", str(request.url), headers, request.read())
    assert len(api.problems) == 1 and "'from' is a required property" in api.problems[0]


def test_sigv4_signs_the_aws_documented_example(monkeypatch: pytest.MonkeyPatch) -> None:
    """get-vanilla from AWS's Signature Version 4 test suite, through digest's httpx Auth."""
    import datetime as dt

    import botocore.auth
    from botocore.credentials import Credentials

    moment = dt.datetime(2015, 8, 30, 12, 36, 0)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: moment)
    auth = ses.SigV4(
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        "us-east-1",
        "service",
    )
    request = httpx.Request("GET", "https://example.amazonaws.com/")
    signed = next(auth.auth_flow(request))
    assert signed.headers["X-Amz-Date"] == "20150830T123600Z"
    assert signed.headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )


def test_mailgun_200_without_a_message_id_is_not_taken_for_sent(config: Config) -> None:
    api = Api("mailgun", lambda doc: Answer(200, {"message": "Mailgun Magnificent API"}))
    results = send("mailgun", api, config, messages(1))
    assert [r.status for r in results] == ["failed"]
    assert "domain and base_url" in results[0].detail
