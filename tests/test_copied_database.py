"""A copy of the database (a staging install run with production's secret and base_url)
does not repeat production's Message-IDs for the editions each builds after the copy.

Both number their next edition and its deliveries alike, and a Message-ID hashed only those
numbers with the reader's signed link; Gmail hides a message whose Message-ID it has seen,
so a reader mailed by staging first would not see production's edition. Each edition now
carries a random key of its own in the hash. An edition built before the copy keeps one id
per delivery in both (it is the same message).
"""

from __future__ import annotations

import mailbox
import shutil
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

from digest.app import App
from digest.clock import ManualClock
from digest.config import load_config
from tests.conftest import FeedServer, rss, run_cli

DAY_ONE = datetime(2026, 12, 7, 7, 5, tzinfo=UTC)


def _ids(folder: Path) -> dict[str, str]:
    """Each message's Subject's edition (its Message-ID's edition number) -> Message-ID."""
    box = mailbox.Maildir(str(folder / "mail"), create=False)
    ids: dict[str, str] = {}
    for key in box.iterkeys():
        message = BytesParser(policy=policy.default).parsebytes(box.get_bytes(key))
        message_id = str(message["Message-ID"])
        ids[message_id.split(".")[1]] = message_id
    return ids


def _send(config: Path, at: datetime) -> None:
    code, _, err = run_cli("--config", str(config), "send", clock=ManualClock(at))
    assert code == 0, err


def test_a_copy_of_the_database_makes_its_own_message_ids(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    production = write_config([("Wire", feed_server.add("/f.xml", rss([])))])
    empty_too = "lookback_hours = 48\nsend_empty = true"  # an edition even with no news
    production.write_text(production.read_text().replace("lookback_hours = 48", empty_too))
    assert run_cli("--config", str(production), "subscribers", "add", "ana@example.org")[0] == 0
    _send(production, DAY_ONE)

    staging_folder = tmp_path.parent / f"{tmp_path.name}-staging"
    staging_folder.mkdir()
    shutil.copy(production, staging_folder / "digest.toml")
    shutil.copy(tmp_path / "digest.db", staging_folder / "digest.db")
    staging = staging_folder / "digest.toml"

    # Edition 1 again from the copy (its rows taken back as unsent): the same message, the
    # same id.
    app = App.open(load_config(staging))
    try:
        with app.engine.begin() as connection:
            connection.exec_driver_sql("UPDATE deliveries SET status = 'pending'")
    finally:
        app.close()
    _send(staging, DAY_ONE + timedelta(minutes=5))

    day_two = DAY_ONE + timedelta(days=1)
    _send(production, day_two)
    _send(staging, day_two)
    ours, theirs = _ids(tmp_path), _ids(staging_folder)
    assert set(ours) == set(theirs) == {"1", "2"}
    assert ours["1"] == theirs["1"]
    assert ours["2"] != theirs["2"]  # edition 2, delivery 2, same reader, secret and base_url
