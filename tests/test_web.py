"""The web app, in-process through httpx's ASGI transport, mailing through a real SMTP server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from digest.app import App
from digest.links import make_token
from tests.conftest import SECRET, FeedServer, SmtpServer, csrf, rss, run_cli
from tests.reader_web import (
    Client,
    later,
    mailed_confirm_path,
    sign_up,
    signed_link,
)

pytestmark = pytest.mark.asyncio


async def _csrf(client: httpx.AsyncClient, path: str = "/") -> str:
    return csrf(await client.get(path))


def _tampered(token: str) -> str:
    """The token with one character of its signature changed (never a no-op: not the last
    character, whose low bits base64 does not use, and never to the same character)."""
    i = len(token) - 5
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


def _status(app: App, email: str) -> str | None:
    found = app.store.subscriber_by_email(email)
    return found.status if found else None


async def test_double_opt_in_then_preferences_then_one_click(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    response = await sign_up(c, email="Ana@Example.org", name="Ana", topics=["world", "sport"])
    assert response.status_code == 200 and "Check your inbox" in response.text
    assert _status(app, "ana@example.org") == "pending"
    assert len(smtp_server.messages) == 1
    link = mailed_confirm_path(smtp_server, "ana@example.org")

    for fetch in (c.head, c.get):  # a mail scanner fetching the link confirms nothing
        assert (await fetch(link)).status_code == 200
    assert _status(app, "ana@example.org") == "pending"
    assert '<form method="post">' in (await c.get(link)).text
    confirmed = await c.post(link)
    assert "You are subscribed" in confirmed.text
    assert _status(app, "ana@example.org") == "active"
    subscriber = app.store.subscriber_by_email("ana@example.org")
    assert subscriber is not None and subscriber.topics == "world"  # 'sport' is not offered

    prefs = signed_link("preferences", subscriber)
    saved = await c.post(
        prefs,
        data={
            "topics": ["science"],
            "timezone": "Europe/Paris",
            "locale": "fr",
            "paused": "yes",
            "csrf": await _csrf(c, prefs),
        },
    )
    # The page answers in the language just chosen, not the one the form was in.
    assert saved.status_code == 200 and "Enregistré." in saved.text and 'lang="fr"' in saved.text
    subscriber = app.store.subscriber_by_email("ana@example.org")
    assert subscriber is not None
    assert (subscriber.topics, subscriber.timezone, subscriber.locale, subscriber.status) == (
        "science",
        "Europe/Paris",
        "fr",
        "paused",
    )

    leave = signed_link("unsubscribe", subscriber)
    page = await c.get(leave)
    assert '<form method="post">' in page.text and _status(app, "ana@example.org") == "paused"
    one_click = await c.post(
        leave,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert one_click.status_code == 200 and "set-cookie" not in one_click.headers
    assert _status(app, "ana@example.org") == "unsubscribed"


async def test_forged_swapped_and_expired_tokens_fail(
    reader_client: Client, reader_config: Path
) -> None:
    c, app = reader_client
    assert run_cli("--config", str(reader_config), "subscribers", "add", "bob@example.org")[0] == 0
    bob = app.store.subscriber_by_email("bob@example.org")
    assert bob is not None
    good = make_token(SECRET, "unsubscribe", bob.public_id)
    for path in (
        f"/unsubscribe/{_tampered(good)}",
        f"/unsubscribe/{make_token(SECRET, 'preferences', bob.public_id)}",
        f"/unsubscribe/{make_token('another-secret-0123456789', 'unsubscribe', bob.public_id)}",
        f"/preferences/{good}",
    ):
        response = await c.post(path, content=b"List-Unsubscribe=One-Click")
        assert response.status_code == 404, path
    assert (await c.get("/confirm/not-a-token")).status_code == 404
    from itsdangerous import URLSafeTimedSerializer

    old = URLSafeTimedSerializer(SECRET, salt="digest.confirm").dumps(bob.public_id)
    from digest.links import read_confirm_token

    assert read_confirm_token(SECRET, old, max_age=-1) is None  # expired
    assert _status(app, "bob@example.org") == "active"


async def test_the_answer_is_the_same_for_known_and_unknown_addresses(
    reader_client: Client, reader_config: Path, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    assert (
        run_cli("--config", str(reader_config), "subscribers", "add", "known@example.org")[0] == 0
    )
    known = await sign_up(c, email="known@example.org")
    unknown = await sign_up(c, email="new@example.org")
    assert known.status_code == unknown.status_code == 200
    # Each page names the address typed into it, and otherwise they are the same.
    assert known.text.replace("known@", "new@") == unknown.text
    # A stranger re-subscribing a confirmed address leaves it confirmed, and mails nothing.
    assert _status(app, "known@example.org") == "active"
    assert [m.recipients for m in smtp_server.messages] == [["new@example.org"]]


async def test_a_name_with_a_line_break_is_refused_at_sign_up(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    response = await sign_up(c, email="bob@example.org", name="Bob\r\nBcc: x@evil.test")

    assert response.status_code == 400
    assert "Please write your name on one line" in response.text
    assert 'value="bob@example.org"' in response.text  # the form comes back filled in
    assert _status(app, "bob@example.org") is None
    assert smtp_server.messages == []


async def test_a_form_is_good_for_a_day_on_the_apps_clock(
    reader_client: Client,
) -> None:
    """A CSRF field is dated by the app's clock: the sign-up form sent a day after it was
    given still works, a form older than that has expired."""
    c, app = reader_client
    fresh = await _csrf(c)
    later(app, 23 * 3600)
    sent = await c.post("/subscribe", data={"email": "day@example.org", "csrf": fresh})
    assert sent.status_code == 200 and _status(app, "day@example.org") == "pending"
    old = await _csrf(c)
    later(app, 25 * 3600)
    late = await c.post("/subscribe", data={"email": "late@example.org", "csrf": old})
    assert late.status_code == 400 and "The form expired" in late.text
    assert _status(app, "late@example.org") is None


async def test_csrf_rate_limits_escaping_and_headers(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    no_csrf = await c.post("/subscribe", data={"email": "x@example.org"})
    assert no_csrf.status_code == 400 and _status(app, "x@example.org") is None
    xss = '"><script>alert(1)</script>'
    bad = await sign_up(c, email=xss, name=xss)
    assert bad.status_code == 400 and "<script>alert(1)" not in bad.text
    assert "&lt;script&gt;" in bad.text
    for _ in range(3):
        await sign_up(c, email="flood@example.org")
    limited = await sign_up(c, email="flood@example.org")
    assert limited.status_code == 429
    assert len([m for m in smtp_server.messages if m.recipients == ["flood@example.org"]]) == 3
    later(app, 3600 - 1)  # the window is the app's clock's hour
    assert (await sign_up(c, email="flood@example.org")).status_code == 429
    later(app, 1)
    assert (await sign_up(c, email="flood@example.org")).status_code == 200
    home = await c.get("/")
    assert "default-src 'none'" in home.headers["content-security-policy"]
    assert home.headers["x-frame-options"] == "DENY"
    assert home.headers["strict-transport-security"] == "max-age=31536000"  # came over https
    plain = await c.get("http://digest.test/archive")
    assert "strict-transport-security" not in plain.headers  # a browser ignores it on http
    # One cookie, the sign-up form's nonce: no script reads it, no other site sends it.
    cookie = home.headers["set-cookie"].lower()
    assert cookie.startswith("digest_form=") and "httponly" in cookie
    assert "samesite=strict" in cookie and "secure" in cookie and "path=/" in cookie
    assert "set-cookie" not in (await c.get("/archive")).headers


async def _one_edition_sent(c: httpx.AsyncClient, config: Path) -> str:
    """One reader, one edition sent: the path of its web view, as the archive links to it."""
    assert run_cli("--config", str(config), "subscribers", "add", "ann@example.org")[0] == 0
    sent = await asyncio.to_thread(run_cli, "--config", str(config), "send", "--gather")
    assert sent[0] == 0, sent[2]
    archive = await c.get("/archive")
    link = re.search(r'href="https://digest\.test(/editions/daily/\d{8}T\d{4}Z)"', archive.text)
    assert link, archive.text
    return link.group(1)


async def test_archive_web_view_feed_and_health(reader_client: Client, reader_config: Path) -> None:
    c, _ = reader_client
    path = await _one_edition_sent(c, reader_config)
    view = await c.get(path)
    assert view.status_code == 200 and "Harbour strike ends" in view.text
    assert "DIGESTx" not in view.text and "/unsubscribe/" not in view.text
    feed = await c.get("/feed.atom")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    atom = ElementTree.fromstring(feed.content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert atom.findtext("a:author/a:name", namespaces=ns)  # RFC 4287 4.1.1
    [entry] = atom.findall("a:entry", ns)
    assert (entry.findtext("a:title", namespaces=ns) or "").startswith("Daily Test")
    # The feed changed when its newest edition did, not at each request.
    assert atom.findtext("a:updated", namespaces=ns) == entry.findtext("a:updated", namespaces=ns)
    assert (await c.get("/healthz")).json() == {"status": "ok"}
    assert (await c.get("/editions/daily/nonsense")).status_code == 404


async def test_a_head_request_or_a_get_never_unsubscribes(
    reader_client: Client,
) -> None:
    c, app = reader_client
    app.store.add_subscriber("ana@example.org")
    ana = app.store.subscriber_by_email("ana@example.org")
    assert ana is not None
    leave = signed_link("unsubscribe", ana)
    assert (await c.head(leave)).status_code == 200  # a link scanner checking the URL
    assert (await c.get(leave)).status_code == 200
    assert _status(app, "ana@example.org") == "active"


async def _confirm_link(
    c: httpx.AsyncClient, smtp_server: SmtpServer, email: str, topics: tuple[str, ...] = ("world",)
) -> str:
    """Sign ``email`` up through the form and return the path of the link it was mailed."""
    await sign_up(c, email=email, topics=list(topics))
    return mailed_confirm_path(smtp_server, email)


async def test_an_old_confirmation_link_never_undoes_leaving_or_a_pause(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    emails = ("bo@example.org", "cy@example.org", "di@example.org")
    links = {e: await _confirm_link(c, smtp_server, e) for e in emails}
    for email in emails:
        assert "You are subscribed" in (await c.post(links[email])).text
    ids: dict[str, int] = {}
    for email in emails:
        row = app.store.subscriber_by_email(email)
        assert row is not None and row.id is not None
        ids[email] = row.id
    app.store.suppress_subscriber(ids["bo@example.org"], "complained")  # a spam report
    app.store.set_subscriber(ids["cy@example.org"], status="paused")
    assert app.store.unsubscribe(email="di@example.org")

    for email in emails:  # the same links, opened and their button pressed again
        await c.post(links[email])
    assert [_status(app, e) for e in emails] == ["complained", "paused", "unsubscribed"]
    assert "This link has been used up" in (await c.post(links["di@example.org"])).text
    assert "paused" in (await c.post(links["cy@example.org"])).text


async def test_the_confirm_page_names_the_address_escaped(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """A reader with several addresses sees which one the button subscribes, before and
    after pressing it; the address is text on the page, never markup."""
    c, app = reader_client
    email = "o'brien&co@example.org"  # both are allowed in an address and special in HTML
    shown = "o&#39;brien&amp;co@example.org"
    link = await _confirm_link(c, smtp_server, email)

    page = await c.get(link)
    assert page.status_code == 200
    assert f"at <strong>{shown}</strong>?" in page.text
    confirmed = await c.post(link)
    assert "You are subscribed" in confirmed.text and f"will reach {shown} from" in confirmed.text
    assert email not in page.text + confirmed.text  # only ever escaped

    subscriber = app.store.subscriber_by_email(email)
    assert subscriber is not None and subscriber.id is not None
    app.store.set_subscriber(subscriber.id, status="paused")
    assert f"is paused for {shown};" in (await c.post(link)).text


async def test_signing_up_again_comes_back_with_the_topics_chosen_this_time(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    await c.post(await _confirm_link(c, smtp_server, "di@example.org"))
    assert app.store.unsubscribe(email="di@example.org")
    # Subscribed to world, left; now signs up again choosing science, and confirms.
    later(app, 1.1)  # links are dated to the second: this one is after leaving
    again = await _confirm_link(c, smtp_server, "di@example.org", ("science",))
    assert "You are subscribed" in (await c.post(again)).text
    di = app.store.subscriber_by_email("di@example.org")
    assert di is not None and (di.status, di.topics) == ("active", "science")


async def test_a_csrf_field_with_a_non_ascii_digit_is_refused_not_a_crash(
    reader_client: Client,
) -> None:
    c, app = reader_client
    refused = await c.post("/subscribe", data={"email": "x@example.org", "csrf": "\u00b2.abc"})
    assert refused.status_code == 400 and _status(app, "x@example.org") is None


async def test_a_headline_xml_cannot_hold_keeps_the_atom_feed_readable(
    reader_client: Client, reader_config: Path, feed_server: FeedServer
) -> None:
    c, _ = reader_client
    feed_server.add(
        "/f.xml",
        rss(
            [{"title": "Harbour &#xFFFE; strike ends", "guid": "1", "link": "https://wire.test/1"}]
        ),
    )
    assert run_cli("--config", str(reader_config), "subscribers", "add", "ann@example.org")[0] == 0
    sent = await asyncio.to_thread(run_cli, "--config", str(reader_config), "send", "--gather")
    assert sent[0] == 0, sent[2]
    feed = await c.get("/feed.atom")
    ElementTree.fromstring(feed.content)  # well-formed: U+FFFE is not an XML character
    assert "Harbour" in feed.text


# --- the preferences page of someone nothing is sent to --------------------------------------
# It says so, offers the way back that exists (a confirmation link, as signing up again
# sends), and never answers "Saved." while they stay unsubscribed.


async def _subscribed(c: httpx.AsyncClient, smtp_server: SmtpServer, app: App, email: str) -> str:
    """Sign ``email`` up and confirm; the path of their preferences page."""
    assert "You are subscribed" in (await c.post(await _confirm_link(c, smtp_server, email))).text
    row = app.store.subscriber_by_email(email)
    assert row is not None and row.id is not None
    app.store.set_subscriber(row.id, topics="science")
    return signed_link("preferences", row)


async def test_after_unsubscribing_the_page_says_so_and_the_way_back_works(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    prefs = await _subscribed(c, smtp_server, app, "ana@example.org")
    csrf = await _csrf(c, prefs)
    assert app.store.unsubscribe(email="ana@example.org")

    page = await c.get(prefs)
    assert page.status_code == 200
    assert "You are unsubscribed" in page.text and "Save</button>" not in page.text

    # A preferences form still open in another tab: refused, not "Saved.".
    stale = await c.post(prefs, data={"topics": ["world"], "csrf": csrf})
    assert stale.status_code == 400 and "Nothing was saved" in stale.text
    assert "Saved." not in stale.text
    row = app.store.subscriber_by_email("ana@example.org")
    assert row is not None and (row.status, row.topics) == ("unsubscribed", "science")

    sent = len(smtp_server.messages)
    later(app, 1.1)  # links are dated to the second: this one is after leaving
    back = await c.post(prefs, data={"action": "resubscribe", "csrf": csrf})
    assert "Check your inbox" in back.text
    assert _status(app, "ana@example.org") == "unsubscribed"  # not until they confirm
    assert len(smtp_server.messages) == sent + 1
    link = mailed_confirm_path(smtp_server, "ana@example.org")
    assert "You are subscribed" in (await c.post(link)).text
    row = app.store.subscriber_by_email("ana@example.org")
    assert row is not None and (row.status, row.topics) == ("active", "science")


async def test_a_spam_report_is_not_undone_by_a_click(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    prefs = await _subscribed(c, smtp_server, app, "bo@example.org")
    row = app.store.subscriber_by_email("bo@example.org")
    assert row is not None and row.id is not None
    app.store.suppress_subscriber(row.id, "complained")
    sent = len(smtp_server.messages)

    page = await c.get(prefs)
    assert "reported as spam" in page.text and "<button" not in page.text
    assert "write to news@example.com" in page.text
    tried = await c.post(prefs, data={"action": "resubscribe", "csrf": await _csrf(c, "/")})
    assert tried.status_code == 400
    assert len(smtp_server.messages) == sent
    assert _status(app, "bo@example.org") == "complained"


async def test_a_paused_subscriber_is_told_how_to_resume(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    prefs = await _subscribed(c, smtp_server, app, "cy@example.org")
    paused = await c.post(prefs, data={"paused": "yes", "csrf": await _csrf(c, prefs)})
    assert "Saved." in paused.text and "Your subscription is paused" in paused.text
    assert "untick Pause" in (await c.get(prefs)).text


# --- the preferences form (issue 20, point 6) ------------------------------------------------


async def test_a_wrong_zone_keeps_every_other_choice_and_names_the_zone_meant(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    prefs = await _subscribed(c, smtp_server, app, "ana@example.org")  # topics: science
    refused = await c.post(
        prefs,
        data={
            "topics": ["world"],
            "timezone": "Karachii",
            "locale": "fr",
            "paused": "yes",
            "csrf": await _csrf(c, prefs),
        },
    )
    assert refused.status_code == 400
    assert "Nothing was saved: unknown time zone &#39;Karachii&#39;; did you mean" in refused.text
    assert "Saved." not in refused.text
    # What was entered comes back, to fix the one field: not what is stored
    assert re.search(r'value="world" checked', refused.text)
    assert not re.search(r'value="science" checked', refused.text)
    assert 'value="Karachii"' in refused.text
    assert '<option value="fr" selected>' in refused.text
    assert re.search(r'name="paused" value="yes" checked', refused.text)
    row = app.store.subscriber_by_email("ana@example.org")
    assert row is not None and (row.topics, row.timezone, row.status) == ("science", None, "active")


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("Europe", "unknown time zone &#39;Europe&#39;; that is a region: name a place in it"),
        ("a" * 300, "unknown time zone &#39;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…&#39;"),
    ],
)
async def test_a_region_or_an_overlong_zone_is_refused_not_a_500(
    reader_client: Client, smtp_server: SmtpServer, typed: str, said: str
) -> None:
    """zoneinfo reads a zone from a file named by the value: a region's folder ('Europe')
    or a name too long for a file raised OSError, which gave the reader a 500."""
    c, app = reader_client
    prefs = await _subscribed(c, smtp_server, app, "ana@example.org")
    refused = await c.post(prefs, data={"timezone": typed, "csrf": await _csrf(c, prefs)})
    assert refused.status_code == 400
    assert "Nothing was saved: " + said in refused.text
    row = app.store.subscriber_by_email("ana@example.org")
    assert row is not None and row.timezone is None


async def test_the_form_names_its_address_offers_the_zones_and_says_saved_plainly(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    prefs = await _subscribed(c, smtp_server, app, "ana@example.org")
    page = await c.get(prefs)
    assert "For ana@example.org" in page.text
    # a searchable list of zones, no placeholder that looks like a value already chosen
    assert 'list="zones"' in page.text and '<option value="Asia/Karachi">' in page.text
    assert "placeholder" not in page.text
    assert "newsletter's time zone (UTC)" in page.text
    # the browser's zone fills an empty field: a script the page's policy allows by hash
    script = re.search(r"<script>(.*?)</script>", page.text, re.S)
    assert script and "resolvedOptions().timeZone" in script.group(1)
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    policy = page.headers["content-security-policy"]
    assert f"script-src 'sha256-{digest}'" in policy and "default-src 'none'" in policy
    assert "script-src" not in (await c.get("/")).headers["content-security-policy"]

    saved = await c.post(prefs, data={"timezone": "Asia/Karachi", "csrf": await _csrf(c, prefs)})
    assert saved.status_code == 200
    assert '<p class="saved" role="status"><strong>Saved.</strong>' in saved.text
    assert 'value="Asia/Karachi"' in saved.text


async def test_after_a_one_click_unsubscribe_the_link_no_longer_asks(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    await _subscribed(c, smtp_server, app, "ana@example.org")
    row = app.store.subscriber_by_email("ana@example.org")
    assert row is not None
    leave = signed_link("unsubscribe", row)
    asked = await c.get(leave)
    assert "Stop receiving Test Desk at ana@example.org?" in asked.text
    await c.post(
        leave,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    page = await c.get(leave)
    assert page.status_code == 200
    assert "Stop receiving" not in page.text and "<form" not in page.text
    assert "You are unsubscribed" in page.text and "ana@example.org" in page.text


async def test_archive_entries_of_one_day_are_told_apart_by_their_time(
    reader_client: Client,
) -> None:
    """Issue 20, point 7: two editions of one day looked the same in the archive."""

    from digest.store import Edition

    c, app = reader_client
    for hour in (7, 18):
        slot = datetime(2026, 12, 1, hour, 0, tzinfo=UTC)
        with app.store.session() as s:
            subject = "Daily Test, Tue 1 Dec"
            s.add(Edition(digest_id="daily", slot=slot, created_at=slot, subject=subject,
                          html="<p>x</p>", text="x", story_count=1))  # fmt: skip
            s.commit()
    archive = (await c.get("/archive")).text
    assert (
        '<time class="note" datetime="2026-12-01T07:00:00+00:00">'
        "Tuesday, December 1, 2026, 07:00 UTC</time>" in archive
    )
    assert (
        '<time class="note" datetime="2026-12-01T18:00:00+00:00">'
        "Tuesday, December 1, 2026, 18:00 UTC</time>" in archive
    )


async def test_the_web_view_has_no_personal_footer_greeting_or_link_to_itself(
    reader_client: Client, reader_config: Path
) -> None:
    """Whoever reads the web view is not one recipient: no greeting, no Preferences or
    Unsubscribe link (those landed on the sign-up page), no "View in browser" to itself."""
    c, _ = reader_client
    path = await _one_edition_sent(c, reader_config)
    view = await c.get(path)
    page = view.text
    assert view.status_code == 200 and "Harbour strike ends" in page
    assert "/unsubscribe" not in page and "/preferences" not in page
    anchors = re.findall(r"<a\b[^>]*>(.*?)</a>", page, re.S)
    assert not [a for a in anchors if a.strip() in ("Unsubscribe", "Preferences")], anchors
    assert "View in browser" not in page and path + '"' not in page
    assert "Hello" not in page
    footer = "To change your settings or unsubscribe, use the links in the email you received."
    assert footer in page
    assert "Forwarded this?" in page  # the sign-up link is right on the web
    csp = view.headers["content-security-policy"]
    img_src = next(d for d in csp.split(";") if d.strip().startswith("img-src")).split()
    assert "http:" in img_src and "https:" in img_src and "data:" in img_src


_TOPICS = (
    "Harbour strike ends after talks",
    "Volcano erupts near coastal village",
    "Parliament passes budget reform",
    "Astronomers spot distant comet",
    "Rail line reopens after floods",
    "Chess champion retires undefeated",
    "Vaccine trial reports early results",
    "Drought hits wheat harvest",
    "Museum returns looted bronzes",
    "Startup unveils quantum chip",
)


async def test_the_web_view_of_a_trimmed_edition_shows_every_story(
    reader_client: Client,
    reader_config: Path,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An email too big for Gmail's clip drops its last stories and links to the web view
    for them: there, with no size limit, the whole edition is shown."""
    c, app = reader_client
    items = [
        {"title": title, "guid": str(i), "link": f"https://wire.test/{i}", "desc": title}
        for i, title in enumerate(_TOPICS)
    ]
    feed_server.add("/f.xml", rss(items))
    monkeypatch.setattr("digest.render.fit.HTML_LIMIT", 9_000)  # a few stories fit, not all
    # The trim is logged once an edition per process: this one's leaves later tests' alone.
    monkeypatch.setattr("digest.editions.segments._TRIMS_LOGGED", OrderedDict())
    path = await _one_edition_sent(c, reader_config)
    [edition] = app.store.editions(1)
    mailed = edition.html.count('class="story"')
    assert edition.story_count == len(_TOPICS) > mailed > 0  # the email was trimmed
    assert "Read the whole edition on the web" in edition.html
    view = await c.get(path)
    assert view.status_code == 200
    assert view.text.count('class="story"') == len(_TOPICS)
    assert [t for t in _TOPICS if t not in view.text] == []
    assert "did not fit" not in view.text and "Read the whole edition" not in view.text
    assert "/unsubscribe" not in view.text and "Hello" not in view.text
    footer = "To change your settings or unsubscribe, use the links in the email you received."
    assert footer in view.text


