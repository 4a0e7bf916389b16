"""A standby's refused reload is its host's record, ``reload on HOST`` (PostgreSQL), FAILED
in `digest status` and ``digest_job_ok``. Only that standby's next successful SIGHUP
cleared it: restarted on its fixed file (how most admins take a fix), it read the file
whole and said nothing, so the row stayed FAILED, and an alert on it fired, for ever.
A scheduler that starts has read its file: its host's old refusal is gone."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.test_election import Daemon, _jobs, _until, config

__all__ = ["config"]  # the fixture: two schedulers on one PostgreSQL database


@pytest.mark.slow
def test_a_standby_restarted_on_its_fixed_file_is_no_longer_failed(
    config: Path, tmp_path: Path
) -> None:
    leader = Daemon(config, tmp_path / "leader.log")
    _until(lambda: leader.said("leading:"), 60, "the first scheduler never led")
    copy = tmp_path / "standby.toml"  # another machine's copy of the same file
    copy.write_text(config.read_text())
    standby = Daemon(copy, tmp_path / "standby.log")
    mine = f"reload on {socket.gethostname()}"
    daemons = [leader, standby]
    try:
        _until(lambda: standby.said("standing by"), 60, "the second never stood by")
        copy.write_text(
            copy.read_text().replace("[gather]\n", '[gather]\ninterval_minutes = "x"\n')
        )
        standby.process.send_signal(signal.SIGHUP)
        _until(lambda: mine in _jobs(config)["jobs"], 30, "the standby never recorded")
        assert _jobs(config)["jobs"][mine]["ok"] is False
        copy.write_text(config.read_text())  # fixed, and the standby restarted on it
        standby.process.send_signal(signal.SIGTERM)
        standby.process.wait(30)
        standby = Daemon(copy, tmp_path / "standby-again.log")
        daemons.append(standby)
        _until(lambda: standby.said("standing by"), 60, "the restarted one never stood by")
        run = _jobs(config)["jobs"].get(mine)
        assert run is None or run["ok"] is True, run
    finally:
        for daemon in daemons:
            if daemon.process.poll() is None:
                daemon.process.send_signal(signal.SIGTERM)
        for daemon in daemons:
            daemon.process.wait(30)
