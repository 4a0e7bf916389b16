"""Where the stages meet: gather -> rank -> render -> deliver, with the store beside them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

from digest.app import App
from digest.config import DigestConfig
from digest.deliver import DeliveryReport, dispatch
from digest.deliver.limits import ErrorBudget, RateLimiter, retry_delay
from digest.deliver.signing import make_signer
from digest.errors import DigestError
from digest.links import personal_links
from digest.rank import SentStories, narrow, rank_memory, sent_sources
from digest.records import (
    RankedEdition,
    Recipient,
    RenderedEdition,
    ranked_from_json,
    ranked_to_json,
)
from digest.render import EditionInfo, MessageTemplate, build_template, render_edition
from digest.schedule import fires_at, hourly_schedule, latest_slot, next_slot
from digest.sources.gather import SourceReport, gather
from digest.store import Edition, Subscriber, utcnow

log = logging.getLogger("digest.pipeline")

# An earlier edition's rows still waiting (deferred, held by a sending limit, cut off by a
# stopped run) go out on later runs while the edition is at most this many schedule periods
# old, and never when older than RESUME_MAX_AGE: stale news is marked failed, not sent late.
RESUME_PERIODS = 3
RESUME_MAX_AGE = timedelta(days=2)


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
        """A run fails when a delivery stopped; a bad source or one refused address does not.

        Refused addresses are recorded on their delivery rows and printed with the run.
        """
        deliveries = [self.delivery, *(report for _, report in self.resumed)]
        return not any(d is not None and d.stopped for d in deliveries)


async def gather_sources(app: App) -> list[SourceReport]:
    """Fetch every enabled source once, then prune articles past the retention period."""
    async with app.http() as client:
        reports = await gather(app.config, app.store, client)
    cutoff = utcnow() - timedelta(days=app.config.gather.retention_days)
    pruned = app.store.prune_articles(cutoff)
    if pruned:
        log.info("pruned %d articles first seen before %s", pruned, f"{cutoff:%Y-%m-%d}")
    return reports


def digest_timezone(app: App, digest: DigestConfig) -> str:
    """The digest's own time zone, else the service's."""
    return digest.timezone or app.config.service.timezone


def rank_window(app: App, digest: DigestConfig, now: datetime) -> RankedEdition:
    """Rank the articles of the digest's look-back window ending at ``now``.

    Stories are formed over every enabled source and back to ``rank.story_memory_hours``
    (further than the window when that is longer), and each article's story is stored, so
    a story keeps its id from run to run and digest to digest: that id is how an earlier
    edition's story is recognised (the sent penalty).
    """
    enabled = {s.name: s for s in app.config.sources if s.enabled}
    wanted = set(digest.topics)
    mine = {n for n, s in enabled.items() if not wanted or wanted & set(s.topics)}
    weights = app.config.rank
    since = now - timedelta(hours=digest.lookback_hours)
    memory = min(since, now - timedelta(hours=weights.story_memory_hours))
    records = [
        replace(a, source_weight=enabled[a.source].weight, topics=tuple(enabled[a.source].topics))
        for a in app.store.window_articles(memory, now, enabled)
    ]
    ranked = rank_memory(
        records,
        lambda a: a.source in mine and a.published_at >= since,
        now,
        digest,
        weights,
        sent_before(app, digest, now),
    )
    story_of = ranked.stories.story_of
    changed = {a.id: story_of[a.id] for a in records if story_of[a.id] != a.story_id}
    if changed:
        app.store.save_story_ids(changed)
        log.info("stories: %d articles placed or moved", len(changed))
    return ranked.edition


def sent_before(app: App, digest: DigestConfig, now: datetime) -> SentStories:
    """What the digest's last few editions sent, with the sources each story had then.

    Its subscribers received those editions. A local-time digest's earlier editions went
    to other time zones, so only the same hour on earlier days counts there.
    """
    slot = digest_slot(app, digest, now)
    count = app.config.rank.sent_lookback_editions
    slots = [slot - timedelta(days=k) for k in range(1, count + 1)] if digest.local_time else None
    editions = []
    for doc in app.store.edition_stories(digest.id, slot, count, slots):
        try:
            editions.append(ranked_from_json(doc))
        except (ValueError, KeyError, TypeError) as exc:  # an edition stored by an old version
            log.warning(
                "digest %s: an earlier edition's stories are unreadable: %s", digest.id, exc
            )
    return sent_sources(editions)


def web_view_url(base_url: str, digest_id: str, slot: datetime) -> str:
    """The public address of an edition's web view (served by the web app)."""
    return f"{base_url}/editions/{digest_id}/{slot:%Y%m%dT%H%MZ}"


