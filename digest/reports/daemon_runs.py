"""When each digest goes next, and whose word that is: the running daemon's, as its last
``reload`` record names them (its config may be older than the file: an edit not
reloaded, a refused one), or the config file's where no daemon runs. `digest status` and
the console's dashboard both show ``daemon_next_runs``, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from digest.app import App
from digest.clock import utc_time
from digest.editions import digest_plan, missed_slot
from digest.job_names import RELOAD, next_runs_of
from digest.store.tables import JobRun


@dataclass(frozen=True)
class NextRun:
    """When a digest fires next (its firing plan), in UTC and in its own zone."""

    digest_id: str
    title: str
    utc: datetime | None
    local: datetime | None
    zone: str
    # The latest slot, passed with no edition (``missed_slot``): its send failed, maybe
    # before it could record even that, so the last job's "ok" is not today's.
    missed: datetime | None = None
    # Whose it is: "" the file's (its plan); else why it is the running daemon's (its
    # ``reload`` record's), or why the daemon does not schedule it
    daemon_note: str = ""

    def missed_words(self) -> str:
        """The missed slot and what to do, in one line; "" when none is."""
        if self.missed is None:
            return ""
        return (
            f"the {utc_time(self.missed)} slot has no edition: its send failed before "
            "building one (the database's disk full or locked, the daemon down: the "
            "daemon's log says why); the daemon's retry job sends it while within the hour "
            f"of the slot, `digest send --digest {self.digest_id}` sends it now (until the "
            "next slot)"
        )


# How a next run the running daemon's record names begins its note: `digest status` says it
# once, above them all, and adds only the other notes to a digest's line
AS_THE_DAEMON_HAS_IT = "as the running daemon has it"


class NextRunsFrom(StrEnum):
    """Whose next runs a face shows (``next_runs_from`` in `digest status --json`)."""

    DAEMON = "daemon"  # the running daemon's last ``reload`` record names them
    FILE = "file"  # the config file's plan: no daemon runs, or its record names none


def next_runs(app: App, now: datetime) -> list[NextRun]:
    """Each digest's next fire as the config file has it (``digest_plan``), and its
    latest slot if that passed without an edition (``missed_slot``)."""
    runs = []
    for d in app.config.digests:
        plan = digest_plan(app, d)
        fire = plan.next_fire(now)
        local = fire.astimezone(ZoneInfo(plan.zone)) if fire else None
        runs.append(NextRun(d.id, d.title, fire, local, plan.zone, missed_slot(app, d, now)))
    return runs


def daemon_reading(jobs: list[JobRun]) -> JobRun | None:
    """The daemon's last reading of its config among the last ``jobs``: its ``reload``
    record (taken or refused, by the leader), None when it wrote none."""
    return next((run for run in jobs if run.job == RELOAD), None)


def next_runs_from(read: JobRun | None, daemon: str | None) -> NextRunsFrom:
    """Whose next runs ``daemon_next_runs`` gives: the running ``daemon``'s when its last
    ``reload`` record (``read``, written at its start and at each reload) names them."""
    named = next_runs_of(read.summary) if read is not None and daemon else None
    return NextRunsFrom.FILE if named is None else NextRunsFrom.DAEMON


def daemon_next_runs(
    app: App, now: datetime, read: JobRun | None, daemon: str | None
) -> list[NextRun]:
    """Each digest's next fire as the running ``daemon`` has it: its last ``reload`` record
    (``read``) names them, from the config it read, which may not be the file's yet (an
    edit not reloaded, a refused one). The file's (``next_runs``) where no daemon runs or
    its record names none; for a time it names that has passed (the daemon fired it
    since), the next by the schedule, the file's, said so."""
    runs = next_runs(app, now)
    named = next_runs_of(read.summary) if read is not None and daemon else None
    if read is None or named is None:
        if daemon is None:
            return runs
        note = "the config file's: the running daemon's `reload` record does not name it"
        return [replace(run, daemon_note=note) for run in runs]
    at = utc_time(read.finished_at)
    plans = {d.id: digest_plan(app, d) for d in app.config.digests}
    mine = []
    for run in runs:
        if run.digest_id not in named:
            note = "the running daemon does not schedule it (its config has no such digest)"
            mine.append(replace(run, utc=None, local=None, missed=None, daemon_note=note))
            continue
        when = named.pop(run.digest_id)
        if when is not None and when < now:
            note = f"the file's schedule's: the daemon's recorded next, {utc_time(when)}, passed"
            # The file's missed slot is the daemon's only where the file's plan is its own
            # as far as the record tells: from the reading, it fires when the daemon said
            ours = plans[run.digest_id].next_fire(read.finished_at) == when
            mine.append(replace(run, missed=run.missed if ours else None, daemon_note=note))
            continue
        local = when.astimezone(ZoneInfo(run.zone)) if when else None
        note = f"{AS_THE_DAEMON_HAS_IT}: its config read at {at}"
        missed = None if _not_its_slot(run.missed, read, when) else run.missed
        mine.append(replace(run, utc=when, local=local, missed=missed, daemon_note=note))
    for digest, when in named.items():  # the daemon's, gone from the file since
        note = f"the running daemon's, a digest no longer in the file (read at {at})"
        mine.append(NextRun(digest, digest, when, when, "UTC", daemon_note=note))
    return mine


def _not_its_slot(slot: datetime | None, read: JobRun, fires: datetime | None) -> bool:
    """The file's missed ``slot`` was not the running daemon's: when it read its config
    (``read``), its next run came after that slot (``fires``; None: never), so it never
    meant to fire then (the file's schedule, moved and not reloaded, has that slot)."""
    return slot is not None and read.finished_at < slot and (fires is None or slot < fires)


def recorded_next_runs(read: JobRun | None) -> list[NextRun]:
    """Each digest's next run as a ``reload`` record (``read``) names it, in UTC, where the
    file that would give its title and zone cannot be read (`digest status` on a broken
    config)."""
    named: dict[str, datetime | None] = (next_runs_of(read.summary) if read else None) or {}
    return [NextRun(digest, digest, when, when, "UTC") for digest, when in named.items()]
