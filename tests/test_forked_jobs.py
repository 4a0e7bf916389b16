"""Issue 22, point 6: the daemon runs each job in a child process, so a job's peak never
lands in the daemon's heap (pymalloc keeps an arena as long as one block in it lives, and
the daemon's RSS grew ~18 MB an hour with every job run in it). The child's logs, failures
and death are the daemon's to tell; its stop is the daemon's to give."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from digest.app import App
from digest.config import load_config
from digest.schedule import daemon, forked
from digest.schedule.forked import JobRunner
from tests.conftest import FeedServer, rss

pytestmark = pytest.mark.skipif(not forked.can_fork(), reason="the system cannot fork")

_HELD: list[bytes] = []  # what a "leaky" job keeps (in the process that ran it)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def app(write_config: Callable[..., Path], feed_server: FeedServer) -> Iterator[App]:
    url = feed_server.add("/f.xml", rss([{"title": "Harbour strike ends", "guid": "1"}]))
    opened = App.open(load_config(write_config([("Wire", url)], schedule="30 6 * * 1-5")))
    yield opened
    opened.close()
    _HELD.clear()


def _scheduled_send(app: App, monkeypatch: pytest.MonkeyPatch, job: Callable[..., None]):
    """The daemon's send job for the digest, running ``job`` in place of the real send."""
    monkeypatch.setattr(daemon, "_send_due", job)
    scheduler = daemon.build_scheduler(app)
    scheduler.start(paused=True)
    send = scheduler.get_job("digest:daily")
    scheduler.shutdown(wait=False)
    return lambda: send.func(*send.args)


