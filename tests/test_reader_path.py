"""What a subscriber trips over on the way in and out: an address mistyped on the form,
a confirmation link opened after it expired, a form refused for one field, an unsubscribe
by mistake. In-process through httpx's ASGI transport, mailing through a real SMTP server.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from digest.clock import ManualClock
from tests.conftest import SECRET, FeedServer, SmtpServer, csrf, rss
from tests.reader_web import (
    Client,
    confirmed,
    later,
    mailed_confirm_path,
    sign_up,
    signed_link,
    web_client,
)

pytestmark = pytest.mark.asyncio


async def test_the_check_your_inbox_page_names_the_address_typed_and_the_way_to_fix_it(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """A typo in the address ('gmial.com') is the commonest reason a confirmation never
    comes: the page says where it went, so the reader can see it and sign up again."""
    c, _ = reader_client
    sent = await sign_up(c, email="Ana@Gmial.com", name="Ana")
    assert sent.status_code == 200
    assert "Check your inbox" in sent.text
    assert "<strong>ana@gmial.com</strong>" in sent.text
    assert 'Not your address, or mistyped? <a href="/">Sign up with the right' in sent.text
    # Escaped like everything typed into a form.
    odd = await sign_up(c, email='"<b>x</b>"@example.org')
    assert "<b>x</b>" not in odd.text


async def test_an_expired_confirmation_link_offers_a_new_one_to_the_same_address(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """A reader who opens the confirmation mail on the third day found "This link is not
    valid ... copy the whole link" (it was whole) and a blank form. The link is genuine, so
    it says it expired and mails a fresh one, with the topics chosen, to the same address."""
    c, app = reader_client
    await sign_up(c, email="late@example.org", topics=["science"])
    old = mailed_confirm_path(smtp_server, "late@example.org")
    later(app, 2 * 86400 + 1)

    page = await c.get(old)
    assert page.status_code == 200 and "expired" in page.text
    assert "<strong>late@example.org</strong>" in page.text and '<form method="post">' in page.text
    assert len(smtp_server.messages) == 1  # opening the page (a scanner, say) mails nothing
    assert app.store.subscriber_by_email("late@example.org").status == "pending"  # type: ignore[union-attr]

    again = await c.post(old, data={"action": "resend"})
    assert again.status_code == 200 and "Check your inbox" in again.text
    fresh = mailed_confirm_path(smtp_server, "late@example.org")
    assert fresh != old
    assert "You are subscribed" in (await c.post(fresh)).text
    row = app.store.subscriber_by_email("late@example.org")
    assert row is not None and (row.status, row.topics) == ("active", "science")

    # Once subscribed, the old link says so, and mails nothing more.
    sent = len(smtp_server.messages)
    done = await c.post(old, data={"action": "resend"})
    assert "already subscribed" in done.text and len(smtp_server.messages) == sent
    # A link that is not ours is still refused, expired or not.
    i = len(old) - 5
    forged = old[:i] + ("A" if old[i] != "A" else "B") + old[i + 1 :]
    assert (await c.get(forged)).status_code == 404
    assert (await c.post(forged, data={"action": "resend"})).status_code == 404


async def test_a_new_link_for_an_expired_one_keeps_topics_no_source_has_any_more(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """An expired link may be weeks old, its topics chosen on a form that offered one since
    dropped from the config. The new link dropped it: a reader of that topic alone came back
    to every topic, unasked. It keeps the choice as it was, the withdrawn topic shown as the
    preferences page shows it; a choice of such topics alone is told so and asked to choose
    (kept, the reader would be sent nothing)."""
    c, app = reader_client
    from digest.links import make_confirm_token

    row = app.store.add_pending("old@example.org", "", ["sport", "science"])
    made = app.clock.now() - timedelta(days=20)
    old = f"/confirm/{make_confirm_token(SECRET, row.public_id, ['sport', 'science'], made)}"
    page = await c.get(old)
    assert "expired" in page.text and "Your topics are no longer offered" not in page.text
    assert re.search(r'value="sport" checked> Sport \(no longer offered\)', page.text)
    await c.post(old, data={"action": "resend"})
    assert (
        "You are subscribed"
        in (await c.post(mailed_confirm_path(smtp_server, "old@example.org"))).text
    )
    after = app.store.subscriber_by_email("old@example.org")
    assert after is not None and (after.status, after.topics) == ("active", "sport,science")

    alone = app.store.add_pending("sport@example.org", "", ["sport"])
    old = f"/confirm/{make_confirm_token(SECRET, alone.public_id, ['sport'], made)}"
    page = await c.get(old)
    assert "Your topics are no longer offered" in page.text
    mailed = len(smtp_server.messages)
    refused = await c.post(old, data={"action": "resend"})
    assert refused.status_code == 400 and "Choose a topic still offered" in refused.text
    assert len(smtp_server.messages) == mailed
    chosen = {"action": "resend", "choosing_topics": "yes", "topics": ["science"]}
    assert "Check your inbox" in (await c.post(old, data=chosen)).text
    assert (
        "You are subscribed"
        in (await c.post(mailed_confirm_path(smtp_server, "sport@example.org"))).text
    )
    after = app.store.subscriber_by_email("sport@example.org")
    assert after is not None and (after.status, after.topics) == ("active", "science")


async def test_new_links_for_an_expired_one_are_limited_as_sign_ups_are(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    await sign_up(c, email="flood@example.org")
    old = mailed_confirm_path(smtp_server, "flood@example.org")
    later(app, 2 * 86400 + 1)
    answers = [(await c.post(old, data={"action": "resend"})).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]  # the app's three an hour to one address
    assert len(smtp_server.messages) == 4


async def test_a_valid_link_opened_again_after_confirming_says_so(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """Opening the confirmation mail again asked "Start receiving ...?" as if nothing had
    happened; the reader is told they are subscribed, and where their settings are."""
    c, _ = reader_client
    await sign_up(c, email="twice@example.org")
    link = mailed_confirm_path(smtp_server, "twice@example.org")
    assert "You are subscribed" in (await c.post(link)).text
    again = await c.get(link)
    assert again.status_code == 200 and "already subscribed" in again.text
    assert "Yes, subscribe me" not in again.text and "/preferences/" in again.text
    assert "is sent to twice@example.org" in again.text


async def test_a_link_opened_again_by_a_reader_of_withdrawn_topics_alone_says_nothing_is_sent(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """Confirming says nothing is sent to a reader whose topics were all withdrawn; the
    mail opened again said "Test Desk is sent to you; nothing to confirm." all the same."""
    c, app = reader_client
    row = await confirmed(c, app, smtp_server, "left@example.org", topics=["science"])
    link = mailed_confirm_path(smtp_server, "left@example.org")
    assert row.id is not None
    app.store.set_subscriber(row.id, topics="sport")  # a topic since gone from the config
    again = await c.get(link)
    assert again.status_code == 200 and "already subscribed" in again.text
    assert "nothing is sent to you" in again.text and "is sent to left@" not in again.text
    assert "/preferences/" in again.text


async def test_a_refused_sign_up_keeps_the_topics_and_marks_the_field_at_fault(
    reader_client: Client,
) -> None:
    """A mistyped address came back with the topics ticked a moment ago all unticked; and
    a screen reader heard the error but not which field it was about."""
    c, _ = reader_client
    refused = await sign_up(c, email="ana.example.org", name="Ana", topics=["science"])
    assert refused.status_code == 400
    assert re.search(r'value="science" checked', refused.text)
    assert not re.search(r'value="world" checked', refused.text)
    error = re.search(r'<p class="error" role="alert" id="([\w-]+)">', refused.text)
    assert error, refused.text
    email = re.search(r"<input id=\"email\"[^>]*>", refused.text)
    assert email and 'aria-invalid="true"' in email.group(0)
    assert f'aria-describedby="{error.group(1)}"' in email.group(0)
    assert "autofocus" in email.group(0)
    name = re.search(r"<input id=\"name\"[^>]*>", refused.text)
    assert name and "aria-invalid" not in name.group(0)

    bad_name = await sign_up(c, email="ana@example.org", name="A\nB")
    name = re.search(r"<input id=\"name\"[^>]*>", bad_name.text)
    assert name and 'aria-invalid="true"' in name.group(0)
    email = re.search(r"<input id=\"email\"[^>]*>", bad_name.text)
    assert email and "aria-invalid" not in email.group(0)
    # A fresh form marks nothing.
    assert "aria-invalid" not in (await c.get("/")).text


async def test_a_refused_zone_on_the_preferences_page_is_marked_as_the_field_at_fault(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    row = await confirmed(c, app, smtp_server, "zed@example.org")
    prefs = signed_link("preferences", row)
    refused = await c.post(
        prefs, data={"timezone": "Mars/Olympus", "csrf": csrf(await c.get(prefs))}
    )
    assert refused.status_code == 400
    error = re.search(r'<p class="error" role="alert" id="([\w-]+)">', refused.text)
    zone = re.search(r'<input id="timezone"[^>]*>', refused.text)
    assert error and zone, refused.text
    assert 'aria-invalid="true"' in zone.group(0) and "autofocus" in zone.group(0)
    assert f'aria-describedby="timezone-help {error.group(1)}"' in zone.group(0)
    assert "aria-invalid" not in (await c.get(prefs)).text


async def test_after_unsubscribing_the_way_back_keeps_the_readers_choices(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """One click leaves, so one click by mistake is common. The page offered "Subscribe
    again": the blank sign-up form, the topics, zone and language to choose again. It names
    the address left and leads to the button that mails a link back with them kept."""
    c, app = reader_client
    row = await confirmed(c, app, smtp_server, "oops@example.org", topics=["science"])
    leave = signed_link("unsubscribe", row)
    prefs = signed_link("preferences", row)
    for answer in (await c.post(leave), await c.get(leave)):  # the button, then the link again
        assert "You are unsubscribed" in answer.text and "oops@example.org" in answer.text
        assert f'<a href="{prefs}">' in answer.text, answer.text
        assert '<a href="/">' not in answer.text.split("<main>")[1]
    back = await c.get(prefs)
    assert 'value="resubscribe"' in back.text and "Your topics and language are kept" in back.text


async def test_the_way_back_s_button_pressed_again_after_confirming_changes_nothing(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """The way back's page posts to the preferences page's address. Pressed again once its
    link was confirmed (Back to it, a second tab), the reader is subscribed, so the post was
    read as the preferences form: without its fields, it cleared the reader's zone and
    language (and would resume a pause) and answered "Saved."."""
    c, app = reader_client
    row = await confirmed(c, app, smtp_server, "twice@example.org", topics=["science"])
    prefs = signed_link("preferences", row)
    chosen = {"topics": ["science"], "timezone": "Asia/Karachi", "locale": "fr"}
    await c.post(prefs, data={**chosen, "csrf": csrf(await c.get(prefs))})
    await c.post(signed_link("unsubscribe", row))
    later(app, 2)  # a link made in the second of leaving counts as older
    back = await c.get(prefs)
    button = {"csrf": csrf(back), "action": "resubscribe", "choosing_topics": "yes"}
    button["topics"] = "science"
    mailed = len(smtp_server.messages)
    assert (await c.post(prefs, data=button)).status_code == 200  # the pages are French now
    assert len(smtp_server.messages) == mailed + 1
    assert (await c.post(mailed_confirm_path(smtp_server, "twice@example.org"))).status_code == 200
    again = await c.post(prefs, data=button)
    assert again.status_code == 200 and "Saved" not in again.text
    assert "Vous êtes déjà abonné" in again.text  # they are subscribed, said in their language
    after = app.store.subscriber_by_email("twice@example.org")
    assert after is not None
    assert (after.status, after.topics, after.timezone, after.locale) == (
        "active",
        "science",
        "Asia/Karachi",
        "fr",
    )


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("bounced", "Your mailbox works again? Receive it again"),
        ("complained", "How to receive it again"),
    ],
)
async def test_the_way_back_is_not_offered_as_a_mistake_to_who_did_not_click(
    reader_client: Client, smtp_server: SmtpServer, status: str, words: str
) -> None:
    """ "Unsubscribed by mistake?" is said to a reader who clicked to leave; one whose
    mail bounced, or who reported it as spam, did not, and is told the way back in
    words that fit (for a spam report, the page says to write)."""
    from digest.states import SubscriberStatus

    c, app = reader_client
    row = await confirmed(c, app, smtp_server, "gone@example.org", topics=["science"])
    assert row.id is not None
    assert app.store.suppress_subscriber(row.id, SubscriberStatus(status))
    page = await c.get(signed_link("unsubscribe", row))
    assert words in page.text and "by mistake" not in page.text, page.text


async def test_a_city_the_zone_help_suggests_typing_is_saved_as_its_zone(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """The help under the field says "Type a city ... such as Paris or Karachi"; a reader
    who did and pressed Save without picking from the list was told 'unknown time zone'.
    A city that names one zone is saved as that zone, shown in the field as saved."""
    c, app = reader_client
    row = await confirmed(c, app, smtp_server, "city@example.org")
    prefs = signed_link("preferences", row)
    page = await c.get(prefs)
    assert "such as Paris or Karachi" in page.text
    for typed, zone in (("Karachi", "Asia/Karachi"), ("new york", "America/New_York")):
        saved = await c.post(prefs, data={"timezone": typed, "csrf": csrf(page)})
        assert saved.status_code == 200 and "Saved." in saved.text, saved.text
        assert f'value="{zone}"' in saved.text
        assert app.store.subscriber_by_email("city@example.org").timezone == zone  # type: ignore[union-attr]
    # A misspelt one is still refused, naming the zone meant.
    refused = await c.post(prefs, data={"timezone": "Karachii", "csrf": csrf(page)})
    assert refused.status_code == 400 and "did you mean &#39;Asia/Karachi&#39;" in refused.text


async def test_an_offset_typed_is_not_saved_as_the_zone_of_the_opposite_offset(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """'GMT+5' is no zone, but 'gmt+5' is the last part of Etc/GMT+5, which IANA counts the
    other way round: UTC-5. Read as a city, a reader in Karachi typing GMT+5 was saved ten
    hours off without a word. It is refused with the Etc zone of the offset meant."""
    c, app = reader_client
    row = await confirmed(c, app, smtp_server, "offset@example.org")
    prefs = signed_link("preferences", row)
    page = await c.get(prefs)
    for typed, meant in (("GMT+5", "Etc/GMT-5"), ("gmt-5", "Etc/GMT+5")):
        refused = await c.post(prefs, data={"timezone": typed, "csrf": csrf(page)})
        assert refused.status_code == 400 and f"write &#39;{meant}&#39;" in refused.text
        assert app.store.subscriber_by_email("offset@example.org").timezone is None  # type: ignore[union-attr]


async def test_a_preferences_form_left_open_past_its_day_keeps_the_changes_made(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """A tab left open overnight: Save answered "The form expired; please save again."
    with the form reset to what was stored, so saving again, as asked, saved the old
    choices and said "Saved." The form comes back as the reader sent it."""
    c, app = reader_client
    row = await confirmed(c, app, smtp_server, "tab@example.org", topics=["science"])
    prefs = signed_link("preferences", row)
    old = csrf(await c.get(prefs))
    later(app, 25 * 3600)
    sent = {"topics": ["world"], "timezone": "Europe/Paris", "locale": "fr", "csrf": old}
    expired = await c.post(prefs, data=sent)
    assert expired.status_code == 400 and "The form expired" in expired.text
    assert re.search(r'value="world" checked', expired.text)
    assert not re.search(r'value="science" checked', expired.text)
    assert 'value="Europe/Paris"' in expired.text and '<option value="fr" selected>' in expired.text
    again = await c.post(prefs, data={**sent, "csrf": csrf(expired)})
    assert "Enregistré." in again.text  # in the language the form just chose
    stored = app.store.subscriber_by_email("tab@example.org")
    assert stored is not None and (stored.topics, stored.timezone, stored.locale) == (
        "world",
        "Europe/Paris",
        "fr",
    )


async def test_the_sign_up_page_says_what_is_sent_and_when(
    reader_client: Client,
) -> None:
    """Someone deciding whether to subscribe asks what they will get and how often; the
    page named neither. It names each digest and, when its schedule is one time of day,
    the days and time."""
    c, _ = reader_client
    page = await c.get("/")
    assert "<strong>Daily Test</strong>: every day at 07:00 (UTC)" in page.text


async def test_the_pages_words_match_what_happens(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """Three sentences that sent readers the wrong way: "Check your inbox" for an address
    already subscribed (no mail comes, by design: the page reveals nothing), "Choose your
    topics" just after choosing them on the form, and an unsubscribe page that did not
    say the other way to get less mail is a pause."""
    c, app = reader_client
    sent = await sign_up(c, email="words@example.org", topics=["world"])
    assert "and is not subscribed already" in sent.text
    done = await c.post(mailed_confirm_path(smtp_server, "words@example.org"))
    assert ">Your topics and settings</a>" in done.text and "Choose your topics" not in done.text
    row = app.store.subscriber_by_email("words@example.org")
    assert row is not None
    ask = await c.get(signed_link("unsubscribe", row))
    assert "pause" in ask.text and "Changed your mind about what you receive" not in ask.text


async def test_a_broken_unsubscribe_link_says_how_to_leave_not_how_to_join(
    reader_client: Client, reader_config: Path
) -> None:
    """An unsubscribe link a mail client cut short, or one signed with a secret since
    withdrawn, answered "... or subscribe again" with a Subscribe link: the reader wanting
    out found no way out, and the spam button is next. It says how to leave without it."""
    c, app = reader_client
    link = signed_link("unsubscribe", app.store.add_pending("out@example.org", "", []))
    for answer in (
        await c.get(link[:-6]),
        await c.post(f"{link}x"),
    ):
        assert answer.status_code == 404
        main = answer.text.split("<main>")[1]
        assert "Subscribe" not in main and "subscribe again" not in main
        sender = app.config.service.sender.split("<")[-1].rstrip(">")
        assert "Unsubscribe link of a more recent email" in main and sender in main
    # A broken confirmation link still leads to the form.
    assert '<a href="/">Subscribe</a>' in (await c.get("/confirm/nope")).text


async def test_coming_back_in_the_second_of_leaving_works(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """Links are dated to the second, and one made in the second the reader left counts
    as older than their leaving (so no old link undoes it). "Unsubscribed by mistake?
    Come back" at once mailed a link that answered "This link has been used up". A link
    the reader asks for after leaving is dated after it."""
    c, app = reader_client
    row = await confirmed(c, app, smtp_server, "quick@example.org", topics=["world"])
    prefs = signed_link("preferences", row)
    await c.post(signed_link("unsubscribe", row))
    left = await c.get(prefs)  # the clock does not move: all in one second
    back = await c.post(prefs, data={"action": "resubscribe", "csrf": csrf(left)})
    assert "Check your inbox" in back.text
    done = await c.post(mailed_confirm_path(smtp_server, "quick@example.org"))
    assert "You are subscribed" in done.text, done.text
    back_in = app.store.subscriber_by_email("quick@example.org")
    assert back_in is not None and (back_in.status, back_in.topics) == ("active", "world")
    # And signing up again on the form in the second of leaving.
    await c.post(signed_link("unsubscribe", back_in))
    await sign_up(c, email="quick@example.org", topics=["science"])
    assert (
        "You are subscribed"
        in (await c.post(mailed_confirm_path(smtp_server, "quick@example.org"))).text
    )


async def test_a_leaving_stamped_ahead_of_the_clock_does_not_hold_the_way_back(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    """The way back waits for the second after the reader's leaving, "at most one"; a
    leaving stamped an hour ahead of the web app's clock (a bounce or a command run on a
    machine whose clock is fast, or this one set back since) held the request an hour."""
    c, app = reader_client
    row = await confirmed(c, app, smtp_server, "skew@example.org")
    await c.post(signed_link("unsubscribe", row))
    assert isinstance(app.clock, ManualClock)
    app.clock.set(app.clock.now() - timedelta(hours=1))
    prefs = signed_link("preferences", row)
    back = await c.post(prefs, data={"action": "resubscribe", "csrf": csrf(await c.get(prefs))})
    assert "Check your inbox" in back.text
    assert app.clock.slept and max(app.clock.slept) <= 1


async def test_a_broken_preferences_link_points_to_a_recent_emails(
    reader_client: Client,
) -> None:
    """A subscriber whose preferences link is broken was told to "subscribe again"; they
    are subscribed, and every email's footer has a working link."""
    c, app = reader_client
    link = signed_link("preferences", app.store.add_pending("prefs@example.org", "", []))
    answer = await c.get(link[:-6])
    assert answer.status_code == 404
    main = answer.text.split("<main>")[1]
    assert "Preferences link at the foot of a more recent email" in main
    assert "subscribe again" not in main


