"""The web app attacked from outside, as it runs in production: uvicorn on a real socket
(the settings `digest serve` uses), clients bound to other loopback addresses (all of
127.0.0.0/8 is this machine) to play a proxy, a reader whose address changes, a stranger.

Each attack is answered as a reader or an admin would expect, and the database holds
afterwards exactly what it should: nobody suppressed, subscribed or renamed by it.
"""

from __future__ import annotations

import json
import logging
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from digest.app import App
from digest.clock import SYSTEM_CLOCK
from digest.config import load_config
from digest.web import create_app
from digest.web.security import RateLimit
from tests.conftest import (
    ROOT,
    FeedServer,
    RecordingHandler,
    SmtpServer,
    csrf,
    free_port,
    local_listener,
    rss,
    uvicorn_thread,
)
from tests.test_webhooks import CERT_URL, MAILGUN_KEY, TOPIC, _certificate, _mailgun, _sns

MIB = 1024 * 1024
SUBSCRIBERS = ("gone@example.org", "angry@example.org", "fine@example.org")


@dataclass
class Site:
    """The app served by uvicorn on 127.0.0.1; ``fetched`` lists the URLs it downloaded."""

    base: str
    port: int
    app: App
    fetched: list[str] = field(default_factory=list)

    def client(self, bind: str = "127.0.0.1", **kw: object) -> httpx.Client:
        """A client whose connections come from ``bind`` (a loopback address)."""
        transport = httpx.HTTPTransport(local_address=bind)
        return httpx.Client(base_url=self.base, transport=transport, timeout=10.0, **kw)  # type: ignore[arg-type]

    def people(self) -> dict[str, tuple[str, str | None]]:
        """Every subscriber: address -> (status, name)."""
        return {s.email: (s.status, s.name) for s in self.app.store.subscribers()}


@pytest.fixture
def make_config(
    write_config: Callable[..., Path],
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Path]:
    """A config mailing through SMTP on ``smtp_port``, with webhooks and ``service`` lines."""

    def make(smtp_port: int, service: str = "") -> Path:
        url = feed_server.add("/f.xml", rss([{"title": "T", "guid": "1", "link": "https://w/1"}]))
        path = write_config(
            [("Wire", url)],
            transport="smtp",
            smtp_port=smtp_port,
            extra=f'\n[webhooks]\nmailgun_signing_key_env = "MG_KEY"\nses_topic_arn = "{TOPIC}"\n',
        )
        text = path.read_text().replace(
            'secret_env = "DIGEST_SECRET"', f'secret_env = "DIGEST_SECRET"\n{service}'
        )
        path.write_text(text)
        monkeypatch.setenv("MG_KEY", MAILGUN_KEY)
        return path

    return make


@contextmanager
def serving(
    config: Path,
    per_ip: RateLimit | None = None,
    fetch: Callable[[str], bytes] | None = None,
) -> Iterator[Site]:
    """uvicorn in a thread, as `digest serve` configures it, on a free port of 127.0.0.1."""
    app = App.open(load_config(config))
    for address in SUBSCRIBERS:
        app.store.add_subscriber(address)
    listener = local_listener()
    port = listener.getsockname()[1]
    site = Site(f"http://127.0.0.1:{port}", port, app)

    def certificate(url: str) -> bytes:
        site.fetched.append(url)
        return _certificate() if url == CERT_URL else b""

    asgi = create_app(app, per_ip=per_ip, fetch=fetch or certificate)
    try:
        with uvicorn_thread(asgi, listener):
            yield site
    finally:
        app.close()


@pytest.fixture
def site(make_config: Callable[..., Path], smtp_server: SmtpServer) -> Iterator[Site]:
    with serving(make_config(smtp_server.port)) as running:
        yield running


def _form(client: httpx.Client, headers: dict[str, str] | None = None) -> str:
    """GET the sign-up page (its cookie lands in the client's jar); its CSRF field."""
    page = client.get("/", headers=headers)
    assert page.status_code == 200, page.text
    return csrf(page)


UNTOUCHED = {address: ("active", None) for address in SUBSCRIBERS}


# --- forged bounces ------------------------------------------------------------------------


