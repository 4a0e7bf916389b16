"""One firing plan: `digest status`, the daemon's job and the slot of an edition agree on
when a digest fires, for each kind of digest (issue 17, point 2).

`digest status` used to read a local-time digest's schedule in the service's zone and
showed 07:00 UTC as its next run, while the daemon fires it every quarter hour in UTC.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.app import App
from digest.clock import ManualClock
from digest.config import load_config
from digest.editions import digest_slot, local_time_bucket
from digest.schedule.daemon import build_scheduler
from tests.conftest import run_cli

NOW = datetime(2026, 12, 7, 3, 5, tzinfo=UTC)  # a Monday; no zone below is on summer time

# kind: (what the config's digest and service say, the next fire after NOW in UTC)
KINDS = {
    # 07:00 in Berlin (UTC+1) is 06:00 UTC
    "cron in the service's zone": (
        [('timezone = "UTC"', 'timezone = "Europe/Berlin"')],
        datetime(2026, 12, 7, 6, 0, tzinfo=UTC),
    ),
    # 07:00 in New York (UTC-5) is 12:00 UTC, whatever the service's zone
    "cron in its own zone": (
        [
            ('timezone = "UTC"', 'timezone = "Europe/Berlin"'),
            ("lookback_hours = 48", 'lookback_hours = 48\ntimezone = "America/New_York"'),
        ],
        datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
    ),
    # every quarter hour in UTC: each one is 07:00 somewhere
    "local time": (
        [("lookback_hours = 48", "lookback_hours = 48\nlocal_time = true")],
        datetime(2026, 12, 7, 3, 15, tzinfo=UTC),
    ),
}


def _app(write_config, changes: list[tuple[str, str]]) -> tuple[Path, App]:
    path: Path = write_config([("Wire", "http://127.0.0.1:9/f.xml")], schedule="0 7 * * *")
    text = path.read_text()
    for old, new in changes:
        text = text.replace(old, new, 1)
    path.write_text(text)
    return path, App.open(load_config(path))


@pytest.mark.parametrize("kind", list(KINDS))
def test_status_the_daemon_and_the_slot_agree_on_the_next_fire(kind: str, write_config) -> None:
    changes, expected = KINDS[kind]
    path, app = _app(write_config, changes)
    try:
        clock = ManualClock(NOW)
        code, out, _ = run_cli("--config", str(path), "status", "--json", clock=clock)
        assert code == 0
        shown = datetime.fromisoformat(json.loads(out)["next_runs"]["daily"])
        _, text, _ = run_cli("--config", str(path), "status", clock=clock)
        assert f"next daily: {expected:%Y-%m-%d %H:%M} UTC" in text

        scheduler = build_scheduler(app, NOW)
        fires = scheduler.get_job("digest:daily").trigger.get_next_fire_time(None, NOW)
        assert shown == fires == expected

        # An edition built when the job fires belongs to that fire's slot, and one built
        # the minute before to an earlier slot.
        daily = app.config.digest("daily")
        assert digest_slot(app, daily, expected) == expected
        assert digest_slot(app, daily, expected - timedelta(minutes=1)) < expected
    finally:
        app.close()


@pytest.mark.parametrize(
    "zone", ["Asia/Tokyo", "America/St_Johns", "Asia/Kathmandu", "America/New_York"]
)
def test_a_local_time_digest_fires_at_each_readers_seven_oclock(zone: str, write_config) -> None:
    """The daemon's job fires at 07:00 in each reader's zone, that fire is an edition's
    slot, and the slot's readers include that zone."""
    path, app = _app(write_config, KINDS["local time"][0])
    try:
        app.store.add_subscriber("ana@example.org", timezone=zone)
        local = NOW.astimezone(ZoneInfo(zone))
        seven = local.replace(hour=7, minute=0, second=0, microsecond=0)
        if seven <= local:
            seven += timedelta(days=1)
        at = seven.astimezone(UTC)

        trigger = build_scheduler(app, NOW).get_job("digest:daily").trigger
        assert trigger.get_next_fire_time(None, at - timedelta(seconds=1)) == at
        daily = app.config.digest("daily")
        assert digest_slot(app, daily, at) == at
        assert zone in (local_time_bucket(app, daily, at) or set())

        clock = ManualClock(at - timedelta(minutes=1))
        _, out, _ = run_cli("--config", str(path), "status", "--json", clock=clock)
        assert datetime.fromisoformat(json.loads(out)["next_runs"]["daily"]) == at
    finally:
        app.close()
