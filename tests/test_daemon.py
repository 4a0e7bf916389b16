"""`digest run`: the daemon schedules each digest and gathering, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.app import App
from digest.clock import ManualClock
from digest.config import load_config
from digest.schedule.daemon import MISFIRE_GRACE_SECONDS, build_scheduler
from tests.conftest import ROOT, FeedServer, rss, run_cli


def _config(write_config, feed_server: FeedServer) -> Path:
    url = feed_server.add(
        "/f.xml",
        rss([{"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}]),
    )
    config = write_config([("Wire", url)], schedule="30 6 * * 1-5")
    text = config.read_text().replace("retry_base_seconds = 0", "retry_base_seconds = 300")
    config.write_text(text)
    return config


def test_scheduler_has_one_job_per_digest_a_gathering_job_and_a_retry_job(
    write_config, feed_server
) -> None:
    app = App.open(load_config(_config(write_config, feed_server)))
    try:
        scheduler = build_scheduler(app)
        scheduler.start(paused=True)
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"digest:daily", "gather", "retry"}
        assert jobs["retry"].trigger.interval == timedelta(seconds=300)  # the first wait
        send = jobs["digest:daily"]
        assert send.coalesce and send.max_instances == 1
        assert send.misfire_grace_time == MISFIRE_GRACE_SECONDS
        after = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # a Saturday
        fire = send.trigger.get_next_fire_time(None, after)
        assert fire.weekday() == 0 and (fire.hour, fire.minute) == (6, 30)  # Monday 06:30
        scheduler.shutdown(wait=False)
    finally:
        app.close()


@pytest.mark.slow
def test_daemon_gathers_at_start_and_exits_cleanly_on_sigterm(write_config, feed_server) -> None:
    config = _config(write_config, feed_server)
    code, output = _run_until_gathered(config, feed_server)
    assert code == 0, output
    assert "scheduled send daily" in output
    assert "received SIGTERM" in output and "stopped" in output
    assert "Traceback" not in output
    # `digest status` shows the last result of each job the daemon ran.
    code, status, _ = run_cli("--config", str(config), "status", "--json")
    assert code == 0
    gather = json.loads(status)["jobs"]["gather"]
    assert gather["ok"] and gather["summary"] == "1 sources, 1 new articles"


def _start_daemon(config: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _wait_for_gather(feed_server: FeedServer, path: str, count: int = 1) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if sum(1 for p, _ in feed_server.requests if p == path) >= count:
            return
        time.sleep(0.1)
    raise AssertionError("the daemon never gathered")


def _run_until_gathered(config: Path, feed_server: FeedServer) -> tuple[int, str]:
    """Start the daemon, let it gather /f.xml, SIGTERM it: its exit code and output."""
    process = _start_daemon(config)
    try:
        _wait_for_gather(feed_server, "/f.xml")
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, output


@pytest.mark.slow
def test_a_second_daemon_on_the_same_database_exits_with_a_clear_message(
    write_config, feed_server
) -> None:
    config = _config(write_config, feed_server)
    first = _start_daemon(config)
    try:
        _wait_for_gather(feed_server, "/f.xml")
        second = _start_daemon(config)
        output, _ = second.communicate(timeout=20)
        assert second.returncode == 1, output
        assert f"another digest daemon (pid {first.pid}) is running on this database" in output
        assert "Traceback" not in output
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=20)
    assert first.returncode == 0


@pytest.mark.slow
def test_sighup_reloads_a_good_config_and_keeps_the_old_one_when_the_new_is_bad(
    write_config, feed_server
) -> None:
    config = _config(write_config, feed_server)
    good = config.read_text()
    daemon = _start_daemon(config)
    try:
        _wait_for_gather(feed_server, "/f.xml")
        config.write_text(good.replace('schedule = "30 6 * * 1-5"', 'schedule = "0 25 * * *"'))
        daemon.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        extra = feed_server.add(
            "/g.xml",
            rss([{"title": "Comet visible tonight", "guid": "2", "link": "https://wire.test/2"}]),
        )
        config.write_text(good + f'\n[[sources]]\nname = "Post"\nurl = "{extra}"\n')
        daemon.send_signal(signal.SIGHUP)
        _wait_for_gather(feed_server, "/g.xml")  # the new source is gathered at once
        assert daemon.poll() is None
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=20)
    assert daemon.returncode == 0, output
    assert "the new config is invalid; keeping the old one" in output
    assert "digests[0].schedule" in output
    assert "config reloaded: 2 sources, 1 digests" in output


def _wait_for_job(config: Path, job: str, ok: bool, seconds: float = 20, words: str = "") -> str:
    """The summary of ``job``'s last run once it is recorded as ``ok`` (read through a
    copy of the config, as the file itself may be the broken one), and says ``words``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        code, out, _ = run_cli("--config", str(config), "status", "--json")
        run = json.loads(out)["jobs"].get(job) if code == 0 else None
        if run is not None and run["ok"] is ok and words in run["summary"]:
            return str(run["summary"])
        time.sleep(0.2)
    raise AssertionError(f"the daemon never recorded {job} as ok={ok}")


