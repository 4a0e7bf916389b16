"""Each story once: a reader who was sent a story is not sent it again unless it grew (then
it is marked as an update), an edition with nothing new mails nobody, and an edition is
dated by its slot. Issue 15, point 4: after a schedule change the daemon mailed a second
edition of the same stories, and a manual `digest send` at 03:11 built yesterday's 07:00
slot, dated it today, and the 07:00 edition that followed repeated subject and stories.

Real SQLite, the real daemon job and reload, a real local SMTP server (aiosmtpd).
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.app import App
from digest.config import DigestConfig, RankConfig, load_config, reload_config
from digest.pipeline import run_digest
from digest.rank import rank, sent_sources
from digest.records import ArticleRecord
from digest.schedule.daemon import build_scheduler
from digest.schedule.leading import _reloaded
from tests.conftest import FeedServer, SmtpServer, rss, run_cli
from tests.test_daemon import clock_at

MONDAY = datetime(2026, 11, 30, tzinfo=UTC)
HEADLINES = [
    "Harbour strike ends after pay deal",
    "Comet visible tonight across the north",
    "Central bank holds interest rates",
    "City council approves night metro",
    "Grain corridor reopens to shipping",
    "Museum returns bronze statues",
    "Glacier retreat measured by satellites",
]


def _item(n: int, title: str, when: datetime, site: str = "wire") -> dict[str, str]:
    return {
        "title": title,
        "guid": f"{site}-{n}",
        "link": f"https://{site}.test/{n}",
        "date": f"{when:%a, %d %b %Y %H:%M:%S} GMT",
    }


def _items() -> list[dict[str, str]]:
    """Wire's seven stories, from 01:00 on Monday."""
    return [_item(n, t, MONDAY + timedelta(hours=1, minutes=n)) for n, t in enumerate(HEADLINES)]


def _config(write_config, feed_server: FeedServer, smtp: SmtpServer, schedule: str) -> Path:
    wire = feed_server.add(
        "/wire.xml",
        rss(_items()),
    )
    post = feed_server.add("/post.xml", rss([]))
    config = write_config(
        [("Wire", wire), ("Post", post)],
        transport="smtp",
        smtp_port=smtp.port,
        schedule=schedule,
    )
    app = App.open(load_config(config))  # (not run_cli: its logging set-up drops caplog's)
    try:
        app.store.add_subscriber("ana@example.org")
    finally:
        app.close()
    return config


