"""``digest run``: the daemon. APScheduler fires each digest on its cron schedule, gathers
on an interval, and between slots sends deferred rows when their retry time comes;
SIGTERM or SIGINT lets the running job finish, then exits.

Jobs run one at a time (a single worker thread, which forks each job a process of its own:
``schedule.forked``), so a gather and a send never race on the same rows. After the daemon
was down or the machine slept, each reader is sent the latest slot they missed within the
grace period, once (``owed_slots``), never every slot missed.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from digest.app import App
from digest.clock import utc_time
from digest.config import Config, DigestConfig
from digest.schedule.forked import JobRunner
from digest.schedule.leading import Signals, elected, lead
from digest.schedule.memory import cap_arenas
from digest.schedule.slots import FiringPlan, slots_between
from digest.states import FINAL_DELIVERY_STATES
from digest.store.lock import daemon_lock
from digest.store.pg import is_postgresql

log = logging.getLogger("digest.schedule")
MISFIRE_GRACE_SECONDS = 3600


def build_scheduler(
    app: App, now: datetime | None = None, stop: Callable[[], bool] | None = None
) -> BackgroundScheduler:
    """A scheduler with one job per digest on its firing plan (due at once when slots were
    missed while the daemon was down), a gathering job and a retry job. ``stop`` is asked by
    the sending jobs before each batch: the lead is lost, or a second SIGTERM came. Each job
    runs in a process of its own (``schedule.forked``: the daemon stays the size it started,
    however long it runs), or where it cannot fork, in the daemon's thread followed by
    handing back the memory it freed."""
    from digest.editions import digest_plan
    from digest.job_names import sending
    from digest.jobs import gather_job

    scheduler = BackgroundScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": MISFIRE_GRACE_SECONDS,
        },
    )
    config = app.config
    runner = JobRunner(app, stop, forked=config.schedule.fork_jobs)
    now = now or app.clock.now()
    plans = [(digest, digest_plan(app, digest)) for digest in config.digests]
    for digest, plan in plans:
        owed = owed_slots(app, digest, plan, now)
        _note_skipped(app, digest, plan, now, owed)
        _note_lost(app, digest, now, owed)
        job = sending("send", digest.id)
        scheduler.add_job(
            runner.run,
            plan.trigger(),
            args=[job, partial(_send_due, app, digest, plan)],
            id=f"digest:{digest.id}",
            name=job,
            **({"next_run_time": now} if owed else {}),
        )
    scheduler.add_job(
        runner.run,
        IntervalTrigger(minutes=config.gather.interval_minutes),
        args=["gather", lambda _stop: gather_job(app)],
        id="gather",
        name="gather",
        next_run_time=datetime.now(UTC),  # APScheduler's own (real) clock: gather at once
    )
    scheduler.add_job(
        runner.run,
        IntervalTrigger(seconds=retry_interval_seconds(config)),
        args=["retry", partial(_retry_owed, app, plans)],
        id="retry",
        name="retry deferred",
    )
    return scheduler


def _send_due(
    app: App, digest: DigestConfig, plan: FiringPlan, stop: Callable[[], bool] | None
) -> None:
    """A digest's job: the slots of the grace period still owed, oldest first, each as
    it would have been built then, then the current slot; one gathering serves all.

    Owed slots come from a restart, a job started late behind a long one (a local-time
    digest's slot is a quarter hour), or fires coalesced into one run.
    """
    from digest.jobs import send_job

    now = app.clock.now()
    current = plan.slot(now)
    owed = [s for s in owed_slots(app, digest, plan, now) if s != current]
    for i, slot in enumerate(owed):
        log.warning("digest %s: sending the %s slot it missed", digest.id, f"{slot:%H:%M}")
        send_job(app, digest.id, at=slot, gather_first=i == 0, stop=stop)
    late = now - current
    if late > timedelta(minutes=1) and _unsent(app, digest.id, current):
        # (a restart after the slot, or a job that ran long before this one)
        log.warning(
            "digest %s: sending the %s slot it missed, %d minutes late",
            digest.id,
            f"{current:%H:%M}",
            late.total_seconds() // 60,
        )
    send_job(app, digest.id, gather_first=not owed, stop=stop)


def _retry_owed(
    app: App,
    plans: list[tuple[DigestConfig, FiringPlan]],
    stop: Callable[[], bool] | None,
) -> None:
    """The retry job: rows due between slots, after any slot of the grace period that has no
    edition at all: its send failed before building one (a locked database, a broken
    template fixed since), and no other job would come back to it."""
    from digest.editions import superseding_edition
    from digest.jobs import retry_job, send_job

    for digest, plan in plans:
        for slot in owed_slots(app, digest, plan, app.clock.now()):
            if superseding_edition(app, digest, slot) is not None:
                continue  # a schedule moved: readers have a later edition already
            if app.store.edition(digest.id, slot) is None:
                log.warning(
                    "digest %s: the %s slot has no edition (its send failed?); sending it",
                    digest.id,
                    f"{slot:%H:%M}",
                )
                send_job(app, digest.id, at=slot, gather_first=False, stop=stop)
    retry_job(app, stop=stop)


def retry_interval_seconds(config: Config) -> float:
    """How often the retry job looks for due rows: the first retry wait
    (``delivery.retry_base_seconds``), at least a minute and at most a quarter hour, so a
    greylisted message goes soon after its wait and an idle daemon does not poll. (A wait
    of 0 means a deferred row is tried at every look, once a minute.)"""
    return min(900.0, max(60.0, config.delivery.retry_base_seconds))


def owed_slots(app: App, digest: DigestConfig, plan: FiringPlan, now: datetime) -> list[datetime]:
    """The slots still owed, oldest first: for each reader the latest slot of the grace
    period that was theirs, if it was not (fully) sent; never one from before the daemon
    first scheduled the digest, nor one older than an edition readers already have.

    So a first start on a fresh database owes nothing (its first edition goes at the next
    slot), a restart after an hour down owes one edition, not one per missed slot, and a
    slot lost behind a long job is not sent after a newer one. A local-time digest's
    quarter hours go to different time zones: each zone is owed its own latest slot (and
    a quarter hour that is nobody's local time owes nothing).
    """
    from digest.editions import local_time_bucket, superseding_edition

    since = app.store.scheduled_since(digest.id, now)
    start = max(now - timedelta(seconds=MISFIRE_GRACE_SECONDS), since)
    owed: list[datetime] = []
    covered: set[str | None] = set()  # the readers a newer slot was for
    for slot in reversed(plan.slots_between(start, now)):
        audience = local_time_bucket(app, digest, slot)
        zones: set[str | None] = {_EVERYONE} if audience is None else audience
        if not zones - covered:
            continue
        covered |= zones
        if superseding_edition(app, digest, slot) is None and _unsent(app, digest.id, slot):
            owed.append(slot)
    return owed[::-1]


_EVERYONE = "*"  # an ordinary digest's slot is for every reader (not a time zone's name)


def missed_slots(
    app: App, digest_id: str, schedule: str, timezone: str, now: datetime
) -> list[datetime]:
    """The digest's slots within the grace period that were not (fully) sent, oldest first
    (``owed_slots`` picks from these what is still sent).

    A daemon that was down at 07:00 and starts at 07:20 sends the 07:00 edition at once; one
    that starts at 09:00 waits for the next slot. A local-time digest has a slot every
    quarter hour, so a restart at 07:20 owes both 07:00 and 07:15 (each to the zones whose
    07:00 it is). The edition of a slot is built once, so a catch-up never sends anyone a
    second copy.
    """
    grace = timedelta(seconds=MISFIRE_GRACE_SECONDS)
    return [
        slot
        for slot in slots_between(schedule, timezone, now - grace, now)
        if _unsent(app, digest_id, slot)
    ]


def _note_skipped(
    app: App,
    digest: DigestConfig,
    plan: FiringPlan,
    now: datetime,
    owed: list[datetime],
) -> None:
    """Say once, at start, which missed slots are not sent (only the latest is)."""
    from digest.editions import local_time_bucket

    since = app.store.scheduled_since(digest.id, now)
    newest = app.store.newest_edition(digest.id)
    # Slots older than the newest edition were noted when it was sent (a reload, a quick
    # restart): not again.
    since = max(since, newest.slot) if newest is not None else since
    skipped = [
        slot
        for slot in missed_slots(app, digest.id, plan.schedule, plan.timezone, now)
        if slot > since and slot not in owed and local_time_bucket(app, digest, slot) != set()
    ]
    if skipped:
        log.warning(
            "digest %s: %d slot%s missed while the daemon was down (%s to %s) not sent: "
            "readers get the latest one%s",
            digest.id,
            len(skipped),
            "s" if len(skipped) != 1 else "",
            f"{skipped[0]:%H:%M}",
            f"{skipped[-1]:%H:%M}",
            f" ({', '.join(f'{s:%H:%M}' for s in owed)})" if owed else "",
        )


def _note_lost(app: App, digest: DigestConfig, now: datetime, owed: list[datetime]) -> None:
    """Say at start that the digest's latest slot has no edition and is not owed (the
    daemon was down past the hour of grace): nothing sends it unless the admin does."""
    from digest.editions import missed_slot

    slot = missed_slot(app, digest, now)
    if slot is None or slot in owed or now - slot <= timedelta(seconds=MISFIRE_GRACE_SECONDS):
        return
    log.warning(
        "digest %s: the %s slot passed while the daemon was down, over an hour ago: not "
        "sent (the next goes at its slot); `digest send --digest %s` sends it now",
        digest.id,
        utc_time(slot),
        digest.id,
    )


def rescheduled(before: App | None, app: App, now: datetime) -> list[str]:
    """The digests the daemon schedules from ``now`` on another plan than it did: a reload
    moved their schedule (or zone), or added them, against the config it ran (``before``);
    at start (None), against the last ``reload`` record of the daemon before
    (``moved_since_read``). Each is recorded as scheduled since ``now``
    (``Store.rescheduled``): a slot of the new plan before then was never the daemon's, so
    it is neither owed (sent late) nor reported MISSED; moved from 07:00 to 06:00 at 07:05,
    today's 06:00 was never due."""
    from digest.editions import digest_plan

    if before is None:
        moved = moved_since_read(app, now)
    else:
        # The schedule too: a local-time digest's plan is every quarter hour in UTC, whatever
        # local time it names, so 07:00 moved to 06:00 leaves its plan as it was
        ran = {d.id: (digest_plan(before, d), d.schedule) for d in before.config.digests}
        moved = []
        for d in app.config.digests:
            plan, was = digest_plan(app, d), ran.get(d.id)
            if was == (plan, d.schedule):
                continue
            # Its latest slot a slot of the plan it ran too (07:00 kept, 19:00 added): the
            # daemon's, owed still if its send failed
            latest = plan.slot(now)
            if was is None or d.local_time or was[0].slot(latest) != latest:
                moved.append(d.id)
    for digest_id in moved:
        app.store.rescheduled(digest_id, now)
        log.info(
            "digest %s: scheduled anew from %s (its schedule changed): a slot of the new "
            "schedule before it is not sent late",
            digest_id,
            utc_time(now),
        )
    return moved


def moved_since_read(app: App, now: datetime) -> list[str]:
    """At start, the digests whose plan the daemon before did not run, as its last
    ``reload`` record says: one it did not name (added since), or one whose plan fires
    between that reading and the next run it named (moved earlier, the file edited while
    no daemon ran), unless its latest slot before ``now`` is that next run (07:00 kept,
    19:00 added, a daemon down over 07:00: 07:00 was its slot, owed still). None when no
    record names the next runs."""
    from digest.editions import digest_plan
    from digest.job_names import RELOAD, next_runs_of

    read = next((run for run in app.store.job_runs() if run.job == RELOAD), None)
    named = next_runs_of(read.summary) if read is not None else None
    if read is None or named is None:
        return []
    moved = []
    for digest in app.config.digests:
        plan = digest_plan(app, digest)
        fires = plan.next_fire(read.finished_at)
        was = named.get(digest.id)  # to the minute, as a cron's fires are
        earlier = digest.id not in named or (fires is not None and (was is None or fires < was))
        kept = was is not None and not digest.local_time and plan.slot(now) == was
        if earlier and not kept:
            moved.append(digest.id)
    return moved


def _unsent(app: App, digest_id: str, slot: datetime) -> bool:
    edition = app.store.edition(digest_id, slot)
    if edition is None or edition.id is None:
        return True
    counts = app.store.delivery_counts(edition.id)
    return any(n for state, n in counts.items() if state not in FINAL_DELIVERY_STATES)


def run_daemon(
    app: App,
    stop: threading.Event | None = None,
    reload_config: Callable[[Config], Config] | None = None,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set).

    A first SIGTERM lets the running job finish; a second one, or a SIGINT, stops it after
    the batch on the wire. SIGHUP reloads the config through ``reload_config``, given the
    running config (the config package's ``reload_config``): an invalid new config is
    reported and the old one kept.

    PostgreSQL: any number run; one leads (``LeaderLock``, checked every
    ``schedule.leader_check_seconds``), the others stand by and take over when it stops. A
    leader that loses the lock stops scheduling at once, and its running job stops after
    the batch on the wire. SQLite: one daemon per database; a second exits at once.
    """
    cap_arenas()  # before the scheduler's threads start (schedule.memory says why)
    stop = stop or threading.Event()
    halt = threading.Event()  # stop after the batch on the wire, not after the job
    reload = threading.Event()
    # What the daemon does on schedule is routine (INFO), and its log is how an admin
    # follows it: its own lines show without -v, warnings stay for what needs a look.
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            log.info("received SIGHUP; reloading the config")
            reload.set()
            return
        if signum == signal.SIGINT or stop.is_set():
            log.warning("received %s; stopping after the batch on the wire", name)
            halt.set()
        else:
            log.info(
                "received %s; finishing the running job, then exiting (a second SIGTERM, or "
                "SIGINT, stops after the batch on the wire)",
                name,
            )
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, on_signal)

    ran: list[App] = []  # the app this daemon last scheduled, if it did

    def build(app: App, stopping: Callable[[], bool], reloading: bool) -> BackgroundScheduler:
        # Taking the lead (PostgreSQL), the plans before are the last leader's, as its
        # ``reload`` record names them, not the ones this daemon ran when it last led
        rescheduled(ran[0] if ran and reloading else None, app, app.clock.now())
        ran[:] = [app]
        return build_scheduler(app, stop=stopping)

    signals = Signals(stop, halt, reload, reload_config, build)
    if is_postgresql(app.engine):
        elected(app, signals)
    else:
        with daemon_lock(app.engine):
            lead(app, signals)
    log.info("stopped")
