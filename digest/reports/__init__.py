"""Typed reports of the service's state, for the faces that show them: `digest status` and
`digest explain` print them (text, or JSON from the same report), the console renders them.

A face asks for a report and shows it; it does not gather state from the store itself, so
the CLI and the console cannot count or time a thing differently.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from digest.app import App
from digest.clock import utc_time
from digest.config import config_fingerprint
from digest.editions import nothing_new
from digest.errors import ConfigError
from digest.job_names import RELOAD, RELOAD_FINGERPRINT, digest_of
from digest.reports.daemon_runs import (
    NextRun,
    NextRunsFrom,
    daemon_next_runs,
    daemon_reading,
    next_runs,
    next_runs_from,
)
from digest.reports.explain import ExplainedStory, ExplainReport, SignalShare, explain_report
from digest.states import FINAL_DELIVERY_STATES, DeliveryStatus, StillDoubted
from digest.store import Edition, SendJournal, Store, saved_id
from digest.store.lock import daemon_holder
from digest.store.refusals import FailedSaying
from digest.store.tables import JobRun

# A process whose heartbeat is older than this many of its intervals has stopped (killed,
# or its machine lost) without removing its row.
SILENT_BEATS = 3


def progress(counts: dict[str, int]) -> float:
    """Share of an edition's rows that reached an end state (sent, failed, suppressed)."""
    total = sum(counts.values())
    finished = sum(counts.get(k, 0) for k in FINAL_DELIVERY_STATES)
    return finished / total if total else 1.0


@dataclass(frozen=True)
class EditionStatus:
    """One edition with its deliveries by state and the reasons given, grouped by state."""

    edition: Edition
    id: int
    counts: dict[str, int]
    reasons: dict[str, dict[str, int]]  # state -> reason -> rows, commonest first
    # Why it mailed nobody, when that was by design ("nothing new since the last one")
    note: str | None = None
    # Readers refused as unknown again and still not suppressed: why -> rows, first few
    still_doubted: dict[str, FailedSaying] = field(default_factory=dict)

    @property
    def progress(self) -> float:
        """Share of its rows that reached an end state."""
        return progress(self.counts)

    def to_json(self) -> dict[str, Any]:
        """As `digest status --json` lists it."""
        e = self.edition
        return {
            "id": self.id,
            "digest": e.digest_id,
            "slot": e.slot.isoformat(),
            "subject": e.subject,
            "stories": e.story_count,
            "deliveries": self.counts,
            "reasons": self.reasons,
            "progress": self.progress,
            "note": self.note,
            "still_doubted": {
                why: {"rows": f.rows, "emails": list(f.emails)}
                for why, f in self.still_doubted.items()
            },
        }


@dataclass(frozen=True)
class StatusReport:
    """`digest status`: recent editions, the outbox, the daemon, next runs and last jobs."""

    editions: list[EditionStatus]
    next_runs: list[NextRun]
    jobs: dict[str, JobRun]  # the latest run of each job
    daemon: str | None  # the daemon's lock holder, None when none runs
    outbox: dict[str, Any]
    # When the config file changed after the running daemon last read it (its ``reload``
    # record): it runs the old config; the next runs shown are its (``next_runs_from``).
    unread_change: datetime | None = None
    # Whose ``next_runs`` are: the running daemon's (its last ``reload`` record's), or the
    # config file's where no daemon runs or its record names none
    next_runs_from: NextRunsFrom = NextRunsFrom.FILE
    # The config file could not be read (`digest status` then reports what the database
    # holds, the next runs as the daemon's ``reload`` record names them): why
    config_error: ConfigError | None = None

    def unread_words(self) -> str:
        """The config change the daemon has not read, and what to do; "" when none."""
        read, aside = self.jobs.get(RELOAD), "the next runs below are its own"
        return unread_words(read, self.daemon, self.unread_change, aside)

    def ok_since(self, job: str) -> JobRun | None:
        """For a failed job, the latest run of the same digest's sending (send or retry, by
        the daemon or by hand) that went ok after it: the failure may be old news. None when
        there is none, or the job did not fail. Not a claim that the failure's rows went
        out: the edition's counts say that."""
        failed = self.jobs.get(job)
        if failed is None or failed.ok:
            return None
        digest = digest_of(job)
        later = [
            run
            for name, run in self.jobs.items()
            if digest is not None
            and digest_of(name) == digest
            and run.ok
            and run.finished_at > failed.finished_at
        ]
        return max(later, key=lambda run: run.finished_at, default=None)

    def to_json(self) -> dict[str, Any]:
        """The JSON document `digest status --json` prints."""
        document = {
            "editions": [e.to_json() for e in self.editions],
            "next_runs": {
                r.digest_id: r.utc.isoformat() if r.utc else None for r in self.next_runs
            },
            "next_runs_from": str(self.next_runs_from),
            "missed": {r.digest_id: r.missed.isoformat() for r in self.next_runs if r.missed},
            "jobs": {
                job: {
                    "finished_at": run.finished_at.isoformat(),
                    "ok": run.ok,
                    "summary": run.summary,
                    "ok_since": _ok_since_json(self.ok_since(job)),
                }
                for job, run in self.jobs.items()
            },
            "daemon": {"running": self.daemon is not None, "holder": self.daemon},
            # The config file changed after the running daemon read it (``unread_change``)
            "config_changed_since_daemon_read": _iso(self.unread_change),
            "config_error": config_error_json(self.config_error),
        }
        return document | self.outbox


