"""The one clock (issue 17, point 9): a set clock stands still until moved, and a service
opened on it decides and stamps by it, never by the wall clock."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.app import App
from digest.clock import SYSTEM_CLOCK, ManualClock
from digest.config import load_config
from tests.conftest import FeedServer, rss, run_cli

# Far from any day the suite runs on: a wall-clock read shows at once.
MONDAY_0720 = datetime(2026, 3, 2, 7, 20, tzinfo=UTC)


def test_a_manual_clock_stands_still_until_moved() -> None:
    clock = ManualClock(MONDAY_0720, monotonic=50.0)
    assert clock.now() == MONDAY_0720 and clock.monotonic() == 50.0
    time.sleep(0.01)
    assert clock.now() == MONDAY_0720 and clock.monotonic() == 50.0
    clock.advance(90)
    clock.advance(timedelta(minutes=1, seconds=30))
    assert clock.now() == MONDAY_0720 + timedelta(minutes=3)
    assert clock.monotonic() == 230.0
    clock.set(MONDAY_0720)  # the wall time may be set back; the monotonic count never goes back
    assert clock.now() == MONDAY_0720 and clock.monotonic() == 230.0
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2026, 3, 2, 7, 20))


def test_a_manual_clocks_sleep_moves_it_on_at_once() -> None:
    clock = ManualClock(MONDAY_0720)
    began = time.monotonic()
    asyncio.run(clock.sleep(3600))
    assert time.monotonic() - began < 1  # no real hour went by
    assert clock.now() == MONDAY_0720 + timedelta(hours=1)
    assert clock.slept == [3600]


def test_the_system_clock_reads_aware_utc_and_never_goes_back() -> None:
    now = SYSTEM_CLOCK.now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert abs((now - datetime.now(UTC)).total_seconds()) < 5
    first = SYSTEM_CLOCK.monotonic()
    assert SYSTEM_CLOCK.monotonic() >= first


def test_the_store_stamps_with_the_apps_clock(write_config) -> None:
    """A subscriber's rows and status history carry the set time, not the wall clock's."""
    clock = ManualClock(MONDAY_0720)
    app = App.open(load_config(write_config([("Wire", "http://127.0.0.1:9/f.xml")])), clock=clock)
    try:
        assert app.clock is clock
        person, _ = app.store.add_subscriber("ana@example.org")
        assert person.created_at == MONDAY_0720
        clock.advance(timedelta(days=2))
        assert app.store.unsubscribe(email="ana@example.org")
        left = app.store.subscriber_by_email("ana@example.org")
        assert left is not None and left.unsubscribed_at == MONDAY_0720 + timedelta(days=2)
        history = app.store.subscriber_history(person.id or 0)
        assert sorted(e.at for e in history) == [MONDAY_0720, MONDAY_0720 + timedelta(days=2)]
    finally:
        app.close()


def test_a_send_builds_and_stamps_the_edition_of_the_set_instant(
    write_config, feed_server: FeedServer
) -> None:
    """`digest send --gather` at 07:20 on a set Monday: the 07:00 slot of that day, with the
    story published at 06:00 that day inside its look-back window, sent at 07:20. Read from
    the wall clock, the slot would be today's and the story months out of the window."""
    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    story["date"] = "Mon, 02 Mar 2026 06:00:00 GMT"
    config = write_config([("Wire", feed_server.add("/f.xml", rss([story])))])
    clock = ManualClock(MONDAY_0720)
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    code, _, err = run_cli("--config", str(config), "send", "--gather", clock=clock)
    assert code == 0, err
    app = App.open(load_config(config), clock=clock)
    try:
        (edition,) = app.store.editions()
        assert edition.slot == datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
        assert edition.story_count == 1
        ((delivery, _),) = app.store.deliveries(edition.id or 0)
        assert delivery.status == "sent" and delivery.sent_at == MONDAY_0720
    finally:
        app.close()


def test_a_command_runs_on_the_clock_it_is_given(write_config, tmp_path: Path) -> None:
    """The CLI opens its App on ``main``'s clock: `status` names the next fire after the
    set instant."""
    config = write_config([("Wire", "http://127.0.0.1:9/f.xml")], schedule="0 7 * * *")
    code, out, _ = run_cli("--config", str(config), "status", clock=ManualClock(MONDAY_0720))
    assert code == 0
    assert "next daily: 2026-03-03 07:00 UTC" in out


def test_a_worker_pauses_on_the_apps_clock(write_config, feed_server: FeedServer) -> None:
    """The mail server refuses connections: the worker's round stops, and it pauses (30 s)
    before the next on the app's clock, which a set clock passes at once."""
    import threading

    from digest.editions import build_edition
    from digest.worker import STOPPED_PAUSE, run_worker
    from tests.conftest import free_port

    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    url = feed_server.add("/f.xml", rss([story]))
    config = write_config([("Wire", url)], transport="smtp", smtp_port=free_port())
    clock = ManualClock(datetime.now(UTC))
    app = App.open(load_config(config), clock=clock)
    try:
        app.store.add_subscriber("ana@example.org")
        edition, _ = build_edition(app, app.config.digests[0], clock.now())
        assert app.store.queue_deliveries(edition.id or 0) == 1
        began = time.monotonic()
        stats = asyncio.run(run_worker(app, threading.Event(), rounds=2))
        assert time.monotonic() - began < STOPPED_PAUSE / 2  # no real pause
        assert stats.sent == 0
        assert sum(clock.slept) == pytest.approx(STOPPED_PAUSE)
        assert app.store.delivery_counts(edition.id or 0) == {"pending": 1}
    finally:
        app.close()
