"""A schedule moved EARLIER and reloaded an hour after its new slot: `digest status` said
MISSED for that slot, which the old schedule never had (the daemon was not scheduling it
then). A slot counts as missed only if the daemon was scheduling it at the time: after
the reload that introduced its schedule. A slot it did schedule and missed still shows."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest.app import App
from digest.config import load_config
from tests.conftest import FeedServer, rss, run_cli
from tests.test_daemon import _start_daemon, _wait_for_job

NEVER_DUE = "0 3 1 1 *"  # 03:00 on the 1st of January: no slot within days of a test


def _status(config: Path) -> tuple[str, dict[str, Any]]:
    code, out, err = run_cli("--config", str(config), "status")
    assert code == 0, err
    code, document, err = run_cli("--config", str(config), "status", "--json")
    assert code == 0, err
    return out, json.loads(document)


def _config(write_config, feed_server: FeedServer) -> Path:
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config: Path = write_config([("Wire", url)], schedule=NEVER_DUE)
    app = App.open(load_config(config))
    try:  # the daemon has run for days (a fresh one owes and misses nothing before it)
        app.store.scheduled_since("daily", datetime.now(UTC) - timedelta(days=2))
    finally:
        app.close()
    return config


def _moved_to(config: Path, slot: datetime) -> None:
    text = config.read_text().replace(f'"{NEVER_DUE}"', f'"{slot.minute} {slot.hour} * * *"')
    config.write_text(text)


@pytest.mark.slow
def test_a_schedule_moved_earlier_and_reloaded_after_its_slot_missed_nothing(
    write_config, feed_server: FeedServer
) -> None:
    config = _config(write_config, feed_server)
    # Moved to a slot 65 minutes ago (past the hour a late send is made in), then reloaded
    slot = (datetime.now(UTC) - timedelta(minutes=65)).replace(second=0, microsecond=0)
    daemon = _start_daemon(config)
    try:
        _wait_for_job(config, "reload", True, seconds=60)
        _moved_to(config, slot)
        daemon.send_signal(signal.SIGHUP)
        _wait_for_job(config, "reload", True, seconds=60, words="reloaded on SIGHUP")
        out, document = _status(config)
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=20)
    assert daemon.returncode == 0, output
    assert "digest daily: scheduled anew from" in output
    assert "MISSED" not in out, out
    assert document["missed"] == {}
    assert document["next_runs"] == {"daily": (slot + timedelta(days=1)).isoformat()}


def _run_once(config: Path, words: str) -> str:
    """A daemon started on ``config`` until its ``reload`` record says ``words``, stopped:
    its output."""
    daemon = _start_daemon(config)
    try:
        _wait_for_job(config, "reload", True, seconds=60, words=words)
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=20)
    assert daemon.returncode == 0, output
    return output


@pytest.mark.slow
def test_a_schedule_moved_earlier_while_no_daemon_ran_missed_nothing(
    write_config, feed_server: FeedServer
) -> None:
    """The daemon stopped, the file moved, the daemon started an hour after the new slot:
    its last ``reload`` record shows it was not going to fire then (its next run named
    came after), so the slot was never its own."""
    config = _config(write_config, feed_server)
    slot = (datetime.now(UTC) - timedelta(minutes=65)).replace(second=0, microsecond=0)
    _run_once(config, "read at the daemon's start")
    _moved_to(config, slot)
    output = _run_once(config, f"send daily at {slot + timedelta(days=1):%Y-%m-%d %H:%M} UTC")
    assert "digest daily: scheduled anew from" in output
    out, document = _status(config)
    assert "MISSED" not in out and document["missed"] == {}, out


@pytest.mark.slow
def test_a_slot_the_daemon_scheduled_and_missed_still_shows(
    write_config, feed_server: FeedServer
) -> None:
    """The same slot, in the file the daemon has run since days: its send never came (the
    daemon down at the slot), so it is MISSED; a reload that changes nothing of the
    digest's schedule keeps it so."""
    config = _config(write_config, feed_server)
    slot = (datetime.now(UTC) - timedelta(minutes=65)).replace(second=0, microsecond=0)
    _moved_to(config, slot)
    daemon = _start_daemon(config)
    try:
        _wait_for_job(config, "reload", True, seconds=60)
        config.write_text(config.read_text().replace("[gather]\n", "[gather]\n# read again\n"))
        daemon.send_signal(signal.SIGHUP)
        _wait_for_job(config, "reload", True, seconds=60, words="reloaded on SIGHUP")
        out, document = _status(config)
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=20)
    assert daemon.returncode == 0, output
    assert "scheduled anew" not in output
    assert f"MISSED daily: the {slot:%Y-%m-%d %H:%M} UTC slot has no edition" in out, out
    assert document["missed"] == {"daily": slot.isoformat()}
    output = _run_once(config, "read at the daemon's start")  # a restart: the same plan
    assert "scheduled anew" not in output
    assert _status(config)[1]["missed"] == {"daily": slot.isoformat()}


def test_a_slot_of_the_file_s_unread_schedule_is_not_the_daemon_s_miss(
    write_config, feed_server: FeedServer
) -> None:
    """The file moved to a slot 65 minutes ago, not reloaded: the daemon, which read its
    config two hours ago with its next run days away, was never going to fire then, so
    the slot is not MISSED; read after the slot (the daemon down at it), it is."""
    from digest.clock import ManualClock
    from digest.job_names import reload_next
    from digest.jobs import record_reload
    from digest.reports.daemon_runs import daemon_next_runs, daemon_reading

    config = _config(write_config, feed_server)
    now = datetime.now(UTC)
    slot = (now - timedelta(minutes=65)).replace(second=0, microsecond=0)
    _moved_to(config, slot)
    app = App.open(load_config(config))
    try:
        daemon_next = now + timedelta(days=3)
        for read_at, missed in ((now - timedelta(hours=2), None), (now, slot)):
            app.store.clock = ManualClock(read_at)
            record_reload(
                app, True, "read at the daemon's start", reload_next([("send daily", daemon_next)])
            )
            read = daemon_reading(app.store.job_runs())
            (run,) = daemon_next_runs(app, now, read, "pid 1")
            assert run.missed == missed, read_at
    finally:
        app.close()
