"""A person's page in the console shows their status history: each change with when, from,
to and what made it, newest first, written by the store methods that change a status."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from digest.app import run
from digest.pipeline import run_digest
from tests.admin_site import ADMIN, Console, console_config, serving
from tests.conftest import FeedServer, SmtpServer, csrf, run_cli


def _history(page: str) -> list[tuple[str, str, str]]:
    """The history table's rows as (from, to, by), in the page's order."""
    table = page.split("<h2>Status history</h2>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(
        r"<tr><td>[^<]*</td><td>([^<]*)</td><td><span class=\"status\">([^<]*)</span></td>"
        r"<td>([^<]*)</td></tr>",
        table,
    )
    return [(a, b, c.replace("&#39;", "'")) for a, b, c in rows]


def test_a_persons_page_shows_sign_up_confirm_pause_resume_and_bounce_newest_first(
    write_config: Callable[..., Path],
    feed_server: FeedServer,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = console_config(write_config, feed_server, smtp_server.port)
    with serving(path) as site, site.client() as reader, site.client() as admin:
        sign_up = reader.get("/")
        form = {"email": "ana@example.org", "topics": ["world"], "csrf": csrf(sign_up)}
        assert reader.post("/subscribe", data=form).status_code == 200
        body = smtp_server.messages[-1].message().get_content()
        link = re.search(r"https://digest\.test(/confirm/\S+)", body)
        assert link
        assert reader.post(link.group(1)).status_code == 200

        person = site.app.store.subscriber_by_email("ana@example.org")
        assert person is not None and person.status == "active"
        site.login(admin)
        url = f"/admin/subscribers/{person.id}"
        for action in ("pause", "resume"):
            page = admin.get(url)
            done = admin.post(url, data={"csrf": csrf(page), "action": action})
            assert done.status_code == 200, done.text

        handler = smtp_server.handler
        refuse = handler.handle_RCPT

        async def refusing_ana(*args: Any) -> str:
            if args[3] == "ana@example.org":
                return "550 5.1.1 <ana@example.org>: User unknown"
            return str(await refuse(*args))

        monkeypatch.setattr(handler, "handle_RCPT", refusing_ana)
        run(run_digest(site.app))

        assert _history(admin.get(url).text) == [
            ("active", "bounced", "a bounce (the server refused the address)"),
            ("paused", "active", f"admin {ADMIN} in the console"),
            ("active", "paused", f"admin {ADMIN} in the console"),
            ("pending", "active", "the confirmation link"),
            ("(new)", "pending", "the sign-up form"),
        ]


def test_every_status_change_of_the_store_is_recorded_once(site_app: Console) -> None:
    store = site_app.app.store
    row, _ = store.add_subscriber("bo@example.org")
    assert row.id is not None
    store.set_subscriber(row.id, topics="world")  # no status change: no line
    store.unsubscribe(email="bo@example.org", by="an admin (`digest subscribers remove`)")
    store.unsubscribe(email="bo@example.org")  # already left: nothing changes
    store.suppress_subscriber(row.id, "complained")  # one who left stays as they left
    assert [(e.from_status, e.to_status, e.by) for e in store.subscriber_history(row.id)] == [
        ("active", "unsubscribed", "an admin (`digest subscribers remove`)"),
        (None, "active", "an admin (`digest subscribers add`)"),
    ]


def test_an_import_gives_each_new_row_its_first_line(site_app: Console) -> None:
    from digest.subscribers import import_subscribers, parse_csv

    store = site_app.app.store
    store.add_subscriber("old@example.org")
    good, problems = parse_csv("email,status\nnew@example.org,paused\nold@example.org,active\n", [])
    assert not problems
    added, already, _ = import_subscribers(store, good, by="an import of people.csv")
    assert (added, already) == (1, 1)
    new = store.subscriber_by_email("new@example.org")
    assert new is not None and new.id is not None
    assert [(e.from_status, e.to_status, e.by) for e in store.subscriber_history(new.id)] == [
        (None, "paused", "an import of people.csv"),
    ]
    old = store.subscriber_by_email("old@example.org")
    assert old is not None and old.id is not None
    assert len(store.subscriber_history(old.id)) == 1  # the import left them as they were


@pytest.fixture
def site_app(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> Any:
    with serving(console_config(write_config, feed_server, smtp_server.port), gather=False) as s:
        yield s


def test_the_console_and_subscribers_show_tell_the_same_way_back(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """Only a reader who left can undo it: their page in the console, the console's refusal
    to bring them back and `digest subscribers show` say how in the same words."""
    path = console_config(write_config, feed_server, smtp_server.port)
    with serving(path, gather=False) as site, site.logged_in() as admin:
        row, _ = site.app.store.add_subscriber("bo@example.org")
        site.app.store.unsubscribe(email="bo@example.org")
        url = f"/admin/subscribers/{row.id}"
        page = admin.get(url)
        refused = admin.post(url, data={"csrf": csrf(page), "action": "resume"})
    code, out, _ = run_cli("--config", str(path), "subscribers", "show", "bo@example.org")

    way_back = (
        "Only they can come back, by signing up again (or, at their request, "
        "`digest subscribers add bo@example.org`)."
    )
    assert refused.status_code == 400
    assert f"bo@example.org left. {way_back}" in html.unescape(page.text)
    assert f"bo@example.org is unsubscribed. {way_back}" in html.unescape(refused.text)
    assert code == 0
    assert f"next: nothing is sent to them: they are unsubscribed. {way_back}\n" in out


def test_how_a_reader_who_left_comes_back_depends_on_how_they_left() -> None:
    """One who reported the mail as spam is mailed no confirmation when they sign up again
    (digest.web.signup), so their way back is the admin's add alone; the others sign up."""
    from digest.states import SubscriberStatus
    from digest.subscribers.record import come_back

    email = "bo@example.org"
    complained = come_back(email, SubscriberStatus.COMPLAINED)
    assert "only `digest subscribers add bo@example.org`, at their own request" in complained
    assert "no confirmation" in complained
    for status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
        way_back = come_back(email, status)
        assert "up again" in way_back and "`digest subscribers add bo@example.org`" in way_back