def unread_words(
    read: JobRun | None, daemon: str | None, changed: datetime | None, aside: str
) -> str:
    """The config change (at ``changed``) the ``daemon`` has not read since its reading
    (``read``, its ``reload`` record), and what to do; "" when none. ``aside``: whose next
    runs the face shows beside it (`digest status`: the file's)."""
    if changed is None or read is None:
        return ""
    pid = daemon.removeprefix("pid ") if daemon else "PID"
    at = utc_time(read.finished_at, seconds=True)
    edited = utc_time(changed, seconds=True)
    if changed > read.finished_at:
        said = f"it read the config at {at}, before the file's last change at {edited}"
    else:  # its text differs, edited before: a copy on another machine, a restore
        said = (
            f"it read the config at {at}, not this file's text (changed at {edited}; "
            "a daemon on another machine reads its own copy, which may differ)"
        )
    return (
        f"{said}: it runs the old one ({aside}) until "
        f"reloaded: kill -HUP {pid}, or `systemctl reload digest`"
    )


def config_error_json(error: ConfigError | None) -> dict[str, Any] | None:
    """The config's errors as `digest status --json` gives them."""
    if error is None:
        return None
    return {"problems": [str(p) for p in error.problems], "hint": error.hint}


def _ok_since_json(run: JobRun | None) -> dict[str, str] | None:
    return None if run is None else {"job": run.job, "finished_at": run.finished_at.isoformat()}


def edition_note(edition: Edition, counts: dict[str, int]) -> str | None:
    """Why an edition with no delivery rows (``counts``) mailed nobody, when that was by
    design (``editions.nothing_new``); None for any other. `digest status` and the
    console's editions both say it."""
    return None if counts else nothing_new(edition)


def edition_status(app: App, edition: Edition) -> EditionStatus:
    """An edition's delivery counts and reasons, as `digest status` shows them."""
    return store_edition_status(app.store, edition)


def store_edition_status(store: Store, edition: Edition) -> EditionStatus:
    """``edition_status`` from the store alone (`digest status` on a config it cannot read)."""
    edition_id = saved_id(edition)
    grouped: dict[str, dict[str, int]] = {}
    for state, reason, rows in store.delivery_reasons(edition_id, limit=REASONS_READ):
        grouped.setdefault(state, {})[reason] = rows
    counts = store.delivery_counts(edition_id)
    failed = grouped.get(DeliveryStatus.FAILED, {})
    cut = sum(map(len, grouped.values())) >= REASONS_READ  # the reasons read may miss some
    doubted: dict[str, FailedSaying] = {
        why: found
        for why in StillDoubted
        if cut or any(why in reason for reason in failed)
        if (found := store.editions_failed_saying([edition_id], why).get(edition_id))
    }
    note = edition_note(edition, counts)
    return EditionStatus(edition, edition_id, counts, grouped, note, doubted)


REASONS_READ = 100  # the most reasons of an edition `digest status` reads


def status_report(app: App, now: datetime | None = None) -> StatusReport:
    """The service's state as `digest status` shows it."""
    now = now or app.clock.now()
    runs = app.store.job_runs()
    jobs = {run.job: run for run in runs}
    daemon = daemon_holder(app.engine)
    read = daemon_reading(runs)
    return StatusReport(
        editions=[edition_status(app, e) for e in app.store.editions(limit=20)],
        # The daemon's, as the dashboard shows them: it may run an older config than the file
        next_runs=daemon_next_runs(app, now, read, daemon),
        jobs=jobs,
        daemon=daemon,
        outbox=outbox_document(app),
        unread_change=unread_change(app, read) if daemon else None,
        next_runs_from=next_runs_from(read, daemon),
    )


