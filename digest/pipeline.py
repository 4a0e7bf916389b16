"""Where the stages meet: gather -> rank -> render -> deliver, with the store beside them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from digest.app import App
from digest.config import DigestConfig
from digest.deliver import DeliveryReport, dispatch
from digest.links import personal_links
from digest.rank import rank
from digest.records import ArticleRecord, RankedEdition, Recipient, RenderedEdition
from digest.render import EditionInfo, build_template, render_edition
from digest.schedule import latest_slot
from digest.sources import SourceReport, gather
from digest.store import Edition, Subscriber, utcnow

log = logging.getLogger("digest.pipeline")


@dataclass
class RunReport:
    """Everything one run did, for the CLI to print and the scheduler to log."""

    digest_id: str
    sources: list[SourceReport] = field(default_factory=list)
    edition: Edition | None = None
    created: bool = False
    delivery: DeliveryReport | None = None

    @property
    def ok(self) -> bool:
        """A run fails when delivery stopped; a bad source or one refused address does not.

        Refused addresses are recorded on their delivery rows and printed with the run.
        """
        return self.delivery is None or not self.delivery.stopped


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
    """Rank the articles of the digest's look-back window ending at ``now``."""
    by_name = {s.name: s for s in app.config.sources if s.enabled}
    if digest.topics:
        wanted = set(digest.topics)
        by_name = {n: s for n, s in by_name.items() if wanted & set(s.topics)}
    since = now - timedelta(hours=digest.lookback_hours)
    records = [
        ArticleRecord(
            id=a.id or 0,
            source=name,
            title=a.title,
            url=a.url,
            summary=a.summary,
            published_at=a.published_at,
            source_weight=by_name[name].weight,
            topics=tuple(by_name[name].topics),
            breaking=a.breaking,
            image_url=a.image_url,
            image_alt=a.image_alt,
        )
        for a, name in app.store.articles_between(since, now, by_name)
    ]
    return rank(records, now, digest, app.config.rank)


def web_view_url(base_url: str, digest_id: str, slot: datetime) -> str:
    """The public address of an edition's web view (served by the web app)."""
    return f"{base_url}/editions/{digest_id}/{slot:%Y%m%dT%H%MZ}"


def build_edition(app: App, digest: DigestConfig, now: datetime) -> tuple[Edition, bool]:
    """The edition of the current slot: the stored one, or a new one ranked and rendered now."""
    tz = digest_timezone(app, digest)
    slot = latest_slot(digest.schedule, tz, now)
    existing = app.store.edition(digest.id, slot)
    if existing is not None:
        return existing, False
    ranked = rank_window(app, digest, now)
    service = app.config.service
    info = EditionInfo(
        service.name,
        digest.title,
        service.base_url,
        service.postal_address,
        tz,
        now,
        web_url=web_view_url(service.base_url, digest.id, slot),
    )
    rendered = render_edition(info, ranked, app.config.templates_dir())
    edition = Edition(
        digest_id=digest.id,
        slot=slot,
        created_at=now,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        story_count=ranked.count,
    )
    saved = app.store.save_edition(edition)
    log.info("edition %s of %s built: %d stories", digest.id, slot, ranked.count)
    return saved, saved is edition


async def deliver_edition(app: App, digest: DigestConfig, edition: Edition) -> DeliveryReport:
    """Send the edition to every active subscriber who has not had it."""
    config = app.config
    service = config.service
    secret = config.secret()
    mailto = config.unsubscribe_mailto()
    template = build_template(
        RenderedEdition(edition.subject, edition.html, edition.text),
        sender=service.sender,
        reply_to=service.reply_to,
        list_name=f"{digest.title} ({service.name})",
        list_id=f"{digest.id}.{urlsplit(service.base_url).hostname}",
        message_id_prefix=f"digest.{edition.id}",
    )

    def recipient_for(s: Subscriber) -> Recipient:
        return personal_links(
            secret, service.base_url, mailto, s.id or 0, s.public_id, s.email, s.name
        )

    assert edition.id is not None
    async with app.sender() as sender:
        return await dispatch(app.store, sender, template, recipient_for, edition.id)


async def run_digest(
    app: App,
    digest_id: str | None = None,
    *,
    now: datetime | None = None,
    gather_first: bool = True,
) -> RunReport:
    """Gather (optionally), build or reuse the slot's edition, and deliver it."""
    digest = app.config.digest(digest_id)
    app.config.secret()  # fail before any work when the signing secret is missing
    report = RunReport(digest.id)
    if gather_first:
        report.sources = await gather_sources(app)
    report.edition, report.created = build_edition(app, digest, now or utcnow())
    report.delivery = await deliver_edition(app, digest, report.edition)
    return report
