"""`digest bounces process`: DSNs that arrive after the fact suppress dead addresses, and
only with proof that they answer a digest sent to that reader (a genuine VERP token, or
without VERP a quoted Message-ID of ours): a forged report suppresses nobody."""

from __future__ import annotations

import email
import email.policy
import mailbox
from email.message import Message
from pathlib import Path

import pytest

from digest.app import App
from digest.config import load_config
from digest.links import verp_address
from tests.conftest import SECRET, FeedServer, rss, run_cli

VERP_DOMAIN = "bounces.example.com"


def dsn(
    recipient: str,
    status: str,
    action: str = "failed",
    *,
    to: str = "news@example.com",
    message_id: str | None = None,
) -> bytes:
    """A delivery status notification as Postfix writes it (RFC 3464), sent back to ``to``,
    quoting the returned message's headers (with ``message_id`` when given)."""
    quoted = f"Message-ID: {message_id}\n" if message_id else ""
    return f"""From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: {to}
Subject: Undelivered Mail Returned to Sender
Message-ID: <20261128070002.4F2A1@mx.example.net>
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

From: Test Desk <news@example.com>
{quoted}Subject: Daily Test

--B0UND--
""".encode()


def delivered(config: Path) -> dict[str, Message]:
    """Send the current edition (maildir transport) and return each reader's message."""
    assert run_cli("--config", str(config), "send", "--gather")[0] == 0
    box = mailbox.Maildir(str(config.parent / "mail"), create=False)
    messages = {}
    for key in box.iterkeys():
        message = email.message_from_bytes(box.get_bytes(key), policy=email.policy.compat32)
        messages[str(message["To"]).strip("<>")] = message
    return messages


def mailbox_of(tmp_path: Path, kind: str, messages: list[bytes]) -> Path:
    """A Maildir or an mbox holding ``messages``."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    if kind == "maildir":
        target = tmp_path / "returned"
        box: mailbox.Mailbox = mailbox.Maildir(str(target), create=True)
    else:
        target = tmp_path / "returned.mbox"
        box = mailbox.mbox(str(target), create=True)
    for raw in messages:
        box.add(raw)
    box.close()
    return target


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
    # Without VERP a report counts when it quotes the Message-ID of the digest it returns.
    sent = {email: str(m["Message-ID"]) for email, m in delivered(config).items()}
    messages = [
        dsn("Gone@Example.org", "5.1.1", message_id=sent["gone@example.org"]),
        # mailbox full: may pass another day
        dsn("full@example.org", "5.2.2", message_id=sent["full@example.org"]),
        # not a failure yet
        dsn("fine@example.org", "4.4.1", action="delayed", message_id=sent["fine@example.org"]),
        dsn("stranger@example.org", "5.1.1", message_id="<elsewhere.1@example.net>"),
        b"From: someone@example.org\nSubject: hello\n\nnot a bounce\n",
    ]
    target = mailbox_of(tmp_path, kind, messages)

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


def test_without_verp_a_report_must_quote_a_digest_sent_to_that_address(
    config: Path, tmp_path: Path
) -> None:
    """A DSN anyone could write names the victim; it is believed only when it quotes the
    Message-ID digest recorded for its delivery to that very address."""
    sent = {email: str(m["Message-ID"]) for email, m in delivered(config).items()}
    forged = [
        dsn("gone@example.org", "5.1.1"),  # quotes no Message-ID at all
        dsn("gone@example.org", "5.1.1", message_id=sent["fine@example.org"]),  # another's
        dsn("gone@example.org", "5.1.1", message_id="<never-sent.7@example.com>"),  # one never sent
    ]
    target = mailbox_of(tmp_path, "mbox", forged)
    code, out, err = run_cli("--config", str(config), "bounces", "process", str(target))
    assert code == 0, err
    assert "gone@example.org: 5.1.1: refused: it quotes no Message-ID" in out
    assert f"refused: the Message-ID it quotes ({sent['fine@example.org']}) is of no digest" in out
    assert "refused: the Message-ID it quotes (<never-sent.7@example.com>)" in out
    assert "3 bounce reports, 0 addresses suppressed" in out and "3 refused" in out
    assert set(_statuses(config).values()) == {"active"}

    genuine = mailbox_of(
        tmp_path / "2",
        "maildir",
        [dsn("gone@example.org", "5.1.1", message_id=sent["gone@example.org"])],
    )
    code, out, _ = run_cli("--config", str(config), "bounces", "process", str(genuine))
    assert code == 0 and "gone@example.org: 5.1.1: suppressed" in out
    assert _statuses(config) == {
        "gone@example.org": "bounced",
        "full@example.org": "active",
        "fine@example.org": "active",
    }


def _with_verp(config: Path) -> None:
    config.write_text(
        config.read_text().replace(
            'transport = "maildir"', f'transport = "maildir"\nverp_domain = "{VERP_DOMAIN}"'
        )
    )


def _public_id(config: Path, address: str) -> str:
    app = App.open(load_config(config))
    try:
        subscriber = app.store.subscriber_by_email(address)
        assert subscriber is not None
        return subscriber.public_id
    finally:
        app.close()


def test_with_verp_only_a_genuine_tokens_owner_is_suppressed(config: Path, tmp_path: Path) -> None:
    """The attack: a DSN naming the victim, sent to a made-up VERP address or to the From
    address. Neither suppresses anyone; a genuine token suppresses its owner, not the
    address the report names."""
    _with_verp(config)
    sent = {email: str(m["Message-ID"]) for email, m in delivered(config).items()}
    forged = [
        dsn("gone@example.org", "5.1.1", to=f"bounce+not-a-real-token@{VERP_DOMAIN}"),
        # To the From address: even quoting the victim's real Message-ID, with VERP on a
        # genuine bounce comes back to the reader's VERP address.
        dsn("gone@example.org", "5.1.1", to="news@example.com"),
        dsn("gone@example.org", "5.1.1", message_id=sent["gone@example.org"]),
    ]
    target = mailbox_of(tmp_path, "maildir", forged)
    code, out, err = run_cli("--config", str(config), "bounces", "process", str(target))
    assert code == 0, err
    assert (
        f"gone@example.org: 5.1.1: refused: it came back to bounce+not-a-real-token@{VERP_DOMAIN},"
        " whose token is not genuine" in out
    )
    assert (
        out.count(f"refused: it came back to news@example.com, not to a bounce+TOKEN@{VERP_DOMAIN}")
        == 2
    )
    assert "0 addresses suppressed" in out and "3 refused" in out
    assert set(_statuses(config).values()) == {"active"}

    # The attacker's own genuine token, with the victim as Final-Recipient: only the
    # token's owner (the one who sent it) is suppressed.
    own = verp_address(SECRET, VERP_DOMAIN, _public_id(config, "full@example.org"))
    target = mailbox_of(tmp_path / "2", "mbox", [dsn("gone@example.org", "5.1.1", to=own)])
    code, out, _ = run_cli("--config", str(config), "bounces", "process", str(target))
    assert code == 0 and "gone@example.org: 5.1.1: suppressed full@example.org" in out
    assert _statuses(config) == {
        "gone@example.org": "active",
        "full@example.org": "bounced",
        "fine@example.org": "active",
    }


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
