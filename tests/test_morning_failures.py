"""The 7 a.m. digest that did not go out: each command names what failed, for whom, and
the command that sends it once the cause is fixed; that command sends exactly the rest."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.conftest import FeedServer, SmtpServer, free_port, rss, run_cli


class Refusing:
    """A relay that refuses every recipient (a relay not configured for this client)."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return f"554 5.7.1 <{address}>: Relay access denied"


class WantsLogin:
    """A relay that wants a login digest does not give: 530 to every MAIL FROM."""

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return "530 5.7.0 Authentication required"


def _serving(handler: object) -> Iterator[int]:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port
    controller.stop()


@pytest.fixture
def refusing_server() -> Iterator[int]:
    yield from _serving(Refusing())


@pytest.fixture
def login_wanting_server() -> Iterator[int]:
    yield from _serving(WantsLogin())


def _config(write_config, feed_server: FeedServer, port: int) -> Path:
    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    config = write_config(
        [("Wire", feed_server.add("/f.xml", rss([story])))], transport="smtp", smtp_port=port
    )
    for who in ("ana", "ben"):
        assert run_cli("--config", str(config), "subscribers", "add", f"{who}@example.org")[0] == 0
    return config


def test_a_send_the_server_refused_whole_fails_and_names_the_retry(
    write_config, feed_server: FeedServer, refusing_server: int, smtp_server: SmtpServer
) -> None:
    config = _config(write_config, feed_server, refusing_server)

    code, out, err = run_cli("--config", str(config), "send", "--gather")

    # Not "ok": nobody got it, though two refusals spend no error budget.
    assert code == 1
    assert "delivery: 2 failed" in out
    assert "554 5.7.1" in err and "Relay access denied" in err
    assert "delivery failed: every message tried failed, none was sent" in err
    edition = json.loads(run_cli("--config", str(config), "status", "--json")[1])["editions"][0]
    assert f"`digest retry {edition['id']}` sends them again" in err
    jobs = json.loads(run_cli("--config", str(config), "status", "--json")[1])["jobs"]
    job = jobs["send daily (manual)"]
    assert job["ok"] is False
    assert "every message failed, none sent (failed: 554 5.7.1" in job["summary"]
    assert f"`digest retry {edition['id']}`" in job["summary"]
    assert "last send daily (manual): FAILED" in run_cli("--config", str(config), "status")[1]

    # The relay is fixed: the retry the run named sends both, once each.
    text = config.read_text().replace(f"port = {refusing_server}", f"port = {smtp_server.port}")
    config.write_text(text)
    code, out, _ = run_cli("--config", str(config), "retry", str(edition["id"]))
    assert code == 0 and "delivery: 2 sent" in out
    assert sorted(r for m in smtp_server.messages for r in m.recipients) == [
        "ana@example.org",
        "ben@example.org",
    ]
    assert run_cli("--config", str(config), "retry", "--due")[0] == 0
    assert len(smtp_server.messages) == 2


def test_a_server_that_wants_a_login_stops_the_send_and_keeps_every_reader_queued(
    write_config, feed_server: FeedServer, login_wanting_server: int, smtp_server: SmtpServer
) -> None:
    """530 to MAIL FROM holds for every message: the run stops at the first, names the
    fix, and fails nobody; once the login is fixed the queued readers go, once each."""
    config = _config(write_config, feed_server, login_wanting_server)

    code, out, err = run_cli("--config", str(config), "send", "--gather")

    assert code == 1
    assert "refused the sender <" in err and "530 5.7.0 Authentication required" in err
    assert "set delivery.smtp.username" in err
    assert "failed" not in out  # nobody is marked failed: they wait for the fix
    queue = json.loads(run_cli("--config", str(config), "status", "--json")[1])["queue"]
    assert queue["pending"] == 2

    text = config.read_text()
    config.write_text(text.replace(f"port = {login_wanting_server}", f"port = {smtp_server.port}"))
    assert run_cli("--config", str(config), "retry", "--due")[0] == 0
    assert sorted(r for m in smtp_server.messages for r in m.recipients) == [
        "ana@example.org",
        "ben@example.org",
    ]
    assert run_cli("--config", str(config), "send")[0] == 0
    assert len(smtp_server.messages) == 2


