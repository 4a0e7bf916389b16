"""An edition: its stories ranked over the story memory (a story an earlier edition sent
left out unless it grew), stored once per digest and slot. The build half of the
composition root (``digest.pipeline``); when and for whom is ``slots``, the renders per
segment of readers ``segments``, what was left out and why ``notes``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from digest.app import App
from digest.config import DigestConfig
from digest.editions.segments import log_trim
from digest.editions.slots import digest_slot, edition_info, next_edition_at, rebuildable
from digest.editions.stored import ranked_to_json, view_to_json
from digest.editions.views import (
    earlier_editions,
    earlier_memory,
    prune_views,
    subscriber_choices,
)
from digest.rank import SentStories, SourceHabits, rank_memory, topic_key
from digest.rank.growth import settled_at
from digest.records import RankedEdition, RenderedEdition
from digest.render import render_edition
from digest.store import Edition, saved_id

log = logging.getLogger("digest.pipeline")


@dataclass(frozen=True)
class WindowRanking:
    """An edition's ranking, and the sources' habits the store keeps after it
    (``rank.habits``): this ranking's tally when it saved one, else the tally it read."""

    edition: RankedEdition
    kept: SourceHabits


def rank_window(
    app: App,
    digest: DigestConfig,
    now: datetime,
    choices: Iterable[str] = (),
    slot: datetime | None = None,
) -> RankedEdition:
    """Rank the articles of the digest's look-back window ending at ``now``
    (``window_ranking``, for a caller that needs only the edition)."""
    return window_ranking(app, digest, now, choices, slot).edition


def window_ranking(
    app: App,
    digest: DigestConfig,
    now: datetime,
    choices: Iterable[str] = (),
    slot: datetime | None = None,
) -> WindowRanking:
    """Rank the articles of the digest's look-back window ending at ``now`` for the
    edition of ``slot`` (default: the slot of ``now``).

    Stories are formed over every enabled source and back to ``rank.story_memory_hours``
    (further than the window when that is longer), and each article's story is stored, so
    a story keeps its id from run to run and digest to digest: that id is how an earlier
    edition's story is recognised. The stories settled since the last run are added to
    the sources' habits the store keeps (``rank.habits``), which the ranking reads. A
    story the digest sent before is left out unless it has grown since (new sources, a
    new headline), and then it is marked an update.

    ``choices``: keys of choices of topics, each given its own edition
    (``RankedEdition.views``) with what it was shown beyond the earlier editions
    (``views.earlier_memory``).

    The earlier editions read are the edition's slot's (``earlier_editions``), which a
    send's fallback reads too: not the slot of ``now``, which a long gather can carry past
    the slot the run was started for.
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
    # The tally of the sources enabled now alone: one removed or renamed stops weighing in
    # the others' breadth at once (its rows are kept, for when it comes back, until
    # retention.source_habits_days after its last fetch).
    read = SourceHabits.kept(*app.store.source_habits(enabled))
    earlier = earlier_editions(app, digest, slot or digest_slot(app, digest, now), now)
    remembered = earlier_memory(app, digest, earlier, choices)
    ranked = rank_memory(
        records,
        lambda a: a.source in mine and a.published_at >= since,
        now,
        digest,
        weights,
        remembered.sent,
        habits=read,
        choices=remembered.choices or None,
    )
    story_of = ranked.stories.story_of
    changed = {a.id: story_of[a.id] for a in records if story_of[a.id] != a.story_id}
    if changed:
        app.store.save_story_ids(changed)
        log.info("stories: %d articles placed or moved", len(changed))
    tally = read if ranked.habits is None else ranked.habits
    return WindowRanking(ranked.edition, _keep_tally(app, read, tally))


def breadth_sources(kept: SourceHabits, weight: float, sources: Iterable[str]) -> int | None:
    """How many of the ``sources`` (the configured ones) have a breadth in ``kept`` at
    ``rank.breadth_weight`` ``weight`` (None: off), for `digest explain`'s header."""
    if not weight:
        return None
    return len(set(sources).intersection(kept.breadths(weight)))


