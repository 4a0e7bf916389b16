"""A reader whose topics no source declares any more (the admin removed the source, or
changed its topics) keeps their choice: their preferences page shows it "no longer
offered", saving the page keeps it, and they are sent nothing rather than every topic;
`digest check` tells the admin who is left with nothing. Sign-up to send, end to end.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from digest.app import App
from digest.config import load_config
from digest.links import make_token
from digest.pipeline import run_digest
from digest.subscribers import withdrawn_topics
from digest.web import create_app
from digest.web.security import RateLimit
from tests.conftest import SECRET, FeedServer, SmtpServer, ago, csrf, rss, run_cli


def _sources(world: str, science: str | None) -> list[tuple[str, str]]:
    return [("Wire", world)] + ([("Lab", science)] if science else [])


def _write(write_config: Callable[..., Path], world: str, science: str | None, port: int) -> Path:
    path = write_config(_sources(world, science), transport="smtp", smtp_port=port)
    text = path.read_text().replace(f'url = "{world}"', f'url = "{world}"\ntopics = ["world"]')
    if science:
        text = text.replace(f'url = "{science}"', f'url = "{science}"\ntopics = ["science"]')
    path.write_text(text)
    return path


async def _client(app: App) -> httpx.AsyncClient:
    asgi = create_app(app, per_ip=RateLimit(100, 3600, app.clock.monotonic))
    transport = httpx.ASGITransport(app=asgi, client=("203.0.113.7", 1234))
    return httpx.AsyncClient(transport=transport, base_url="https://digest.test")


async def _join(c: httpx.AsyncClient, smtp: SmtpServer, email: str, topic: str) -> None:
    await c.post(
        "/subscribe", data={"email": email, "topics": [topic], "csrf": csrf(await c.get("/"))}
    )
    found = re.search(
        r"https://digest\.test(/confirm/\S+)", smtp.messages[-1].message().get_content()
    )
    assert found and smtp.messages[-1].recipients == [email]
    assert "You are subscribed" in (await c.post(found.group(1))).text


@pytest.mark.asyncio
async def test_a_reader_of_a_withdrawn_topic_alone_is_not_widened_to_every_topic(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = feed_server.add(
        "/w.xml",
        rss([{"title": "Harbour strike ends", "link": "https://w.test/1", "date": ago(hours=1)}]),
    )
    science = feed_server.add(
        "/s.xml",
        rss([{"title": "Comet seen at noon", "link": "https://s.test/1", "date": ago(hours=1)}]),
    )
    path = _write(write_config, world, science, smtp_server.port)
    monkeypatch.chdir(path.parent)
    app = App.open(load_config(path))
    async with await _client(app) as c:
        await _join(c, smtp_server, "sci@example.org", "science")
        await _join(c, smtp_server, "globe@example.org", "world")
    app.close()

    # The admin removes the only source of 'science'.
    path = _write(write_config, world, None, smtp_server.port)
    app = App.open(load_config(path))
    try:
        row = app.store.subscriber_by_email("sci@example.org")
        assert row is not None
        prefs = f"/preferences/{make_token(SECRET, 'preferences', row.public_id)}"
        async with await _client(app) as c:
            page = await c.get(prefs)
            # Their choice is shown as theirs, ticked, and what it means is said.
            box = re.search(
                r'<input type="checkbox" name="topics" value="science"[^>]*>([^<]*)', page.text
            )
            assert box and " checked" in box.group(0) and "no longer offered" in box.group(1)
            assert "nothing is sent to you" in page.text
            # Saving the page as it is (the reader changes their zone) keeps the choice.
            form = {"topics": ["science"], "timezone": "Europe/Paris", "csrf": csrf(page)}
            saved = await c.post(prefs, data=form)
            assert saved.status_code == 200 and "Saved." in saved.text
            row = app.store.subscriber_by_email("sci@example.org")
            assert row is not None and (row.topics, row.timezone) == ("science", "Europe/Paris")
            assert "no longer offered" in saved.text

            # A form cannot add a topic no source has that was not theirs.
            other = app.store.subscriber_by_email("globe@example.org")
            assert other is not None
            theirs = f"/preferences/{make_token(SECRET, 'preferences', other.public_id)}"
            form = {"topics": ["world", "science"], "csrf": csrf(await c.get(theirs))}
            await c.post(theirs, data=form)
            other = app.store.subscriber_by_email("globe@example.org")
            assert other is not None and other.topics == "world"
            assert "no longer offered" not in (await c.get(theirs)).text

        # What they are mailed: nothing (not every topic); the world reader their digest.
        before = len(smtp_server.messages)
        report = await run_digest(app, "daily")
        mailed = smtp_server.messages[before:]
        assert [m.recipients for m in mailed] == [["globe@example.org"]]
        body = mailed[0].message().get_body(("plain",))
        assert body is not None and "Harbour strike ends" in body.get_content()
        assert report.delivery is not None
        assert report.delivery.counts == {"sent": 1, "skipped": 1}
        assert any("(science)" in why for why in report.delivery.skipped)
        # The run says why, so the admin reading it does not wait for tomorrow's stories.
        assert list(report.delivery.skipped) == [
            "no story of this edition is in their topics (science); no source has the topic "
            "'science' any more (`digest check` lists such readers)"
        ]

        # The admin is told who is left with nothing, and how to mend it.
        code, _, err = run_cli("--config", str(path), "check")
        assert code == 0, err
        assert "1 reader chose topics no source has any more: 'science' (1)" in err
        assert "1 of them chose no other topic and is sent nothing" in err
    finally:
        app.close()


def test_the_warning_counts_readers_by_topic_and_those_left_with_nothing() -> None:
    choices = {"science": 2, "science,world": 1, "sport": 1, "world": 5}
    warning = withdrawn_topics(choices, ["world"])
    assert warning.startswith(
        "4 readers chose topics no source has any more: 'science' (3), 'sport' (1); "
        "3 of them chose no other topic and are sent nothing\n  hint: add the topic back"
    )
    assert withdrawn_topics({"world": 5}, ["world"]) == ""
    assert withdrawn_topics({}, []) == ""


def _ticked(page: httpx.Response) -> list[str]:
    """The topics a page's form has ticked: what the browser sends when it is sent as is."""
    return re.findall(r'<input type="checkbox" name="topics" value="([^"]+)" checked>', page.text)


