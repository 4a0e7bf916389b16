"""Where the stages meet: gather -> rank -> render -> deliver, with the store beside them.

The run of one digest is here; how an edition is built is in ``digest.editions``, how it is
sent (and resumed) in ``digest.sending``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from digest.app import App, run
from digest.config import DigestConfig
from digest.deliver import DeliveryReport
from digest.deliver.limits import RateLimiter
from digest.editions import (
    build_edition,
    digest_slot,
    local_time_bucket,
    nothing_new,
    superseding_edition,
)
from digest.errors import UsageError
from digest.sending import (
    deliver_edition,
    queue_edition,
    rate_limiter,
    requeue_edition,
    resume_since,
    resume_unfinished,
    stored_edition,
)
from digest.sources.gather import SourceReport, gather
from digest.states import DeliveryStatus
from digest.store import Edition

log = logging.getLogger("digest.pipeline")


@dataclass
class RunReport:
    """Everything one run did, for the CLI to print and the scheduler to log."""

    digest_id: str
    sources: list[SourceReport] = field(default_factory=list)
    edition: Edition | None = None
    created: bool = False
    delivery: DeliveryReport | None = None
    # Earlier editions of the digest whose waiting rows this run sent (see resume_unfinished)
    resumed: list[tuple[Edition, DeliveryReport]] = field(default_factory=list)
    # Why nothing was delivered, when nothing was meant to be (nobody's local time, no story)
    idle: str = ""

    @property
    def ok(self) -> bool:
        """A run fails when a delivery stopped, or when it sent nothing because the server
        failed every message it tried (``refused_all``); a bad source or one refused
        address does not.

        Refused addresses are recorded on their delivery rows and printed with the run.
        """
        deliveries = [self.delivery, *(report for _, report in self.resumed)]
        return not any(d is not None and (d.stopped or d.refused_all()) for d in deliveries)


async def gather_sources(app: App) -> list[SourceReport]:
    """Fetch every enabled source once, then prune what is past its retention period."""
    async with app.http() as client:
        reports = await gather(app.config, app.store, client)
    prune_stored(app)
    return reports


@dataclass(frozen=True)
class PruneReport:
    """What one prune deleted: articles no source lists any more, old editions, the
    delivery rows of old editions, and the kept habits of sources long gone from the
    config (how many sources)."""

    articles: int
    editions: int
    deliveries: int
    habits: int = 0


def prune_stored(app: App) -> PruneReport:
    """Delete what the retention settings let go (`gather.retention_days`, `[retention]`).

    Every gather runs it, so the daemon's database stays the size of its retention;
    `digest db prune` runs it alone.
    """
    now = app.clock.now()
    cutoff = now - timedelta(days=app.config.gather.retention_days)
    articles = app.store.prune_articles(cutoff)
    if articles:
        log.info("pruned %d articles not listed since %s", articles, f"{cutoff:%Y-%m-%d}")
    keep = app.config.retention
    history = app.store.prune_history(
        now - timedelta(days=keep.editions_days), now - timedelta(days=keep.deliveries_days)
    )
    if history.editions or history.deliveries:
        log.info(
            "pruned %d editions older than %g days and %d delivery rows of editions older "
            "than %g days",
            history.editions,
            keep.editions_days,
            history.deliveries,
            keep.deliveries_days,
        )
    configured = [source.name for source in app.config.sources]
    habits = app.store.forget_source_habits(
        configured, now - timedelta(days=keep.source_habits_days)
    )
    if habits:
        log.info(
            "forgot the habits of %d sources not configured nor fetched for %g days",
            habits,
            keep.source_habits_days,
        )
    return PruneReport(articles, history.editions, history.deliveries, habits)


async def deliver_stored(app: App, edition_id: int) -> RunReport:
    """Send a stored edition's queued rows (any slot, however old): `digest retry`.

    Nobody is newly queued: a subscriber who joined after the edition never gets it.
    """
    edition = stored_edition(app, edition_id)
    digest = app.config.digest(edition.digest_id)
    report = RunReport(digest.id, edition=edition)
    report.delivery = await deliver_edition(app, digest, edition, queue_new=False)
    return report


@dataclass
class RetryReport:
    """`digest retry EDITION` (the console's Retry too): the rows put back in the queue by
    kind, and the send that followed (None when nothing waited or none was asked for)."""

    edition_id: int
    requeued: int  # failed rows back to pending
    resumed: int  # paused rows resumed
    deferred: int  # deferred rows due now
    run: RunReport | None = None


def retry_edition(app: App, edition_id: int, send: bool = True) -> RetryReport:
    """Re-queue an edition's failed, paused and deferred rows (not bounced or unsubscribed
    people), then send what it has waiting unless ``send`` is false; nobody who joined
    since is added. Blocking: the console calls it in a worker thread.

    Without a send, an edition too old for a later run to resume is refused: the next send
    would mark its rows failed again.
    """
    edition = stored_edition(app, edition_id)  # an unknown id is an error naming recent ones
    digest = app.config.digest(edition.digest_id)
    if not send and edition.slot < resume_since(app, digest, app.clock.now()):
        raise UsageError(
            f"edition {edition_id} (slot {edition.slot:%Y-%m-%d %H:%M} UTC) is too old for a "
            "later run to send: the next send would mark its rows failed again",
            f"run `digest retry {edition_id}` without --no-send to send them now",
        )
    report = RetryReport(edition_id, *requeue_edition(app, edition_id))
    counts = app.store.delivery_counts(edition_id)
    if send and (counts.get(DeliveryStatus.PENDING) or counts.get(DeliveryStatus.SENDING)):
        report.run = run(deliver_stored(app, edition_id))
    return report


async def resume_waiting(
    app: App,
    digest_id: str | None = None,
    limiter: RateLimiter | None = None,
    send: bool = True,
    stop: Callable[[], bool] | None = None,
) -> RunReport:
    """Send what the digest's editions have waiting and due now, the current slot's
    included: deferred rows whose retry time has come, rows a sending limit held or a
    stopped run left. Nothing is built and nobody newly queued.

    The daemon's retry job, between a digest's slots: a greylisted reader of a daily digest
    gets it minutes later, not with tomorrow's run.
    """
    digest = app.config.digest(digest_id)
    report = RunReport(digest.id)
    limiter = limiter or rate_limiter(app)
    report.resumed = await resume_unfinished(
        app, digest, app.clock.now(), limiter=limiter, send=send, stop=stop
    )
    return report


async def run_digest(
    app: App,
    digest_id: str | None = None,
    *,
    now: datetime | None = None,
    gather_first: bool = True,
    send: bool = True,
    stop: Callable[[], bool] | None = None,
) -> RunReport:
    """Gather (optionally), send what earlier editions still have waiting, then build or
    reuse the slot's edition and deliver it.

    Without ``send`` (the scheduler under `[schedule] send = false`) the edition is built
    and queued, and `digest worker`s send it. ``stop`` is asked before each batch (a
    scheduler that lost its lead, a second SIGTERM).

    Earlier editions go first, so rows held back by a daily limit are not overtaken every
    day by the next edition's.
    """
    digest = app.config.digest(digest_id)
    app.config.secret()  # fail before any work when the signing secret is missing
    report = RunReport(digest.id)
    # The slot is the one the run was started for: a long gathering must not carry a
    # local-time digest into the next quarter hour, whose zones are others.
    slot = digest_slot(app, digest, now or app.clock.now())
    if gather_first:
        report.sources = await gather_sources(app)
    now = now or app.clock.now()
    limiter = rate_limiter(app)  # one for the whole run: resumed editions and this one
    report.resumed = await resume_unfinished(app, digest, now, slot, limiter, send, stop)
    if (newest := superseding_edition(app, digest, slot)) is not None:
        report.idle = _superseded(app, digest, slot, newest)
        log.warning("digest %s: %s", digest.id, report.idle)
        return report
    if local_time_bucket(app, digest, slot) == set():
        report.idle = f"no subscriber's local time is {digest.schedule!r} now"
        log.info("digest %s: %s", digest.id, report.idle)
        return report  # nobody's 07:00 is this hour: no edition
    report.edition, report.created = build_edition(app, digest, now, slot)
    if report.edition.story_count == 0 and not digest.send_empty:
        if said := nothing_new(report.edition):
            # Routine, and said once: by the caller (the daemon's job logs it, `send` prints it)
            report.idle = said
            return report
        report.idle = f"edition {report.edition.id} has no stories: " + _why_empty(app, digest)
        log.warning("digest %s: %s", digest.id, report.idle)
        return report
    if not send:
        report.delivery = queue_edition(app, digest, report.edition)
        return report
    report.delivery = await deliver_edition(app, digest, report.edition, limiter=limiter, stop=stop)
    return report


def _superseded(app: App, digest: DigestConfig, slot: datetime, newest: Edition) -> str:
    """Why a slot older than the newest edition is not built: it was asked for late (a
    catch-up, a run started behind a long job), or the schedule moved later in the day, so
    that the current slot of the new schedule is older than the edition readers have.
    Mailing it would send older news after newer either way."""
    edition = f"edition {newest.id} (slot {newest.slot:%Y-%m-%d %H:%M} UTC)"
    if slot < digest_slot(app, digest, app.clock.now()):
        return (
            f"the {slot:%Y-%m-%d %H:%M} UTC slot has passed and readers have the newer "
            f"{edition}, so it is not sent"
        )
    return (
        f"{edition} is newer than this run's slot ({slot:%Y-%m-%d %H:%M} UTC): the schedule "
        "changed, so nothing is built for the older slot; the next edition goes at the "
        "schedule's next time"
    )


def _why_empty(app: App, digest: DigestConfig) -> str:
    """Why an edition has no stories, and what to do about it.

    Before the first gather the store holds no article at all (`digest send` does not
    gather unless asked): the last 24 hours are not to blame, and the edition is built again
    by the next run of its slot that finds stories.
    """
    if not any(source.last_attempt_at for source in app.store.list_sources()):
        return (
            "no source has been gathered yet: run `digest gather` or `digest send --gather`, "
            "so nothing was sent"
        )
    return (
        f"none of the digest's sources had an article in the last {digest.lookback_hours:g} "
        "hours, so nothing was sent (see `digest sources`; `send_empty = true` sends a "
        "'nothing new' email instead)"
    )
