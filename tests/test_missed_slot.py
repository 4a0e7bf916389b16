"""A slot whose send failed before anything could be recorded (the database's disk full,
a locked database, the daemon down at the slot) leaves no edition and no job row: `digest
status` and the console's dashboard showed yesterday's "ok" and the next run as if all
were well. They now name the slot that has no edition, and the command that sends it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from digest.app import App
from digest.config import load_config
from digest.store import utcnow
from tests.admin_site import serving
from tests.conftest import FeedServer, rss, run_cli


def _config(write_config, feed_server: FeedServer) -> tuple[Path, datetime]:
    slot = (utcnow() - timedelta(minutes=10)).replace(second=0, microsecond=0)
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config = write_config([("Wire", url)], schedule=f"{slot.minute} {slot.hour} * * *")
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    return config, slot


def _status(config: Path) -> tuple[str, dict[str, Any]]:
    code, out, err = run_cli("--config", str(config), "status")
    assert code == 0, err
    code, document, err = run_cli("--config", str(config), "status", "--json")
    assert code == 0, err
    return out, json.loads(document)


def test_status_names_a_slot_the_daemon_scheduled_that_has_no_edition(
    write_config, feed_server: FeedServer
) -> None:
    config, slot = _config(write_config, feed_server)
    out, document = _status(config)
    assert "MISSED" not in out  # no daemon ever scheduled it: sent by hand, if at all
    assert document["missed"] == {}

    app = App.open(load_config(config))
    try:
        app.store.scheduled_since("daily", slot - timedelta(days=2))  # the daemon ran then
    finally:
        app.close()
    out, document = _status(config)

    assert f"MISSED daily: the {slot:%Y-%m-%d %H:%M} UTC slot has no edition" in out, out
    assert "`digest send --digest daily` sends it now" in out
    assert document["missed"] == {"daily": slot.isoformat()}

    code, _, err = run_cli("--config", str(config), "send", "--gather")
    assert code == 0, err
    out, document = _status(config)
    assert "MISSED" not in out and document["missed"] == {}


def test_the_dashboard_and_metrics_name_the_missed_slot(
    write_config, feed_server: FeedServer
) -> None:
    config, slot = _config(write_config, feed_server)
    with serving(config, gather=False) as site:
        site.app.store.scheduled_since("daily", slot - timedelta(days=2))
        with site.logged_in() as client:
            page = client.get("/admin/").text
        with site.client() as client:
            metrics = client.get("/metrics").text
    assert f"{slot:%Y-%m-%d %H:%M} UTC slot has no edition" in page, page
    assert 'digest_slot_missed{digest="daily"} 1.0' in metrics, metrics
