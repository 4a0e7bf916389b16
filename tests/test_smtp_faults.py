"""SMTP faults against a real local server that misbehaves on purpose, driven through the CLI.

The server is a small asyncio SMTP server of its own (aiosmtpd cannot drop a connection at
DATA or go silent after RCPT). It counts what it received per address, so
each test checks that every message ends sent, deferred-then-sent, or failed with its
reason, and that nobody is mailed twice.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from digest.app import App
from digest.config import load_config
from tests.conftest import FeedServer, RecordingHandler, free_port, rss, run_cli

GOOD = ("ana@example.org", "zoe@example.org", "max@example.org")


@dataclass
class Faults:
    """How the server misbehaves; tests change it between runs to clear a fault."""

    greeting: str = "220 faults.test ESMTP"
    pipelining: bool = True
    # address prefix -> reply to RCPT
    refuse: dict[str, str] = field(default_factory=dict)
    # address prefix -> how many more times to drop the connection at DATA, before the message
    # is sent (after it, the client cannot tell whether the server kept it: see
    # test_unknown_fate.py)
    drop: dict[str, int] = field(default_factory=dict)
    stall: tuple[str, ...] = ()  # address prefixes whose RCPT never gets an answer
    one_per_session: bool = False  # hang up after each message, without a word
    busy_after_drop: bool = False  # after a drop, greet every new session with 421


class FaultyServer:
    """An SMTP server on 127.0.0.1 in a thread of its own; ``received`` counts per address."""

    def __init__(self) -> None:
        self.faults = Faults()
        self.received: Counter[str] = Counter()
        self.drops = 0
        self.sessions = 0
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._session, "127.0.0.1", self.port)
        )
        self._started.set()
        self.loop.run_forever()

    def start(self) -> FaultyServer:
        self.thread.start()
        self._started.wait(5)
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        f = self.faults
        try:
            await self._converse(f, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _converse(
        self, f: Faults, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        say(f.greeting)
        if not f.greeting.startswith("220"):
            await writer.drain()
            return
        rcpts: list[str] = []
        while line := await reader.readline():
            command = line.decode().strip()
            verb = command[:4].upper()
            if verb == "EHLO":
                say("250-faults.test" + ("\r\n250-PIPELINING" if f.pipelining else ""))
                say("250 8BITMIME")
            elif verb in ("HELO", "NOOP"):
                say("250 OK")
            elif verb == "MAIL":
                rcpts = []
                say("250 2.1.0 OK")
            elif verb == "RCPT":
                address = command.split(":", 1)[1].strip().strip("<>")
                if address.startswith(f.stall):
                    await writer.drain()
                    await reader.read()  # silent until the client gives up
                    return
                refusal = next((r for p, r in f.refuse.items() if address.startswith(p)), None)
                if refusal:
                    say(refusal)
                else:
                    rcpts.append(address)
                    say("250 2.1.5 OK")
            elif verb == "DATA":
                if not rcpts:
                    say("503 5.5.1 No valid recipients")
                    continue
                dropper = next(
                    (p for p in f.drop if f.drop[p] > 0 and rcpts[0].startswith(p)), None
                )
                if dropper:  # the line goes dead before the 354 and the message
                    f.drop[dropper] -= 1
                    self.drops += 1
                    if f.busy_after_drop:
                        f.greeting = "421 4.3.2 Service shutting down"
                    writer.transport.abort()
                    return
                say("354 End data with <CR><LF>.<CR><LF>")
                await writer.drain()
                await reader.readuntil(b"\r\n.\r\n")
                self.received.update(rcpts)
                say("250 2.0.0 Queued")
                if f.one_per_session:
                    await writer.drain()
                    return
            elif verb == "RSET":
                rcpts = []
                say("250 OK")
            elif verb == "QUIT":
                say("221 Bye")
                await writer.drain()
                return
            else:
                say("502 5.5.2 Command not recognised")
            await writer.drain()


@pytest.fixture
def faulty() -> Iterator[FaultyServer]:
    server = FaultyServer().start()
    yield server
    server.stop()


def _setup(feed_server: FeedServer, write_config, port: int, *addresses: str) -> Path:
    feed = rss([{"title": "Storm closes the coast road", "guid": "s1", "link": "https://n.test/1"}])
    config = write_config(
        [("News", feed_server.add("/news.xml", feed))], transport="smtp", smtp_port=port
    )
    # A short SMTP timeout so the stalling server costs a second, not ten.
    config.write_text(
        re.sub(
            r"(connections = 2\n)timeout_seconds = 10", r"\1timeout_seconds = 1", config.read_text()
        )
    )
    for address in addresses:
        code, _, err = run_cli("--config", str(config), "subscribers", "add", address)
        assert code == 0, err
    return config


def _rows(config: Path) -> dict[str, tuple[str, str]]:
    """Each subscriber's delivery row: (status, error)."""
    app = App.open(load_config(config))
    try:
        (edition,) = app.store.editions()
        assert edition.id is not None
        return {s.email: (d.status, d.error or "") for d, s in app.store.deliveries(edition.id)}
    finally:
        app.close()


