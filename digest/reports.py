"""Typed reports of the service's state, for the faces that show them: `digest status` and
`digest explain` print them (text, or JSON from the same report), the console renders them.

A face asks for a report and shows it; it does not gather state from the store itself, so
the CLI and the console cannot count or time a thing differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from digest.app import App
from digest.clock import utc_time
from digest.config import DigestConfig
from digest.editions import (
    breadth_sources,
    digest_plan,
    left_out,
    missed_slot,
    next_edition_at,
    nothing_new,
    window_ranking,
)
from digest.job_names import digest_of
from digest.states import FINAL_DELIVERY_STATES, DeliveryStatus
from digest.store import Edition, saved_id
from digest.store.lock import daemon_holder
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
        }


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


def next_runs(app: App, now: datetime) -> list[NextRun]:
    """Each digest's next fire, as the daemon's job has it (``digest_plan``), and its
    latest slot if that passed without an edition (``missed_slot``)."""
    runs = []
    for d in app.config.digests:
        plan = digest_plan(app, d)
        fire = plan.next_fire(now)
        local = fire.astimezone(ZoneInfo(plan.zone)) if fire else None
        runs.append(NextRun(d.id, d.title, fire, local, plan.zone, missed_slot(app, d, now)))
    return runs


@dataclass(frozen=True)
class StatusReport:
    """`digest status`: recent editions, the outbox, the daemon, next runs and last jobs."""

    editions: list[EditionStatus]
    next_runs: list[NextRun]
    jobs: dict[str, JobRun]  # the latest run of each job
    daemon: str | None  # the daemon's lock holder, None when none runs
    outbox: dict[str, Any]

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
        }
        return document | self.outbox


def _ok_since_json(run: JobRun | None) -> dict[str, str] | None:
    return None if run is None else {"job": run.job, "finished_at": run.finished_at.isoformat()}


def edition_note(edition: Edition, counts: dict[str, int]) -> str | None:
    """Why an edition with no delivery rows (``counts``) mailed nobody, when that was by
    design (``editions.nothing_new``); None for any other. `digest status` and the
    console's editions both say it."""
    return None if counts else nothing_new(edition)


def edition_status(app: App, edition: Edition) -> EditionStatus:
    """An edition's delivery counts and reasons, as `digest status` shows them."""
    edition_id = saved_id(edition)
    grouped: dict[str, dict[str, int]] = {}
    for state, reason, rows in app.store.delivery_reasons(edition_id, limit=100):
        grouped.setdefault(state, {})[reason] = rows
    counts = app.store.delivery_counts(edition_id)
    return EditionStatus(edition, edition_id, counts, grouped, edition_note(edition, counts))


def status_report(app: App, now: datetime | None = None) -> StatusReport:
    """The service's state as `digest status` shows it."""
    now = now or app.clock.now()
    return StatusReport(
        editions=[edition_status(app, e) for e in app.store.editions(limit=20)],
        next_runs=next_runs(app, now),
        jobs={run.job: run for run in app.store.job_runs()},
        daemon=daemon_holder(app.engine),
        outbox=outbox_document(app),
    )


def outbox_document(app: App) -> dict[str, Any]:
    """The queue over every edition and the processes sending it (workers and schedulers,
    by their heartbeat rows), as `digest status --json` prints them."""
    now = app.clock.now()
    q = app.store.queue_summary()
    every = {
        "worker": app.config.worker.heartbeat_seconds,
        "scheduler": app.config.schedule.leader_check_seconds,
    }
    processes = []
    for w in app.store.workers():
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
        "unrecorded": unrecorded_sends(app),
        "workers": processes,
    }


def unrecorded_sends(app: App) -> dict[str, Any] | None:
    """The journal of sends the database failed to record, if it holds any: per batch, the
    edition, when the server took it and the database's error (None: nothing waiting)."""
    journal = app.store.journal
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


@dataclass(frozen=True)
class SignalShare:
    """One signal of a story's score: its value and what it adds, weighted."""

    value: float
    adds: float


@dataclass(frozen=True)
class ExplainedStory:
    """One story of the next edition with each signal's contribution to its score."""

    section: str  # breaking, latest, or sent (left out: an earlier edition sent it)
    rank: int
    story_id: int
    score: float
    headline: str
    sources: list[str]
    signals: dict[str, SignalShare]

    def to_json(self) -> dict[str, Any]:
        """As `digest explain --json` lists it."""
        return {
            "section": self.section,
            "rank": self.rank,
            "story_id": self.story_id,
            "score": self.score,
            "headline": self.headline,
            "sources": self.sources,
            "signals": {n: {"value": s.value, "adds": s.adds} for n, s in self.signals.items()},
        }


