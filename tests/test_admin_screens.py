"""The console's screens against the running server, one behaviour each: what they show is
what the database and the config say, and what they change goes through the CLI's rules."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from digest.app import run
from digest.editions.stored import ranked_to_json
from digest.jobs import hand_send, send_job
from digest.links import make_token
from digest.pipeline import run_digest
from digest.records import RankedEdition
from digest.store import utcnow
from digest.web.admin.reports import config_warnings
from tests.admin_site import Console, console_config, serving
from tests.conftest import SECRET, FeedServer, Route, SmtpServer, csrf, free_port, run_cli
from tests.store_queries import add_edition, source


@pytest.fixture
def site(console: Console) -> Console:
    return console


@pytest.fixture
def client(site: Console) -> Iterator[httpx.Client]:
    with site.logged_in() as c:
        yield c


def test_the_preview_after_a_send_says_nothing_is_new_not_that_nothing_was_gathered(
    site: Console, client: httpx.Client, smtp_server: SmtpServer
) -> None:
    site.app.store.add_subscriber("reader@example.org")
    assert send_job(site.app, "daily", gather_first=False) is not None  # all three stories
    page = client.get("/admin/preview", params={"digest": "daily"}).text
    assert "Nothing new since the last edition: 3 stories of the window went out before" in page
    assert "would mail nobody" in page and "gather first" not in page


def test_preview_as_one_subscriber_uses_their_topics_language_and_links(
    site: Console, client: httpx.Client
) -> None:
    row, _ = site.app.store.add_subscriber(
        "reader@example.org", "Rea", ["world"], "Asia/Tokyo", "de"
    )
    query = {"digest": "daily", "email": "reader@example.org"}
    page = client.get("/admin/preview", params=query)
    assert page.status_code == 200
    assert "Storm reaches the coast" in page.text and "Telescope finds a new moon" not in page.text
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    html = client.get("/admin/preview/email.html", params=query)
    assert html.status_code == 200 and html.headers["x-frame-options"] == "SAMEORIGIN"
    assert make_token(SECRET, "unsubscribe", row.public_id) in html.text
    assert "Rea" in html.text  # their name in the greeting
    unknown = client.get("/admin/preview", params={"email": "nobody@example.org"})
    assert unknown.status_code == 400 and "no subscriber has the address" in unknown.text
    bad_zone = client.get("/admin/preview", params={"timezone": "Mars/Olympus"})
    assert bad_zone.status_code == 400


def test_the_dashboard_shows_failing_sources_next_runs_in_their_zone_and_warnings(
    write_config: Callable[..., Path],
    feed_server: FeedServer,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = console_config(write_config, feed_server, smtp_server.port)
    path.write_text(
        path.read_text().replace('id = "daily"', 'id = "daily"\ntimezone = "Europe/Paris"')
    )
    monkeypatch.setenv("DIGEST_PREVIOUS_SECRETS", "short")  # `digest check` warns of it
    feed_server.routes["/science.xml"] = Route(b"down", status=500)
    with serving(path) as site, site.client() as client:
        site.login(client)
        page = client.get("/admin/").text
        warnings = config_warnings(site.app)
        assert warnings and all(w.split(":")[-1].strip()[:30] in page for w in warnings)
        assert "Europe/Paris" in page and "07:00" in page  # 07:00 in Paris, 06:00 UTC
        assert "06:00 UTC" in page
        assert "Science Daily" in page and "failing" in page and "500" in page
        assert "1 need a look" in page


def test_last_jobs_include_a_send_run_by_hand_marked_manual(
    site: Console, client: httpx.Client, smtp_server: SmtpServer
) -> None:
    """`digest send` is a send like the daemon's: the dashboard lists it, on a row of its
    own so the daemon's last result stays in view beside it."""
    site.app.store.add_subscriber("reader@example.org")
    assert send_job(site.app, "daily", gather_first=False) is not None  # the daemon's slot
    assert hand_send(site.app, "daily", gather_first=False).ok  # `digest send`, later

    page = client.get("/admin/").text
    rows = re.findall(r"<tr><td>(send daily[^<]*)</td><td>[^<]+</td><td class=\"ok\">ok</td>", page)

    assert rows == ["send daily", "send daily (manual)"]
    assert "<td>send daily (manual)</td>" in page


def test_an_edition_that_mailed_nobody_as_nothing_was_new_says_so(
    site: Console, client: httpx.Client, tmp_path: Path
) -> None:
    """The console's editions say what `digest status` says of an edition with nothing new
    since the last one: it mailed nobody by design, not by a fault."""
    slot = datetime(2026, 11, 30, 3, 17, tzinfo=UTC)
    nothing = RankedEdition((), (), candidates=7, repeats=7)  # as the pipeline stores it
    add_edition(
        site.app.store,
        slot,
        subject="Daily Test",
        html="<p>-</p>",
        text="-",
        story_count=0,
        stories=ranked_to_json(nothing),
    )
    said = (
        "03:17 edition (2026-11-30, UTC): nothing new since the last one, not sent: the 7 "
        "stories of its window went out before and none has grown since"
    )
    _, status, _ = run_cli("--config", str(tmp_path / "digest.toml"), "status")
    assert said in status
    for path in ("/admin/", "/admin/editions"):
        assert said in client.get(path).text, path


def test_subscribers_are_filtered_by_status_and_topic(site: Console, client: httpx.Client) -> None:
    store = site.app.store
    store.add_subscriber("world@example.org", topics=["world"])
    store.add_subscriber("all@example.org")
    science, _ = store.add_subscriber("science@example.org", topics=["science"])
    store.set_subscriber(science.id, status="paused")  # type: ignore[arg-type]
    found = client.get("/admin/subscribers", params={"topic": "world"}).text
    assert "world@example.org" in found and "all@example.org" in found  # no topics: all
    assert "science@example.org" not in found
    paused = client.get("/admin/subscribers", params={"status": "paused"}).text
    assert "science@example.org" in paused and "world@example.org" not in paused


