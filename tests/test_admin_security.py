"""The admin console attacked from outside, against the running server (uvicorn on a real
socket, as `digest serve` runs it): nothing under /admin answers without a session, no
form works without its CSRF field, wrong passwords lock an address whether or not it has an
account, and a cookie signed with another secret, or from before "log out everywhere", or
too old, is refused."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount, Route

from digest.clock import SYSTEM_CLOCK, ManualClock
from digest.web import create_app
from digest.web.admin.auth import SESSION_COOKIE, LoginGuard, Sessions
from tests.admin_site import ADMIN, PASSWORD, Console, console_config, serving
from tests.conftest import SECRET, FeedServer, SmtpServer, csrf


@pytest.fixture
def config(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> Path:
    return console_config(write_config, feed_server, smtp_server.port)


@pytest.fixture
def site(config: Path) -> Iterator[Console]:
    with serving(config, gather=False) as running:
        yield running


def _admin_urls(site: Console) -> list[tuple[str, str]]:
    """Every (method, URL) the console serves, path parameters filled in, from the app's
    own routing table: a screen added later is checked without editing this test."""
    asgi = create_app(site.app)
    urls = []
    for route in asgi.routes:
        if isinstance(route, Mount) and route.path == "/admin":
            for sub in route.routes:
                assert isinstance(sub, Route)
                path = re.sub(r"\{[a-z_]+:int\}", "1", sub.path).replace(
                    "{rest:path}", "anything/else"
                )
                for method in sorted(sub.methods or ()):
                    if method != "HEAD":
                        urls.append((method, "/admin" + path))
    assert len(urls) > 15, urls
    return urls


def test_nothing_under_admin_answers_without_a_session(site: Console) -> None:
    with site.client() as client:
        for method, url in _admin_urls(site):
            response = client.request(method, url, data={"action": "unsubscribe", "csrf": "x"})
            if url == "/admin/login":
                continue  # the one page served to strangers
            if method == "GET":
                assert response.status_code == 303, (method, url, response.status_code)
                assert response.headers["location"].startswith("/admin/login?next="), url
            else:
                assert response.status_code in (401, 403), (method, url, response.status_code)
            assert "boss@example.org" not in response.text
        # /admin itself, and an unknown page: also a login first, so no URL says what exists.
        assert client.get("/admin").status_code in (303, 307)
        assert client.get("/admin/nope/1").headers["location"] == "/admin/login?next=/admin/nope/1"


def test_a_form_without_its_csrf_field_changes_nothing(site: Console) -> None:
    row, _ = site.app.store.add_subscriber("reader@example.org")
    with site.client() as client:
        assert site.login(client).status_code == 303
        url = f"/admin/subscribers/{row.id}"
        for token in ("", "123.0123456789abcdef0123456789abcdef", "garbage"):
            refused = client.post(url, data={"action": "unsubscribe", "csrf": token})
            assert refused.status_code == 403 and "The form expired" in refused.text
        assert site.app.store.subscriber_by_email("reader@example.org").status == "active"  # type: ignore[union-attr]
        # The page's own field is accepted.
        accepted = client.post(
            url, data={"action": "unsubscribe", "confirm": "yes", "csrf": csrf(client.get(url))}
        )
        assert accepted.status_code == 200 and "is unsubscribed" in accepted.text
    assert site.app.store.subscriber_by_email("reader@example.org").status == "unsubscribed"  # type: ignore[union-attr]


def test_the_login_form_needs_its_own_field_too(site: Console) -> None:
    with site.client() as client:
        response = client.post(
            "/admin/login", data={"email": ADMIN, "password": PASSWORD, "csrf": "1.abc"}
        )
        assert response.status_code == 400 and SESSION_COOKIE not in response.cookies


def _locked_text(response: httpx.Response, email: str) -> str:
    found = re.search(r'role="alert">([^<]+)<', response.text)
    assert found, response.text
    return found.group(1).replace(email, "EMAIL")


def test_ten_wrong_passwords_lock_the_address_whether_or_not_it_has_an_account(
    site: Console,
) -> None:
    answers: dict[str, list[tuple[int, str]]] = {}
    with site.client() as client:
        for email in (ADMIN, "nobody@example.org"):
            answers[email] = [
                (r.status_code, _locked_text(r, email))
                for r in (site.login(client, email, "wrong password!") for _ in range(11))
            ]
        # The right password no longer opens the locked account.
        locked = site.login(client, ADMIN, PASSWORD)
        assert locked.status_code == 429 and "locked for 15 minutes" in locked.text
        assert SESSION_COOKIE not in client.cookies
    known, unknown = answers[ADMIN], answers["nobody@example.org"]
    assert known == unknown  # the same answers, so they tell nothing about who has an account
    assert known[0] == (401, "Wrong address or password.")
    assert all(a == known[0] for a in known[:9])
    assert known[9][0] == 429 and "locked for 15 minutes" in known[9][1]
    assert known[10] == known[9]


def test_the_lock_ends_after_a_while(config: Path) -> None:
    """The console's own guard counts on the app's clock: moved past the lockout, the right
    password opens the account again."""
    clock = ManualClock(datetime.now(UTC))
    with serving(config, gather=False, clock=clock) as site, site.client() as client:
        for _ in range(10):
            site.login(client, ADMIN, "wrong password!")
        assert site.login(client).status_code == 429
        clock.advance(15 * 60 - 10)
        assert site.login(client).status_code == 429  # still locked
        clock.advance(11)
        assert site.login(client).status_code == 303


def test_one_address_cannot_try_passwords_for_ever(config: Path) -> None:
    guard = LoginGuard(10, 15 * 60, SYSTEM_CLOCK.monotonic, per_client=5)
    with serving(config, guard=guard, gather=False) as site, site.client() as client:
        for i in range(5):
            site.login(client, f"guess{i}@example.org", "x")
        response = site.login(client)
        assert response.status_code == 429 and "from your address" in response.text


def test_the_attempts_of_an_ipv6_client_count_by_its_64(config: Path) -> None:
    """As the sign-up limit counts them (``rate_key``): a client given a /64 may take a new
    address for each attempt, so counting per IPv6 address would be no limit at all."""
    config.write_text(
        config.read_text().replace(
            'secret_env = "DIGEST_SECRET"',
            'secret_env = "DIGEST_SECRET"\ntrusted_proxies = ["127.0.0.1"]',  # the test client
        )
    )
    guard = LoginGuard(10, 15 * 60, SYSTEM_CLOCK.monotonic, per_client=5)
    with serving(config, guard=guard, gather=False) as site:

        def login(forwarded: str, password: str = "x") -> httpx.Response:
            with site.client(headers={"X-Forwarded-For": forwarded}) as client:
                return site.login(
                    client, ADMIN if password == PASSWORD else "g@example.org", password
                )

        for i in range(5):
            assert login(f"2001:db8:1:1::{i + 1}").status_code == 401
        refused = login("2001:db8:1:1:ffff:ffff:ffff:ffff", PASSWORD)  # the same /64
        assert refused.status_code == 429 and "from your address" in refused.text
        assert login("2001:db8:1:2::1", PASSWORD).status_code == 303  # another /64


def test_a_session_cookie_signed_with_another_secret_is_refused(site: Console) -> None:
    admin = site.app.store.admin_by_email(ADMIN)
    assert admin is not None and admin.id is not None
    forged = Sessions("another-secret-0123456789-abcdef", 3600, site.app.clock).issue(
        admin.id, admin.generation
    )
    genuine = Sessions(SECRET, 3600, site.app.clock).issue(admin.id, admin.generation)
    with site.client() as client:
        client.cookies.set(SESSION_COOKIE, forged, path="/admin")
        assert client.get("/admin/").status_code == 303
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, genuine, path="/admin")
        assert client.get("/admin/").status_code == 200


def test_an_expired_session_is_refused(config: Path) -> None:
    """A session is dated and aged by the app's clock: past admin.session_hours (12) the
    cookie is refused, and the browser is sent to log in again."""
    clock = ManualClock(datetime.now(UTC))
    with serving(config, gather=False, clock=clock) as site, site.logged_in() as client:
        assert client.get("/admin/").status_code == 200
        clock.advance(timedelta(hours=12) - timedelta(seconds=5))
        assert client.get("/admin/").status_code == 200
        clock.advance(10)
        expired = client.get("/admin/")
        assert expired.status_code == 303
        assert expired.headers["location"].startswith("/admin/login")


def test_the_cookie_is_httponly_strict_and_secure_behind_https(site: Console) -> None:
    with site.client() as client:
        plain = site.login(client)
        flags = plain.headers["set-cookie"].lower()
        assert "httponly" in flags and "samesite=strict" in flags and "path=/admin" in flags
        assert "secure" not in flags and "max-age=43200" in flags
    # Through the trusted proxy (127.0.0.1) that says the browser used https: Secure.
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
    with site.client(headers=proxied) as client:
        page = client.get("/admin/login")
        # The form's cookie is Secure too, so this plain-http client must be handed it.
        nonce = re.search(r"digest_form=([^;]+)", page.headers["set-cookie"])
        assert nonce and "; secure" in page.headers["set-cookie"].lower()
        secure = client.post(
            "/admin/login",
            data={"csrf": csrf(page), "email": ADMIN, "password": PASSWORD},
            headers={"Cookie": f"digest_form={nonce.group(1)}"},
        )
        assert secure.status_code == 303
        assert "; secure" in secure.headers["set-cookie"].lower()


def test_log_out_everywhere_ends_every_session(site: Console) -> None:
    with site.client() as laptop, site.client() as phone:
        site.login(laptop)
        site.login(phone)
        assert phone.get("/admin/").status_code == 200
        token = csrf(laptop.get("/admin/"))
        out = laptop.post("/admin/logout", data={"csrf": token, "everywhere": "yes"})
        assert out.status_code == 303
        assert phone.get("/admin/").status_code == 303
        assert laptop.get("/admin/").status_code == 303
        # The old CSRF field went with the old generation: logging in again needs a new page.
        site.login(laptop)
        stale = laptop.post("/admin/delivery", data={"csrf": token})
        assert stale.status_code == 403


def test_an_unknown_address_costs_the_same_password_check_as_a_known_one() -> None:
    import statistics
    import time

    from digest.web.admin.auth import check_password, hash_password, prepare

    stored = hash_password(PASSWORD)
    prepare()

    def cost(hashed: str | None) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            assert check_password(hashed, "wrong password!") == (False, None)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    known, unknown = cost(stored), cost(None)
    assert 1 / 3 < unknown / known < 3, (known, unknown)  # an argon2 verification each
    assert known > 0.005  # a real key derivation, not a string comparison


def test_after_logging_in_only_a_console_page_is_gone_to(site: Console) -> None:
    """The login form's ``next`` comes from a link anyone can write: it is followed only to
    a page of the console, never off the site (an open redirect a phishing mail would use)."""
    for target, went in (
        ("/admin/subscribers", "/admin/subscribers"),
        ("https://evil.test/admin", "/admin/"),
        ("//evil.test/admin", "/admin/"),
        ("/\\evil.test/admin", "/admin/"),
        ("/admin\\@evil.test", "/admin/"),
        ("javascript:alert(1)", "/admin/"),
        ("/archive", "/admin/"),
    ):
        with site.client() as client:
            page = client.get("/admin/login", params={"next": target})
            answer = client.post(
                "/admin/login",
                data={"csrf": csrf(page), "email": ADMIN, "password": PASSWORD, "next": target},
            )
            assert answer.status_code == 303, target
            assert answer.headers["location"] == went, target