def test_a_forged_bounce_webhook_suppresses_nobody(site: Site) -> None:
    event = {"event": "failed", "severity": "permanent", "recipient": "fine@example.org"}
    bounce = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bouncedRecipients": [{"emailAddress": "fine@example.org"}],
        },
    }
    with site.client() as c:
        wrong_key = c.post("/webhooks/mailgun", content=_mailgun(event, key="guessed-key"))
        unsigned = c.post("/webhooks/mailgun", content=json.dumps({"event-data": event}))
        forged_sns = _sns("Notification", bounce).replace(b"fine@", b"gone@")
        tampered = c.post("/webhooks/ses", content=forged_sns)
        elsewhere = json.loads(_sns("Notification", bounce))
        elsewhere["SigningCertURL"] = "https://attacker.example/SimpleNotificationService-1.pem"
        own_cert = c.post("/webhooks/ses", content=json.dumps(elsewhere))
        assert [r.status_code for r in (wrong_key, unsigned, tampered, own_cert)] == [401] * 4
    assert site.people() == UNTOUCHED
    assert "https://attacker.example/SimpleNotificationService-1.pem" not in site.fetched


# --- bodies: too large, too deep -----------------------------------------------------------


def _rss() -> int:
    """This process's resident memory in bytes (the server runs in one of its threads)."""
    status = Path("/proc/self/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert found
    return int(found.group(1)) * 1024


@contextmanager
def _peak_rss() -> Iterator[list[int]]:
    """The highest resident memory seen while the block runs, over what it was before."""
    before, peak, done = _rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss() - before)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


def _post_raw(port: int, path: str, headers: str, total: int) -> tuple[int, int]:
    """POST ``total`` bytes (chunked unless ``headers`` gives a Content-Length), stopping as
    soon as the server answers; (status, bytes sent)."""
    chunked = "content-length" not in headers.lower()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(0.5)
        framing = "Transfer-Encoding: chunked\r\n" if chunked else ""
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{framing}{headers}\r\n".encode("ascii")
        )
        piece = b"x" * 65536
        frame = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
        sent = 0
        while sent < total and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(frame)
            except TimeoutError:  # the server stopped reading: its answer is coming
                break
            except OSError:
                break
            sent += len(piece)
        sock.settimeout(10)
        answer = b""
        while b"\r\n" not in answer:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    status = re.match(rb"HTTP/1\.1 (\d{3})", answer)
    assert status, answer
    return int(status.group(1)), sent


@pytest.mark.parametrize("path", ["/webhooks/mailgun", "/subscribe"])
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_oversized_body_is_413_and_never_read_whole(
    site: Site, path: str, declared: bool
) -> None:
    total = 200 * MIB
    headers = "Content-Type: application/x-www-form-urlencoded\r\n"
    headers += f"Content-Length: {total}\r\n" if declared else ""
    with _peak_rss() as grown:
        status, sent = _post_raw(site.port, path, headers, total)
    assert status == 413
    assert sent < total  # answered long before the body was all sent
    assert grown[0] < 40 * MIB, f"the server's memory grew by {grown[0] // MIB} MiB"
    with site.client() as c:  # and it still serves
        assert c.get("/healthz").json() == {"status": "ok"}
    assert site.people() == UNTOUCHED


def test_a_body_under_the_cap_is_read(make_config: Callable[..., Path], smtp_server) -> None:
    """The cap is service.max_body_bytes: a body of 2 KiB passes a 4 KiB cap, not 1 KiB."""
    config = make_config(smtp_server.port, "max_body_bytes = 4096")
    event = {"event": "failed", "severity": "permanent", "recipient": "gone@example.org"}
    body = _mailgun({**event, "padding": "x" * 2048})
    with serving(config) as running, running.client() as c:
        assert c.post("/webhooks/mailgun", content=body).json()["suppressed"] == 1
        assert c.post("/webhooks/mailgun", content=b" " * 5000).status_code == 413
        page = c.post("/webhooks/mailgun", content=iter([b" " * 3000, b" " * 2000]))  # chunked
        assert page.status_code == 413 and "Too large" in page.text
        assert "at most 4096 bytes" in page.text  # the site's own page says why


