"""One scheduler leads on PostgreSQL: two `digest run`s, one leads and one stands by; when
the leader's lock session is ended (pg_terminate_backend) or the leader is killed (kill
-9), the standby leads within 15 s and the old leader stops scheduling.

Real processes on the PostgreSQL server scripts/test starts (skipped without one).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ROOT, FeedServer, rss

KEY = 7_311_991  # digest.store.lock._ADVISORY_KEY


@pytest.fixture
def config(postgres_database: str, feed_server: FeedServer, write_config) -> Path:
    url = feed_server.add("/wire.xml", rss([{"title": "A", "guid": "1", "link": "https://w/1"}]))
    path: Path = write_config([("Wire", url)], schedule="0 3 1 1 *")  # never due in a test
    text_ = path.read_text().replace('"sqlite:///digest.db"', f'"{postgres_database}"')
    path.write_text(text_ + "\n[schedule]\nleader_check_seconds = 1.0\n")
    return path


class Daemon:
    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "digest", "--config", str(config), "run"],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )

    def said(self, words: str) -> bool:
        return words in self.log.read_text()


@pytest.fixture
def daemons(config: Path, tmp_path: Path) -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    first = Daemon(config, tmp_path / "first.log")
    started.append(first)
    _until(lambda: first.said("leading:"), 60, "the first scheduler never led")
    second = Daemon(config, tmp_path / "second.log")
    started.append(second)
    _until(lambda: second.said("standing by"), 60, "the second never stood by")
    yield started
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.send_signal(signal.SIGTERM)
    for daemon in started:
        try:
            daemon.process.wait(30)
        except subprocess.TimeoutExpired:
            daemon.process.kill()


def _until(condition, seconds: float, message: str) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, message
        time.sleep(0.1)
    return time.monotonic() - start


def _leaders(database: str) -> list[int]:
    """The backend pids holding the scheduler's lock (at most one)."""
    engine = create_engine(database)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = :k"),
            {"k": KEY},
        )
        pids = [row[0] for row in rows]
    engine.dispose()
    return pids


@pytest.mark.slow
def test_a_terminated_lock_session_hands_the_lead_over(
    daemons: list[Daemon], postgres_database: str
) -> None:
    first, second = daemons
    (session,) = _leaders(postgres_database)
    engine = create_engine(postgres_database)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": session})
    engine.dispose()
    took = _until(lambda: second.said("leading:"), 15, "no standby led within 15 s")
    assert took < 15
    _until(lambda: first.said("lost the scheduler's lead"), 5, "the old leader went on")
    assert first.process.poll() is None  # it stands by now, ready to lead again
    assert len(_leaders(postgres_database)) == 1


@pytest.mark.slow
def test_a_killed_leader_is_replaced_within_15_seconds(
    daemons: list[Daemon], postgres_database: str
) -> None:
    first, second = daemons
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(10)
    took = _until(lambda: second.said("leading:"), 15, "no standby led within 15 s")
    assert took < 15
    assert len(_leaders(postgres_database)) == 1