def test_a_send_with_one_refused_address_among_sent_ones_is_still_ok(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    config = _config(write_config, feed_server, smtp_server.port)
    assert run_cli("--config", str(config), "subscribers", "add", "later@example.org")[0] == 0

    code, out, err = run_cli("--config", str(config), "send", "--gather")

    assert code == 0 and "2 sent, 1 deferred" in out
    assert "the deferred ones are tried again when their wait is over" in err
    assert "digest retry --due" in err


def _sent_with_a_deferral_and_a_bounce(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> Path:
    """A send to ana and ben, and to later@ (the server defers it) and bounce@ (refused)."""
    config = _config(write_config, feed_server, smtp_server.port)
    for who in ("later", "bounce"):
        assert run_cli("--config", str(config), "subscribers", "add", f"{who}@example.org")[0] == 0
    assert run_cli("--config", str(config), "send", "--gather")[0] == 0
    return config


def test_status_says_when_deferred_rows_go_again_and_how_to_retry_failed_ones(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    config = _sent_with_a_deferral_and_a_bounce(write_config, feed_server, smtp_server)

    _, out, _ = run_cli("--config", str(config), "status")
    document = json.loads(run_cli("--config", str(config), "status", "--json")[1])

    due = document["queue"]["next_deferred_due_at"]
    assert due is not None
    assert f"1 deferred (the first due again at {due[:19].replace('T', ' ')} UTC" in out
    assert "`digest retry --due`" in out
    edition = document["editions"][0]["id"]
    assert f"edition {edition}: once the cause is fixed, `digest retry {edition}`" in out


def test_subscribers_show_answers_why_a_reader_did_not_get_it(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    config = _sent_with_a_deferral_and_a_bounce(write_config, feed_server, smtp_server)
    edition = json.loads(run_cli("--config", str(config), "status", "--json")[1])["editions"][0]
    assert run_cli("--config", str(config), "subscribers", "add", "cat@example.org")[0] == 0

    code, out, _ = run_cli("--config", str(config), "subscribers", "show", "Later@Example.org")

    assert code == 0
    assert out.startswith("later@example.org: active; topics all;")
    slot = edition["slot"][:16].replace("T", " ")
    assert (
        f"  edition {edition['id']} (daily, slot {slot} UTC): deferred, 1 attempt: "
        "451 4.7.1 Try again later"
    ) in out
    assert f"next: edition {edition['id']} is still queued for them (deferred)" in out
    assert f"`digest retry {edition['id']}` now" in out

    code, out, _ = run_cli("--config", str(config), "subscribers", "show", "ana@example.org")
    assert f"edition {edition['id']} (daily, slot {slot} UTC): sent at " in out

    code, out, _ = run_cli(
        "--config", str(config), "subscribers", "show", "cat@example.org", "--json"
    )
    record = json.loads(out)
    assert record["deliveries"] == []
    [missing] = record["not_queued"]
    assert missing["edition"] == edition["id"] and "after it was built" in missing["why"]

    code, out, _ = run_cli("--config", str(config), "subscribers", "show", "bounce@example.org")
    assert out.startswith("bounce@example.org: bounced;")
    assert "550 5.1.1 <bounce@example.org>: Recipient address rejected" in out
    assert "next: nothing is sent to them: their address bounced" in out
    assert "at their request, `digest subscribers add bounce@example.org`" in out

    code, _, err = run_cli("--config", str(config), "subscribers", "show", "nobody@example.org")
    assert code == 1 and "nobody@example.org is not a subscriber" in err


class _Accepting:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 OK"


def _login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: LoginPassword
) -> AuthResult:
    # handled=False: aiosmtpd answers 235 or 535 itself.
    return AuthResult(success=(data.login, data.password) == (b"digest", b"right"), handled=False)


def test_check_connect_logs_in_as_a_send_would_and_names_a_refused_password(
    write_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    class LoginServer(Controller):
        def factory(self) -> SMTP:
            return SMTP(self.handler, authenticator=_login, auth_require_tls=False)

    controller = LoginServer(_Accepting(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        config = write_config(
            [("Wire", "http://127.0.0.1:9/f.xml")], transport="smtp", smtp_port=controller.port
        )
        config.write_text(
            config.read_text().replace(
                "connections = 2",
                'connections = 2\nusername = "digest"\npassword_env = "SMTP_PASS"',
            )
        )
        monkeypatch.setenv("SMTP_PASS", "wrong")

        code, out, err = run_cli("--config", str(config), "check", "--connect")

        assert code == 1 and ": ok (" in out
        assert "refused the login for 'digest': 535" in err
        assert "hint: check delivery.smtp.username and the password in $SMTP_PASS" in err

        monkeypatch.setenv("SMTP_PASS", "right")
        code, out, _ = run_cli("--config", str(config), "check", "--connect")
        assert code == 0
        assert (
            f"delivery: 127.0.0.1:{controller.port} answered (security none, logged in as digest"
            in out
        )
    finally:
        controller.stop()


def test_a_login_the_server_does_not_offer_is_named_as_such_not_as_a_connection_failure(
    write_config, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that offers no AUTH (a relay, or one that offers it only after STARTTLS)
    with a username set: the connection works, so "cannot connect ... check host, port and
    security, and that the server is up" sent the admin looking in the wrong place."""
    config = write_config(
        [("Wire", "http://127.0.0.1:9/f.xml")], transport="smtp", smtp_port=smtp_server.port
    )
    config.write_text(
        config.read_text().replace(
            "connections = 2", 'connections = 2\nusername = "digest"\npassword_env = "SMTP_PASS"'
        )
    )
    monkeypatch.setenv("SMTP_PASS", "right")

    code, _, err = run_cli("--config", str(config), "check", "--connect")

    assert code == 1
    assert "cannot connect" not in err
    assert (
        f"error: the SMTP server 127.0.0.1:{smtp_server.port} (security none) offers no login "
        "(no AUTH in its EHLO reply), but delivery.smtp.username is set"
    ) in err
    assert 'hint: most servers offer a login only over TLS: set security = "starttls"' in err
    assert "remove delivery.smtp.username and password_env" in err
    assert smtp_server.handler.messages == []


def test_the_console_subscriber_page_names_editions_that_never_queued_them(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    from tests.admin_site import serving

    config = _config(write_config, feed_server, smtp_server.port)
    assert run_cli("--config", str(config), "send", "--gather")[0] == 0
    assert run_cli("--config", str(config), "subscribers", "add", "cat@example.org")[0] == 0

    with serving(config, gather=False) as console, console.logged_in() as client:
        cat = console.app.store.subscriber_by_email("cat@example.org")
        assert cat is not None
        page = html.unescape(client.get(f"/admin/subscribers/{cat.id}").text)

    assert "not queued" in page
    assert "after it was built" in page


def test_status_says_when_a_later_run_of_the_digest_went_ok_after_a_failed_one(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    down = free_port()
    config = _config(write_config, feed_server, down)
    assert run_cli("--config", str(config), "send", "--gather")[0] == 1  # the server is down
    config.write_text(config.read_text().replace(f"port = {down}", f"port = {smtp_server.port}"))
    assert run_cli("--config", str(config), "retry", "--due")[0] == 0

    _, out, _ = run_cli("--config", str(config), "status")
    jobs = json.loads(run_cli("--config", str(config), "status", "--json")[1])["jobs"]

    later = jobs["send daily (manual)"]["ok_since"]
    assert later["job"] == "retry daily"
    assert "last send daily (manual): FAILED at " in out
    assert f"(a later run went ok: `retry daily` at {later['finished_at'][11:19]} UTC)" in out
    assert jobs["retry daily"]["ok_since"] is None and jobs["gather"]["ok_since"] is None
