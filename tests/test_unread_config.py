"""The file edited (the digest moved to 06:00) and the daemon not reloaded: it fires at
07:00 still, while `digest status` showed the file's 06:00 as the next run. Status now says
the daemon runs a config older than the file, and how to reload it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from digest.app import App
from digest.config import load_config
from digest.jobs import record_reload
from digest.store.lock import daemon_lock
from tests.conftest import FeedServer, rss, run_cli


def _status(config: Path) -> tuple[str, dict[str, object]]:
    _, out, _ = run_cli("--config", str(config), "status")
    _, document, _ = run_cli("--config", str(config), "status", "--json")
    return out, json.loads(document)


def test_status_says_the_daemon_has_not_read_the_file_s_last_change(
    write_config, feed_server: FeedServer
) -> None:
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config = write_config([("Wire", url)], schedule="0 7 * * *")
    app = App.open(load_config(config))
    try:
        with daemon_lock(app.engine):  # a daemon runs on the database: this process
            record_reload(app, True, "read at the daemon's start: 1 sources, 1 digests")
            os.utime(config, (time.time() - 60, time.time() - 60))  # read after the edit
            out, document = _status(config)
            assert "CONFIG NOT RELOADED" not in out
            assert document["config_changed_since_daemon_read"] is None

            config.write_text(config.read_text().replace('"0 7 * * *"', '"0 6 * * *"'))
            os.utime(config, (time.time() + 5, time.time() + 5))  # edited after it was read
            out, document = _status(config)
    finally:
        app.close()
    assert "daemon: CONFIG NOT RELOADED: it read the config at" in out, out
    assert f"until reloaded: kill -HUP {os.getpid()}" in out
    assert document["config_changed_since_daemon_read"] is not None
    out, document = _status(config)  # no daemon runs any more: nothing it has not read
    assert "CONFIG NOT RELOADED" not in out


def _record_a_start(app: App) -> None:
    """The reload record the daemon's scheduler writes when it starts on ``app``'s config."""
    from apscheduler.schedulers.background import BackgroundScheduler

    from digest.schedule import leading

    def build(_app: App, _stop: object, _reloading: bool) -> BackgroundScheduler:
        return BackgroundScheduler(timezone="UTC")

    leading._start(app, build, lambda: False, leading.STARTED).shutdown(wait=False)


def test_a_file_rewritten_as_it_was_is_not_a_change_the_daemon_missed(
    write_config, feed_server: FeedServer
) -> None:
    """A config-management run that writes the same file again, a `touch`, an editor's
    save without an edit, or another machine's identical copy (PostgreSQL) newer than the
    daemon's reading: the daemon runs what the file says, so no CONFIG NOT RELOADED. An
    edit it has not read still says so."""
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config = write_config([("Wire", url)], schedule="0 7 * * *")
    app = App.open(load_config(config))
    try:
        with daemon_lock(app.engine):
            os.utime(config, (time.time() - 60, time.time() - 60))
            _record_a_start(app)
            config.write_text(config.read_text())  # the same text, written again
            os.utime(config, (time.time() + 5, time.time() + 5))
            out, document = _status(config)
            assert "CONFIG NOT RELOADED" not in out, out
            assert document["config_changed_since_daemon_read"] is None

            config.write_text(config.read_text().replace('"0 7 * * *"', '"0 6 * * *"'))
            os.utime(config, (time.time() + 5, time.time() + 5))
            out, document = _status(config)
            assert "daemon: CONFIG NOT RELOADED: it read the config at" in out, out

            # Edited, the daemon reads it (a SIGHUP), then the file is put back as before
            # with an older time: the daemon does not run the file's text, so it says so.
            app2 = App.open(load_config(config))
            _record_a_start(app2)
            app2.close()
            config.write_text(config.read_text().replace('"0 6 * * *"', '"0 7 * * *"'))
            os.utime(config, (time.time() - 600, time.time() - 600))
            out, document = _status(config)
            assert "CONFIG NOT RELOADED" in out, out
    finally:
        app.close()
