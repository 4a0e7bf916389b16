"""When an edition is built and for whom: its digest's firing plan and zone, the slot it
belongs to, the time zones a local-time slot serves, and the date it carries.

An edition is its slot's: built at 03:11 for the 07:00 slot of the day before, it is that
07:00 edition (sent late), dated that day, never today's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

from digest.app import App
from digest.config import DigestConfig
from digest.render import EditionInfo
from digest.schedule import FiringPlan, fires_at, local_time_schedule
from digest.store import Edition, saved_id


def digest_timezone(app: App, digest: DigestConfig) -> str:
    """The digest's own time zone, else the service's (``Config.digest_timezone``)."""
    return app.config.digest_timezone(digest)


def digest_plan(app: App, digest: DigestConfig) -> FiringPlan:
    """When the digest fires: its schedule in its zone (``digest_timezone``), or for a
    local-time digest, in UTC every time its schedule is due in some zone."""
    zone = digest_timezone(app, digest)
    if digest.local_time:
        return FiringPlan(local_time_schedule(digest.schedule), "UTC", zone, True)
    return FiringPlan(digest.schedule, zone, zone, False)


def digest_slot(app: App, digest: DigestConfig, now: datetime) -> datetime:
    """The slot an edition built now belongs to (a quarter hour for a local-time digest)."""
    return digest_plan(app, digest).slot(now)


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


def superseding_edition(app: App, digest: DigestConfig, slot: datetime) -> Edition | None:
    """The digest's edition of a later slot than ``slot``, if readers have one: the
    schedule moved later in the day, and mailing ``slot``'s edition would send older news
    after newer. Never for a local-time digest, whose quarter hours serve different zones."""
    newest = app.store.newest_edition(digest.id)
    if digest.local_time or newest is None or newest.slot <= slot:
        return None
    return newest


def rebuildable(app: App, edition: Edition) -> bool:
    """The stored edition has no story and no message of it went out: a later run of its
    slot builds it again with the news it finds then."""
    return edition.story_count == 0 and not app.store.edition_went_out(saved_id(edition))


def next_edition_at(app: App, digest: DigestConfig, now: datetime) -> datetime:
    """When the next edition is built: the current slot if its edition is not built yet
    (or was built empty and is rebuilt), else the slot after it. What `explain` and
    `preview` show is that edition: ranked as of then, with every edition sent before it
    counted as sent."""
    slot = digest_slot(app, digest, now)
    stored = app.store.edition(digest.id, slot)
    if stored is None or rebuildable(app, stored):
        return now
    return digest_plan(app, digest).next_fire(now) or now


def web_view_url(base_url: str, digest_id: str, slot: datetime, topics: str = "") -> str:
    """The public address of an edition's web view (served by the web app); with a choice
    of topics (its key), of that choice's own edition: where its readers' email links."""
    url = f"{base_url}/editions/{digest_id}/{slot:%Y%m%dT%H%MZ}"
    return f"{url}?topics={quote(topics, safe=',')}" if topics else url


def edition_info(
    app: App,
    digest: DigestConfig,
    slot: datetime,
    timezone: str | None = None,
    locale: str | None = None,
    topics: str = "",
) -> EditionInfo:
    """What the templates need for one edition, in one time zone and language (and for a
    choice of topics, its key: its web view is that choice's). It is dated by its slot,
    whenever it was built (a late or early `digest send`): the slot is which edition it
    is."""
    service = app.config.service
    return EditionInfo(
        service.name,
        digest.title,
        service.base_url,
        service.postal_address,
        timezone or digest_timezone(app, digest),
        slot,
        web_url=web_view_url(service.base_url, digest.id, slot, topics),
        locale=locale or service.locale,
        latest_group_by=digest.latest_group_by,
        topics=frozenset(topics.split(",")) if topics else frozenset(),
        latest_summary_chars=digest.latest_summary_chars,
        subscribe_url=f"{service.base_url}/",  # the web app's sign-up page
    )


# How long after its slot a digest's send may still be building its edition (a gather
# first, a slow database) before the slot without one is said to be missed.
MISSED_AFTER = timedelta(minutes=5)


def missed_slot(app: App, digest: DigestConfig, now: datetime) -> datetime | None:
    """The digest's latest slot, if the daemon scheduled it and it passed over
    ``MISSED_AFTER`` ago with no edition: its send failed before building one (the
    database's disk full or locked, the daemon down), maybe too early to record even that.
    None for a digest the daemon never scheduled (sent by hand), a slot readers have a
    later edition than, or a local-time quarter hour that is nobody's."""
    since = app.store.first_scheduled(digest.id)
    slot = digest_slot(app, digest, now)
    if since is None or slot < since or now - slot < MISSED_AFTER:
        return None
    if app.store.edition(digest.id, slot) is not None:
        return None
    if superseding_edition(app, digest, slot) is not None:
        return None
    return None if local_time_bucket(app, digest, slot) == set() else slot
