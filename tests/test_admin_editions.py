"""The console as an admin reads it the morning after: a bounce is counted on the edition
whose message bounced, not on every edition that reader ever had; and what cannot be undone
from the console is asked twice."""

from __future__ import annotations

from datetime import timedelta

from digest.app import run
from digest.jobs import hand_retry
from digest.pipeline import run_digest
from digest.store import Edition
from digest.web.admin.reports import edition_line
from tests.admin_site import Console
from tests.conftest import SmtpServer, csrf
from tests.store_queries import add_edition


def next_day(console: Console, first: Edition) -> int:
    """The same digest's next edition (the first one's content a day later), sent now to
    every active reader; its id."""
    same = first.model_dump(exclude={"id", "slot", "message_key"})  # a key of its own
    second = add_edition(console.app.store, first.slot + timedelta(days=1), **same)
    console.app.store.queue_deliveries(second)
    hand_retry(console.app, second)
    return second


def test_a_bounce_counts_on_the_edition_that_bounced_not_on_the_ones_before(
    console: Console, smtp_server: SmtpServer
) -> None:
    store = console.app.store
    store.add_subscriber("ann@example.org")
    bob, _ = store.add_subscriber("bob@example.org")
    first = run(run_digest(console.app)).edition
    assert first is not None and first.id is not None
    store.add_subscriber("bounce@example.org")  # joins after the first: refused at the send
    second = next_day(console, first)
    assert store.delivery_counts(first.id) == {"sent": 2}
    assert store.delivery_counts(second) == {"sent": 2, "failed": 1}
    assert bob.id is not None
    store.suppress_subscriber(bob.id)  # bob's bounce report arrives after the second
    lines = {e.id: edition_line(console.app, e).bounced for e in store.editions(limit=5)}
    # The first reached both (bob's address bounced a message later); the second bounced
    # at the send (bounce@) and after it (bob).
    assert lines == {first.id: 0, second: 2}
    with console.logged_in() as client:  # the figure's rule, said where it is shown
        page = client.get("/admin/").text
    assert "bounced: readers whose address bounced, or who reported the mail as spam" in page
    assert "counted on that edition alone, not on the ones they had before" in page


def test_unsubscribe_asks_first_and_changes_nothing_until_answered(console: Console) -> None:
    row, _ = console.app.store.add_subscriber("reader@example.org")
    url = f"/admin/subscribers/{row.id}"
    with console.logged_in() as client:
        asked = client.post(url, data={"action": "unsubscribe", "csrf": csrf(client.get(url))})
        assert asked.status_code == 200
        assert "Unsubscribe reader@example.org?" in asked.text
        assert 'name="confirm" value="yes"' in asked.text
        assert console.app.store.subscriber_by_email("reader@example.org").status == "active"  # type: ignore[union-attr]
        done = client.post(
            url, data={"action": "unsubscribe", "confirm": "yes", "csrf": csrf(asked)}
        )
        assert "reader@example.org is unsubscribed." in done.text
    assert console.app.store.subscriber_by_email("reader@example.org").status == "unsubscribed"  # type: ignore[union-attr]


def test_an_admin_adds_one_reader_with_each_problem_said_by_its_field(
    console: Console,
) -> None:
    store = console.app.store
    with console.logged_in() as client:
        form = client.get("/admin/subscribers/add")
        assert form.status_code == 200 and 'value="world"' in form.text  # the sources' topics
        bad = client.post(
            "/admin/subscribers/add",
            data={"csrf": csrf(form), "email": "ann@", "timezone": "Mars/Olympus"},
        )
        assert bad.status_code == 400 and "Nothing was added: 2 fields need a fix" in bad.text
        assert "unknown time zone &#39;Mars/Olympus&#39;" in bad.text
        assert 'value="Mars/Olympus"' in bad.text  # the form kept as typed
        region = client.post(  # zoneinfo reads 'Europe' as a folder: it was a 500
            "/admin/subscribers/add",
            data={"csrf": csrf(form), "email": "ann@example.org", "timezone": "Europe"},
        )
        assert region.status_code == 400
        assert "&#39;Europe&#39; is a region, not a zone" in region.text
        added = client.post(
            "/admin/subscribers/add",
            data={
                "csrf": csrf(form),
                "email": "Ann@Example.org",
                "name": "Ann",
                "topics": "world",
                "timezone": "Europe/Paris",
            },
            follow_redirects=True,
        )
        assert added.status_code == 200 and "ann@example.org is added (active)." in added.text
        ann = store.subscriber_by_email("ann@example.org")
        assert ann is not None and (ann.topics, ann.timezone) == ("world", "Europe/Paris")
        assert "in the console" in added.text  # their history says who added them
        store.unsubscribe(email="ann@example.org")
        again = client.post(
            "/admin/subscribers/add", data={"csrf": csrf(form), "email": "ann@example.org"}
        )
        assert again.status_code == 400
        assert "ann@example.org is a subscriber already (unsubscribed)" in again.text
    assert store.subscriber_by_email("ann@example.org").status == "unsubscribed"  # type: ignore[union-attr]


def test_the_retry_button_counts_only_the_rows_a_retry_sends(
    console: Console, smtp_server: SmtpServer
) -> None:
    """A 5.1.1 at the send fails the row and suppresses its reader: a retry does not mail
    them, so the button must not promise it."""
    store = console.app.store
    store.add_subscriber("ann@example.org")
    store.add_subscriber("bounce@example.org")
    store.add_subscriber("later@example.org")  # 451: deferred
    edition = run(run_digest(console.app)).edition
    assert edition is not None
    assert store.delivery_counts(edition.id) == {"sent": 1, "failed": 1, "deferred": 1}  # type: ignore[arg-type]
    with console.logged_in() as client:
        page = client.get(f"/admin/editions/{edition.id}").text
    assert "Retry 1 failed, paused or deferred row and send" in page
    assert "Of its 2 failed, paused or deferred rows, 1 is not retried: its reader bounced" in page


def test_the_dashboard_counts_each_status_once_each_a_link_to_its_readers(
    console: Console,
) -> None:
    store = console.app.store
    store.add_subscriber("ann@example.org")
    bob, _ = store.add_subscriber("bob@example.org")
    store.set_subscriber(bob.id, status="paused")  # type: ignore[arg-type]
    with console.logged_in() as client:
        page = client.get("/admin/").text
    assert page.count("1 active") == 1  # the card's figure, not repeated under it
    assert '<a href="/admin/subscribers?status=active">1 active</a>' in page
    assert '<a href="/admin/subscribers?status=paused">1 paused</a>' in page