async def test_an_expired_link_of_a_paused_reader_says_paused(
    reader_client: Client, smtp_server: SmtpServer
) -> None:
    c, app = reader_client
    await sign_up(c, email="rest@example.org")
    link = mailed_confirm_path(smtp_server, "rest@example.org")
    await c.post(link)
    row = app.store.subscriber_by_email("rest@example.org")
    assert row is not None and row.id is not None
    app.store.set_subscriber(row.id, status="paused")
    # Within its two days too: it asked "Start receiving ...?" of a reader who paused.
    pages = [await c.get(link)]
    later(app, 3 * 86400)
    pages.append(await c.get(link))
    for page in pages:
        assert "Your subscription is paused" in page.text and "is sent to" not in page.text
        assert "Yes, subscribe me" not in page.text


async def test_the_zone_help_names_the_zone_the_digest_dates_its_editions_in(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """A digest with its own zone dates its editions in it (``Config.digest_timezone``), not
    the service's: the preferences page said "Left empty, dates are in the newsletter's time
    zone (UTC)" to a reader whose editions came dated in New York time."""
    url = feed_server.add(
        "/z.xml", rss([{"title": "Port", "guid": "1", "link": "https://w.test/1"}])
    )
    path = write_config([("Wire", url)], transport="smtp", smtp_port=smtp_server.port)
    path.write_text(
        path.read_text().replace('id = "daily"', 'id = "daily"\ntimezone = "America/New_York"')
    )
    async with web_client(path) as (c, app):
        row = await confirmed(c, app, smtp_server, "zone@example.org")
        page = await c.get(signed_link("preferences", row))
    assert "newsletter&#39;s time zone (America/New_York)" in page.text or (
        "newsletter's time zone (America/New_York)" in page.text
    ), page.text