@pytest.mark.asyncio
async def test_the_way_back_keeps_withdrawn_topics_and_asks_a_stranded_reader_to_choose(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The way back ("Unsubscribed by mistake? Come back", and the expired confirmation
    link's "Email me a new link") dropped the topics no source has any more: a reader of
    such topics alone came back to every topic, unasked, and one of others too lost theirs.
    It keeps them as stored, shown "no longer offered" as the preferences page shows them,
    and asks a reader left with only such topics to choose before mailing a link."""
    world = feed_server.add("/w.xml", rss([]))
    science = feed_server.add("/s.xml", rss([]))
    path = _write(write_config, world, science, smtp_server.port)
    monkeypatch.chdir(path.parent)
    app = App.open(load_config(path))
    async with await _client(app) as c:
        await _join(c, smtp_server, "sci@example.org", "science")
        await _join(c, smtp_server, "both@example.org", "world")
    both = app.store.subscriber_by_email("both@example.org")
    assert both is not None and both.id is not None
    app.store.set_subscriber(both.id, topics="world,science")
    app.close()

    path = _write(write_config, world, None, smtp_server.port)  # 'science' withdrawn
    app = App.open(load_config(path))
    try:
        async with await _client(app) as c:
            pages = {}
            for email in ("sci@example.org", "both@example.org"):
                row = app.store.subscriber_by_email(email)
                assert row is not None
                await c.post(f"/unsubscribe/{make_token(SECRET, 'unsubscribe', row.public_id)}")
                pages[email] = f"/preferences/{make_token(SECRET, 'preferences', row.public_id)}"

            # A reader of other topics too comes back with all of theirs, the withdrawn
            # one shown as such, ticked, and kept when the form is sent as it is.
            page = await c.get(pages["both@example.org"])
            assert re.search(r'value="science" checked> Science \(no longer offered\)', page.text)
            assert "nothing is sent to you" not in page.text
            form = {"action": "resubscribe", "csrf": csrf(page), "topics": _ticked(page)}
            form["choosing_topics"] = "yes"
            assert "Check your inbox" in (await c.post(pages["both@example.org"], data=form)).text
            await _confirm_last(c, smtp_server, "both@example.org")
            row = app.store.subscriber_by_email("both@example.org")
            assert row is not None and row.status == "active"
            assert sorted(row.topics.split(",")) == ["science", "world"]

            # A form without the topics (a page from before they were shown) keeps them too.
            assert await _leave_and_post_back(c, app, "both@example.org", pages) == 200
            await _confirm_last(c, smtp_server, "both@example.org")
            row = app.store.subscriber_by_email("both@example.org")
            assert row is not None and sorted(row.topics.split(",")) == ["science", "world"]

            # A reader of the withdrawn topic alone is told, as their preferences page
            # tells them, and asked to choose: sent as it is, the form mails nothing.
            page = await c.get(pages["sci@example.org"])
            assert "Your topics are no longer offered" in page.text
            assert _ticked(page) == ["science"]
            mailed = len(smtp_server.messages)
            form = {"action": "resubscribe", "csrf": csrf(page), "topics": _ticked(page)}
            form["choosing_topics"] = "yes"
            again = await c.post(pages["sci@example.org"], data=form)
            assert again.status_code == 400 and len(smtp_server.messages) == mailed
            assert "Choose a topic still offered" in again.text
            assert _ticked(again) == ["science"]  # the page as sent, to change
            plain = {"action": "resubscribe", "csrf": csrf(again)}  # nor without the topics
            assert (await c.post(pages["sci@example.org"], data=plain)).status_code == 400
            assert len(smtp_server.messages) == mailed
            # Choosing one still offered brings them back with it.
            form["topics"], form["csrf"] = ["world"], csrf(again)
            assert "Check your inbox" in (await c.post(pages["sci@example.org"], data=form)).text
            await _confirm_last(c, smtp_server, "sci@example.org")
            row = app.store.subscriber_by_email("sci@example.org")
            assert row is not None and (row.status, row.topics) == ("active", "world")
    finally:
        app.close()


async def _confirm_last(c: httpx.AsyncClient, smtp: SmtpServer, email: str) -> None:
    found = re.search(
        r"https://digest\.test(/confirm/\S+)", smtp.messages[-1].message().get_content()
    )
    assert found and smtp.messages[-1].recipients == [email]
    assert "You are subscribed" in (await c.post(found.group(1))).text


async def _leave_and_post_back(
    c: httpx.AsyncClient, app: App, email: str, pages: dict[str, str]
) -> int:
    """Leave, then press the way back's button of a form that has no topics."""
    row = app.store.subscriber_by_email(email)
    assert row is not None
    await c.post(f"/unsubscribe/{make_token(SECRET, 'unsubscribe', row.public_id)}")
    page = await c.get(pages[email])
    answer = await c.post(pages[email], data={"action": "resubscribe", "csrf": csrf(page)})
    return answer.status_code


@pytest.mark.asyncio
async def test_confirming_topics_withdrawn_since_the_link_was_mailed_says_nothing_is_sent(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sign-up's link carries its topics; the only one withdrawn before the reader
    confirms, "from the next edition" was untrue: the page says they are subscribed, that
    nothing is sent to them, and leads to their preferences to choose."""
    world = feed_server.add("/w.xml", rss([]))
    science = feed_server.add("/s.xml", rss([]))
    path = _write(write_config, world, science, smtp_server.port)
    monkeypatch.chdir(path.parent)
    app = App.open(load_config(path))
    async with await _client(app) as c:
        form = {"email": "late@example.org", "topics": ["science"], "csrf": csrf(await c.get("/"))}
        await c.post("/subscribe", data=form)
    app.close()
    app = App.open(load_config(_write(write_config, world, None, smtp_server.port)))
    try:
        async with await _client(app) as c:
            mailed = smtp_server.messages[-1].message().get_content()
            link = re.search(r"https://digest\.test(/confirm/\S+)", mailed)
            assert link
            done = await c.post(link.group(1))
            assert "You are subscribed" in done.text and "nothing is sent to you" in done.text
            assert "from the next edition" not in done.text and "/preferences/" in done.text
            row = app.store.subscriber_by_email("late@example.org")
            assert row is not None and (row.status, row.topics) == ("active", "science")
    finally:
        app.close()
