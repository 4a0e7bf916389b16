"""Replies to the ``mailto:`` of List-Unsubscribe unsubscribe their reader, through
`digest bounces process` (a Maildir, an mbox, one message saved as a file, or one message
piped on stdin by the MTA);
a request without a genuine unsubscribe token changes nothing and says why."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from email.message import EmailMessage, Message
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from digest.links import make_token
from tests.conftest import ROOT, SECRET, FeedServer, rss, run_cli
from tests.test_bounces import _public_id, _statuses, delivered, dsn, mailbox_of

READERS = ("ann@example.org", "bob@example.org")


@pytest.fixture
def config(write_config, feed_server: FeedServer) -> Path:
    url = feed_server.add("/f.xml", rss([{"title": "T", "guid": "1", "link": "https://w.test/1"}]))
    path = write_config([("Wire", url)])
    for address in READERS:
        assert run_cli("--config", str(path), "subscribers", "add", address)[0] == 0
    return path


def mailto_of(message: Message) -> tuple[str, str]:
    """(address, subject) of the List-Unsubscribe mailto: a mail client's reply."""
    value = " ".join(str(message["List-Unsubscribe"]).split())
    match = re.search(r"<mailto:([^>?]+)\?([^>]+)>", value)
    assert match, value
    return match.group(1), parse_qs(match.group(2))["subject"][0]


def reply(to: str, subject: str, body: str = "", sender: str = "ann@example.org") -> bytes:
    """A message as a mail client sends it (quoted-printable body, as many do)."""
    message = EmailMessage()
    message["From"] = f"Ann <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body or "Sent from my phone", cte="quoted-printable")
    return message.as_bytes()


def process(config: Path, tmp_path: Path, kind: str, raw: bytes, monkeypatch) -> str:
    """Run `digest bounces process` on one message from a Maildir, an mbox, a file of its
    own or stdin."""
    if kind == "stdin":
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
        target = "-"
    elif kind == "eml":  # one message saved from a mail client: not an mbox, no "From " line
        (tmp_path / "eml").mkdir(parents=True)
        (tmp_path / "eml" / "request.eml").write_bytes(raw)
        target = str(tmp_path / "eml" / "request.eml")
    else:
        target = str(mailbox_of(tmp_path / kind, kind, [raw]))
    code, out, err = run_cli("--config", str(config), "bounces", "process", target)
    assert code == 0, err
    return out


@pytest.mark.parametrize("kind", ["maildir", "mbox", "eml", "stdin"])
@pytest.mark.parametrize("where", ["subject", "re-subject", "body"])
def test_a_reply_to_the_mailto_unsubscribes_its_reader(
    config: Path, tmp_path: Path, kind: str, where: str, monkeypatch
) -> None:
    address, subject = mailto_of(delivered(config)["ann@example.org"])
    assert subject.startswith("unsubscribe ")
    raw = {
        "subject": reply(address, subject),
        "re-subject": reply(address, f"Re: {subject}"),
        # A client that keeps the words in the body, the subject a plain "Unsubscribe".
        "body": reply(address, "Unsubscribe", f"Please take me off the list.\n\n{subject}\n"),
    }[where]
    out = process(config, tmp_path, kind, raw, monkeypatch)
    assert "unsubscribe request from ann@example.org: ann@example.org unsubscribed" in out
    assert "1 unsubscribe requests, 1 unsubscribed, 0 refused" in out
    assert _statuses(config) == {"ann@example.org": "unsubscribed", "bob@example.org": "active"}

    # The same request again (the MTA delivered it twice) changes nothing more.
    out = process(config, tmp_path / "again", kind, raw, monkeypatch)
    assert "ann@example.org had already left; unchanged" in out


def test_the_token_decides_who_leaves_not_the_sender(config: Path, tmp_path: Path) -> None:
    """Ann's token in a request sent from Bob's address unsubscribes Ann (the token is the
    proof, as on the https link), and Bob stays."""
    address, subject = mailto_of(delivered(config)["ann@example.org"])
    target = mailbox_of(tmp_path, "mbox", [reply(address, subject, sender="bob@example.org")])
    code, out, _ = run_cli("--config", str(config), "bounces", "process", str(target))
    assert code == 0 and "from bob@example.org: ann@example.org unsubscribed" in out
    assert _statuses(config) == {"ann@example.org": "unsubscribed", "bob@example.org": "active"}


