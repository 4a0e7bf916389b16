"""An edition: its slot, its stories ranked over the story memory, its render for each
segment of readers. The build half of the composition root (``digest.pipeline``)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from digest.app import App
from digest.config import DigestConfig
from digest.rank import SentStories, narrow, rank_memory, sent_sources
from digest.records import (
    RankedEdition,
    RenderedEdition,
    ranked_from_json,
    ranked_to_json,
)
from digest.render import (
    HTML_LIMIT,
    EditionInfo,
    MessageTemplate,
    build_template,
    render_edition,
)
from digest.schedule import FiringPlan, fires_at, firing_plan
from digest.store import Edition, Subscriber, saved_id

log = logging.getLogger("digest.pipeline")


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


def left_out(app: App, digest: DigestConfig, now: datetime, ranked: RankedEdition) -> list[str]:
    """What the edition ranked at ``now`` (``rank_window``) leaves out and why, with the
    numbers: articles older than the look-back window, articles of sources outside the
    digest's topics, stories past the section sizes, and stories under the Breaking bar.

    An edition of fewer stories than were gathered says why rather than showing less
    without a word (``explain`` and ``preview`` print these lines).
    """
    enabled = {s.name: s for s in app.config.sources if s.enabled}
    wanted = set(digest.topics)
    mine = sorted(n for n, s in enabled.items() if not wanted or wanted & set(s.topics))
    notes, any_old = _window_notes(app, digest, now, mine, sorted(set(enabled) - set(mine)))
    notes += _ranking_notes(app, digest, ranked)
    if not mine:
        notes.append(
            f"everything: no enabled source has the digest's topics ({', '.join(digest.topics)})"
        )
    elif not ranked.candidates and not any_old:
        notes.append(
            "nothing, as no article is stored for its sources: `digest gather` fetches them"
        )
    return notes


def _window_notes(
    app: App, digest: DigestConfig, now: datetime, mine: list[str], others: list[str]
) -> tuple[list[str], bool]:
    """Articles of its sources older than the look-back window, and articles in the window
    from sources outside its topics; and whether there were old ones."""
    since = now - timedelta(hours=digest.lookback_hours)
    notes = []
    old = app.store.article_counts(None, since, mine)
    if old:
        count = sum(n for n, _ in old.values())
        newest = max(when for _, when in old.values())
        notes.append(
            f"{_articles(count)} older than the look-back window (lookback_hours = "
            f"{digest.lookback_hours:g} in [[digests]] {digest.id!r}); the newest of them "
            f"is {_ago(now - newest)} old"
        )
    outside = app.store.article_counts(since, now, others)
    if outside:
        count = sum(n for n, _ in outside.values())
        notes.append(
            f"{_articles(count)} in the window from sources without the digest's topics "
            f"({', '.join(digest.topics)}): {', '.join(sorted(outside))}"
        )
    return notes, bool(old)


def _ranking_notes(app: App, digest: DigestConfig, ranked: RankedEdition) -> list[str]:
    """Stories past the section sizes, and stories of enough sources under the Breaking bar."""
    notes = []
    past = ranked.candidates - ranked.count
    if past > 0:
        notes.append(
            f"{past} more stor{'y' if past == 1 else 'ies'} in the window, past "
            f"breaking_items = {digest.breaking_items} and latest_items = {digest.latest_items}"
        )
    weights = app.config.rank
    under = [
        s
        for s in ranked.latest
        if len(s.sources) >= weights.breaking_min_sources and s.score < weights.breaking_min_score
    ]
    if under:
        notes.append(
            f"{len(under)} stor{'y' if len(under) == 1 else 'ies'} with "
            f"{weights.breaking_min_sources}+ sources of Breaking (shown in Latest): scored "
            f"under breaking_min_score = {weights.breaking_min_score:g} in [rank]"
        )
    return notes


def _articles(count: int) -> str:
    return f"{count} article{'' if count == 1 else 's'}"


def _ago(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"


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
        latest_summary_chars=digest.latest_summary_chars,
        subscribe_url=f"{service.base_url}/",  # the web app's sign-up page
    )


def digest_plan(app: App, digest: DigestConfig) -> FiringPlan:
    """When the digest fires (``firing_plan`` in the service's zone)."""
    return firing_plan(digest, app.config.service.timezone)


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


def edition_row(
    digest_id: str,
    slot: datetime,
    built_at: datetime,
    ranked: RankedEdition,
    rendered: RenderedEdition,
) -> Edition:
    """The stored form of an edition: its render, and its stories for later segments."""
    return Edition(
        digest_id=digest_id,
        slot=slot,
        created_at=built_at,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        story_count=ranked.count,
        stories=ranked_to_json(ranked),
    )


def superseding_edition(app: App, digest: DigestConfig, slot: datetime) -> Edition | None:
    """The digest's edition of a later slot than ``slot``, if readers have one: the
    schedule moved later in the day, and mailing ``slot``'s edition would send older news
    after newer. Never for a local-time digest, whose quarter hours serve different zones."""
    newest = app.store.newest_edition(digest.id)
    if digest.local_time or newest is None or newest.slot <= slot:
        return None
    return newest


def build_edition(
    app: App, digest: DigestConfig, now: datetime, slot: datetime | None = None
) -> tuple[Edition, bool]:
    """The edition of ``slot`` (default: the slot of ``now``): the stored one, or a new one
    ranked and rendered with the news up to ``now``; and whether this call built it.

    A stored edition without stories that went to nobody (a `digest send` before the first
    gather) is rebuilt in place, keeping its id, once there are stories: else the slot's
    digest would be lost, as nothing else builds it again.
    """
    slot = slot or digest_slot(app, digest, now)
    existing = app.store.edition(digest.id, slot)
    if existing is not None and not rebuildable(app, existing):
        return existing, False
    ranked = rank_window(app, digest, now)
    if existing is not None and ranked.count == 0:
        return existing, False  # still nothing to say: the stored edition stands
    rendered = render_edition(
        edition_info(app, digest, slot, now), ranked, app.config.templates_dir()
    )
    edition = edition_row(digest.id, slot, now, ranked, rendered)
    if rendered.omitted:
        log_trim(digest.id, slot, ranked.count, rendered.omitted)
    if existing is not None:
        saved, rebuilt = app.store.rebuild_edition(saved_id(existing), edition)
        if rebuilt:
            log.info(
                "edition %s of %s rebuilt: %d stories (it had none)",
                digest.id,
                slot,
                ranked.count,
            )
        return saved, rebuilt
    saved = app.store.save_edition(edition)
    log.info("edition %s of %s built: %d stories", digest.id, slot, ranked.count)
    return saved, saved is edition


# Editions whose trim was logged, newest last: once per edition however many of its
# segments are trimmed (the daemon builds and sends in one process). Bounded, not a cache.
_TRIMS_LOGGED: OrderedDict[tuple[str, datetime], None] = OrderedDict()
_TRIMS_REMEMBERED = 64


def log_trim(digest_id: str, slot: datetime, count: int, omitted: int, segment: str = "") -> None:
    """The one line that says an edition's email was trimmed to fit Gmail's clip: for the
    first render of it that is, the edition's own or a segment's."""
    if (digest_id, slot) in _TRIMS_LOGGED:
        return
    _TRIMS_LOGGED[(digest_id, slot)] = None
    while len(_TRIMS_LOGGED) > _TRIMS_REMEMBERED:
        _TRIMS_LOGGED.popitem(last=False)
    log.warning(
        "edition %s of %s trimmed to fit %d bytes%s: %d of %d stories kept, the rest on "
        "its web view (logged once an edition; other segments may keep fewer)",
        digest_id,
        slot,
        HTML_LIMIT,
        f" for {segment}" if segment else "",
        count - omitted,
        count,
    )


def rebuildable(app: App, edition: Edition) -> bool:
    """The stored edition has no story and no message of it went out: a later run of its
    slot builds it again with the news it finds then."""
    return edition.story_count == 0 and not app.store.edition_went_out(saved_id(edition))


class SegmentTemplates:
    """One MessageTemplate per (time zone, locale, topics) among the recipients, built once.

    The edition's stored render serves the digest's own time zone, the service's locale and
    every topic; anyone else gets the same stories, narrowed to their topics, rendered in
    their zone and language. Choices of topics that leave the same stories share one render
    (most do: a story has several topics), and a trim to fit is logged once per edition.
    """

    def __init__(self, app: App, digest: DigestConfig, edition: Edition) -> None:
        self.app, self.digest, self.edition = app, digest, edition
        self.default = (digest_timezone(app, digest), app.config.service.locale, "")
        self._cache: dict[tuple[str, str, str], MessageTemplate | None] = {}
        # (time zone, locale, the stories shown) -> its template: what a render depends on.
        self._renders: dict[tuple[str, str, tuple[int, ...]], MessageTemplate] = {}
        self._ranked: RankedEdition | None = None

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
        e = self.edition
        timezone, locale, topics = key
        if key == self.default or not e.stories:
            return self._template(RenderedEdition(e.subject, e.html, e.text), locale)
        if self._ranked is None:
            self._ranked = ranked_from_json(e.stories)
        ranked = self._ranked
        if topics:
            ranked = narrow(ranked, set(topics.split(",")))
            if ranked.count == 0 and e.story_count and not self.digest.send_empty:
                return None
        shown = tuple(s.lead.id for s in (*ranked.breaking, *ranked.latest))
        if ranked.count == self._ranked.count and (timezone, locale) == self.default[:2]:
            if self.default not in self._cache:  # their topics cover every story
                self._cache[self.default] = self._build(self.default)
            return self._cache[self.default]
        render_key = (timezone, locale, shown)
        if render_key not in self._renders:
            info = edition_info(self.app, self.digest, e.slot, e.created_at, timezone, locale)
            rendered = render_edition(info, ranked, self.app.config.templates_dir())
            log.debug(
                "edition %s rendered for %s / %s / topics %s",
                e.id,
                timezone,
                locale,
                topics or "all",
            )
            if rendered.omitted:
                segment = f"{timezone} / {locale} / topics {topics or 'all'}"
                log_trim(self.digest.id, e.slot, ranked.count, rendered.omitted, segment)
            self._renders[render_key] = self._template(rendered, locale)
        return self._renders[render_key]

    def _template(self, rendered: RenderedEdition, locale: str) -> MessageTemplate:
        e, service = self.edition, self.app.config.service
        return build_template(
            rendered,
            sender=service.sender,
            reply_to=service.reply_to,
            list_name=f"{self.digest.title} ({service.name})",
            list_id=f"{self.digest.id}.{urlsplit(service.base_url).hostname}",
            message_id_prefix=f"digest.{e.id}",
            locale=locale,
        )


def next_edition_preview(
    app: App,
    digest: DigestConfig,
    now: datetime,
    timezone: str | None = None,
    locale: str | None = None,
    topics: frozenset[str] = frozenset(),
) -> tuple[RankedEdition, RenderedEdition]:
    """The next edition as a send would build it (`digest preview`, the console's preview):
    its ranked stories and its render for one segment, narrowed to ``topics`` when given,
    in ``timezone`` and ``locale`` (default: the digest's own). Nothing is stored."""
    at = next_edition_at(app, digest, now)
    ranked = rank_window(app, digest, at)
    shown = narrow(ranked, set(topics)) if topics else ranked
    info = edition_info(app, digest, digest_slot(app, digest, at), at, timezone, locale)
    return shown, render_edition(info, shown, app.config.templates_dir())