def _fire(app: App, monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    """The daemon's job of the digest, run at ``when`` as its scheduler would run it."""
    scheduler = build_scheduler(app, now=when)
    scheduler.start(paused=True)
    job = scheduler.get_job("digest:daily")
    scheduler.shutdown(wait=False)
    clock_at(app, when)
    job.func(*job.args)


def _text(message) -> str:
    return message.get_body(("plain",)).get_content()


def _html(message) -> str:
    return message.get_body(("html",)).get_content()


def test_a_rescheduled_daemon_mails_no_second_copy_of_the_same_stories(
    write_config,
    feed_server: FeedServer,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = _config(write_config, feed_server, smtp_server, "15 3 * * *")
    app = App.open(load_config(config))
    try:
        app.store.scheduled_since("daily", MONDAY - timedelta(days=1))  # running since then
        _fire(app, monkeypatch, MONDAY.replace(hour=3, minute=15, second=5))
        [first] = smtp_server.messages
        assert all(h in _text(first.message()) for h in HEADLINES)

        # The admin moves the digest two minutes later and sends SIGHUP: the daemon reloads.
        config.write_text(config.read_text().replace('"15 3 * * *"', '"17 3 * * *"'))
        reloaded = _reloaded(app, lambda running: reload_config(running, config))
        assert reloaded is not None and reloaded.config.digests[0].schedule == "17 3 * * *"
        with caplog.at_level(logging.DEBUG, logger="digest"):
            _fire(reloaded, monkeypatch, MONDAY.replace(hour=3, minute=17, second=5))
    finally:
        app.close()

    assert len(smtp_server.messages) == 1  # the same seven stories are not mailed again
    said = [r.getMessage() for r in caplog.records if "nothing new" in r.getMessage()]
    assert said == [
        "digest daily: 03:17 edition (2026-11-30, UTC): nothing new since the last one, not "
        "sent: the 7 stories of its window went out before and none has grown since"
    ]
    code, out, _ = run_cli("--config", str(config), "status")
    assert code == 0
    assert "03:17 edition (2026-11-30, UTC): nothing new since the last one, not sent" in out
    # Nor is it an (empty) edition of the public archive and its feed: 03:15's is.
    archive, feed = asyncio.run(_public(config, "/archive", "/feed.atom"))
    for page in (archive, feed):
        assert "/editions/daily/20261130T0315Z" in page
        assert "/editions/daily/20261130T0317Z" not in page


async def _public(config: Path, *paths: str) -> list[str]:
    """The public web app's pages at ``paths`` (in-process, through ASGI)."""
    import httpx

    from digest.web import create_app

    app = App.open(load_config(config))
    try:
        transport = httpx.ASGITransport(app=create_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as c:
            return [(await c.get(path)).text for path in paths]
    finally:
        app.close()


def test_an_early_manual_send_is_dated_by_its_slot_and_the_next_slot_repeats_nothing(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer, monkeypatch
) -> None:
    config = _config(write_config, feed_server, smtp_server, "0 7 * * *")
    app = App.open(load_config(config))
    try:
        # `digest send --gather` at 03:11 on Monday: the latest slot is Sunday's 07:00.
        clock_at(app, MONDAY.replace(hour=3, minute=11))
        early = asyncio.run(run_digest(app, "daily"))
        assert early.edition is not None and early.edition.slot == MONDAY - timedelta(hours=17)
        [first] = smtp_server.messages
        text = _text(first.message())
        assert "Sunday, November 29, 2026" in text and "November 30" not in text.split("\n\n")[0]

        # One new story by 07:00; the regular 07:00 edition carries it alone.
        news = _item(9, "Volcano erupts on remote island", MONDAY.replace(hour=5))
        feed_server.add("/wire.xml", rss([*_items(), news]))
        app.store.scheduled_since("daily", MONDAY - timedelta(days=1))
        _fire(app, monkeypatch, MONDAY.replace(hour=7, second=30))
    finally:
        app.close()

    at_3_11, at_7 = (m.message() for m in smtp_server.messages)
    assert at_7["Subject"] != at_3_11["Subject"]
    assert "Volcano erupts" in at_7["Subject"]
    text = _text(at_7)
    assert "Volcano erupts on remote island" in text
    assert not any(h in text for h in HEADLINES)  # nothing sent at 03:11 again
    assert "Monday, November 30, 2026" in text


def test_a_story_that_grew_is_sent_again_marked_as_an_update(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer, monkeypatch
) -> None:
    config = _config(write_config, feed_server, smtp_server, "0 7 * * *")
    app = App.open(load_config(config))
    try:
        app.store.add_subscriber("lea@example.org", locale="fr")
        clock_at(app, MONDAY.replace(hour=7, second=30))
        asyncio.run(run_digest(app, "daily"))
        assert len(smtp_server.messages) == 2
        # Tuesday morning: Post carries the harbour story too; nothing else has moved.
        joined = _item(
            1, "Harbour strike ends after pay deal signed", MONDAY.replace(hour=9), "post"
        )
        feed_server.add("/post.xml", rss([joined]))
        clock_at(app, MONDAY.replace(hour=7, second=30) + timedelta(days=1))
        report = asyncio.run(run_digest(app, "daily"))
        assert report.edition is not None and report.edition.story_count == 1
    finally:
        app.close()

    second = {m.recipients[0]: m.message() for m in smtp_server.messages[2:]}
    english, french = second["ana@example.org"], second["lea@example.org"]
    text, html = _text(english), _html(english)
    assert "Update: Harbour strike ends" in text
    assert '<span class="update"' in html and "Update:" in html
    assert not any(h in text for h in HEADLINES[1:])  # the stories that did not grow stay out
    assert re.search(r"1\. Mise à jour\s:\sHarbour strike ends", _text(french))
    assert "Update:" in english["Subject"]


def test_a_story_the_morning_digest_sent_is_not_news_in_the_evening_one(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer, monkeypatch
) -> None:
    """Every reader receives every digest: what one sent, another does not send again."""
    config = _config(write_config, feed_server, smtp_server, "0 7 * * *")
    config.write_text(
        config.read_text()
        + '\n[[digests]]\nid = "evening"\ntitle = "Evening Test"\nschedule = "0 19 * * *"\n'
        "lookback_hours = 48\n"
    )
    app = App.open(load_config(config))
    try:
        clock_at(app, MONDAY.replace(hour=7, second=30))
        asyncio.run(run_digest(app, "daily"))
        news = _item(9, "Volcano erupts on remote island", MONDAY.replace(hour=12))
        feed_server.add("/wire.xml", rss([*_items(), news]))
        clock_at(app, MONDAY.replace(hour=19, second=30))
        evening = asyncio.run(run_digest(app, "evening"))
        assert evening.edition is not None and evening.edition.story_count == 1
    finally:
        app.close()

    morning, at_19 = (m.message() for m in smtp_server.messages)
    assert all(h in _text(morning) for h in HEADLINES)
    text = _text(at_19)
    assert "Volcano erupts on remote island" in text
    assert not any(h in text for h in HEADLINES)


def _article(i: int, source: str, title: str) -> ArticleRecord:
    when = MONDAY + timedelta(minutes=i)
    return ArticleRecord(i, source, title, f"https://{source}.test/{i}", "", when, story_id=1)


@pytest.mark.parametrize(
    ("headline", "grown"),
    [
        ("Storm Isolde nears the coast", False),  # the same words
        ("Storm Isolde nears the coast tonight", False),  # one word more
        ("Storm Isolde: 12 dead, 40,000 homes without power", True),  # news
    ],
)
def test_a_story_grows_with_a_materially_new_headline(headline: str, grown: bool) -> None:
    digest = DigestConfig(id="d", title="D", schedule="0 7 * * *")
    sent = rank([_article(1, "Wire", "Storm Isolde nears coast")], MONDAY, digest, RankConfig())
    again = [_article(1, "Wire", "Storm Isolde nears coast"), _article(2, "Wire", headline)]
    later = MONDAY + timedelta(hours=1)
    ranked = rank(again, later, digest, RankConfig(), sent_sources([sent]))
    shown = (*ranked.breaking, *ranked.latest)
    assert (len(shown), ranked.repeats) == ((1, 0) if grown else (0, 1))
    assert all(s.update and s.lead.title == headline for s in shown)  # the news leads