def test_a_failed_row_is_retried_and_sent(
    site: Console, client: httpx.Client, smtp_server: SmtpServer
) -> None:
    store = site.app.store
    store.add_subscriber("later@example.org")
    report = run(run_digest(site.app))
    assert report.edition is not None and report.edition.id is not None
    edition_id = report.edition.id
    store.expire_unfinished(edition_id, "too old to send")  # the deferred row fails
    assert store.delivery_counts(edition_id) == {"failed": 1}
    page = client.get(f"/admin/editions/{edition_id}")
    assert "too old to send" in page.text
    smtp_server.handler.defer_later = False
    done = client.post(f"/admin/editions/{edition_id}/retry", data={"csrf": csrf(page)})
    assert done.status_code == 303
    assert "1%20failed%20re-queued" in done.headers["location"]
    assert store.delivery_counts(edition_id) == {"sent": 1}
    # A retry by hand, as `digest retry` records it: among the dashboard's last jobs.
    assert re.search(
        r"<tr><td>retry daily \(manual\)</td><td>[^<]+</td><td class=\"ok\">ok</td>",
        client.get("/admin/").text,
    )


def test_fetch_now_lifts_the_wait_of_one_source(site: Console, client: httpx.Client) -> None:
    store = site.app.store
    state = next(s for s in store.source_states().values() if s.name == "World Wire")
    store.update_source(state.id, next_attempt_at=utcnow() + timedelta(hours=3))
    page = client.get("/admin/sources")
    assert "waiting" in page.text
    done = client.post("/admin/sources/fetch", data={"csrf": csrf(page), "source": "World Wire"})
    assert done.status_code == 303 and "World%20Wire%3A%202%20items" in done.headers["location"]
    assert source(store, state.id).next_attempt_at is None  # type: ignore[union-attr]
    missing = client.post("/admin/sources/fetch", data={"csrf": csrf(page), "source": "Nope"})
    assert missing.status_code == 404


def test_the_transport_check_says_why_it_cannot_connect(
    write_config: Callable[..., Path], feed_server: FeedServer
) -> None:
    path = console_config(write_config, feed_server, free_port())  # nothing listens there
    with serving(path, gather=False) as site, site.client() as client:
        site.login(client)
        page = client.get("/admin/delivery")
        answer = client.post("/admin/delivery", data={"csrf": csrf(page)})
        assert answer.status_code == 502
        assert "cannot connect to the SMTP server" in answer.text and "Hint:" in answer.text


def test_an_import_with_an_unknown_column_is_refused_naming_it(
    site: Console, client: httpx.Client
) -> None:
    page = client.get("/admin/import")
    answer = client.post(
        "/admin/import",
        data={"csrf": csrf(page), "action": "preview"},
        files={"file": ("people.csv", b"email,Department\na@example.org,Sales\n", "text/csv")},
    )
    assert answer.status_code == 400
    assert "Line 1" in answer.text and "Department" in answer.text
    assert site.app.store.subscriber_by_email("a@example.org") is None


def test_the_api_check_wants_the_key_and_reaches_the_api_sending_nothing(
    write_config: Callable[..., Path],
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = console_config(write_config, feed_server, 25)
    api = feed_server.url("/postmark")
    feed_server.add("/postmark", "{}", headers={"Content-Type": "application/json"})
    text = path.read_text().replace('transport = "smtp"', 'transport = "postmark"')
    path.write_text(text + f'\n[delivery.postmark]\napi_key_env = "PM_KEY"\nbase_url = "{api}"\n')
    with serving(path, gather=False) as site, site.client() as client:
        site.login(client)
        page = client.get("/admin/delivery")
        unset = client.post("/admin/delivery", data={"csrf": csrf(page)})
        assert unset.status_code == 502 and "PM_KEY is not set" in unset.text
        monkeypatch.setenv("PM_KEY", "pm-test-key")
        feed_server.requests.clear()
        ok = client.post("/admin/delivery", data={"csrf": csrf(page)})
        assert ok.status_code == 200 and "answered (HTTP 200)" in ok.text
        assert [path for path, _ in feed_server.requests] == ["/postmark"]  # one GET, no mail


def test_a_search_takes_underscores_and_percents_as_they_are(site: Console) -> None:
    store = site.app.store
    store.add_subscriber("first_last@example.org")
    store.add_subscriber("firstxlast@example.org")
    store.add_subscriber("half@example.org", "50% off")
    store.add_subscriber("fifty@example.org", "50 cents off")
    assert [s.email for s in store.search_subscribers("first_l")] == ["first_last@example.org"]
    assert [s.email for s in store.search_subscribers("50%")] == ["half@example.org"]
    assert len(store.search_subscribers("FIRST")) == 2


def test_each_test_send_has_a_message_id_of_its_own(
    site: Console, client: httpx.Client, smtp_server: SmtpServer
) -> None:
    """An admin sends a test, changes a template, sends again: a mailbox that has seen a
    Message-ID hides the message that repeats it (Gmail does), so the second test would
    never show."""
    page = client.get("/admin/preview", params={"digest": "daily"})
    for _ in range(2):
        sent = client.post("/admin/preview/send", data={"digest": "daily", "csrf": csrf(page)})
        assert sent.status_code == 303, sent.text
    ids = [m.message()["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == 2 and ids[0] != ids[1], ids