def test_deeply_nested_json_on_a_webhook_is_400(site: Site) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000  # 400 KB, under the cap
    inside = b'{"signature": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with site.client() as c:
        for path, body in (
            ("/webhooks/mailgun", deep),
            ("/webhooks/mailgun", inside),
            ("/webhooks/ses", deep),
        ):
            answer = c.post(path, content=body)
            assert answer.status_code == 400, (path, answer.text)
            assert "nested too deep" in answer.json()["error"]
        assert c.post("/webhooks/mailgun", content=b"not json").status_code == 400
        assert c.get("/healthz").status_code == 200
    assert site.people() == UNTOUCHED


# --- a proxy on another address ------------------------------------------------------------


def test_x_forwarded_for_is_believed_only_from_a_configured_proxy(
    make_config: Callable[..., Path], smtp_server: SmtpServer
) -> None:
    config = make_config(smtp_server.port, 'trusted_proxies = ["10.0.0.0/8", "127.0.0.3/32"]')
    with serving(config, per_ip=RateLimit(1, 3600, SYSTEM_CLOCK.monotonic)) as running:

        def sign_up(bind: str, forwarded: str, email: str) -> int:
            headers = {"X-Forwarded-For": forwarded}
            with running.client(bind) as c:
                csrf = _form(c, headers)
                form = {"email": email, "csrf": csrf}
                return c.post("/subscribe", data=form, headers=headers).status_code

        # Two readers behind the proxy at 127.0.0.3: a limit each, not one for the site.
        assert sign_up("127.0.0.3", "198.51.100.1", "one@example.org") == 200
        assert sign_up("127.0.0.3", "198.51.100.2", "two@example.org") == 200
        assert sign_up("127.0.0.3", "198.51.100.1", "three@example.org") == 429
        # 127.0.0.4 is no proxy of ours: what it says in X-Forwarded-For is ignored.
        assert sign_up("127.0.0.4", "198.51.100.3", "four@example.org") == 200
        assert sign_up("127.0.0.4", "198.51.100.4", "five@example.org") == 429
        people = running.people()
    assert {e for e, (status, _) in people.items() if status == "pending"} == {
        "one@example.org",
        "two@example.org",
        "four@example.org",
    }
    assert [m.recipients for m in smtp_server.messages] == [
        ["one@example.org"],
        ["two@example.org"],
        ["four@example.org"],
    ]


def test_the_sign_up_limit_counts_an_ipv6_client_by_its_64(
    make_config: Callable[..., Path], smtp_server: SmtpServer
) -> None:
    """A home line or a server gets a /64 and may use any address in it: counted per IPv6
    address, a client changing its address at each sign-up would have no limit at all."""
    config = make_config(smtp_server.port, 'trusted_proxies = ["127.0.0.3"]')
    with serving(config, per_ip=RateLimit(1, 3600, SYSTEM_CLOCK.monotonic)) as running:

        def sign_up(forwarded: str, email: str) -> int:
            headers = {"X-Forwarded-For": forwarded}
            with running.client("127.0.0.3") as c:
                form = {"email": email, "csrf": _form(c, headers)}
                return c.post("/subscribe", data=form, headers=headers).status_code

        assert sign_up("2001:db8:1:1::1", "one@example.org") == 200
        assert sign_up("2001:db8:1:1::2", "two@example.org") == 429  # the same /64
        assert sign_up("2001:db8:1:1:ffff:ffff:ffff:ffff", "three@example.org") == 429
        assert sign_up("2001:db8:1:2::1", "four@example.org") == 200  # another /64
        assert sign_up("198.51.100.7", "five@example.org") == 200
        assert sign_up("::ffff:198.51.100.7", "six@example.org") == 429  # the same IPv4 client
        pending = {e for e, (status, _) in running.people().items() if status == "pending"}
    assert pending == {"one@example.org", "four@example.org", "five@example.org"}


def test_a_proxy_that_is_not_an_address_is_a_config_error(
    make_config: Callable[..., Path], smtp_server: SmtpServer
) -> None:
    from tests.conftest import run_cli

    config = make_config(smtp_server.port, 'trusted_proxies = ["proxy.internal"]')
    code, _, err = run_cli("--config", str(config), "check")
    assert code == 2
    assert "service.trusted_proxies" in err and "'proxy.internal' is not an IP address" in err
    # Written back as uvicorn's check reads them (a network with host bits set would
    # otherwise be taken for a host name and never match).
    config = make_config(smtp_server.port, 'trusted_proxies = ["10.0.0.5/8", "2001:db8::5"]')
    assert load_config(config).service.trusted_proxies == ["10.0.0.0/8", "2001:db8::5"]


