"""Each choice of topics' own edition: worked out at the build, stored with the edition,
given exactly to that choice's readers at the send.

The edition's Latest is capped per source for everyone (``latest_per_source``); a reader
who picked topics gets their choice's own edition instead (``rank``'s ``choices``): its
Latest filled by the same rule from their topics' stories, less what the choice was
shown beyond the edition in earlier editions (its memory: the views stored with them, over
the same earlier editions the edition's repeat rule reads: ``earlier_editions``). Worked
out once, at the build, and stored with the edition (``Store.save_edition``), so every
send of the edition, in any order and any batch, renders the same; a later build reads
it. Everyone who picks the same topics shares that memory, as every reader shares the
digest's: a reader who joins, or changes topics, is not sent what that choice was shown
before (within the memory window), even if they never had it themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from digest.app import App
from digest.config import DigestConfig
from digest.editions.stored import view_memory
from digest.rank import SentStories, sent_from, topic_key
from digest.records import EarlierEditions

log = logging.getLogger("digest.pipeline")


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

    ``slot`` is the edition's own slot and ``now`` its build time, as stored with it:
    the build (``build.window_ranking``) and a send's fallback (``SegmentTemplates``)
    then read the same editions, even when a long gather carried the build past the
    slot the run was started for (whose slot of the clock is the next one).
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


def subscriber_choices(app: App) -> list[str]:
    """The distinct choices of topics of every subscriber but the pending, whatever their
    status (one may be active again before the send), as keys (one query)."""
    return sorted({topic_key(c.split(",")) for c in app.store.topic_choices()} - {""})


def choice_memory(
    app: App, earlier: EarlierEditions | None, keys: Iterable[str]
) -> dict[str, SentStories]:
    """What each choice of topics (its key) was shown beyond the ``earlier`` editions'
    own (their stored views), as the repeat rule reads it; nothing when the digest reads
    no earlier editions (``rank.sent_lookback_editions`` = 0)."""
    keys = list(keys)
    if earlier is None:
        return {key: SentStories() for key in keys}
    views = app.store.earlier_views(keys, earlier)
    memory = {}
    for key in keys:
        shown = []
        for doc in views.get(key, ()):
            try:
                shown += view_memory(doc)
            except (ValueError, KeyError, TypeError) as exc:  # stored by hand, or damaged
                log.warning("topics %s: an earlier edition's view is unreadable: %s", key, exc)
        memory[key] = sent_from(shown)
    return memory


def prune_views(
    app: App, digest: DigestConfig, now: datetime, earlier: EarlierEditions | None
) -> None:
    """Drop the digest's stored views no later build reads (``choice_memory``): of slots
    before every digest's story memory as of ``now`` (and, local-time, before the days
    its bucket reads), but its last ``rank.sent_lookback_editions``, those of editions
    still being sent (their readers get their view), and those of the earlier editions
    an edition still being sent reads for its fallback (``SegmentTemplates._narrowed``:
    a choice first seen after its build), so what that send gives reads the same
    whatever later builds do."""
    weights = app.config.rank
    reach = max([weights.story_memory_hours, *(d.lookback_hours for d in app.config.digests)])
    before = now - timedelta(hours=reach)
    if earlier is not None and earlier.slots:
        before = min(before, *earlier.slots)
    keep = earlier.limit if earlier is not None else 0
    pruned = app.store.prune_edition_views(digest.id, before, keep, fallback_reads(app))
    if pruned:
        log.debug("digest %s: %d views of earlier editions pruned", digest.id, pruned)


def fallback_reads(app: App) -> set[int]:
    """The ids of the earlier editions whose views the fallback of an edition still being
    sent reads (of any digest still configured: a digest's editions count for others)."""
    digests = {d.id: d for d in app.config.digests}
    ids: set[int] = set()
    for digest_id, slot, built in app.store.editions_being_sent():
        digest = digests.get(digest_id)
        earlier = earlier_editions(app, digest, slot, built) if digest else None
        if earlier is not None:
            ids |= app.store.earlier_edition_ids(earlier)
    return ids