def _send(config: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli("--config", str(config), "send", *extra)


def test_refusals_end_deferred_failed_or_bounced_and_the_deferred_go_out_next_run(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    faulty.faults.refuse = {
        "later": "451 4.7.1 Greylisted, try again later",
        "policy": "550 5.7.1 Message refused by policy",
        "ghost": "550 5.1.1 <ghost@example.org>: User unknown",
    }
    addresses = (
        *GOOD,
        "later1@example.org",
        "later2@example.org",
        "policy@example.org",
        "ghost@example.org",
    )
    config = _setup(feed_server, write_config, faulty.port, *addresses)

    code, _, err = _send(config, "--gather")
    assert code == 0, err
    rows = _rows(config)
    assert {a: rows[a][0] for a in GOOD} == dict.fromkeys(GOOD, "sent")
    assert rows["later1@example.org"] == ("deferred", "451 4.7.1 Greylisted, try again later")
    assert rows["later2@example.org"][0] == "deferred"
    assert rows["policy@example.org"] == ("failed", "550 5.7.1 Message refused by policy")
    assert rows["ghost@example.org"][0] == "failed" and "5.1.1" in rows["ghost@example.org"][1]
    assert "ghost@example.org: bounced: 550 5.1.1" in err
    assert "policy@example.org: failed: 550 5.7.1" in err

    faulty.faults.refuse = {}  # greylisting over; the dead addresses stay failed
    code, _, err = _send(config)
    assert code == 0, err
    rows = _rows(config)
    assert rows["later1@example.org"][0] == rows["later2@example.org"][0] == "sent"
    assert rows["policy@example.org"][0] == rows["ghost@example.org"][0] == "failed"
    assert faulty.received == Counter(
        {a: 1 for a in (*GOOD, "later1@example.org", "later2@example.org")}
    )


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_connection_dropped_before_the_message_is_sent_is_retried_once_on_a_fresh_session(
    feed_server: FeedServer, write_config, faulty: FaultyServer, pipelining: bool
) -> None:
    faulty.faults.pipelining = pipelining
    faulty.faults.drop = {"flaky": 1, "cursed": 2}
    config = _setup(
        feed_server, write_config, faulty.port, *GOOD, "flaky@example.org", "cursed@example.org"
    )

    code, _, err = _send(config, "--gather")
    assert code == 0, err
    rows = _rows(config)
    assert rows["flaky@example.org"][0] == "sent"  # the retry went through
    assert rows["cursed@example.org"][0] == "deferred"  # dropped twice: kept for the next run
    assert "connection lost twice" in rows["cursed@example.org"][1]
    assert faulty.drops == 3
    assert "cursed@example.org" not in faulty.received

    code, _, err = _send(config)  # the line is good again
    assert code == 0, err
    assert _rows(config)["cursed@example.org"][0] == "sent"
    assert faulty.received == Counter(
        {a: 1 for a in (*GOOD, "flaky@example.org", "cursed@example.org")}
    )


def test_a_stalling_server_defers_the_message_at_the_timeout_and_the_run_goes_on(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    faulty.faults.stall = ("slow",)
    config = _setup(feed_server, write_config, faulty.port, *GOOD, "slow@example.org")

    code, _, err = _send(config, "--gather")
    assert code == 0, err
    rows = _rows(config)
    assert rows["slow@example.org"][0] == "deferred"
    assert "timed out after 1 s" in rows["slow@example.org"][1]
    assert {a: rows[a][0] for a in GOOD} == dict.fromkeys(GOOD, "sent")

    faulty.faults.stall = ()
    code, _, err = _send(config)
    assert code == 0, err
    assert _rows(config)["slow@example.org"][0] == "sent"
    assert faulty.received == Counter({a: 1 for a in (*GOOD, "slow@example.org")})


def test_421_at_connect_stops_the_run_with_the_reason_and_keeps_every_row_queued(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    faulty.faults.greeting = "421 4.3.2 Too many connections, try later"
    config = _setup(feed_server, write_config, faulty.port, *GOOD)

    code, _, err = _send(config, "--gather")
    assert code == 1
    assert f"the SMTP server 127.0.0.1:{faulty.port} refused the session: 421 4.3.2" in err
    assert "stay queued" in err
    assert {status for status, _ in _rows(config).values()} == {"pending"}
    assert not faulty.received

    faulty.faults.greeting = "220 faults.test ESMTP"
    code, _, err = _send(config)
    assert code == 0, err
    assert faulty.received == Counter(dict.fromkeys(GOOD, 1))


def test_an_unreachable_server_stops_the_run_with_the_reason(
    feed_server: FeedServer, write_config
) -> None:
    config = _setup(feed_server, write_config, free_port(), *GOOD)
    code, _, err = _send(config, "--gather")
    assert code == 1
    assert "cannot connect to the SMTP server 127.0.0.1:" in err
    assert {status for status, _ in _rows(config).values()} == {"pending"}


def test_sessions_are_reused_across_messages_and_batches(
    feed_server: FeedServer, write_config, faulty: FaultyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    addresses = [f"reader{i}@example.org" for i in range(30)]
    config = _setup(feed_server, write_config, faulty.port, *addresses)
    made = _count_tls_settings(monkeypatch)
    code, _, err = _send(config, "--gather")
    assert code == 0, err
    assert faulty.received == Counter(dict.fromkeys(addresses, 1))
    assert faulty.sessions <= 2  # delivery.smtp.connections = 2
    assert made == [0]  # security = "none": no CA certificates loaded for plain sessions


# --- TLS and AUTH --------------------------------------------------------------------------


def _login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"digest", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # implicit TLS
@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_verifies_the_certificate_by_default_and_logs_in(
    feed_server: FeedServer,
    write_config,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    security: str,
) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = RecordingHandler()
    tls: dict[str, Any] = (
        {"tls_context": context, "require_starttls": True}
        if security == "starttls"
        # aiosmtpd only counts STARTTLS as TLS; on an implicit-TLS port it must be told.
        else {"ssl_context": context, "auth_require_tls": False}
    )
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=_login,
        auth_required=True,
        **tls,
    )
    controller.start()
    try:
        config = _setup(feed_server, write_config, controller.port, *GOOD)
        text = config.read_text().replace(
            'security = "none"',
            f'security = "{security}"\nusername = "digest"\npassword_env = "SMTP_PASSWORD"',
        )
        config.write_text(text)
        monkeypatch.setenv("SMTP_PASSWORD", "s3cret")

        # A self-signed certificate nobody trusts: refused before any mail goes out.
        code, _, err = _send(config, "--gather")
        assert code == 1
        assert "CERTIFICATE_VERIFY_FAILED" in err
        assert {status for status, _ in _rows(config).values()} == {"pending"}

        monkeypatch.setenv("SMTP_PASSWORD", "wrong")
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # now the certificate is trusted
        code, _, err = _send(config)
        assert code == 1
        assert "refused the login for 'digest': 535" in err

        monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
        made = _count_tls_settings(monkeypatch)
        code, _, err = _send(config)
        assert code == 0, err
        assert sorted(m.recipients[0] for m in handler.messages) == sorted(GOOD)
        assert made == [1]  # the CA certificates loaded once for both sessions, not each
    finally:
        controller.stop()


def _count_tls_settings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many TLS settings (each loading the system's CA certificates) the SMTP transport
    makes from now (the feeds' HTTP client makes its own)."""
    made = [0]
    create = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        if sys._getframe(1).f_globals.get("__name__") == "digest.deliver.smtp":
            made[0] += 1
        return create(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    return made


def test_a_server_that_hangs_up_after_each_message_gets_each_message_once(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    faulty.faults.one_per_session = True  # every pooled session is dead when next used
    addresses = [f"reader{i}@example.org" for i in range(12)]
    config = _setup(feed_server, write_config, faulty.port, *addresses)
    code, _, err = _send(config, "--gather")
    assert code == 0, err
    assert {status for status, _ in _rows(config).values()} == {"sent"}
    assert faulty.received == Counter(dict.fromkeys(addresses, 1))
    assert faulty.sessions == 12


def test_an_address_with_a_line_break_never_reaches_the_wire() -> None:
    from digest.deliver.smtp_wire import transaction as _transaction
    from digest.records import OutgoingMessage

    message = OutgoingMessage(1, "news@example.org", "a@example.org\r\nRCPT TO:<b@x>", "", b"")
    result, _ = _transaction(None, message)  # type: ignore[arg-type]  # no session is touched
    assert result.status == "failed" and "invalid address" in result.detail


def test_a_drop_then_a_server_that_refuses_new_sessions_stops_the_run_and_loses_nothing(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    faulty.faults.drop = {"flaky": 1}
    faulty.faults.busy_after_drop = True
    addresses = [f"reader{i}@example.org" for i in range(20)]
    config = _setup(feed_server, write_config, faulty.port, "flaky@example.org", *addresses)

    code, _, err = _send(config, "--gather")
    assert code == 1
    assert "refused the session: 421 4.3.2 Service shutting down" in err
    rows = _rows(config)
    assert rows["flaky@example.org"][0] == "pending"  # cut off, not lost: queued again
    assert {status for status, _ in rows.values()} <= {"sent", "pending"}
    assert "flaky@example.org" not in faulty.received

    faulty.faults.greeting = "220 faults.test ESMTP"
    faulty.faults.busy_after_drop = False
    code, _, err = _send(config)
    assert code == 0, err
    assert {status for status, _ in _rows(config).values()} == {"sent"}
    assert faulty.received == Counter(dict.fromkeys(["flaky@example.org", *addresses], 1))


def test_leading_dots_survive_whether_or_not_the_caller_vouches_for_crlf(
    smtp_server: Any,
) -> None:
    """A message marked CRLF throughout (a personalised template's bytes) skips the line-end
    check but still has its leading dots doubled; an unmarked one with bare LFs is still
    made CRLF. The server gets both bodies exactly."""
    from digest.config.models import SmtpConfig
    from digest.deliver.smtp import SmtpSender
    from digest.records import OutgoingMessage

    sender = SmtpSender(
        SmtpConfig(host="127.0.0.1", port=smtp_server.port, security="none", connections=1),
        None,
    )
    marked = b"Subject: a\r\n\r\n.one dot\r\n..two\r\nend\r\n"
    bare = b"Subject: b\n\n.bare line\nend\n"
    messages = [
        OutgoingMessage(1, "n@example.org", "x@example.org", "<1@t>", marked, crlf=True),
        OutgoingMessage(2, "n@example.org", "y@example.org", "<2@t>", bare),
    ]

    async def go() -> list[str]:
        try:
            return [r.status for r in await sender.send_batch(messages)]
        finally:
            await sender.aclose()

    assert asyncio.run(go()) == ["sent", "sent"]
    got = [m.data for m in smtp_server.handler.messages]
    assert got == [marked, bare.replace(b"\n", b"\r\n")], got


def test_a_built_message_goes_out_dot_safe_unless_a_signer_adds_its_header() -> None:
    """A personalised message is marked dot-safe (the transport skips the scan for leading
    dots): its template has none and its values are quoted-printable; a DKIM signer's
    header is not vouched for, so a signed message is stuffed as before."""
    from digest.deliver.batches import Row, message
    from digest.render import build_template, render_edition
    from tests.test_render import INFO, recipient
    from tests.test_render_edges import _one

    template = build_template(
        render_edition(INFO, _one("T", summary=".a dot first\n" + "x." * 60)),
        sender="news@example.com",
        reply_to=None,
        list_name="Daily",
        list_id="daily.digest.test",
        message_id_prefix="digest.3",
    )
    row = Row(1, 1, "zoe@example.org", 1)
    plain = message(template, recipient(), row, False, None)
    assert plain.crlf and plain.dot_safe
    assert not [line for line in plain.data.split(b"\r\n") if line.startswith(b".")]
    signed = message(
        template, recipient(), row, False, lambda data: b"DKIM-Signature: x\r\n" + data
    )
    assert not signed.dot_safe


def _direct(port: int, messages: list[Any], connections: int = 1) -> list[Any]:
    """Send ``messages`` through the SMTP transport straight, as one batch."""
    from digest.config.models import SmtpConfig
    from digest.deliver.smtp import SmtpSender

    settings = SmtpConfig(
        host="127.0.0.1", port=port, security="none", connections=connections, timeout_seconds=2
    )
    sender = SmtpSender(settings, None)

    async def go() -> list[Any]:
        try:
            return list(await sender.send_batch(messages))
        finally:
            await sender.aclose()

    return asyncio.run(go())


def _messages(*addresses: str) -> list[Any]:
    from digest.records import OutgoingMessage

    return [
        OutgoingMessage(
            i, "n@example.org", a, f"<{i}@t>", f"Subject: {i}\r\n\r\nbody\r\n".encode(), crlf=True
        )
        for i, a in enumerate(addresses)
    ]


def test_the_next_message_s_commands_go_behind_the_last_one_s_final_dot(
    faulty: FaultyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 2920 lets the next MAIL, RCPT and DATA follow a message's final dot in one group:
    with a pipelining server a session writes and waits once a message, not twice. Every
    message still arrives once, with its own result, in the batch's order."""
    import digest.deliver.smtp_wire as smtp

    writes: list[bytes] = []
    real = smtp._send

    def counted(client: Any, data: bytes) -> None:
        writes.append(data)
        real(client, data)

    monkeypatch.setattr(smtp, "_send", counted)
    addresses = [f"r{i}@example.org" for i in range(6)]
    results = _direct(faulty.port, _messages(*addresses))
    assert [(r.delivery_id, r.status) for r in results] == [(i, "sent") for i in range(6)]
    assert faulty.received == Counter(addresses)
    assert len(writes) == 7, [w[:40] for w in writes]  # the first commands, one a message
    assert writes[1].endswith(
        b"\r\n.\r\nMAIL FROM:<n@example.org>\r\nRCPT TO:<r1@example.org>\r\nDATA\r\n"
    )
    assert writes[-1].endswith(b"body\r\n.\r\n")  # nothing behind the last


def test_commands_sent_ahead_are_void_when_their_session_ends_and_nothing_is_lost(
    faulty: FaultyServer,
) -> None:
    """A refusal of the message sent ahead is its own (the one before is sent); a session
    the server closes after each message, or drops at a DATA sent ahead, leaves the
    message behind to go out on a fresh session: each recipient gets one copy."""
    faulty.faults.refuse = {"bad": "550 5.1.1 No such user"}
    faulty.faults.drop = {"flaky": 1}
    addresses = [
        "a@example.org",
        "bad@example.org",
        "b@example.org",
        "flaky@example.org",
        "c@x.org",
    ]
    results = _direct(faulty.port, _messages(*addresses))
    assert [r.status for r in results] == ["sent", "bounced", "sent", "sent", "sent"]
    assert faulty.received == Counter(a for a in addresses if not a.startswith("bad"))
    assert faulty.drops == 1

    faulty.received.clear()
    faulty.faults.one_per_session = True
    results = _direct(faulty.port, _messages(*[f"s{i}@example.org" for i in range(4)]))
    assert [r.status for r in results] == ["sent"] * 4
    assert faulty.received == Counter(f"s{i}@example.org" for i in range(4))


def test_tls_settings_that_cannot_be_made_name_the_certificates_not_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from digest.config import SmtpConfig
    from digest.deliver.smtp import SmtpSender
    from digest.errors import DeliveryError

    def broken(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        raise ssl.SSLError("unknown error (_ssl.c:4293)")

    monkeypatch.setattr(ssl, "create_default_context", broken)
    sender = SmtpSender(SmtpConfig(host="127.0.0.1", port=free_port(), security="tls"), None)
    with pytest.raises(DeliveryError) as raised:
        sender.check_connection()
    assert "cannot load this machine's CA certificates" in str(raised.value)
    assert "SSL_CERT_FILE" in (raised.value.hint or "")
