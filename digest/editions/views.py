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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from digest.app import App
from digest.config import DigestConfig
from digest.editions.stored import ViewMemory, ranked_from_json, without_extra
from digest.rank import SentStories, sent_from, sent_sources, topic_key
from digest.records import EarlierEditions, EarlierStored, RankedEdition

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


@dataclass(frozen=True)
class EarlierMemory:
    """What the earlier editions sent everyone (``sent``: their Breaking and Latest) and
    what each choice of topics (its key) was shown beyond them (``choices``)."""

    sent: SentStories
    choices: dict[str, SentStories]


def earlier_memory(
    app: App, digest: DigestConfig, earlier: EarlierEditions | None, keys: Iterable[str] = ()
) -> EarlierMemory:
    """What the ``earlier`` editions sent (a story they showed only to a choice of topics,
    their ``extra``, was not sent to the others), with the sources and headlines each
    story had then, and what each choice of topics ``keys`` was shown beyond them (their
    stored views: ``view_memory``): each edition read and parsed once for both. Nothing
    when the digest reads no earlier editions (``rank.sent_lookback_editions`` = 0)."""
    keys = list(keys)
    if earlier is None:
        return EarlierMemory(SentStories(), {key: SentStories() for key in keys})
    stored = app.store.earlier_stored(earlier, keys)
    editions = _parsed(digest, stored)
    sent = sent_sources(editions.values())
    return EarlierMemory(sent, _shown_to(keys, stored, editions))


def choice_memory(
    app: App, digest: DigestConfig, earlier: EarlierEditions | None, keys: Iterable[str]
) -> dict[str, SentStories]:
    """What each choice of topics (its key) was shown beyond the ``earlier`` editions'
    own (``earlier_memory``'s ``choices``), reading only the editions it has views of."""
    keys = list(keys)
    if earlier is None:
        return {key: SentStories() for key in keys}
    stored = app.store.earlier_stored(earlier, keys, viewed=True)
    return _shown_to(keys, stored, _parsed(digest, stored))


def _parsed(digest: DigestConfig, stored: EarlierStored) -> dict[int, RankedEdition]:
    """The ``stored`` editions' stories, each parsed once: with its ``extra`` when it holds
    one of the views read (what they showed beyond its own is there); one unreadable is
    logged and left out. One whose ``extra`` alone is damaged is read without it: its own
    stories still count for everyone (its views then cannot be read)."""
    viewed = {edition_id for of_key in stored.views.values() for edition_id in of_key}
    parsed: dict[int, RankedEdition] = {}
    for edition_id, doc in stored.stories.items():
        with_extra = edition_id in viewed
        try:
            try:
                parsed[edition_id] = ranked_from_json(doc, extra=with_extra)
            except (ValueError, KeyError, TypeError):
                if not with_extra:
                    raise
                parsed[edition_id] = ranked_from_json(doc, extra=False)
        except (ValueError, KeyError, TypeError) as exc:  # an edition stored by an old version
            log.warning(
                "digest %s: an earlier edition's stories are unreadable: %s", digest.id, exc
            )
    return parsed


def _shown_to(
    keys: list[str], stored: EarlierStored, editions: Mapping[int, RankedEdition]
) -> dict[str, SentStories]:
    """Each choice's memory: what its ``stored`` views of the ``editions`` showed beyond
    their own, as the repeat rule reads it; a view it cannot read is logged and left out."""
    readers: dict[int, ViewMemory] = {}  # each edition's, shared by its views
    memory = {}
    for key in keys:
        shown = []
        for edition_id, view in stored.views.get(key, {}).items():
            if edition_id not in readers:
                readers[edition_id] = ViewMemory(editions.get(edition_id))
            try:
                shown += readers[edition_id](view)
            except (ValueError, KeyError, TypeError) as exc:  # stored by hand, or damaged
                log.warning("topics %s: an earlier edition's view is unreadable: %s", key, exc)
        memory[key] = sent_from(shown)
    return memory


def prune_views(
    app: App, digest: DigestConfig, now: datetime, earlier: EarlierEditions | None
) -> None:
    """Drop the digest's stored views no later build reads (``earlier_memory``): of slots
    before every digest's story memory as of ``now`` (and, local-time, before the days
    its bucket reads), but its last ``rank.sent_lookback_editions``, those of editions
    still being sent (their readers get their view), and those of the earlier editions
    an edition still being sent, or the one just built (``earlier`` is its: its send is
    next), reads for its fallback (``SegmentTemplates._narrowed``: a choice first seen
    after its build), so what that send gives reads the same whatever later builds do,
    this one's included. With an edition's last view goes its ``extra`` (what only its
    views showed): a send or web view of a choice without a view reads none of it."""
    weights = app.config.rank
    reach = max([weights.story_memory_hours, *(d.lookback_hours for d in app.config.digests)])
    before = now - timedelta(hours=reach)
    if earlier is not None and earlier.slots:
        before = min(before, *earlier.slots)
    keep = earlier.limit if earlier is not None else 0
    spare = fallback_reads(app)
    if earlier is not None:
        # The edition just built (``earlier`` is its): its send comes next, and has no row
        # to send yet, so ``fallback_reads`` does not know it; its fallback reads these.
        spare |= app.store.earlier_edition_ids(earlier)
    pruned, cleared = app.store.prune_edition_views(digest.id, before, keep, spare, without_extra)
    if pruned:
        log.debug(
            "digest %s: %d views of earlier editions pruned (%d editions' extra stories with them)",
            digest.id,
            pruned,
            cleared,
        )


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
