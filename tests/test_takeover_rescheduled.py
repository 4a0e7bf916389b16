"""A scheduler that takes the lead (PostgreSQL) compares the plans it schedules with the
``reload`` record of the leader before it, as a start does: it compared them with the
config it ran when it last led, maybe days before, so a schedule the other leader had
taken since (moved, reloaded) counted as moved again at the take-over, and the slot the
dead leader missed (its send owed, sent late) was neither sent nor said MISSED."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.test_election import Daemon, _jobs, _leaders, _until, config

__all__ = ["config"]  # the fixture: two schedulers on one PostgreSQL database


@pytest.mark.slow
def test_a_scheduler_leading_again_keeps_the_other_leader_s_schedule(
    config: Path, tmp_path: Path, postgres_database: str
) -> None:
    first = Daemon(config, tmp_path / "first.log")
    _until(lambda: first.said("leading:"), 60, "the first scheduler never led")
    copy = tmp_path / "second.toml"  # another machine's copy of the same file
    copy.write_text(config.read_text())
    second = Daemon(copy, tmp_path / "second.log")
    try:
        _until(lambda: second.said("standing by"), 60, "the second never stood by")
        (session,) = _leaders(postgres_database)  # the first's lock session ends
        engine = create_engine(postgres_database)
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": session})
        engine.dispose()
        _until(lambda: second.said("leading:"), 15, "the second never led")
        _until(lambda: first.said("lost the scheduler's lead"), 15, "the first led on")

        for path in (config, copy):  # the schedule moved on both machines, both reloaded
            path.write_text(path.read_text().replace('"0 3 1 1 *"', '"0 4 1 1 *"'))
        second.process.send_signal(signal.SIGHUP)
        _until(lambda: second.said("scheduled anew"), 30, "the leader never rescheduled")
        _until(lambda: "reloaded on SIGHUP" in _jobs(config)["jobs"]["reload"]["summary"], 30, "")
        first.process.send_signal(signal.SIGHUP)
        _until(lambda: first.said("config reloaded"), 30, "the standby never reloaded")

        second.process.send_signal(signal.SIGTERM)  # the first leads again
        second.process.wait(30)
        _until(lambda: first.log.read_text().count("leading:") == 2, 30, "never led again")
        _until(lambda: first.log.read_text().count("scheduled send daily") == 2, 30, "no jobs")
        assert "scheduled anew" not in first.log.read_text(), first.log.read_text()
    finally:
        for daemon in (second, first):
            if daemon.process.poll() is None:
                daemon.process.send_signal(signal.SIGTERM)
        for daemon in (second, first):
            daemon.process.wait(30)