@pytest.mark.slow
def test_a_reload_refused_for_a_bad_config_is_recorded_for_status_and_metrics(
    write_config, feed_server
) -> None:
    """A typo then SIGHUP: the daemon keeps its old config, and would not start on the
    file (a reboot at night: no digest at 07:00). Beyond one log line, `digest status`, the
    console's last jobs and `digest_job_ok{job="reload"}` say so until a reload or restart
    takes a good file."""
    config = _config(write_config, feed_server)
    good = config.read_text()
    same_db = config.with_name("same.toml")  # status reads the database through this one
    same_db.write_text(good)
    daemon = _start_daemon(config)
    try:
        _wait_for_gather(feed_server, "/f.xml")
        assert "read at the daemon's start" in _wait_for_job(same_db, "reload", True)
        config.write_text(good.replace("[gather]\n", '[gather]\ninterval_minutes = "30m"\n'))
        daemon.send_signal(signal.SIGHUP)
        summary = _wait_for_job(same_db, "reload", False)
        assert "gather.interval_minutes" in summary and "keeps running the config" in summary
        assert "would not start while it is invalid" in summary and "kill -HUP" in summary
        _, out, _ = run_cli("--config", str(same_db), "status")
        assert "last reload: FAILED" in out
        second = _start_daemon(same_db)  # exits at once: this one leads; its start says nothing
        assert second.wait(timeout=20) == 1
        assert "would not start" in _wait_for_job(same_db, "reload", False)

        config.write_text(good)
        daemon.send_signal(signal.SIGHUP)
        taken = _wait_for_job(same_db, "reload", True)
        assert taken.startswith("reloaded on SIGHUP: 1 sources, 1 digests; next: send daily at")
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=20)
    assert daemon.returncode == 0, output


def clock_at(app: App, when: datetime) -> None:
    """The app's clock (its store's: the daemon, the pipeline and the store read it) stands
    at ``when``."""
    app.store.clock = ManualClock(when)


