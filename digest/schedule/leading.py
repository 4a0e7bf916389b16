"""Who schedules: the one daemon on a SQLite database, or the elected one of many on
PostgreSQL (the others stand by). Both restart their scheduler on a reloaded config."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING

from digest.app import App
from digest.clock import utc_time
from digest.config import Config
from digest.errors import ConfigError
from digest.job_names import RELOAD, RELOAD_FINGERPRINT, reload_next, standby_reload
from digest.states import WorkerRole, WorkerState
from digest.store.lock import LeaderLock
from digest.store.workers import this_process

log = logging.getLogger("digest.schedule")

# The daemon's scheduler for an app, given ``stop`` (``daemon.build_scheduler``).
# The scheduler built on an app's config (``stopping``: asked before each batch); the
# last: True when it replaces the one this daemon ran (a SIGHUP while leading), False at
# a start or a take-over of the lead, where the plans before are the last leader's.
BuildScheduler = Callable[[App, Callable[[], bool], bool], BackgroundScheduler]


@dataclass(frozen=True)
class Signals:
    """What the daemon's signal handler sets, how it reloads the config, and how it builds
    its scheduler.

    ``stop``: finish the running job, then exit; ``halt``: stop after the batch on the wire;
    ``reload``: read the config again through ``reload_config`` (None: this daemon cannot);
    ``build``: the scheduler to run while leading, handed in by the daemon, which knows
    the jobs (who leads need not know what is scheduled, nor import the daemon that
    calls it).
    """

    stop: threading.Event
    halt: threading.Event
    reload: threading.Event
    reload_config: Callable[[Config], Config] | None
    build: BuildScheduler


def lead(app: App, signals: Signals) -> None:
    """The only daemon on the database (SQLite): schedule until stopped."""
    scheduler = _start(app, signals.build, signals.halt.is_set, STARTED)
    while not signals.stop.is_set():
        if signals.reload.wait(timeout=0.5):
            signals.reload.clear()
            new_app = _reloaded(app, signals.reload_config, scheduler)
            if new_app is not None:
                scheduler.shutdown(wait=True)
                app = new_app
                scheduler = _start(app, signals.build, signals.halt.is_set, RELOADED)
    scheduler.shutdown(wait=True)


def elected(app: App, signals: Signals) -> None:
    """One of many schedulers on PostgreSQL: lead while holding the lock, else stand by.

    The lock is asked for (standby) or checked (leader) every ``leader_check_seconds``: a
    standby leads within one interval of the lock's release (a leader killed, its session
    ended), and a leader whose session ended notices within one interval, so two lead at
    once for at most that long, and the building of an edition is idempotent (one per slot)
    and its rows are claimed with SKIP LOCKED, so even then nobody gets a second copy.
    """
    # Started, so its file was read whole: a refused reload its host's standby recorded
    # before (``reload on HOST``, FAILED) holds no more, and would stay FAILED for ever
    _forget_refusal(app, standby_reload(socket.gethostname()))
    seat = _Seat(app, signals.halt, signals.build)
    try:
        while not signals.stop.is_set():
            seat.check()
            if signals.reload.wait(timeout=0.2):
                signals.reload.clear()
                new_app = _reloaded(seat.app, signals.reload_config, seat.scheduler)
                if new_app is not None:
                    seat.reload(new_app)
    finally:
        seat.close()


def _forget_refusal(app: App, job: str) -> None:
    """Best effort, as recording it was: the database may be what fails."""
    try:
        app.store.forget_job(job)
    except Exception:
        log.exception("could not clear the %s job's last result", job)


class _Seat:
    """A scheduler's place in the election: its lock, its heartbeat row, and its scheduler
    while it leads."""

    def __init__(self, app: App, halt: threading.Event, build: BuildScheduler) -> None:
        self.app = app
        self.halt = halt
        self.build = build
        self.lock = LeaderLock(app.engine)
        self.leading = threading.Event()
        self.me = _register(app)
        self.scheduler: BackgroundScheduler | None = None
        self.next_check = 0.0
        self.said_standby = False

    def stopping(self) -> bool:
        """What the sending jobs ask before each batch: halted, or no longer leading."""
        return self.halt.is_set() or not self.leading.is_set()

    def check(self) -> None:
        """Every ``leader_check_seconds``: take the lead, notice its loss, beat."""
        if self.app.clock.monotonic() < self.next_check:
            return
        every = self.app.config.schedule.leader_check_seconds
        self.next_check = self.app.clock.monotonic() + every
        if self.scheduler is None and self.lock.try_take():
            self.leading.set()
            log.info("leading: this scheduler gathers, builds and queues editions")
            self.scheduler = _start(self.app, self.build, self.stopping, STARTED)
            self.said_standby = False
        elif self.scheduler is not None and not self.lock.still_held():
            self.leading.clear()  # the running job stops after its batch on the wire
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
            # A standby asks every interval: it takes over before this one asks again.
            self.next_check += 2 * every
            log.error(
                "lost the scheduler's lead (its database session ended); stopped "
                "scheduling at once, a standby takes over; standing by"
            )
            self.said_standby = True
        elif self.scheduler is None and not self.said_standby:
            log.info("standing by: another scheduler leads on this database")
            self.said_standby = True
        _beat(
            self.app,
            self.me,
            WorkerState.LEADING if self.scheduler is not None else WorkerState.STANDBY,
        )

    def reload(self, app: App) -> None:
        """Take the reloaded config; a leader restarts its scheduler on it."""
        self.app = app
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = _start(app, self.build, self.stopping, RELOADED)

    def close(self) -> None:
        """Stop scheduling, give up the lock and remove the heartbeat row."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
        self.leading.clear()
        self.lock.release()
        try:
            self.app.store.forget_worker(self.me)
        except Exception:
            log.exception("could not remove this scheduler's heartbeat row")


