"""End to end: feeds from a real HTTP server, mail to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.app import App
from digest.config import load_config
from digest.links import make_token, read_token
from digest.store import Subscriber
from tests.conftest import SECRET, FeedServer, Route, SmtpServer, rss, run_cli

NOW = "Sat, 28 Nov 2026 06:00:00 GMT"
HOSTILE = (
    '<p>Ministers met overnight.<script>alert("xss")</script>'
    '<img src="x" onerror="alert(2)"> Read <a href="javascript:alert(3)">more</a>.</p>'
)


def _recent(minutes: int) -> str:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    return format_datetime(datetime.now(UTC) - timedelta(minutes=minutes))


def _serve_sources(feed_server: FeedServer) -> list[tuple[str, str]]:
    wire = rss(
        [
            {
                "title": "Bridge collapse closes river crossing for weeks",
                "guid": "w1",
                "link": "https://wire.test/bridge?utm_source=rss",
                "date": _recent(30),
                "desc": "Engineers inspect the damage.",
            },
            {
                "title": "Parliament passes data protection bill",
                "guid": "w2",
                "link": "https://wire.test/data-bill",
                "date": _recent(90),
                "desc": HOSTILE,
            },
            {
                "title": "Item with a hostile link",
                "guid": "w3",
                "link": "javascript:alert(4)",
                "date": _recent(20),
            },
        ]
    )
    post = rss(
        [
            {
                "title": "River crossing closed for weeks after bridge collapse",
                "guid": "p1",
                "link": "https://post.test/bridge",
                "date": _recent(25),
                "desc": "Commuters face long detours.",
            },
            {
                "title": "Orchestra announces free summer concerts",
                "guid": "p2",
                "link": "https://post.test/concerts",
                "date": _recent(200),
            },
        ]
    )
    return [
        ("Wire", feed_server.add("/wire.xml", wire)),
        ("Post", feed_server.add("/post.xml", post)),
        ("Broken", feed_server.add("/broken.xml", "oops", status=500)),
        (
            "Homepage",
            feed_server.add(
                "/home",
                "<!DOCTYPE html><html><body>hi</body></html>",
                headers={"Content-Type": "text/html"},
            ),
        ),
        ("Sleepy", feed_server.add("/slow.xml", wire, delay=3.0)),
    ]


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


@pytest.fixture
def service(feed_server: FeedServer, smtp_server: SmtpServer, write_config) -> Path:
    config = write_config(
        _serve_sources(feed_server), transport="smtp", smtp_port=smtp_server.port, timeout=1.0
    )
    for address in ("ana@example.org", "zoe@example.org"):
        code, _, err = run_cli("--config", str(config), "subscribers", "add", address)
        assert code == 0, err
    return config


def _subscribers(config: Path) -> dict[str, Subscriber]:
    app = App.open(load_config(config))
    try:
        return {s.email: s for s in app.store.subscribers()}
    finally:
        app.close()


def test_digest_reaches_every_subscriber_with_both_parts_and_list_headers(
    service: Path, smtp_server: SmtpServer
) -> None:
    code, out, err = run_cli("--config", str(service), "send", "--gather")
    assert code == 0, err
    # Each broken source is a line of the gather's table naming it (once: not logged again
    # below it); the digest still went out.
    for name, cause in (("Broken", "HTTP 500"), ("Homepage", "HTML page"), ("Sleepy", "timed out")):
        assert re.search(rf"FAIL  {name}: source '{name}': .*{cause}", out), (name, out)
        assert f"source '{name}'" not in err
    assert "2 sent" in out
    assert sorted(m.recipients[0] for m in smtp_server.messages) == [
        "ana@example.org",
        "zoe@example.org",
    ]

    subscribers = _subscribers(service)
    for received in smtp_server.messages:
        message = received.message()
        assert message["From"] == "Test Desk <news@example.com>"
        assert message["Subject"] == "Daily Test: Bridge collapse closes river crossing for weeks"
        assert message["To"] == received.recipients[0]
        assert received.sender == "news@example.com"
        assert re.fullmatch(
            r"<digest\.\d+\.\d+\.[A-Za-z0-9_-]{22}@example\.com>", message["Message-ID"]
        )
        assert re.search(rb"\r\nDate: [^\r]+ \+0000\r\n", received.data)
        assert message["List-Id"] == '"Daily Test (Test Desk)" <daily.digest.test>'
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_content_type() == "multipart/alternative"

        found = re.fullmatch(r"<(https://[^>]+)>, <(mailto:[^>]+)>", message["List-Unsubscribe"])
        assert found, message["List-Unsubscribe"]
        https, mailto = found.groups()
        token = https.rsplit("/", 1)[1]
        assert https == f"https://digest.test/unsubscribe/{token}"
        assert mailto == f"mailto:unsubscribe@example.com?subject=unsubscribe%20{token}"
        # The token names exactly this subscriber, and only our secret makes it.
        owner = subscribers[received.recipients[0]]
        assert read_token(SECRET, "unsubscribe", token) == owner.public_id
        assert token == make_token(SECRET, "unsubscribe", owner.public_id)
        assert owner.email not in token
        i = len(token) - 5  # inside the signature, not its last (partly unused) character
        forged = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        assert read_token(SECRET, "unsubscribe", forged) is None
        assert read_token("another-secret-0123456789", "unsubscribe", token) is None
        assert read_token(SECRET, "preferences", token) is None

        text, html = _parts(message)
        for part in (text, html):
            assert "Bridge collapse closes river crossing for weeks" in part
            assert "Parliament passes data protection bill" in part
            assert "Orchestra announces free summer concerts" in part
            assert "https://wire.test/bridge" in part and "utm_source" not in part
            assert "https://post.test/bridge" in part
            assert https in part  # personal unsubscribe link in both parts
            assert "DIGESTx" not in part  # no token left unsubstituted
            # Feed HTML never reaches the email as markup or script.
            for poison in ("<script", "alert(", "onerror", "javascript:"):
                assert poison not in part.lower(), poison
        assert "Ministers met overnight." in text
        assert "Item with a hostile link" not in text  # its only link was javascript:
        assert 'href="https://wire.test/data-bill"' in html


def test_a_second_run_sends_nothing_and_a_new_subscriber_gets_the_same_edition(
    service: Path, smtp_server: SmtpServer
) -> None:
    assert run_cli("--config", str(service), "send", "--gather")[0] == 0
    first = {m.recipients[0]: m.message() for m in smtp_server.messages}
    assert len(first) == 2

    code, out, _ = run_cli("--config", str(service), "send", "--gather")
    assert code == 0
    assert len(smtp_server.messages) == 2, "a re-run mailed someone twice"
    assert "already built" in out and "nothing to send" in out

    assert run_cli("--config", str(service), "subscribers", "add", "late@example.org")[0] == 0
    code, out, _ = run_cli("--config", str(service), "send")
    assert code == 0
    assert [m.recipients for m in smtp_server.messages[2:]] == [["late@example.org"]]
    late = smtp_server.messages[2].message()
    assert late["Subject"] == first["ana@example.org"]["Subject"]

    def news(message: EmailMessage) -> str:  # the text part without the personal footer
        return _parts(message)[0].replace("\r\n", "\n").split("\n--\n")[0]

    assert news(late) == news(first["ana@example.org"])
    assert "Bridge collapse" in news(late)


def test_refusals_are_recorded_per_recipient(service: Path, smtp_server: SmtpServer) -> None:
    for address in ("bounce@example.org", "later@example.org"):
        assert run_cli("--config", str(service), "subscribers", "add", address)[0] == 0
    code, out, err = run_cli("--config", str(service), "send", "--gather")
    assert code == 0, err
    assert "1 deferred" in out and "1 bounced" in out and "2 sent" in out
    assert "bounce@example.org: bounced: 550 5.1.1" in err
    assert "later@example.org: deferred: 451" in err

    app = App.open(load_config(service))
    try:
        edition = app.store.editions()[0]
        assert edition.id is not None
        rows = {s.email: d for d, s in app.store.deliveries(edition.id)}
        subscribers = app.store.subscribers()
    finally:
        app.close()
    assert rows["bounce@example.org"].status == "failed"
    assert "User unknown" in (rows["bounce@example.org"].error or "")
    assert rows["later@example.org"].status == "deferred"
    assert rows["ana@example.org"].status == "sent" and rows["ana@example.org"].sent_at
    # The hard bounce suppressed the address; the deferred one is retried on the next run.
    assert {s.email: s.status for s in subscribers} == {
        "ana@example.org": "active",
        "zoe@example.org": "active",
        "bounce@example.org": "bounced",
        "later@example.org": "active",
    }
    before = len(smtp_server.messages)
    code, out, err = run_cli("--config", str(service), "send")
    assert code == 0
    assert "1 deferred" in out and "bounce@" not in err  # only later@ was tried again
    assert len(smtp_server.messages) == before


def test_unreachable_smtp_server_fails_the_run_and_loses_nothing(
    feed_server: FeedServer, write_config, smtp_server: SmtpServer
) -> None:
    from tests.conftest import free_port

    dead = write_config(
        _serve_sources(feed_server), transport="smtp", smtp_port=free_port(), timeout=1.0
    )
    assert run_cli("--config", str(dead), "subscribers", "add", "ana@example.org")[0] == 0
    code, _, err = run_cli("--config", str(dead), "send", "--gather")
    assert code == 1
    assert "cannot connect to the SMTP server 127.0.0.1:" in err
    assert "stay queued" in err

    # Point the same database at a live server: the queued message goes out, once.
    dead.write_text(re.sub(r"(?m)^port = \d+$", f"port = {smtp_server.port}", dead.read_text()))
    code, _out, err = run_cli("--config", str(dead), "send")
    assert code == 0, err
    assert [m.recipients for m in smtp_server.messages] == [["ana@example.org"]]


def test_feed_server_route_type_is_shared() -> None:
    # The conftest's Route default is an XML feed; guard the helper the tests above rely on.
    assert Route().headers["Content-Type"] == "application/xml"


def test_tls_on_a_plain_port_names_the_mix_up_once(
    feed_server: FeedServer, write_config, smtp_server: SmtpServer
) -> None:
    """Issue 20, point 7: `[SSL: WRONG_VERSION_NUMBER]` got the generic hint, and each
    connect error was printed twice (a log line and the run's report)."""
    config = write_config(_serve_sources(feed_server), transport="smtp", smtp_port=smtp_server.port)
    config.write_text(config.read_text().replace('security = "none"', 'security = "tls"'))
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    code, out, err = run_cli("--config", str(config), "send", "--gather")
    assert code == 1
    assert "WRONG_VERSION_NUMBER" in err
    assert (
        f"the server on port {smtp_server.port} answered in plain text, not TLS: security = "
        '"tls" is for port 465; for port 587 (or 25) set security = "starttls"' in err
    )
    assert (out + err).count("cannot connect to the SMTP server") == 1
    assert smtp_server.messages == []