def test_a_request_without_a_genuine_token_changes_nothing(config: Path, tmp_path: Path) -> None:
    sent = delivered(config)
    address, subject = mailto_of(sent["ann@example.org"])
    token = subject.removeprefix("unsubscribe ")
    i = len(token) - 5  # not the last character: base64 does not use all of its bits
    tampered = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
    public_id = _public_id(config, "ann@example.org")
    wrong_purpose = make_token(SECRET, "preferences", public_id)
    other_secret = make_token("another-secret-0123456789", "unsubscribe", public_id)
    requests = [
        reply(address, f"unsubscribe {tampered}"),
        reply(address, f"unsubscribe {wrong_purpose}"),
        reply(address, f"unsubscribe {other_secret}"),
        reply(address, "unsubscribe", "Please remove ann@example.org"),  # no token at all
    ]
    target = mailbox_of(tmp_path, "maildir", requests)
    code, out, err = run_cli("--config", str(config), "bounces", "process", str(target))
    assert code == 0, err
    assert out.count("unsubscribe request from ann@example.org: refused: its token is not") == 3
    assert "refused: no unsubscribe token in its subject or body; nobody unsubscribed" in out
    assert "4 unsubscribe requests, 0 unsubscribed, 4 refused" in out
    assert set(_statuses(config).values()) == {"active"}


def test_mail_that_merely_quotes_a_digest_unsubscribes_nobody(config: Path, tmp_path: Path) -> None:
    """A reader's reply to the digest, an out-of-office answer and a bounce all quote the
    message, unsubscribe link and all: none of them is a request."""
    sent = delivered(config)
    original = sent["ann@example.org"]
    address, subject = mailto_of(original)
    footer = " ".join(str(original["List-Unsubscribe"]).split())
    quoted = f"Thanks for today's edition!\n\n> {footer}\n> {subject}\n"
    vacation = EmailMessage()
    vacation["From"] = "ann@example.org"
    vacation["To"] = address
    vacation["Subject"] = "Automatic reply: Daily Test"
    vacation["Auto-Submitted"] = "auto-replied"
    vacation.set_content(f"I am away.\n\n{quoted}")
    delayed = dsn(
        "ann@example.org", "4.4.1", action="delayed", message_id=str(original["Message-ID"])
    ).replace(b"Subject: Daily Test", f"Subject: Daily Test\n\n{quoted}".encode())
    messages = [
        reply("news@example.com", "Re: Daily Test", quoted),  # to the From address
        vacation.as_bytes(),
        delayed,
    ]
    target = mailbox_of(tmp_path, "mbox", messages)
    code, out, err = run_cli("--config", str(config), "bounces", "process", str(target))
    assert code == 0, err
    assert "('Re: Daily Test'): not a bounce report or unsubscribe request; ignored" in out
    assert "('Automatic reply: Daily Test'): an automatic reply; ignored" in out
    assert "0 unsubscribe requests, 0 unsubscribed" in out
    assert set(_statuses(config).values()) == {"active"}


@pytest.mark.slow
def test_an_mta_pipe_hands_one_message_on_stdin(config: Path) -> None:
    """The real command as an alias runs it: one message on stdin (with the ``From `` line
    some MTAs put first), a separate process."""
    address, subject = mailto_of(delivered(config)["bob@example.org"])
    raw = b"From bob@example.org  Mon Dec  7 05:00:00 2026\n" + reply(
        address, subject, sender="bob@example.org"
    ).replace(b"\r\n", b"\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIGEST_SECRET": SECRET}
    result = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(config), "bounces", "process", "-"],
        input=raw,
        capture_output=True,
        env=env,
        cwd=config.parent,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b"bob@example.org unsubscribed" in result.stdout
    assert _statuses(config) == {"ann@example.org": "active", "bob@example.org": "unsubscribed"}


