"""The running daemon's view, for the console's dashboard: its config may be older than
the file the console read (an edit not reloaded, a refused one), so when each digest goes
next is what the daemon's last ``reload`` record names, not the console's own plan.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from digest.app import App
from digest.clock import utc_time
from digest.job_names import RELOAD, next_runs_of
from digest.reports import NextRun, next_runs
from digest.store.tables import JobRun


def daemon_reading(jobs: list[JobRun]) -> JobRun | None:
    """The daemon's last reading of its config among the last ``jobs``: its ``reload``
    record (taken or refused), None when it wrote none."""
    return next((run for run in jobs if run.job == RELOAD), None)


def daemon_next_runs(
    app: App, now: datetime, read: JobRun | None, daemon: str | None
) -> list[NextRun]:
    """Each digest's next fire as the running ``daemon`` has it: its last ``reload`` record
    (``read``) names them, from the config it read, which may not be the file's yet (an
    edit not reloaded, a refused one). The file's (``next_runs``) where no daemon runs, its
    record names none, or a time it names has passed (the daemon fired it since: its next
    is by its schedule, the file's too unless CONFIG NOT RELOADED says otherwise)."""
    runs = next_runs(app, now)
    named = next_runs_of(read.summary) if read is not None and daemon else None
    if named is None:
        return runs
    at = utc_time(read.finished_at) if read else ""
    mine = []
    for run in runs:
        if run.digest_id not in named:
            note = "the running daemon does not schedule it (its config has no such digest)"
            mine.append(replace(run, utc=None, local=None, missed=None, daemon_note=note))
            continue
        when = named.pop(run.digest_id)
        if when is not None and when < now:
            mine.append(run)
            continue
        local = when.astimezone(ZoneInfo(run.zone)) if when else None
        note = f"as the running daemon has it (its config read at {at})"
        mine.append(replace(run, utc=when, local=local, daemon_note=note))
    for digest, when in named.items():  # the daemon's, gone from the file since
        note = f"the running daemon's, a digest no longer in the file (read at {at})"
        mine.append(NextRun(digest, digest, when, when, "UTC", daemon_note=note))
    return mine