@dataclass(frozen=True)
class ExplainReport:
    """`digest explain`: the next edition's ranked stories and what was left out, named by
    digest and slot (the edition `status` will list) and the moment it is ranked as of."""

    digest_id: str
    title: str
    slot: datetime  # UTC, as `digest status` lists editions
    ranked_at: datetime  # UTC: now when the slot's edition is still to build, else its fire
    zone: str  # the digest's own zone, for the slot in local time
    stories: list[ExplainedStory]
    left_out: list[str]
    breaking: int
    latest: int
    # The sources' habits the store keeps (``rank.habits``), of the sources enabled now (those
    # the ranking reads): sources, stories they carried in all, and up to when stories are
    # tallied (None: nothing kept yet)
    habit_sources: int = 0
    habit_stories: int = 0
    habits_until: datetime | None = None
    breadth_sources: int | None = 0  # configured sources with a breadth (0: not yet; None: off)

    def header(self) -> list[str]:
        """Short lines naming what is shown (each fits a terminal beside the table):
        ``digest: daily (Morning Wire)``, ``slot: 2026-12-08 06:00 UTC (07:00
        Europe/Paris)``, ``ranked as of: 2026-12-07 09:12 UTC``, and what the ranking
        learned from this store's history (the ``rerun`` and ``breadth`` columns)."""
        local = self.slot.astimezone(ZoneInfo(self.zone))
        zone = f" ({local:%H:%M} {self.zone})" if self.zone != "UTC" else ""
        return [
            f"digest: {self.digest_id} ({self.title})",
            f"slot: {utc_time(self.slot)}{zone}",
            f"ranked as of: {utc_time(self.ranked_at)}",
            self.learned(),
            self.breadth(),
        ]

    def learned(self) -> str:
        """What the rerun votes lean on: the habits kept over the store's history, or none."""
        if self.habits_until is None:
            return "learned: no source habits kept yet (rerun: from the last day's stories)"
        return (
            f"learned: rerun habits of {self.habit_sources} sources, {self.habit_stories} "
            f"stories carried, to {utc_time(self.habits_until)}"
        )

    def breadth(self) -> str:
        """What the breadth votes lean on: how many configured sources have one."""
        if self.breadth_sources is None:
            return "breadth: off (rank.breadth_weight = 0)"
        if not self.breadth_sources:
            return "breadth: not yet (needs a few thousand stories tallied)"
        return f"breadth: learned for {self.breadth_sources} sources"

    def to_json(self) -> dict[str, Any]:
        """The JSON document `digest explain --json` prints."""
        return {
            "digest": self.digest_id,
            "title": self.title,
            "slot": self.slot.isoformat(),
            "ranked_at": self.ranked_at.isoformat(),
            "timezone": self.zone,
            "stories": [s.to_json() for s in self.stories],
            "left_out": self.left_out,
            "learned": {
                "habit_sources": self.habit_sources,
                "habit_stories": self.habit_stories,
                "habits_until": self.habits_until and self.habits_until.isoformat(),
                "breadth_sources": self.breadth_sources,
            },
        }


def explain_report(app: App, digest: DigestConfig, now: datetime | None = None) -> ExplainReport:
    """The next edition ranked as of when it is built, each signal's share of each score."""
    at = next_edition_at(app, digest, now or app.clock.now())
    ranking = window_ranking(app, digest, at)  # with the tally the store keeps after it
    ranked, kept = ranking.edition, ranking.kept
    stories = [
        ExplainedStory(
            section,
            rank,
            story.story_id,
            story.score,
            story.lead.title,
            list(story.sources),
            {s.name: SignalShare(s.value, round(s.contribution, 4)) for s in story.signals},
        )
        for section, ranked_stories in (
            ("breaking", ranked.breaking),
            ("latest", ranked.latest),
            ("sent", ranked.repeated),  # left out: sent before, not grown since
        )
        for rank, story in enumerate(ranked_stories, start=1)
    ]
    notes = left_out(app, digest, at, ranked)
    plan = digest_plan(app, digest)
    return ExplainReport(
        digest.id,
        digest.title,
        plan.slot(at),
        at.astimezone(UTC).replace(microsecond=0),
        plan.zone,
        stories,
        notes,
        len(ranked.breaking),
        len(ranked.latest),
        len(kept.sources),
        sum(habit.stories for habit in kept.sources.values()),
        kept.until,
        breadth_sources(kept, app.config.rank.breadth_weight, (s.name for s in app.config.sources)),
    )