def test_a_daemon_down_at_the_slot_sends_once_when_back_within_the_grace(
    write_config, feed_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from digest.pipeline import run_digest
    from digest.schedule.daemon import missed_slots

    # Dated just before the 07:00 slot below (until then digest dates it when first seen).
    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    story["date"] = "Mon, 30 Nov 2026 06:00:00 GMT"
    url = feed_server.add("/f.xml", rss([story]))
    config = write_config([("Wire", url)], schedule="0 7 * * *")
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    app = App.open(load_config(config))
    try:
        seven = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
        back = seven + timedelta(minutes=20)  # the daemon was down at 07:00, back at 07:20
        app.store.scheduled_since("daily", seven - timedelta(days=1))  # running since then
        assert missed_slots(app, "daily", "0 7 * * *", "UTC", back) == [seven]
        scheduler = build_scheduler(app, now=back)
        scheduler.start(paused=True)
        job = scheduler.get_job("digest:daily")
        assert job.next_run_time == back  # due at once
        scheduler.shutdown(wait=False)

        clock_at(app, back)
        job.func(*job.args)
        edition = app.store.edition("daily", seven)
        assert edition is not None and edition.id is not None
        assert app.store.delivery_counts(edition.id) == {"sent": 1}

        # Restarted again at 07:30: that slot is done, nothing is due until tomorrow.
        later = seven + timedelta(minutes=30)
        assert missed_slots(app, "daily", "0 7 * * *", "UTC", later) == []
        scheduler = build_scheduler(app, now=later)
        scheduler.start(paused=True)
        upcoming = scheduler.get_job("digest:daily").next_run_time
        assert upcoming != later and upcoming.hour == 7  # the cron's next 07:00, not now
        scheduler.shutdown(wait=False)
        again = asyncio.run(run_digest(app, "daily", now=later))
        assert again.delivery is not None and not again.delivery.counts  # nobody twice

        # Back only at 09:00, past the hour of grace: wait for the next slot instead.
        tomorrow = seven + timedelta(days=1, hours=2)
        assert missed_slots(app, "daily", "0 7 * * *", "UTC", tomorrow) == []
    finally:
        app.close()


def test_a_restart_that_sends_the_missed_slot_says_so(
    write_config, feed_server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 20, point 7: the 07:00 edition sent at 07:20 went out without a word."""
    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    story["date"] = "Mon, 30 Nov 2026 06:00:00 GMT"
    config = write_config([("Wire", feed_server.add("/f.xml", rss([story])))])
    app = App.open(load_config(config))  # (not run_cli: its logging set-up drops caplog's)
    try:
        app.store.add_subscriber("ana@example.org")
        seven = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
        back = seven + timedelta(minutes=20)
        scheduler = build_scheduler(app, now=back)
        scheduler.start(paused=True)
        job = scheduler.get_job("digest:daily")
        scheduler.shutdown(wait=False)
        clock_at(app, back)
        with caplog.at_level(logging.INFO, logger="digest"):
            job.func(*job.args)
    finally:
        app.close()
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "digest.schedule"]
    assert ("WARNING", "digest daily: sending the 07:00 slot it missed, 20 minutes late") in said
    # the send itself went well: routine, not a warning
    assert ("INFO", "digest daily: edition 1: 1 sent") in said


@pytest.mark.slow
def test_the_daemons_routine_lines_are_info_and_shown_without_v(write_config, feed_server) -> None:
    """Issue 20, point 7: routine scheduling was logged at WARNING."""
    config = _config(write_config, feed_server)
    code, output = _run_until_gathered(config, feed_server)
    assert code == 0, output
    assert "INFO digest.schedule: scheduled send daily; next run" in output
    # The next run to the second, in UTC (not "07:00:00.123456+00:00"), and each gathering
    # says what it found: the log alone shows the daemon at work.
    assert re.search(r"scheduled gather; next run \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n", output)
    assert "INFO digest.schedule: gather: 1 sources, 1 new articles" in output
    assert "INFO digest.schedule: received SIGTERM" in output
    assert "INFO digest.schedule: stopped" in output
    assert "WARNING" not in output


def test_a_database_folder_the_daemon_cannot_write_stops_it_with_what_to_do(
    write_config, feed_server, tmp_path: Path
) -> None:
    """A restore made as another user, a disk mounted read-only: the daemon's lock beside
    the database cannot be made, and no job could write either. It says so, not with a
    traceback."""
    config = _config(write_config, feed_server)
    (tmp_path / "digest.db.daemon.lock").mkdir()  # as unopenable as a read-only folder's

    code, out, err = run_cli("--config", str(config), "run")

    assert code == 1
    assert "error: cannot open the daemon's lock file" in err and "digest.db.daemon.lock" in err
    assert "hint: the database's folder must be writable by the user digest runs as" in err
    assert "Traceback" not in out + err


@pytest.mark.parametrize("failure", ["database", "bug", "recording"])
def test_a_start_whose_reload_record_fails_still_schedules(
    write_config, feed_server, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """The scheduler starts paused while the config's reading is recorded: a record that
    fails (the database's disk full at start, or a bug) must not leave it paused, or no
    digest would fire again while the daemon looks alive."""
    import sqlite3
    import threading

    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.base import STATE_RUNNING
    from sqlalchemy.exc import OperationalError

    from digest.schedule import leading

    app = App.open(load_config(_config(write_config, feed_server)))
    fired = threading.Event()

    def refuse(*_args: object) -> None:
        if failure == "database":
            raise OperationalError("INSERT", {}, sqlite3.OperationalError("disk is full"))
        raise RuntimeError("a bug")

    def build(_app: App, _stop: object, _reloading: bool) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(fired.set, "interval", seconds=0.2, id="digest:daily", name="tick")
        return scheduler

    if failure == "recording":  # the recording itself, not only the store under it
        monkeypatch.setattr("digest.jobs.record_reload", refuse)
    else:
        monkeypatch.setattr(app.store, "record_job", refuse)
    scheduler = leading._start(app, build, lambda: False, leading.STARTED)
    try:
        assert scheduler.state == STATE_RUNNING
        assert fired.wait(timeout=5), "the scheduler stayed paused"
    finally:
        scheduler.shutdown(wait=False)
        app.close()


def test_a_refused_reload_is_recorded_with_the_scheduler_paused_then_resumed(
    write_config, feed_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As at start: a job forked while this thread writes could inherit a lock held."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING

    from digest.config import Config
    from digest.errors import ConfigError, ConfigProblem
    from digest.schedule import leading

    app = App.open(load_config(_config(write_config, feed_server)))
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start()
    states: list[int] = []
    monkeypatch.setattr(app.store, "record_job", lambda *_a: states.append(scheduler.state))

    def refuse(_config: Config) -> Config:
        raise ConfigError([ConfigProblem("digest.toml", 3, "gather", "a typo", "fix it")])

    try:
        assert leading._reloaded(app, refuse, scheduler) is None
        assert states == [STATE_PAUSED]
        assert scheduler.state == STATE_RUNNING
    finally:
        scheduler.shutdown(wait=False)
        app.close()