def edition_info(
    app: App,
    digest: DigestConfig,
    slot: datetime,
    built_at: datetime,
    timezone: str | None = None,
    locale: str | None = None,
) -> EditionInfo:
    """What the templates need for one edition, in one time zone and language."""
    service = app.config.service
    return EditionInfo(
        service.name,
        digest.title,
        service.base_url,
        service.postal_address,
        timezone or digest_timezone(app, digest),
        built_at,
        web_url=web_view_url(service.base_url, digest.id, slot),
        locale=locale or service.locale,
        latest_group_by=digest.latest_group_by,
    )


def digest_slot(app: App, digest: DigestConfig, now: datetime) -> datetime:
    """The slot an edition built now belongs to (hourly for a local-time digest)."""
    if digest.local_time:
        return latest_slot(hourly_schedule(digest.schedule), "UTC", now)
    return latest_slot(digest.schedule, digest_timezone(app, digest), now)


def local_time_bucket(app: App, digest: DigestConfig, slot: datetime) -> set[str | None] | None:
    """For a local-time digest, the subscribers' time zones whose local schedule is ``slot``.

    None for an ordinary digest (everyone at once). A subscriber without a time zone of
    their own counts in the digest's.
    """
    if not digest.local_time:
        return None
    default = digest_timezone(app, digest)
    return {
        zone
        for zone in app.store.active_timezones()
        if fires_at(digest.schedule, zone or default, slot)
    }


def build_edition(
    app: App, digest: DigestConfig, now: datetime, slot: datetime | None = None
) -> tuple[Edition, bool]:
    """The edition of ``slot`` (default: the slot of ``now``): the stored one, or a new one
    ranked and rendered with the news up to ``now``."""
    slot = slot or digest_slot(app, digest, now)
    existing = app.store.edition(digest.id, slot)
    if existing is not None:
        return existing, False
    ranked = rank_window(app, digest, now)
    rendered = render_edition(
        edition_info(app, digest, slot, now), ranked, app.config.templates_dir()
    )
    edition = Edition(
        digest_id=digest.id,
        slot=slot,
        created_at=now,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        story_count=ranked.count,
        stories=ranked_to_json(ranked),
    )
    saved = app.store.save_edition(edition)
    log.info("edition %s of %s built: %d stories", digest.id, slot, ranked.count)
    return saved, saved is edition


