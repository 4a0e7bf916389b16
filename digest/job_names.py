"""The names jobs are recorded under (``send daily``, ``retry daily``, ``send daily
(manual)``): built by the jobs (``digest.jobs``) and read back by the reports of them
(``digest.reports``), so one module knows the format. A leaf: reading a job's name
should not load the pipeline that runs it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, get_args

_MANUAL = " (manual)"  # what ``manual`` adds to a job's name
SendingVerb = Literal["send", "retry"]  # the jobs that send one digest (``sending``)
# The daemon reading its config, at start and on SIGHUP: a refused reload is recorded, so
# `digest status`, the console and `digest_job_ok{job="reload"}` show it, not one log line.
RELOAD = "reload"
# A standby scheduler's reading of its config (PostgreSQL): a row per host, ``reload on
# web2``, so a standby's refused reload shows as that host's, and never replaces the
# leader's ``reload`` record, whose next runs are the ones that fire.
_ON_HOST = " on "
# How a taken config's ``reload`` record ends: "; config " and the fingerprint of the text
# read (``config.config_fingerprint``), which `digest status` compares with the file's.
RELOAD_FINGERPRINT = "; config "
# Where a ``reload`` record names each digest's next run as the daemon has it, taken or
# refused: "; next: send daily at 2026-12-08 07:00 UTC, send weekly at never".
RELOAD_NEXT = "; next: "
_NEXT_AT = " at "
_NONE = "none"  # a ``reload`` record's next runs when the daemon schedules no digest
_NEXT_TIME = "%Y-%m-%d %H:%M UTC"  # ``clock.utc_time``'s, to the minute


def standby_reload(host: str) -> str:
    """The name a standby's reading of its config on ``host`` is recorded under."""
    return f"{RELOAD}{_ON_HOST}{host}"


def sending(verb: SendingVerb, digest_id: str) -> str:
    """The name a job that sends one digest is recorded under: ``send daily`` (its slot's
    run), ``retry daily`` (its rows due between slots); ``digest_of`` reads it back."""
    return f"{verb} {digest_id}"


def manual(job: str) -> str:
    """The name a job run by hand is recorded under: ``send daily (manual)``. A row of its
    own, so the daemon's last result stays in view (and in `digest_job_ok`) beside it."""
    return f"{job}{_MANUAL}"


def digest_of(job: str) -> str | None:
    """The digest a sending job (``sending``, or its ``manual`` run) is of: ``send daily
    (manual)`` and ``retry daily`` are of ``daily``; None for the gathering."""
    verb, _, rest = job.removesuffix(_MANUAL).partition(" ")
    return rest if verb in get_args(SendingVerb) and rest else None


def reload_next(jobs: list[tuple[str, datetime | None]]) -> str:
    """What a ``reload`` record says of the daemon's digest jobs (name, next run): its
    ``RELOAD_NEXT`` part, which ``next_runs_of`` reads back."""
    said = [
        f"{job}{_NEXT_AT}{when.astimezone(UTC):{_NEXT_TIME}}" if when else f"{job}{_NEXT_AT}never"
        for job, when in jobs
    ]
    return f"{RELOAD_NEXT}{', '.join(said) or _NONE}"


def next_runs_of(summary: str) -> dict[str, datetime | None] | None:
    """Each digest's next run (None: never) as a ``reload`` record names it, by digest id;
    None for a record that names none (one written before records did) or one it cannot
    read whole (a record cut short at its end: half a time is not "never")."""
    if RELOAD_NEXT not in summary:
        return None
    said = summary.rpartition(RELOAD_NEXT)[2].partition(RELOAD_FINGERPRINT)[0]
    runs: dict[str, datetime | None] = {}
    for part in said.split(", "):
        job, at, when = part.rpartition(_NEXT_AT)
        if not at:
            if part.strip() == _NONE:
                continue  # the daemon schedules no digest
            return None  # cut inside a name (a record of before ``whole``): not "no more"
        digest = digest_of(job)
        if digest is None:
            continue
        if when.strip() == "never":  # its schedule does not fire
            runs[digest] = None
            continue
        try:
            runs[digest] = datetime.strptime(when.strip(), _NEXT_TIME).replace(tzinfo=UTC)
        except ValueError:
            return None
    return runs
