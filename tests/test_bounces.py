"""`digest bounces process`: DSNs that arrive after the fact suppress dead addresses."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from digest.app import App
from digest.config import load_config
from tests.conftest import FeedServer, rss, run_cli


def dsn(recipient: str, status: str, action: str = "failed") -> bytes:
    """A delivery status notification as Postfix writes it (RFC 3464)."""
    return f"""From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: news@example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"

--B0UND
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to {recipient}.

--B0UND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Sat, 28 Nov 2026 07:00:02 +0000 (UTC)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx2.example.net
Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address
    rejected: User unknown

--B0UND
Content-Type: text/rfc822-headers

Subject: Daily Test

--B0UND--
""".encode()


@pytest.fixture
def config(write_config, feed_server: FeedServer) -> Path:
    url = feed_server.add("/f.xml", rss([{"title": "T", "guid": "1", "link": "https://w.test/1"}]))
    path = write_config([("Wire", url)])
    for address in ("gone@example.org", "full@example.org", "fine@example.org"):
        assert run_cli("--config", str(path), "subscribers", "add", address)[0] == 0
    return path


def _statuses(config: Path) -> dict[str, str]:
    app = App.open(load_config(config))
    try:
        return {s.email: s.status for s in app.store.subscribers()}
    finally:
        app.close()


@pytest.mark.parametrize("kind", ["maildir", "mbox"])
def test_dead_addresses_are_suppressed_and_others_only_reported(
    config: Path, tmp_path: Path, kind: str
) -> None:
    messages = [
        dsn("Gone@Example.org", "5.1.1"),
        dsn("full@example.org", "5.2.2"),  # mailbox full: may pass another day
        dsn("fine@example.org", "4.4.1", action="delayed"),  # not a failure yet
        dsn("stranger@example.org", "5.1.1"),
        b"From: someone@example.org\nSubject: hello\n\nnot a bounce\n",
    ]
    if kind == "maildir":
        box: mailbox.Mailbox = mailbox.Maildir(str(tmp_path / "bounces"), create=True)
        target = tmp_path / "bounces"
    else:
        box = mailbox.mbox(str(tmp_path / "bounces.mbox"), create=True)
        target = tmp_path / "bounces.mbox"
    for raw in messages:
        box.add(raw)
    box.close()

    code, out, err = run_cli("--config", str(config), "bounces", "process", str(target))
    assert code == 0, err
    assert "gone@example.org: 5.1.1: suppressed" in out
    assert "full@example.org: 5.2.2: permanent failure kept active" in out
    assert "stranger@example.org: 5.1.1: not a subscriber; ignored" in out
    assert "5 messages read, 3 bounce reports, 1 addresses suppressed" in out
    assert _statuses(config) == {
        "gone@example.org": "bounced",
        "full@example.org": "active",
        "fine@example.org": "active",
    }
    # Processing the same mailbox again changes nothing.
    code, out, _ = run_cli("--config", str(config), "bounces", "process", str(target))
    assert "0 addresses suppressed" in out


def test_a_path_that_is_no_mailbox_is_a_clear_error(config: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("--config", str(config), "bounces", "process", str(tmp_path))
    assert code == 1 and "is a folder but not a Maildir" in err and "Traceback" not in err


def test_verp_envelope_names_the_subscriber_and_brings_forwarded_bounces_home(
    write_config, feed_server: FeedServer, smtp_server, tmp_path: Path
) -> None:
    from digest.links import read_verp
    from tests.conftest import SECRET

    url = feed_server.add("/v.xml", rss([{"title": "T", "guid": "1", "link": "https://w.test/1"}]))
    config = write_config([("Wire", url)], transport="smtp", smtp_port=smtp_server.port)
    config.write_text(
        config.read_text().replace(
            'transport = "smtp"', 'transport = "smtp"\nverp_domain = "bounces.example.com"'
        )
    )
    assert run_cli("--config", str(config), "subscribers", "add", "fwd@example.org")[0] == 0
    assert run_cli("--config", str(config), "send", "--gather")[0] == 0
    (received,) = smtp_server.messages
    assert received.sender.startswith("bounce+") and received.sender.endswith(
        "@bounces.example.com"
    )
    app = App.open(load_config(config))
    try:
        owner = app.store.subscriber_by_email("fwd@example.org")
        assert owner is not None and read_verp(SECRET, received.sender) == owner.public_id
    finally:
        app.close()

    # The address forwarded to another mailbox, which bounced: the DSN names that other
    # address, but it came back to the VERP sender, which names our subscriber.
    raw = dsn("forwarded-to@elsewhere.example", "5.1.1").replace(
        b"To: news@example.com", f"To: {received.sender}".encode()
    )
    box = mailbox.Maildir(str(tmp_path / "verp"), create=True)
    box.add(raw)
    box.close()
    code, out, _ = run_cli("--config", str(config), "bounces", "process", str(tmp_path / "verp"))
    assert code == 0 and "1 addresses suppressed" in out
    assert _statuses(config)["fwd@example.org"] == "bounced"