class SegmentTemplates:
    """One MessageTemplate per (time zone, locale, topics) among the recipients, built once.

    The edition's stored render serves the digest's own time zone, the service's locale and
    every topic; anyone else gets the same stories, narrowed to their topics, rendered in
    their zone and language.
    """

    def __init__(self, app: App, digest: DigestConfig, edition: Edition) -> None:
        self.app, self.digest, self.edition = app, digest, edition
        self.default = (digest_timezone(app, digest), app.config.service.locale, "")
        self._cache: dict[tuple[str, str, str], MessageTemplate | None] = {}

    def __call__(self, subscriber: Subscriber) -> MessageTemplate | None:
        """Their message; None when none of the edition's stories is in their topics (and
        the digest does not send empty editions): nothing to send them this time."""
        topics = ",".join(sorted(t for t in subscriber.topics.split(",") if t))
        key = (
            subscriber.timezone or self.default[0],
            subscriber.locale or self.default[1],
            topics,
        )
        if key not in self._cache:
            self._cache[key] = self._build(key)
        return self._cache[key]

    def _build(self, key: tuple[str, str, str]) -> MessageTemplate | None:
        e, service = self.edition, self.app.config.service
        timezone, locale, topics = key
        if key == self.default or not e.stories:
            rendered = RenderedEdition(e.subject, e.html, e.text)
        else:
            ranked = ranked_from_json(e.stories)
            if topics:
                ranked = narrow(ranked, set(topics.split(",")))
                if ranked.count == 0 and e.story_count and not self.digest.send_empty:
                    return None
            info = edition_info(self.app, self.digest, e.slot, e.created_at, timezone, locale)
            rendered = render_edition(info, ranked, self.app.config.templates_dir())
            log.info(
                "edition %s rendered for %s / %s / topics %s",
                e.id,
                timezone,
                locale,
                topics or "all",
            )
        return build_template(
            rendered,
            sender=service.sender,
            reply_to=service.reply_to,
            list_name=f"{self.digest.title} ({service.name})",
            list_id=f"{self.digest.id}.{urlsplit(service.base_url).hostname}",
            message_id_prefix=f"digest.{e.id}",
            locale=locale,
        )


async def deliver_edition(
    app: App,
    digest: DigestConfig,
    edition: Edition,
    *,
    queue_new: bool = True,
) -> DeliveryReport:
    """Send the edition to every active subscriber who has not had it (for a local-time
    digest: every subscriber of the slot's time-zone bucket).

    Without ``queue_new`` only the rows already queued go (a retry, or an earlier edition
    resumed): someone who subscribed after the edition's run gets the next one, not this.
    """
    bucket = local_time_bucket(app, digest, edition.slot) if queue_new else None
    if bucket is not None and edition.id is not None:
        app.store.queue_deliveries(edition.id, bucket)
    config = app.config
    service = config.service
    secret = config.secret()
    mailto = config.unsubscribe_mailto()

    def recipient_for(s: Subscriber) -> Recipient:
        return personal_links(
            secret,
            service.base_url,
            mailto,
            s.id or 0,
            s.public_id,
            s.email,
            s.name,
            config.delivery.verp_domain,
        )

    assert edition.id is not None
    templates = SegmentTemplates(app, digest, edition)
    async with app.sender() as sender:
        return await dispatch(
            app.store,
            sender,
            templates,
            recipient_for,
            edition.id,
            batch_size=config.delivery.batch_size,
            lease_seconds=config.delivery.lease_seconds,
            limiter=rate_limiter(app),
            budget=ErrorBudget(config.delivery.error_budget, config.delivery.error_budget_minimum),
            signer=make_signer(config),
            queue_all=queue_new and bucket is None,
            retry_after=partial(
                retry_delay,
                base=config.delivery.retry_base_seconds,
                cap=config.delivery.retry_max_hours * 3600,
            ),
        )


def rate_limiter(app: App) -> RateLimiter | None:
    """The configured sending limits; hour and day buckets start from what was sent already."""
    limits = app.config.delivery.rate.model_dump()
    if not any(limits.values()):
        return None
    now = utcnow()
    recent = {
        "per_hour": app.store.sent_since(now - timedelta(hours=1)) if limits["per_hour"] else 0,
        "per_day": app.store.sent_since(now - timedelta(days=1)) if limits["per_day"] else 0,
    }
    return RateLimiter.from_limits(limits, recent)


def stored_edition(app: App, edition_id: int) -> Edition:
    """A stored edition by id; DigestError naming the recent ones when there is none."""
    edition = app.store.edition_by_id(edition_id)
    if edition is None:
        known = ", ".join(str(e.id) for e in app.store.editions(limit=10)) or "none yet"
        raise DigestError(f"no edition {edition_id}", f"recent editions: {known} (digest status)")
    return edition