def test_a_job_runs_in_a_child_and_its_peak_never_reaches_the_daemon(
    app: App, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ran_in = tmp_path / "pid"

    def leaky_send(*_args: object) -> None:
        ran_in.write_text(str(os.getpid()))
        _HELD.append(os.urandom(1) * (300 * 2**20))  # 300 MB the job never lets go

    send = _scheduled_send(app, monkeypatch, leaky_send)
    before = _rss_mb()
    send()
    assert int(ran_in.read_text()) != os.getpid()
    assert _HELD == [] and _rss_mb() - before < 50

    monkeypatch.setattr(forked, "can_fork", lambda: False)  # the same job in the daemon
    send()
    assert int(ran_in.read_text()) == os.getpid()
    assert _rss_mb() - before > 250  # what a job keeps, the daemon keeps


def test_a_jobs_log_lines_and_traceback_come_out_of_the_daemons_handlers(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def failing_send(*_args: object) -> None:
        logging.getLogger("digest.deliver").warning("batch %d of %d refused", 3, 7)
        raise RuntimeError("a bug in the job")

    send = _scheduled_send(app, monkeypatch, failing_send)
    with caplog.at_level(logging.INFO):
        send()  # the daemon goes on: the child's failure is not the daemon's
    said = {(r.name, r.levelname, r.getMessage()) for r in caplog.records}
    assert ("digest.deliver", "WARNING", "batch 3 of 7 refused") in said
    [failed] = [r for r in caplog.records if "a bug in digest" in r.getMessage()]
    assert failed.getMessage().startswith("send daily failed")
    assert failed.exc_text and "RuntimeError: a bug in the job" in failed.exc_text
    [run] = [r for r in app.store.job_runs() if r.job == "send daily"]
    assert not run.ok and "exited with code 1" in run.summary


def test_a_job_killed_mid_run_is_said_and_recorded_and_the_daemon_goes_on(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def killed_send(*_args: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would

    send = _scheduled_send(app, monkeypatch, killed_send)
    with caplog.at_level(logging.ERROR):
        send()
    assert "send daily: the job's process was killed by SIGKILL (out of memory?" in caplog.text
    [run] = [r for r in app.store.job_runs() if r.job == "send daily"]
    assert not run.ok and "killed by SIGKILL" in run.summary
    assert app.store.job_runs()  # the daemon's own connections still work


def test_the_daemons_stop_reaches_the_running_job_and_the_signals_do_not(
    app: App, tmp_path: Path
) -> None:
    """A SIGTERM sent to the whole group must not kill a job between handing a batch to the
    server and recording it: the job stops when the daemon's ``stop`` says so."""
    said = tmp_path / "said"
    asked = time.monotonic() + 0.5

    def sending(stop: Callable[[], bool]) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # ignored by the child
        os.kill(os.getpid(), signal.SIGINT)
        batches = 0
        while not stop() and batches < 200:
            batches += 1
            time.sleep(0.05)
        said.write_text(f"stopped after {batches} batches")

    started = time.monotonic()
    JobRunner(app, stop=lambda: time.monotonic() > asked).run("send daily", sending)
    assert said.read_text().startswith("stopped after")
    assert int(said.read_text().split()[2]) < 200 and time.monotonic() - started < 5


def test_a_job_leaves_the_daemons_connections_and_leader_lock_alone(
    postgres_database: str, write_config: Callable[..., Path], feed_server: FeedServer
) -> None:
    """The child has copies of the daemon's sessions: it must never close them (a closed
    copy ends the daemon's session, and the lead with it) nor use them."""
    from digest.store.lock import LeaderLock

    url = feed_server.add("/f.xml", rss([{"title": "Harbour strike ends", "guid": "1"}]))
    path = write_config([("Wire", url)])
    path.write_text(path.read_text().replace('"sqlite:///digest.db"', f'"{postgres_database}"'))
    app = App.open(load_config(path))
    lock = LeaderLock(app.engine)
    try:
        assert lock.try_take()
        with app.engine.connect() as connection:  # one pooled session besides the lock's
            daemon_pid = connection.execute(text("select pg_backend_pid()")).scalar_one()

        def job(_stop: Callable[[], bool]) -> None:
            with app.engine.connect() as connection:
                child_pid = connection.execute(text("select pg_backend_pid()")).scalar_one()
                assert child_pid != daemon_pid  # its own session, not the daemon's copy
            app.store.record_job("gather", app.clock.now(), True, "ok")

        for _ in range(3):
            JobRunner(app).run("gather", job)
        assert lock.still_held()
        with app.engine.connect() as connection:
            assert connection.execute(text("select pg_backend_pid()")).scalar_one() == daemon_pid
        assert [r.summary for r in app.store.job_runs()] == ["ok"]
    finally:
        lock.release()
        app.close()


def test_a_send_killed_mid_batch_says_its_rows_go_again_and_what_may_go_twice(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The OOM killer takes the send with a batch claimed: its rows are 'sending' until
    their lease runs out, then sent again (what the server took before the kill is
    recorded from the batch's progress file: here nothing had gone out). The failure says
    when, and what may still reach a reader twice, not only "killed"."""
    import asyncio

    from digest.pipeline import run_digest

    app.store.add_subscriber("ana@example.org")
    queued = asyncio.run(run_digest(app, "daily", send=False))
    assert queued.edition is not None and queued.edition.id is not None
    edition_id = queued.edition.id

    def killed_mid_batch(*_args: object) -> None:
        assert app.store.claim_deliveries(edition_id, 10, lease_seconds=300.0)
        os.kill(os.getpid(), signal.SIGKILL)

    send = _scheduled_send(app, monkeypatch, killed_mid_batch)
    with caplog.at_level(logging.ERROR):
        send()
    [run] = [r for r in app.store.job_runs() if r.job == "send daily"]
    assert "killed by SIGKILL" in run.summary
    assert "1 delivery was in flight" in run.summary, run.summary
    assert "sent again when its lease runs out at" in run.summary
    assert "only a message on the wire at the kill" in run.summary
    assert "may reach its reader twice" in run.summary
    assert "recorded from the batch's progress file" not in run.summary  # none went out


def test_a_send_killed_mid_batch_has_what_the_server_took_recorded_by_the_daemon(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's child holds its batch's progress file locked; killed (SIGKILL), the lock
    goes with it (the daemon forked before the file was made, so holds no copy of it), and
    the daemon records at once the reader the server had taken: not sent again."""
    import asyncio

    from digest.pipeline import run_digest
    from digest.records import OutgoingMessage, SendResult
    from digest.states import SendStatus
    from digest.store.journal_progress import ProgressFile

    for address in ("ana@example.org", "ben@example.org"):
        app.store.add_subscriber(address)
    queued = asyncio.run(run_digest(app, "daily", send=False))
    assert queued.edition is not None and queued.edition.id is not None
    edition_id = queued.edition.id

    def killed_mid_batch(*_args: object) -> None:
        claimed = app.store.claim_deliveries(edition_id, 10, lease_seconds=300.0)
        token = claimed[0][0].claim_token
        assert token is not None and app.store.journal is not None
        progress = ProgressFile.open(app.store.journal.progress, token, edition_id, app.clock)
        assert progress is not None
        first = claimed[0][0].id or 0
        message = OutgoingMessage(first, "news@x.test", "ana@example.org", "<m@x>", b"")
        progress.answered(message, SendResult(first, SendStatus.SENT, "250 queued"))
        os.kill(os.getpid(), signal.SIGKILL)  # the second on the wire

    send = _scheduled_send(app, monkeypatch, killed_mid_batch)
    send()
    [run] = [r for r in app.store.job_runs() if r.job == "send daily"]
    assert "killed by SIGKILL" in run.summary
    assert "1 delivery the server took before the kill was recorded" in run.summary
    assert "1 delivery was in flight" in run.summary, run.summary
    assert sorted(d.status for d, _ in app.store.deliveries(edition_id)) == ["sending", "sent"]
    assert app.store.journal is not None
    assert list(app.store.journal.progress.iterdir()) == []