async def test_an_address_with_letters_we_cannot_send_to_says_so(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """ "josé@" is an address, just not one plain SMTP can carry: the reader is told that,
    not sent looking for a typo; an internationalised domain is fine (sent as punycode)."""
    c, app = reader_client
    refused = await sign_up(c, email="josé@exemplo.br")
    assert refused.status_code == 400
    assert "We cannot send to an address with é before the @" in refused.text
    assert "does not look like" not in refused.text
    assert (await sign_up(c, email="not an address")).status_code == 400
    assert (await sign_up(c, email="ana@bücher.example")).status_code == 200
    assert _status(app, "ana@xn--bcher-kva.example") == "pending"
    assert [m.recipients for m in smtp_server.messages] == [["ana@xn--bcher-kva.example"]]


async def test_an_address_with_a_line_break_mails_nobody(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """An address carrying CR LF and a header of its own (raw or percent-encoded) is no
    address: nothing is stored and no confirmation leaves, to it or to the header's."""
    c, app = reader_client
    for email in (
        "ann@example.org\r\nBcc: victim@evil.test",
        "ann@example.org\nBcc: victim@evil.test",
        "ann@example.org%0d%0aBcc:victim@evil.test",
    ):
        answer = await sign_up(c, email=email)
        assert answer.status_code == 400, email
    assert app.store.subscribers() == []
    assert smtp_server.messages == []