# --- bounces and automatic mail that quote a digest -----------------------------------------
# Mail servers and responders answer the digest's sender, quoting the digest: its
# List-Unsubscribe header (``subject=unsubscribe%20TOKEN``) or its text part, whose
# unsubscribe link carries the same token. Only a reply to the mailto is a request.

HEADLINE = "Why readers unsubscribe from news apps"


def _headline_config(write_config, feed_server: FeedServer, mailto: str = "") -> Path:
    """Readers Ann and Bob of a digest whose headline (so its subject) says "unsubscribe";
    ``mailto``: the List-Unsubscribe address, when it is not the default."""
    story = {"title": HEADLINE, "guid": "1", "link": "https://w.test/apps"}
    path = write_config([("Wire", feed_server.add("/f.xml", rss([story])))])
    if mailto:
        text = path.read_text().replace(
            'secret_env = "DIGEST_SECRET"',
            f'secret_env = "DIGEST_SECRET"\nunsubscribe_mailto = "{mailto}"',
        )
        path.write_text(text)
    for address in READERS:
        assert run_cli("--config", str(path), "subscribers", "add", address)[0] == 0
    return path


def _text_of(message: Message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")


def _quoted(message: Message) -> str:
    return "".join(f"> {line}\n" for line in _text_of(message).splitlines())


def _plain(headers: dict[str, str], body: str) -> bytes:
    """A message as a mail server or a responder writes it: plain text, its own headers."""
    message = EmailMessage()
    for name, value in headers.items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes()


def _exchange_ndr(original: Message) -> bytes:
    """A gateway's bounce that is no DSN: the null sender, the original subject after
    "Undeliverable:", the digest's text part pasted below."""
    return _plain(
        {
            "Return-Path": "<>",
            "From": "postmaster@reader.example",
            "To": "news@example.com",
            "Subject": f"Undeliverable: {original['Subject']}",
            "Auto-Submitted": "auto-generated",
        },
        "Delivery has failed to these recipients or groups:\n\nann@example.org\n"
        "The recipient's mailbox is full and can't accept messages now.\n\n"
        f"Original message:\n\n{_text_of(original)}",
    )


def _vacation(original: Message) -> bytes:
    """vacation(1) as many still run it: Precedence: junk, no Auto-Submitted, "Re:" the
    digest's subject, the digest quoted."""
    return _plain(
        {
            "From": "Ann <ann@example.org>",
            "To": "news@example.com",
            "Subject": f"Re: {original['Subject']}",
            "Precedence": "junk",
        },
        f"I am away until Monday and will read your mail then.\n\n{_quoted(original)}",
    )


def _qmail(original: Message, to: str) -> bytes:
    """qmail's failure notice: no DSN, the whole returned message pasted below a line."""
    head = (
        f"Return-Path: <>\nDelivered-To: {to}\nFrom: MAILER-DAEMON@mx.reader.example\n"
        f"To: {to}\nSubject: failure notice\n\n"
        "Hi. This is the qmail-send program at mx.reader.example.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<ann@example.org>:\nmailbox full\n\n--- Below this line is a copy of the message.\n\n"
    )
    return head.encode() + original.as_bytes()


def _helpdesk(original: Message, to: str) -> bytes:
    """A ticket system's acknowledgement, marked automatic, quoting what it received."""
    return _plain(
        {
            "From": "Reader Helpdesk <help@reader.example>",
            "To": to,
            "Subject": f"[Ticket #4821] Re: {original['Subject']}",
            "Auto-Submitted": "auto-generated",
        },
        f"We have received your message and will answer within a day.\n\n{_quoted(original)}",
    )


def test_a_bounce_or_auto_reply_whose_subject_says_unsubscribe_unsubscribes_nobody(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    """The subject is the digest's (its headline says "unsubscribe"); the digest is quoted,
    its unsubscribe link and token with it: still no request, since none of them was sent
    to the List-Unsubscribe address."""
    config = _headline_config(write_config, feed_server)
    original = delivered(config)["ann@example.org"]
    assert "unsubscribe" in str(original["Subject"])  # the premise: the words are there
    messages = [_exchange_ndr(original), _vacation(original), _qmail(original, "news@example.com")]

    target = mailbox_of(tmp_path, "mbox", messages)
    code, out, err = run_cli("--config", str(config), "bounces", "process", str(target))

    assert code == 0, err
    assert "0 unsubscribe requests, 0 unsubscribed" in out
    assert set(_statuses(config).values()) == {"active"}
    assert out.count("; no delivery status report); ignored") == 2  # the bounces say so
    assert "message from ann@example.org ('Re: Daily Test: Why readers unsubscribe" in out
    assert "it says unsubscribe but was not sent to unsubscribe@example.com" in out


def test_with_one_address_for_everything_only_a_request_unsubscribes(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    """The List-Unsubscribe address is the sender's, where bounces and answers come back
    too: a bounce or an automatic answer quoting the digest is no request; a person's
    reply to the mailto, or a mail provider's one-click request (marked automatic, the
    mailto's subject as it is), is."""
    config = _headline_config(write_config, feed_server, mailto="news@example.com")
    sent = delivered(config)
    address, subject = mailto_of(sent["ann@example.org"])
    assert address == "news@example.com"
    quoting = [
        _qmail(sent["ann@example.org"], address),
        _helpdesk(sent["ann@example.org"], address),
    ]

    out = _process(config, tmp_path / "quoting", quoting)

    assert "0 unsubscribe requests, 0 unsubscribed" in out
    assert "('failure notice'): a bounce (from MAILER-DAEMON" in out
    assert "automatic mail (Auto-Submitted: auto-generated) without the unsubscribe token" in out
    assert set(_statuses(config).values()) == {"active"}

    _, bob_subject = mailto_of(sent["bob@example.org"])
    one_click = _plain(
        {
            "From": "bob@example.org",
            "To": address,
            "Subject": bob_subject,
            "Auto-Submitted": "auto-generated",
        },
        "This message was automatically generated by the reader's mail provider.",
    )
    out = _process(config, tmp_path / "requests", [reply(address, subject), one_click])

    assert "2 unsubscribe requests, 2 unsubscribed, 0 refused" in out
    assert set(_statuses(config).values()) == {"unsubscribed"}


def _process(config: Path, folder: Path, messages: list[bytes]) -> str:
    code, out, err = run_cli(
        "--config", str(config), "bounces", "process", str(mailbox_of(folder, "maildir", messages))
    )
    assert code == 0, err
    return out


def test_a_reader_at_postmaster_unsubscribes_by_mail_but_a_postmasters_bounce_does_not(
    config: Path, tmp_path: Path
) -> None:
    """postmaster@ is a mailbox a person reads and may subscribe with: their reply to the
    mailto (sent to the unsubscribe address, the token in its subject) is a request. A
    bounce from a postmaster is still none: one that quotes the digest below its own
    subject, even sent to the unsubscribe address, or one from the null sender, whatever
    its subject says."""
    reader = "postmaster@reader.example"
    assert run_cli("--config", str(config), "subscribers", "add", reader)[0] == 0
    sent = delivered(config)
    address, subject = mailto_of(sent[reader])
    bounces = [
        _plain(
            {"From": reader, "To": address, "Subject": "Undeliverable: your message"},
            f"Delivery has failed.\n\nOriginal message:\n\n{_text_of(sent[reader])}",
        ),
        _plain({"Return-Path": "<>", "From": reader, "To": address, "Subject": subject}, "x"),
    ]

    out = _process(config, tmp_path / "bounces", bounces)

    assert "0 unsubscribe requests, 0 unsubscribed" in out
    assert "('Undeliverable: your message'): a bounce (from postmaster@reader.example" in out
    assert "a bounce (from the null sender; no delivery status report)" in out
    assert _statuses(config)[reader] == "active"

    out = _process(config, tmp_path / "request", [reply(address, subject, sender=reader)])

    assert f"unsubscribe request from {reader}: {reader} unsubscribed" in out
    assert "1 unsubscribe requests, 1 unsubscribed, 0 refused" in out
    assert _statuses(config) == {
        "ann@example.org": "active",
        "bob@example.org": "active",
        reader: "unsubscribed",
    }