def unread_change(app: App, read: JobRun | None) -> datetime | None:
    """When the config file changed, if the daemon's last reading of it (``read``, its
    ``reload`` record) is not what it says now: an edit not reloaded, the classic "I moved it
    to 06:00 and it went at 07:00". None when the daemon read it since, or nothing says when
    it did. A record that names the text it read (``RELOAD_FINGERPRINT``) is compared by
    content, so a file written again unchanged (a `touch`, a config-management run) or
    another machine's identical copy is no change; else by the file's time."""
    if read is None or not app.config.file:
        return None
    try:
        changed = datetime.fromtimestamp(os.stat(app.config.file).st_mtime, UTC)
    except OSError:
        return None
    held = read.summary.rpartition(RELOAD_FINGERPRINT)[2] if read.ok else ""
    if RELOAD_FINGERPRINT in read.summary and held:
        try:
            now = config_fingerprint(Path(app.config.file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return changed
        return None if now == held else changed
    # A second's grace: the reading may be recorded in the second of the edit it read.
    return changed if changed > read.finished_at + timedelta(seconds=1) else None


def outbox_document(app: App) -> dict[str, Any]:
    """The queue over every edition and the processes sending it (workers and schedulers,
    by their heartbeat rows), as `digest status --json` prints them."""
    every = {
        "worker": app.config.worker.heartbeat_seconds,
        "scheduler": app.config.schedule.leader_check_seconds,
    }
    return store_outbox_document(app.store, every)


def store_outbox_document(store: Store, every: dict[str, float]) -> dict[str, Any]:
    """``outbox_document`` from the store, ``every`` role's heartbeat interval given."""
    now = store.clock.now()
    q = store.queue_summary()
    processes = []
    for w in store.workers():
        ago = (now - w.last_seen).total_seconds()
        processes.append(
            {
                "role": w.role,
                "host": w.host,
                "pid": w.pid,
                "state": w.state,
                "started_at": w.started_at.isoformat(),
                "last_seen": w.last_seen.isoformat(),
                "seen_seconds_ago": round(ago, 1),
                "stopped": ago > SILENT_BEATS * every.get(w.role, 5.0) + 5,
                "sent": w.sent,
                "rate_per_second": round(w.rate, 1),
            }
        )
    return {
        "queue": {
            "pending": q.pending,
            "deferred": q.deferred,
            "in_flight": q.in_flight,
            "held_by_stopped_senders": q.orphaned,
            "oldest_pending_since": _iso(q.oldest),
            "oldest_pending_seconds": round((now - q.oldest).total_seconds()) if q.oldest else None,
            "in_flight_back_by": _iso(q.back_at),
            "next_deferred_due_at": _iso(q.next_retry),
        },
        "unrecorded": _unrecorded(store.journal),
        "workers": processes,
    }


def unrecorded_sends(app: App) -> dict[str, Any] | None:
    """The journal of sends the database failed to record, if it holds any: per batch, the
    edition, when the server took it and the database's error (None: nothing waiting)."""
    return _unrecorded(app.store.journal)


def _unrecorded(journal: SendJournal | None) -> dict[str, Any] | None:
    if journal is None:
        return None
    entries, unreadable = journal.read()  # ([], []) when empty: it stats the file itself
    if not entries and not unreadable:
        return None
    return {
        "file": str(journal.path),
        "batches": [
            {
                "edition": e.edition_id,
                "taken_at": e.at.isoformat(),
                "deliveries": len(e.results),
                "sent": sum(1 for r in e.results if r[1] == DeliveryStatus.SENT),
                "reason": e.reason,
            }
            for e in entries
        ],
        "unreadable_lines": len(unreadable),
    }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


__all__ = [
    "EditionStatus",
    "ExplainReport",
    "ExplainedStory",
    "NextRun",
    "NextRunsFrom",
    "SignalShare",
    "StatusReport",
    "edition_note",
    "edition_status",
    "explain_report",
    "next_runs",
    "next_runs_from",
    "outbox_document",
    "progress",
    "status_report",
    "unread_change",
    "unread_words",
    "unrecorded_sends",
]
