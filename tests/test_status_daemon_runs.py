"""`digest status` showed the config FILE's next runs beside its CONFIG NOT RELOADED
warning, while the console's dashboard (and status on an invalid file) showed the running
DAEMON's, from its last ``reload`` record. Both now show the daemon's whenever one runs on
the database (its start's record names them, as a SIGHUP's does), the file's only when
none runs, and say whose they are."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FeedServer, rss, run_cli
from tests.test_daemon import _start_daemon, _wait_for_job


def _next_at(hour: int) -> datetime:
    """The next hh:00 UTC, as a daily schedule at ``hour`` fires next."""
    now = datetime.now(UTC)
    at = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return at if at > now else at + timedelta(days=1)


def _status(config: Path) -> tuple[str, dict[str, Any]]:
    code, out, err = run_cli("--config", str(config), "status")
    assert code == 0, err
    code, document, err = run_cli("--config", str(config), "status", "--json")
    assert code == 0, err
    return out, json.loads(document)


@pytest.mark.slow
def test_status_shows_the_running_daemon_s_next_runs_not_the_unread_file_s(
    write_config, feed_server: FeedServer
) -> None:
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config = write_config([("Wire", url)], schedule="0 7 * * *")
    seven, six = _next_at(7), _next_at(6)
    daemon = _start_daemon(config)
    try:
        assert "read at the daemon's start" in _wait_for_job(config, "reload", True, seconds=60)
        out, document = _status(config)
        assert "next runs: the running daemon's, as its last `reload` record" in out, out
        assert f"next daily: {seven:%Y-%m-%d %H:%M} UTC\n" in out, out
        assert document["next_runs_from"] == "daemon"

        # Edited to 06:00, no SIGHUP: the daemon fires at 07:00 still, and status says so
        config.write_text(config.read_text().replace('"0 7 * * *"', '"0 6 * * *"'))
        out, document = _status(config)
        assert "daemon: CONFIG NOT RELOADED" in out and "the next runs below are its own" in out
        assert f"next daily: {seven:%Y-%m-%d %H:%M} UTC\n" in out, out
        assert document["next_runs"] == {"daily": seven.isoformat()}
        assert document["next_runs_from"] == "daemon"

        daemon.send_signal(signal.SIGHUP)  # now it runs the file's 06:00
        _wait_for_job(config, "reload", True, seconds=60, words="reloaded on SIGHUP")
        out, document = _status(config)
        assert "CONFIG NOT RELOADED" not in out
        assert f"next daily: {six:%Y-%m-%d %H:%M} UTC\n" in out, out
        assert document["next_runs"] == {"daily": six.isoformat()}
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=20)
    assert daemon.returncode == 0, output

    config.write_text(config.read_text().replace('"0 6 * * *"', '"0 5 * * *"'))
    out, document = _status(config)  # no daemon runs: the file's, said so
    assert "next runs: the config file's (no daemon runs on this database)" in out, out
    assert f"next daily: {_next_at(5):%Y-%m-%d %H:%M} UTC\n" in out, out
    assert document["next_runs_from"] == "file"


def _digests(count: int) -> str:
    """``count`` (at most 60) more digests, each at its own minute of 08:00 UTC."""
    return "".join(
        f'\n[[digests]]\nid = "regional-bulletin-{n:02d}"\ntitle = "Bulletin {n}"\n'
        f'schedule = "{n - 1} 8 * * *"\n'
        for n in range(1, count + 1)
    )


@pytest.mark.slow
def test_a_daemon_of_sixty_digests_keeps_its_fingerprint_and_every_next_run(
    write_config, feed_server: FeedServer
) -> None:
    """The ``reload`` record names every digest's next run, then the config's fingerprint:
    the store cut summaries at 2,000 characters, so with ~45 digests it cut the
    fingerprint (CONFIG NOT RELOADED for a file the daemon had read) and the last digests'
    next runs (which status then said the daemon did not schedule)."""
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config = write_config([("Wire", url)], schedule="0 7 * * *", extra=_digests(60))
    daemon = _start_daemon(config)
    try:
        summary = _wait_for_job(config, "reload", True, seconds=90)  # 61 digests: slower
        assert len(summary) > 2000  # longer than the store kept of a summary
        config.write_text(config.read_text())  # written again unchanged, after the reading
        os.utime(config, (time.time() + 5, time.time() + 5))
        out, document = _status(config)
    finally:
        daemon.send_signal(signal.SIGTERM)
        output, _ = daemon.communicate(timeout=20)
    assert daemon.returncode == 0, output
    assert "CONFIG NOT RELOADED" not in out, out
    assert document["config_changed_since_daemon_read"] is None
    assert document["next_runs_from"] == "daemon"
    at = _next_at(8)
    expected = {"daily": _next_at(7).isoformat()} | {
        f"regional-bulletin-{n:02d}": (at + timedelta(minutes=n - 1)).isoformat()
        for n in range(1, 61)
    }
    assert document["next_runs"] == expected
    assert "does not schedule it" not in out