# --- the reader's address changes between the page and the submit --------------------------


def test_an_address_change_between_page_and_submit_is_accepted(
    site: Site, smtp_server: SmtpServer
) -> None:
    with site.client("127.0.0.1") as page:
        csrf = _form(page)
        cookies = page.cookies
    # The same browser (its cookie), now from another address: IPv4 then IPv6, a relay.
    with site.client("127.0.0.2", cookies=cookies) as later:
        sent = later.post("/subscribe", data={"email": "moving@example.org", "csrf": csrf})
    assert sent.status_code == 200 and "Check your inbox" in sent.text
    assert site.people()["moving@example.org"][0] == "pending"
    assert [m.recipients for m in smtp_server.messages] == [["moving@example.org"]]

    # What the check still refuses: the field without the browser it was issued to (a token
    # harvested once and posted from elsewhere), or with another browser's cookie.
    with site.client("127.0.0.2") as stranger:
        alone = stranger.post("/subscribe", data={"email": "x@example.org", "csrf": csrf})
        _form(stranger)  # a cookie of its own, not the one the field was made for
        other = stranger.post("/subscribe", data={"email": "x@example.org", "csrf": csrf})
    assert alone.status_code == other.status_code == 400
    assert "The form expired" in alone.text
    assert "x@example.org" not in site.people()


# --- the SMTP server is down ---------------------------------------------------------------


def test_a_sign_up_while_the_smtp_server_is_down_asks_to_try_again(
    make_config: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there yet
    with serving(make_config(port)) as running, running.client() as c:
        with caplog.at_level(logging.WARNING, logger="digest.web"):
            down = c.post("/subscribe", data={"email": "ana@example.org", "csrf": _form(c)})
        assert down.status_code == 503
        assert "try again in a few minutes" in down.text
        assert "Test Desk" in down.text and "<html" in down.text  # the site's own page
        assert running.people()["ana@example.org"] == ("pending", None)
        assert any(
            "ana@example.org" in r.getMessage() and f"127.0.0.1:{port}" in r.getMessage()
            for r in caplog.records
        ), caplog.text

        # The server is back: sending the form again sends the confirmation.
        handler = RecordingHandler()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            again = c.post("/subscribe", data={"email": "ana@example.org", "csrf": _form(c)})
        finally:
            controller.stop()
        assert again.status_code == 200 and "Check your inbox" in again.text
        assert [m.recipients for m in handler.messages] == [["ana@example.org"]]
        assert "/confirm/" in handler.messages[0].message().get_content()
        assert running.people()["ana@example.org"] == ("pending", None)


def test_an_unexpected_error_gets_the_sites_500_page_and_a_log_line(
    site: Site, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(limit: int = 20, published: bool = False) -> list[object]:
        raise RuntimeError("disk I/O error in editions")

    monkeypatch.setattr(site.app.store, "editions", broken)
    with site.client() as c, caplog.at_level(logging.ERROR, logger="digest.web"):
        page = c.get("/archive")
    assert page.status_code == 500
    assert "Something went wrong" in page.text and "Test Desk" in page.text
    assert "disk I/O" not in page.text and "Traceback" not in page.text  # the log has it
    assert page.headers["x-frame-options"] == "DENY"
    [record] = [r for r in caplog.records if r.name == "digest.web"]
    assert "GET /archive failed" in record.getMessage()
    assert record.exc_info and "disk I/O error in editions" in str(record.exc_info[1])


# --- a name with CR/LF ---------------------------------------------------------------------


def test_a_name_with_cr_or_lf_is_never_stored(site: Site) -> None:
    names = ["Ana\r\nBcc: everyone@example.org", "Bo\nb", "Cy\rril"]
    with site.client() as c:
        for i, name in enumerate(names):
            answer = c.post(
                "/subscribe", data={"email": f"n{i}@example.org", "name": name, "csrf": _form(c)}
            )
            assert answer.status_code in (200, 400), answer.text
            if answer.status_code == 400:
                assert "name" in answer.text  # refused, saying what is wrong
    stored = [name for _, name in site.people().values() if name]
    assert not [n for n in stored if "\r" in n or "\n" in n], stored


# --- nothing blocks the event loop ---------------------------------------------------------


def _while_busy(site: Site, slow: Callable[[], object]) -> float:
    """Seconds the sign-up page takes while ``slow`` (a request) is being served."""
    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.3)  # the slow request is in its blocking call now
    with site.client() as c:
        started = time.monotonic()
        assert c.get("/").status_code == 200
        took = time.monotonic() - started
    worker.join()
    return took


def test_a_slow_certificate_download_stalls_no_other_request(
    make_config: Callable[..., Path], smtp_server: SmtpServer
) -> None:
    calls: list[str] = []

    def slow_fetch(url: str) -> bytes:
        calls.append(url)
        time.sleep(2)
        return _certificate()

    bounce = {
        "notificationType": "Bounce",
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "x@y.z"}]},
    }
    with serving(make_config(smtp_server.port), fetch=slow_fetch) as running:

        def notify() -> None:
            with running.client() as c:
                assert c.post("/webhooks/ses", content=_sns("Notification", bounce)).json() == {
                    "events": 1,
                    "suppressed": 0,
                }

        assert _while_busy(running, notify) < 1.0
        notify()  # the certificate is kept: no second download
    assert calls == [CERT_URL]


