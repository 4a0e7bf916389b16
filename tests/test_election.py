"""One scheduler leads on PostgreSQL: two `digest run`s, one leads and one stands by; when
the leader's lock session is ended (pg_terminate_backend) or the leader is killed (kill
-9), the standby leads within 15 s and the old leader stops scheduling.

Real processes on the PostgreSQL server scripts/test starts (skipped without one).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ROOT, FeedServer, rss, run_cli

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


def _jobs(config: Path) -> dict[str, Any]:
    code, out, err = run_cli("--config", str(config), "status", "--json")
    assert code == 0, err
    document: dict[str, Any] = json.loads(out)
    return document


@pytest.mark.slow
def test_a_standby_s_refused_reload_is_its_host_s_and_keeps_the_leader_s_next_runs(
    config: Path, tmp_path: Path
) -> None:
    """A standby's refused reload wrote the ``reload`` record over the leader's, with no
    next runs (a standby schedules nothing): `digest status` lost the leader's. It is now
    the standby host's own job, refused; the leader's record names the next runs still."""
    leader = Daemon(config, tmp_path / "leader.log")
    _until(lambda: leader.said("leading:"), 60, "the first scheduler never led")
    copy = tmp_path / "standby.toml"  # another machine's copy of the same file
    copy.write_text(config.read_text())
    standby = Daemon(copy, tmp_path / "standby.log")
    mine = f"reload on {socket.gethostname()}"
    broken = copy.read_text().replace("[gather]\n", '[gather]\ninterval_minutes = "x"\n')
    try:
        _until(lambda: standby.said("standing by"), 60, "the second never stood by")
        _until(lambda: "reload" in _jobs(config)["jobs"], 30, "the leader never recorded")
        fires = _jobs(config)["next_runs"]
        assert _jobs(config)["next_runs_from"] == "daemon" and fires["daily"]

        copy.write_text(broken)
        standby.process.send_signal(signal.SIGHUP)
        _until(lambda: mine in _jobs(config)["jobs"], 30, "the standby never recorded")
        document = _jobs(config)
        assert document["jobs"][mine]["ok"] is False
        assert "gather.interval_minutes" in document["jobs"][mine]["summary"]
        assert document["jobs"]["reload"]["ok"] is True  # the leader's, as it was
        assert document["next_runs_from"] == "daemon" and document["next_runs"] == fires
        _, out, _ = run_cli("--config", str(config), "status")
        assert f"last {mine}: FAILED" in out, out

        copy.write_text(config.read_text())  # fixed: the standby's record says so
        standby.process.send_signal(signal.SIGHUP)
        _until(lambda: _jobs(config)["jobs"][mine]["ok"], 30, "the standby never took it")
        assert _jobs(config)["next_runs"] == fires
    finally:
        for daemon in (standby, leader):
            daemon.process.send_signal(signal.SIGTERM)
        for daemon in (standby, leader):
            daemon.process.wait(30)
