"""A 07:00 digest with local_time reaches each subscriber at 07:00 in their own time zone:
one hourly bucket of time zones at a time, each built from the news of its hour, once."""

from __future__ import annotations

import asyncio
import mailbox
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

from digest.app import App
from digest.config import load_config
from digest.pipeline import gather_sources, run_digest
from tests.conftest import FeedServer, rss, run_cli

DAY = datetime(2026, 11, 30, tzinfo=UTC)  # late November: Paris is UTC+1, London UTC+0


def _received(folder: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if not (folder / "mail").exists():
        return out
    box = mailbox.Maildir(str(folder / "mail"), create=False)
    for key in box.iterkeys():
        message = BytesParser(policy=policy.default).parsebytes(box.get_bytes(key))
        out.setdefault(str(message["To"]), []).append(str(message["Subject"]))
    return out


def local_time_config(
    write_config: Callable[..., Path],
    feed_server: FeedServer,
    published: str,
    lookback_hours: int,
    people: Mapping[str, str | None],
) -> Path:
    """A 07:00 digest with local_time on, one source with one story ("Harbour strike ends",
    dated ``published``), and ``people`` (address: time zone, or None) subscribed."""
    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    url = feed_server.add("/f.xml", rss([{**story, "date": published}]))
    config = write_config([("Wire", url)], schedule="0 7 * * *")
    lookback = f"lookback_hours = {lookback_hours}\nlocal_time = true"
    config.write_text(config.read_text().replace("lookback_hours = 48", lookback))
    for email, zone in people.items():
        args = ["--timezone", zone] if zone else []
        assert run_cli("--config", str(config), "subscribers", "add", email, *args)[0] == 0
    return config


def test_each_time_zone_gets_the_digest_at_its_own_seven_once(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    people = {
        "tokyo@example.org": "Asia/Tokyo",
        "paris@example.org": "Europe/Paris",
        "london@example.org": "Europe/London",
        "nozone@example.org": None,
    }
    config = local_time_config(
        write_config, feed_server, "Sun, 29 Nov 2026 20:00:00 GMT", 48, people
    )
    app = App.open(load_config(config))
    try:

        def run(at: datetime) -> None:
            report = asyncio.run(run_digest(app, "daily", now=at, gather_first=False))
            assert report.delivery is None or not report.delivery.stopped

        asyncio.run(gather_sources(app))
        expected = {  # UTC hour -> who is at 07:00 local then
            DAY - timedelta(hours=2): ["tokyo@example.org"],  # 22:00 UTC = 07:00 JST
            DAY + timedelta(hours=6): ["paris@example.org"],
            DAY + timedelta(hours=7): ["london@example.org", "nozone@example.org"],  # UTC
        }
        seen: set[str] = set()
        for hour in range(-3, 10):
            moment = DAY + timedelta(hours=hour, minutes=5)
            run(moment)
            run(moment + timedelta(minutes=20))  # a second run in the same hour sends nothing
            got = _received(tmp_path)
            now_received = set(got) - seen
            slot = DAY + timedelta(hours=hour)
            assert sorted(now_received) == expected.get(slot, []), moment
            seen |= now_received
        assert all(len(subjects) == 1 for subjects in _received(tmp_path).values())
        assert len(app.store.editions(limit=50)) == 3  # one edition per non-empty bucket
    finally:
        app.close()