def _register(app: App) -> str:
    """This scheduler's heartbeat row (role scheduler), for `digest status`."""
    me = this_process(WorkerRole.SCHEDULER, WorkerState.STANDBY, app.clock.now())
    app.store.register_worker(me)
    return me.id


def _beat(app: App, me: str, state: str) -> None:
    try:
        app.store.beat(me, 0, 0.0, state)
    except Exception as exc:  # the database is down: the lock check says what to do
        log.error("could not write this scheduler's heartbeat: %s", exc)


# Why a leader starts its scheduler, as its ``reload`` job records it.
STARTED = "read at the daemon's start"
RELOADED = "reloaded on SIGHUP"


def _start(
    app: App, build: BuildScheduler, stop: Callable[[], bool], why: str
) -> BackgroundScheduler:
    """The scheduler started on ``app``'s config, its jobs' next runs logged, and the config
    recorded as the ``reload`` job with when each digest goes next, as this daemon has it
    (the console's and `digest status`'s "next" are read from the file, which may differ).
    Recorded only by a leader, so a second daemon that exits at once, or a standby, never
    hides the leader's refused reload; a refusal before (a bad file fixed since, then a
    restart) is history now."""
    from digest.jobs import record_reload

    scheduler = build(app, stop, why == RELOADED)
    # Paused while this thread writes the record: a job forked meanwhile by the scheduler's
    # thread would inherit the database pool's lock held, and hang.
    scheduler.start(paused=True)
    for job in scheduler.get_jobs():
        when = job.next_run_time
        # To the second, in UTC like every log line: "2026-12-07 07:00:00 UTC".
        shown = utc_time(when, seconds=True) if when else "none (paused)"
        log.info("scheduled %s; next run %s", job.name, shown)
    said = _next_said(scheduler)
    if app.config.fingerprint:  # what `digest status` compares the file with
        said += f"{RELOAD_FINGERPRINT}{app.config.fingerprint}"
    try:  # best effort: it logs a database's refusal
        record_reload(app, True, f"{why}: {config_summary(app.config)}", said)
    except Exception:
        log.exception("could not record the config's reading for `digest status`")
    finally:
        scheduler.resume()  # whatever the record did: paused, no digest would fire again
    return scheduler


def _reloaded(
    app: App,
    reload_config: Callable[[Config], Config] | None,
    running: BackgroundScheduler | None = None,
) -> App | None:
    """The app with the new config, or None (and a log line) to keep the old one: the
    refusal recorded as the ``reload`` job (``_start`` records a config it takes), with the
    ``running`` scheduler paused meanwhile, as ``_start`` does, so no job forks while this
    thread writes. No ``running`` scheduler: a standby's (PostgreSQL), whose reading, taken
    or refused, is its host's record (``standby_reload``): the leader's ``reload`` record
    names the next runs that fire, and a standby has none to name."""
    from digest.jobs import record_reload

    if reload_config is None:
        log.error("this daemon cannot reload its config; restart it instead")
        return None
    job = standby_reload(socket.gethostname()) if running is None else RELOAD
    try:
        config = reload_config(app.config)
    except ConfigError as exc:
        refused = refused_reload(app.config, exc)
        log.error("%s", refused)
        # What it runs on (a leader): `digest status` shows it, file or not
        said = _next_said(running) if running is not None else ""
        with _paused(running):
            record_reload(app, False, refused, said, job=job)
        return None
    log.info("config reloaded: %s", config_summary(config))
    if running is None:  # a refusal before is this standby's history now
        record_reload(app, True, f"{RELOADED}, standing by: {config_summary(config)}", job=job)
    return App(config, app.engine, app.store)


def _next_said(scheduler: BackgroundScheduler) -> str:
    """The ``reload`` record's words for when each digest goes next, as ``scheduler`` has
    it (the console's and `digest status`'s "next" read them back: ``next_runs_of``)."""
    jobs = scheduler.get_jobs()
    return reload_next([(j.name, j.next_run_time) for j in jobs if j.id.startswith("digest:")])


@contextmanager
def _paused(scheduler: BackgroundScheduler | None) -> Iterator[None]:
    """``scheduler`` paused (its running job goes on; none starts) and resumed however the
    block ends; nothing for None (a standby)."""
    if scheduler is None or scheduler.state != STATE_RUNNING:
        yield
        return
    scheduler.pause()
    try:
        yield
    finally:
        scheduler.resume()


def config_summary(config: Config) -> str:
    """A config in a few words: "4 sources, 1 digests"."""
    return f"{len(config.sources)} sources, {len(config.digests)} digests"


def refused_reload(running: Config, exc: ConfigError) -> str:
    """Why a reload kept the running config, and what to do: the daemon runs on, but a
    restart (a reboot in the night) reads the file as it is, and fails while it is
    invalid, so no digest goes out until someone looks."""
    where = os.path.basename(running.file) if running.file else "the config file"
    return (
        f"the new config is invalid; keeping the old one: the daemon keeps running the "
        f"config it read before, but a restart (a reboot) reads {where} as it is and "
        f"would not start while it is invalid:\n{exc.message}\n"
        f"fix it (`digest check` lists every problem), then reload: kill -HUP {os.getpid()} "
        "(or `systemctl reload`)"
    )
