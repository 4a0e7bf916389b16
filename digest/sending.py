"""Sending an edition, now or late: its outbox rows dispatched with the configured limits,
and earlier editions' waiting rows resumed (or retired when too old). The delivery half of
the composition root (``digest.pipeline``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from digest.app import App
from digest.config import Config, DigestConfig
from digest.config.models import no_source_has, unknown_topics
from digest.deliver import DeliveryReport, dispatch
from digest.deliver.dispatch import DispatchSettings, no_story_in_topics
from digest.deliver.limits import PERIODS, REFILLING, RateLimiter, SharedWindow
from digest.editions import SegmentTemplates, digest_timezone, local_time_bucket
from digest.errors import DigestError
from digest.links import personal_links
from digest.records import Reader, Recipient
from digest.schedule import latest_slot, next_slot
from digest.states import DeliveryStatus
from digest.store import Edition, saved_id
from digest.store.pg import is_postgresql
from digest.subscribers import sendable_name

log = logging.getLogger("digest.pipeline")

# An earlier edition's rows still waiting (deferred, held by a sending limit, cut off by a
# stopped run) go out on later runs while the edition is at most this many schedule periods
# old, and never when older than RESUME_MAX_AGE: stale news is marked failed, not sent late.
RESUME_PERIODS = 3
RESUME_MAX_AGE = timedelta(days=2)


async def deliver_edition(
    app: App,
    digest: DigestConfig,
    edition: Edition,
    *,
    queue_new: bool = True,
    limiter: RateLimiter | None = None,
    stop: Callable[[], bool] | None = None,
) -> DeliveryReport:
    """Send the edition to every active subscriber who has not had it (for a local-time
    digest: every subscriber of the slot's time-zone bucket).

    Without ``queue_new`` only the rows already queued go (a retry, or an earlier edition
    resumed): someone who subscribed after the edition's run gets the next one, not this.
    ``limiter``: the run's sending limits, shared by every edition the run sends (default:
    limits of their own). ``stop``: asked before each batch (a worker's SIGTERM).
    """
    edition_id = saved_id(edition)
    bucket = local_time_bucket(app, digest, edition.slot) if queue_new else None
    if bucket is not None:
        app.store.queue_deliveries(edition_id, bucket)
    recipient_for = _recipients(app.config)
    templates = SegmentTemplates(app, digest, edition)
    async with app.sender() as sender:
        return await dispatch(
            app.store,
            sender,
            templates,
            recipient_for,
            edition_id,
            DispatchSettings.from_config(app.config),
            limiter=limiter or rate_limiter(app),
            queue_all=queue_new and bucket is None,
            stop=stop,
            skip_reason=_skip_reason(app.config),
        )


def _skip_reason(config: Config) -> Callable[[Reader], str]:
    """Why a topic reader is sent nothing, naming their topics no source declares any
    more: the run's output and `digest status` then say that no edition will have a story
    for them until they choose again, not that this one had none."""
    known = config.topics()

    def skip_reason(reader: Reader) -> str:
        reason = no_story_in_topics(reader)
        gone = unknown_topics([t for t in reader.topics.split(",") if t], known)
        if gone:
            reason += f"; {no_source_has(gone)} any more (`digest check` lists such readers)"
        return reason

    return skip_reason


def _recipients(config: Config) -> Callable[[Reader], Recipient]:
    """Each subscriber's recipient: address, sendable name and personal links (unsubscribe,
    preferences, VERP bounce address)."""
    service = config.service
    secret = config.secret()
    mailto = config.unsubscribe_mailto()

    def recipient_for(s: Reader) -> Recipient:
        name = sendable_name(s.name)
        if name is None and (s.name or "").strip():
            log.warning(
                "%s's stored name %r cannot go in a header (a control character): sent "
                "without it; `digest subscribers add %s --name NAME` sets a new one",
                s.email,
                s.name,
                s.email,
            )
        return personal_links(
            secret,
            service.base_url,
            mailto,
            s.id or 0,
            s.public_id,
            s.email,
            name,
            config.delivery.verp_domain,
        )

    return recipient_for


def queue_edition(app: App, digest: DigestConfig, edition: Edition) -> DeliveryReport:
    """Queue the edition for every active subscriber who has not had it (a local-time
    digest: the slot's time-zone bucket) and send nothing: `[schedule] send = false`, the
    workers send. The report says how many rows were queued."""
    edition_id = saved_id(edition)
    bucket = local_time_bucket(app, digest, edition.slot)
    queued = app.store.queue_deliveries(edition_id, bucket)
    log.warning(
        "digest %s: edition %d: %d deliveries queued for the workers (`digest worker`)",
        digest.id,
        edition_id,
        queued,
    )
    return DeliveryReport(queued=queued, for_workers=True)


def rate_limiter(app: App, max_wait: float = 3600.0, turn: float | None = None) -> RateLimiter:
    """The configured sending limits (none: a limiter that never waits). Each bucket starts
    from what the database says was sent in its period, by this process or any other, so
    a restart, a second edition or cron's `digest send` beside the daemon never gets a
    fresh allowance. One run shares one between the editions it sends.

    Hour and day quotas are windows: an empty one is counted again in the database, and
    the run waits for its oldest send to leave it (``max_wait`` at most). On PostgreSQL,
    where many workers may send at once, the per-second and per-minute limits are also
    taken from one token bucket row per limit (``store.take_tokens``, at most a batch at
    once), so they hold for the whole installation.

    ``max_wait``: the longest wait for a token before the run stops with the rest queued;
    ``turn``: seconds after which it starts no wait at all (the daemon's retry job, so a
    long drip under a limit does not hold the daemon's one worker).
    """
    limits = app.config.delivery.rate.model_dump()
    if not any(limits.values()):
        return RateLimiter({}, clock=app.clock)
    now = app.clock.now()
    recent = {
        name: app.store.sent_since(now - timedelta(seconds=PERIODS[name]))
        for name, rate in limits.items()
        if rate
    }
    recounts = {
        name: partial(app.store.window_room, timedelta(seconds=PERIODS[name]), rate)
        for name, rate in limits.items()
        if rate and name not in REFILLING
    }
    limiter = RateLimiter.from_limits(limits, recent, max_wait, recounts, app.clock)
    if is_postgresql(app.engine):  # many senders, maybe many machines: one count for all
        batch = app.config.delivery.batch_size
        limiter.shared = [
            SharedWindow(
                name,
                partial(app.store.take_tokens, name, rate, PERIODS[name], min(rate, batch)),
                partial(app.store.give_tokens, name, min(rate, batch)),
            )
            for name, rate in limits.items()
            if rate and name in REFILLING
        ]
    limiter.deadline = app.clock.monotonic() + turn if turn is not None else None
    return limiter


def stored_edition(app: App, edition_id: int) -> Edition:
    """A stored edition by id; DigestError naming the recent ones when there is none."""
    edition = app.store.edition_by_id(edition_id)
    if edition is None:
        known = ", ".join(str(e.id) for e in app.store.editions(limit=10)) or "none yet"
        raise DigestError(f"no edition {edition_id}", f"recent editions: {known} (digest status)")
    return edition


def requeue_edition(app: App, edition_id: int) -> tuple[int, int, int]:
    """`digest retry EDITION`'s re-queue (the console's Retry too): failed rows back to
    pending, paused ones resumed, deferred ones due now; bounced or unsubscribed people stay
    out (their rows are suppressed at the send). Counts of each."""
    requeued = app.store.retry_failed(edition_id)
    resumed = app.store.resume_paused(edition_id)
    deferred = app.store.requeue_deferred(edition_id, due_only=False)
    return requeued, resumed, deferred


def resume_since(app: App, digest: DigestConfig, now: datetime) -> datetime:
    """The oldest slot whose edition may still go out late: RESUME_PERIODS schedule periods
    back, at most RESUME_MAX_AGE (so an hourly digest resumes hours, a daily one days)."""
    timezone = digest_timezone(app, digest)
    last = latest_slot(digest.schedule, timezone, now)
    following = next_slot(digest.schedule, timezone, last)
    period = following - last if following is not None else RESUME_MAX_AGE
    return now - min(RESUME_MAX_AGE, RESUME_PERIODS * period)


async def resume_unfinished(
    app: App,
    digest: DigestConfig,
    now: datetime,
    before: datetime | None = None,
    limiter: RateLimiter | None = None,
    send: bool = True,
    stop: Callable[[], bool] | None = None,
) -> list[tuple[Edition, DeliveryReport]]:
    """Send the rows earlier editions (slot before ``before``; None: every edition, the
    current slot's too) still have waiting, oldest edition first, and mark failed those of
    editions too old to go out late.

    Waiting rows are pending (a sending limit, a stopped run), deferred whose retry time has
    come, or claimed by a sender that died. Only rows already queued go: nobody is added to
    an old edition. A sending limit or a stopped transport ends the resuming; the rest
    waits for the next run.

    Without ``send`` (`[schedule] send = false`) only the too-old rows are marked: the
    workers send the rest. ``stop`` is asked before each batch.
    """
    since = resume_since(app, digest, now)
    for stale in app.store.unfinished_editions(
        digest.id, before=since if before is None else min(since, before), due_only=False
    ):
        _expire(app, stale, now - since)
    resumed: list[tuple[Edition, DeliveryReport]] = []
    if not send:
        return resumed
    for edition in app.store.unfinished_editions(digest.id, since=since, before=before):
        counts = app.store.delivery_counts(saved_id(edition))
        log.warning(
            "digest %s: resuming edition %d (slot %s UTC): %s left by an earlier run",
            digest.id,
            edition.id,
            f"{edition.slot:%Y-%m-%d %H:%M}",
            ", ".join(
                f"{counts[k]} {k}"
                for k in (DeliveryStatus.PENDING, DeliveryStatus.DEFERRED, DeliveryStatus.SENDING)
                if k in counts
            ),
        )
        report = await deliver_edition(
            app, digest, edition, queue_new=False, limiter=limiter, stop=stop
        )
        resumed.append((edition, report))
        if report.stopped or report.waiting:
            break
    return resumed


def _expire(app: App, edition: Edition, max_age: timedelta) -> None:
    """Mark failed, with a log line, the waiting rows of an edition too old to send now."""
    edition_id = saved_id(edition)
    app.store.suppress_inactive(edition_id)  # people who left are suppressed, not failed
    reason = (
        f"not sent: edition {edition_id} (slot {edition.slot:%Y-%m-%d %H:%M} UTC) was still "
        f"waiting {max_age.total_seconds() / 3600:g} h after its slot, too late to go out; "
        f"`digest retry {edition_id}` sends it anyway"
    )
    if expired := app.store.expire_unfinished(edition_id, reason):
        log.warning(
            "digest %s: %d deliveries marked failed: %s", edition.digest_id, expired, reason
        )
