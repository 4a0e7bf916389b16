"""An admin moves the schedule later in the day: the new schedule's latest slot is older
than the edition readers already have, and no run mails them that older slot."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from digest.app import App
from digest.clock import ManualClock
from digest.config import load_config
from digest.pipeline import gather_sources, run_digest
from tests.conftest import FeedServer, rss, run_cli


def test_a_schedule_moved_later_sends_nothing_for_the_older_slot(
    write_config, feed_server: FeedServer
) -> None:
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config = write_config([("Wire", url)], schedule="0 7 * * *")
    # Runs at fixed times of today gather nothing new for them: send the editions anyway.
    config.write_text(
        config.read_text().replace("lookback_hours = 48", "lookback_hours = 48\nsend_empty = true")
    )
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    # A set day: run on the wall clock, the test failed between 22:58 and midnight UTC.
    seven = datetime(2026, 3, 2, 7, 5, tzinfo=UTC)
    clock = ManualClock(seven)
    app = App.open(load_config(config), clock=clock)
    try:
        asyncio.run(gather_sources(app))
        first = asyncio.run(run_digest(app, "daily", now=seven, gather_first=False))
        assert first.delivery is not None and first.delivery.counts == {"sent": 1}
    finally:
        app.close()

    # At 07:10 the admin moves the digest to 22:58: its latest slot is yesterday's 22:58.
    config.write_text(config.read_text().replace('"0 7 * * *"', '"58 22 * * *"'))
    clock.set(seven + timedelta(minutes=5))
    app = App.open(load_config(config), clock=clock)
    try:
        moved = asyncio.run(run_digest(app, "daily", now=seven + timedelta(minutes=5)))
        assert moved.edition is None and moved.delivery is None
        assert "is newer than this run's slot" in moved.idle
        assert len(app.store.editions()) == 1  # nothing built for yesterday's 22:58
        # Tonight's 22:58 is newer than the 07:00 edition: it goes as usual.
        tonight = seven.replace(hour=22, minute=59)
        clock.set(tonight)
        later = asyncio.run(run_digest(app, "daily", now=tonight, gather_first=False))
        assert later.edition is not None and later.edition.slot.hour == 22
    finally:
        app.close()