def _keep_tally(app: App, read: SourceHabits, tally: SourceHabits) -> SourceHabits:
    """Save ``tally``, the stories settled since the last run (``read``) added to what each
    source was seen do; return the tally the store keeps then. Not a tally that reaches
    past what has settled by the clock (a ranking as of a later time: `explain` of the
    next slot): its last day's stories would be counted before they had their day, with
    the sources they have so far, and never again, as the next run starts after ``until``.
    Not over another run's tally saved since ``read``: the store keeps that one (this call
    returns ``read``, the one this ranking started from)."""
    if tally.until is None or tally.until == read.until:
        return read
    if tally.until > settled_at(app.clock.now()):
        return read
    saved = app.store.save_source_habits(
        tally.pairs(), tally.until, was=read.until, pairs=tally.changed_pairs(read)
    )
    return tally if saved else read


def sent_before(app: App, digest: DigestConfig, now: datetime) -> SentStories:
    """What the digest's earlier editions sent (``views.earlier_editions``), with the
    sources and headline each story had then."""
    earlier = earlier_editions(app, digest, digest_slot(app, digest, now), now)
    return earlier_memory(app, digest, earlier).sent


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


def build_edition(
    app: App, digest: DigestConfig, now: datetime, slot: datetime | None = None
) -> tuple[Edition, bool]:
    """The edition of ``slot`` (default: the slot of ``now``): the stored one, or a new one
    ranked and rendered with the news up to ``now``; and whether this call built it.

    A stored edition without stories that went to nobody (a `digest send` before the first
    gather, or nothing new since the last edition) is rebuilt in place, keeping its id,
    once there are stories: else the slot's digest would be lost, as nothing else builds
    it again. It is dated by its slot, whenever it is built.
    """
    slot = slot or digest_slot(app, digest, now)
    existing = app.store.edition(digest.id, slot)
    if existing is not None and not rebuildable(app, existing):
        return existing, False
    ranked = rank_window(app, digest, now, subscriber_choices(app), slot)
    if existing is not None and ranked.count == 0 and not ranked.repeats:
        return existing, False  # still nothing to say: the stored edition stands
    # Each choice of topics' own edition, stored with it: what the send gives its readers.
    views = {key: view_to_json(view) for key, view in ranked.views.items()}
    rendered = render_edition(edition_info(app, digest, slot), ranked, app.config.templates_dir())
    edition = edition_row(digest.id, slot, now, ranked, rendered)
    if rendered.omitted:
        log_trim(digest.id, slot, ranked.count, rendered.omitted)
    if existing is not None:
        saved, rebuilt = app.store.rebuild_edition(saved_id(existing), edition, views)
        if rebuilt and ranked.count:
            log.info(
                "edition %s of %s rebuilt: %d stories (it had none)",
                digest.id,
                slot,
                ranked.count,
            )
        return saved, rebuilt
    saved = app.store.save_edition(edition, views)
    log.info("edition %s of %s built: %d stories", digest.id, slot, ranked.count)
    if saved is edition:
        prune_views(app, digest, now, earlier_editions(app, digest, slot, now))
    return saved, saved is edition


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
    in ``timezone`` and ``locale`` (default: the digest's own). Nothing is stored.

    With ``topics``, their choice's own edition, as the build would store it and the send
    give its readers (``views``)."""
    at = next_edition_at(app, digest, now)
    key = topic_key(topics)
    ranked = rank_window(app, digest, at, [key] if key else [])
    shown = ranked.views[key] if key else ranked
    info = edition_info(app, digest, digest_slot(app, digest, at), timezone, locale)
    info = replace(info, topics=frozenset(topics))  # Latest headed by their topics
    return shown, render_edition(info, shown, app.config.templates_dir())
