"""What a reader who picked topics gets of an edition, and what each choice of topics was
shown, remembered.

The edition's Latest is capped per source for everyone (``latest_per_source``); a topic
reader's is filled again by the same rule from their topics' stories, those the edition
left out of its Latest included (``rank.for_topics``), which the edition stores for them
(``RankedEdition.extra``). What the readers of one choice of topics (its key: sorted,
comma-joined) were shown is kept per edition (``Store.save_edition_view``), and a later
edition leaves those stories out for them unless they grew, over the same earlier
editions the edition-wide repeat rule reads (``earlier_editions``). Everyone who picks the
same topics shares that memory, as every reader shares the digest's: a reader who joins,
or changes topics, does not get what earlier editions showed that choice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from digest.app import App
from digest.config import DigestConfig
from digest.editions.slots import digest_slot
from digest.editions.stored import shown_from_json, shown_to_json
from digest.rank import SentStories, for_topics, sent_from, topic_extra
from digest.records import RankedEdition, Story


@dataclass(frozen=True)
class EarlierEditions:
    """Which earlier editions' stories a digest's readers had (``Store.edition_stories``'
    arguments): the digest's last ``limit`` before ``before``, every one since ``since``
    (the story memory), of the ``slots`` only for a local-time digest, and the ``others``
    digests' within the story memory."""

    digest_id: str
    before: datetime
    limit: int
    slots: list[datetime] | None
    since: datetime
    others: list[str]


def earlier_editions(
    app: App, digest: DigestConfig, slot: datetime, now: datetime
) -> EarlierEditions | None:
    """The earlier editions whose stories the edition of ``slot`` built at ``now`` leaves
    out unless they grew: the last ``rank.sent_lookback_editions`` (None when 0: stories
    may repeat), and every one since the story memory began, since any story of the window
    can be one of theirs (an hourly digest's last three editions are three hours).

    Its subscribers received those editions, and every reader receives every digest: so
    the other digests' editions within the story memory count too (a story the morning
    digest sent is not news in the evening one). A local-time digest's editions go to the
    time zones of their hour: only its own of the same hour on earlier days count there,
    and its editions do not count for other digests.
    """
    weights = app.config.rank
    count = weights.sent_lookback_editions
    if count == 0:
        return None
    memory = now - timedelta(hours=max(digest.lookback_hours, weights.story_memory_hours))
    slots = None
    if digest.local_time:
        days = max(count, (slot - memory) // timedelta(days=1) + 1)
        slots = [slot - timedelta(days=k) for k in range(1, days + 1)]
    others = [] if digest.local_time else [d.id for d in app.config.digests if not d.local_time]
    return EarlierEditions(
        digest.id, slot, count, slots, memory, [d for d in others if d != digest.id]
    )


def topic_memory(
    app: App, digest: DigestConfig, slot: datetime, now: datetime, key: str
) -> SentStories:
    """What the readers of topic ``key`` were shown of the earlier editions (as
    ``earlier_editions`` counts them for the edition of ``slot`` built at ``now``)."""
    earlier = earlier_editions(app, digest, slot, now)
    if earlier is None or not key:
        return SentStories()
    views = app.store.edition_views(
        key,
        earlier.digest_id,
        earlier.before,
        earlier.limit,
        earlier.slots,
        earlier.since,
        earlier.others,
    )
    return sent_from(shown for doc in views for shown in shown_from_json(doc))


def topic_edition(
    digest: DigestConfig,
    ranked: RankedEdition,
    pool: tuple[Story, ...],
    key: str,
    had: SentStories,
) -> RankedEdition:
    """The edition for the readers of topic ``key``: ``rank.for_topics`` with the
    digest's Latest size and cap, over ``pool`` (the stories left out of Latest: the
    stored edition's ``extra``, or a ranking's ``rank.passed_over``), less what they
    ``had``."""
    return for_topics(
        ranked, pool, key.split(","), digest.latest_items, digest.latest_per_source, had
    )


def record_view(app: App, edition_id: int, key: str, shown: RankedEdition) -> None:
    """Keep what the readers of ``key`` are shown of the edition (nothing when it is
    nothing); the first record of an edition and key stands."""
    if key and shown.count:
        app.store.save_edition_view(
            edition_id, key, shown_to_json((*shown.breaking, *shown.latest))
        )


def with_topic_extra(app: App, digest: DigestConfig, ranked: RankedEdition) -> RankedEdition:
    """The edition with the stories left out of its Latest that its active subscribers'
    choices of topics take (``rank.topic_extra``, one query for the choices), to store
    with it."""
    if not ranked.capped and not ranked.unreached:
        return ranked
    extra = topic_extra(
        ranked, app.store.topic_choices(), digest.latest_items, digest.latest_per_source
    )
    return replace(ranked, extra=extra)


def next_slot_memory(app: App, digest: DigestConfig, at: datetime, key: str) -> SentStories:
    """``topic_memory`` for the edition a run at ``at`` would build (`digest preview`)."""
    return topic_memory(app, digest, digest_slot(app, digest, at), at, key)
