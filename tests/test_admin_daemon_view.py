"""The dashboard said nothing when the running daemon had not read the file's last change
(`digest status` says CONFIG NOT RELOADED), and its "Next" cards came from the console's
own config, stale once the daemon reloads a new one. It now shows the same warning, and
the next runs the daemon's last ``reload`` record names."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from digest.app import App
from digest.schedule import leading
from digest.store.lock import daemon_lock
from tests.admin_site import Console


@pytest.fixture
def client(console: Console) -> Iterator[httpx.Client]:
    with console.logged_in() as c:
        yield c


def _daemon_reads(app: App, hour: int) -> datetime:
    """The daemon's start on a config whose digest fires at ``hour`` UTC (its ``reload``
    record, as ``leading._start`` writes it); when it fires next."""

    def build(_app: App, _stop: object, _reloading: bool) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(timezone="UTC")
        trigger = CronTrigger(hour=hour, minute=0, timezone="UTC")
        scheduler.add_job(lambda: None, trigger, id="digest:daily", name="send daily")
        return scheduler

    scheduler = leading._start(app, build, lambda: False, leading.STARTED)
    try:
        fires = scheduler.get_job("digest:daily").next_run_time
    finally:
        scheduler.shutdown(wait=False)
    return fires


def _next_card(page: str) -> str:
    found = re.search(r"Next [^<]*<strong>([^<]*)</strong><span class=\"note\">([^<]*)", page)
    assert found, page
    return f"{found.group(1)} | {found.group(2)}"


def test_the_dashboard_shows_the_daemon_s_next_run_and_a_config_it_has_not_read(
    console: Console, client: httpx.Client
) -> None:
    app = console.app
    assert app.config.file
    config = app.config.file
    assert app.config.digests[0].schedule == "0 7 * * *"  # the console's: 07:00
    page = client.get("/admin/").text
    assert "07:00 UTC" in _next_card(page) and "CONFIG NOT RELOADED" not in page

    with daemon_lock(app.engine):  # a daemon runs on the database: this process
        os.utime(config, (time.time() - 60, time.time() - 60))  # the daemon reads it after
        fires = _daemon_reads(app, hour=5)  # it read a 05:00 schedule (reloaded since)
        card = _next_card(client.get("/admin/").text)
        assert f"{fires:%a %H:%M} UTC" in card and "05:00 UTC" in card, card
        assert "as the running daemon has it" in card
        assert "CONFIG NOT RELOADED" not in client.get("/admin/").text

        # The file edited after the daemon read it: the daemon runs the old one
        file = Path(config)
        file.write_text(file.read_text().replace('"0 7 * * *"', '"0 6 * * *"'))
        os.utime(config, (time.time() + 5, time.time() + 5))
        page = client.get("/admin/").text
        assert "Daemon: CONFIG NOT RELOADED: it read the config at" in page, page
        assert f"kill -HUP {os.getpid()}" in page
        assert "05:00 UTC" in _next_card(page)  # the daemon's still

    page = client.get("/admin/").text  # no daemon runs: the console's own config's
    assert "07:00 UTC" in _next_card(page) and "CONFIG NOT RELOADED" not in page