def test_a_slow_database_call_stalls_no_other_request(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    editions = site.app.store.editions

    def slow(limit: int = 20) -> object:
        time.sleep(2)
        return editions(limit)

    monkeypatch.setattr(site.app.store, "editions", slow)

    def archive() -> None:
        with site.client() as c:
            assert c.get("/archive").status_code == 200

    assert _while_busy(site, archive) < 1.0


def test_certificate_urls_are_checked_first_and_failures_are_a_4xx_with_a_log_line(
    make_config: Callable[..., Path], smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    def unreachable(url: str) -> bytes:
        calls.append(url)
        raise httpx.ConnectError("connection refused")

    bounce = {"notificationType": "Bounce", "bounce": {"bounceType": "Permanent"}}
    with (
        serving(make_config(smtp_server.port), fetch=unreachable) as running,
        running.client() as c,
        caplog.at_level(logging.WARNING),
    ):
        for url in (
            "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
            "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
            "https://sns.eu-west-1.amazonaws.com@evil.example/SimpleNotificationService-1.pem",
            "https://evil.s3.amazonaws.com/SimpleNotificationService-1.pem",
        ):
            envelope = json.loads(_sns("Notification", bounce))
            envelope["SigningCertURL"] = url
            assert c.post("/webhooks/ses", content=json.dumps(envelope)).status_code == 401
        assert calls == []  # none of those was fetched
        failed = c.post("/webhooks/ses", content=_sns("Notification", bounce))
        assert failed.status_code == 401
        again = c.post("/webhooks/ses", content=_sns("Notification", bounce))
        assert again.status_code == 401  # refused without a new try for a minute
    assert calls == [CERT_URL]
    assert any(
        "webhook ses rejected" in r.getMessage() and "connection refused" in r.getMessage()
        for r in caplog.records
    ), caplog.text
    assert running.people() == UNTOUCHED


# --- `digest serve` itself -----------------------------------------------------------------


@pytest.mark.slow
def test_digest_serve_trusts_the_configured_proxies_not_uvicorns_variable(
    make_config: Callable[..., Path], smtp_server: SmtpServer
) -> None:
    """The real command in a subprocess: FORWARDED_ALLOW_IPS="*" (uvicorn's own setting)
    neither replaces service.trusted_proxies nor is applied silently."""
    import os
    import subprocess
    import sys

    config = make_config(smtp_server.port, "trusted_proxies = []")
    port = free_port()
    env = {**os.environ, "FORWARDED_ALLOW_IPS": "*", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "digest", "--config", str(config), "serve"]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        # A peer that is no proxy of ours says the reader came over https: not believed,
        # so the form's cookie is not marked Secure (it would be over https).
        page = httpx.get(f"http://127.0.0.1:{port}/", headers={"X-Forwarded-Proto": "https"})
        assert page.status_code == 200
        assert "secure" not in page.headers["set-cookie"].lower()
    finally:
        server.terminate()
        _, err = server.communicate(timeout=10)
    assert "FORWARDED_ALLOW_IPS is not read" in err and "trusted_proxies = []" in err