async def deliver_stored(app: App, edition_id: int) -> RunReport:
    """Send a stored edition's queued rows (any slot, however old): `digest retry`.

    Nobody is newly queued: a subscriber who joined after the edition never gets it.
    """
    edition = stored_edition(app, edition_id)
    digest = app.config.digest(edition.digest_id)
    report = RunReport(digest.id, edition=edition)
    report.delivery = await deliver_edition(app, digest, edition, queue_new=False)
    return report


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
    before: datetime,
) -> list[tuple[Edition, DeliveryReport]]:
    """Send the rows earlier editions (slot before ``before``) still have waiting, oldest
    edition first, and mark failed those of editions too old to go out late.

    Waiting rows are pending (a sending limit, a stopped run), deferred whose retry time has
    come, or claimed by a sender that died. Only rows already queued go: nobody is added to
    an old edition. A sending limit or a stopped transport ends the resuming; the rest
    waits for the next run.
    """
    since = resume_since(app, digest, now)
    for stale in app.store.unfinished_editions(
        digest.id, before=min(since, before), due_only=False
    ):
        _expire(app, stale, now - since)
    resumed = []
    for edition in app.store.unfinished_editions(digest.id, since=since, before=before):
        assert edition.id is not None
        counts = app.store.delivery_counts(edition.id)
        log.warning(
            "digest %s: resuming edition %d (slot %s UTC): %s left by an earlier run",
            digest.id,
            edition.id,
            f"{edition.slot:%Y-%m-%d %H:%M}",
            ", ".join(
                f"{counts[k]} {k}" for k in ("pending", "deferred", "sending") if k in counts
            ),
        )
        report = await deliver_edition(app, digest, edition, queue_new=False)
        resumed.append((edition, report))
        if report.stopped or report.waiting:
            break
    return resumed


def _expire(app: App, edition: Edition, max_age: timedelta) -> None:
    """Mark failed, with a log line, the waiting rows of an edition too old to send now."""
    assert edition.id is not None
    app.store.suppress_inactive(edition.id)  # people who left are suppressed, not failed
    reason = (
        f"not sent: edition {edition.id} (slot {edition.slot:%Y-%m-%d %H:%M} UTC) was still "
        f"waiting {max_age.total_seconds() / 3600:g} h after its slot, too late to go out; "
        f"`digest retry {edition.id}` sends it anyway"
    )
    if expired := app.store.expire_unfinished(edition.id, reason):
        log.warning(
            "digest %s: %d deliveries marked failed: %s", edition.digest_id, expired, reason
        )


async def run_digest(
    app: App,
    digest_id: str | None = None,
    *,
    now: datetime | None = None,
    gather_first: bool = True,
) -> RunReport:
    """Gather (optionally), send what earlier editions still have waiting, then build or
    reuse the slot's edition and deliver it.

    Earlier editions go first, so rows held back by a daily limit are not overtaken every
    day by the next edition's.
    """
    digest = app.config.digest(digest_id)
    app.config.secret()  # fail before any work when the signing secret is missing
    report = RunReport(digest.id)
    # The slot is the one the run was started for: a long gathering must not carry a
    # local-time digest into the next quarter hour, whose zones are others.
    slot = digest_slot(app, digest, now or utcnow())
    if gather_first:
        report.sources = await gather_sources(app)
    now = now or utcnow()
    report.resumed = await resume_unfinished(app, digest, now, slot)
    if local_time_bucket(app, digest, slot) == set():
        report.idle = f"no subscriber's local time is {digest.schedule!r} now"
        log.info("digest %s: %s", digest.id, report.idle)
        return report  # nobody's 07:00 is this hour: no edition
    report.edition, report.created = build_edition(app, digest, now, slot)
    if report.edition.story_count == 0 and not digest.send_empty:
        report.idle = (
            f"edition {report.edition.id} has no stories: none of the digest's sources had an "
            f"article in the last {digest.lookback_hours:g} hours, so nothing was sent "
            "(see `digest sources`; `send_empty = true` sends a 'nothing new' email instead)"
        )
        log.warning("digest %s: %s", digest.id, report.idle)
        return report
    report.delivery = await deliver_edition(app, digest, report.edition)
    return report
