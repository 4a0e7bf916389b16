"""One edition's ranking from the story memory: the rank stage as the pipeline runs it.

The pipeline reads the memory from the store and writes the story ids back; between the
two, everything is here and pure, so ``bench/rank_eval.py`` measures the very steps a send
takes: stories formed over the whole memory (stored ids kept), the digest's window taken
from it, sources' habits and how stories grew counted over the memory, and the window
ranked with the chains of follow-ups, a story sent before left out unless it grew.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from digest.config import DigestConfig, RankConfig
from digest.rank.growth import GrowthCurve, first_arrivals, settled_stories
from digest.rank.habits import SourceHabits
from digest.rank.overlap import SourceOverlap
from digest.rank.repeats import SentStories
from digest.rank.score import Membership, assign_stories, rank
from digest.records import ArticleRecord, RankedEdition


@dataclass(frozen=True)
class RankedMemory:
    """The edition, every memory article's story and the sources' habits (what to store)."""

    edition: RankedEdition
    stories: Membership
    habits: SourceHabits | None = None  # with the stories settled since the last run


def rank_memory(
    memory: Sequence[ArticleRecord],
    in_window: Callable[[ArticleRecord], bool],
    now: datetime,
    digest: DigestConfig,
    weights: RankConfig,
    sent: SentStories,
    sent_penalty: float | None = None,
    habits: SourceHabits | None = None,
    choices: Mapping[str, SentStories] | None = None,
) -> RankedMemory:
    """Rank the memory articles ``in_window`` admits, with stories formed over all of it.

    ``memory``: every enabled source's articles back to ``rank.story_memory_hours``, with
    their stored story ids; ``sent``: what the digest's earlier editions sent, left out of
    the edition unless it grew since (``sent_penalty``: kept, lowered by that much; see
    ``rank``); ``habits``: the sources' habits the store kept (None: learned from the
    memory alone), returned with this run's settled stories added; ``choices``: what each
    choice of topics was shown beyond those editions (``rank``).
    """
    stories = assign_stories(memory, weights)
    started = story_starts(memory, stories)
    if habits is not None:
        habits = tallied(habits, memory, stories, now, weights, started)
    edition = rank_stories(
        memory,
        stories,
        in_window,
        now,
        digest,
        weights,
        sent,
        sent_penalty,
        habits,
        started,
        choices=choices,
    )
    return RankedMemory(edition, stories, habits)


def story_starts(memory: Sequence[ArticleRecord], stories: Membership) -> dict[int, datetime]:
    """Each of the memory's stories' first arrival: when it counts as settled, for the
    tally (``tallied``) and the rerun habits of the memory (``rank_stories``) alike."""
    story_of = stories.story_of
    return first_arrivals((story_of[a.id], a.seen_at) for a in memory)


def tallied(
    habits: SourceHabits,
    memory: Sequence[ArticleRecord],
    stories: Membership,
    now: datetime,
    weights: RankConfig,
    started: Mapping[int, datetime] | None = None,
) -> SourceHabits:
    """``habits`` with the memory's stories that settled since their last tally added
    (``started``: ``story_starts``, if the caller has it already)."""
    story_of = stories.story_of
    return habits.tally(
        ((story_of[a.id], a.source) for a in memory),
        story_starts(memory, stories) if started is None else started,
        now,
        now - timedelta(hours=weights.story_memory_hours),
    )


def rank_stories(
    memory: Sequence[ArticleRecord],
    stories: Membership,
    in_window: Callable[[ArticleRecord], bool],
    now: datetime,
    digest: DigestConfig,
    weights: RankConfig,
    sent: SentStories,
    sent_penalty: float | None = None,
    habits: SourceHabits | None = None,
    started: Mapping[int, datetime] | None = None,
    *,
    choices: Mapping[str, SentStories] | None = None,
) -> RankedEdition:
    """``rank_memory`` past the clustering: the memory's stories (``stories``) given, so
    the same memory can be ranked again against another ``sent`` (``bench/rank_eval.py``).
    ``habits``: already ``tallied``; each source's rerun habit over the memory is believed
    against its long run there (``overlap.reruns``). ``started``: ``story_starts``, if
    the caller has it already."""
    story_of = stories.story_of
    window = [replace(a, story_id=story_of[a.id]) for a in memory if in_window(a)]
    if started is None:
        started = story_starts(memory, stories)
    settled = settled_stories(started, now)
    overlap = SourceOverlap.of(
        ((story_of[a.id], a.source) for a in memory),
        weights.overlap_discount,
        weights.rerun_discount,
        ((story_of[a.id], a.source) for a in memory if story_of[a.id] in settled),
        habits.pairs() if habits is not None else None,
        habits.breadths(weights.breadth_weight) if habits is not None else None,
    )
    # How stories grew, from the memory's settled ones: what this store has seen happen.
    growth = GrowthCurve.of(
        ((story_of[a.id], a.source, a.seen_at) for a in memory), now, started, settled
    )
    return rank(
        window,
        now,
        digest,
        weights,
        sent.with_stories(story_of),
        stories.follows,
        overlap,
        growth,
        sent_penalty=sent_penalty,
        choices={k: had.with_stories(story_of) for k, had in (choices or {}).items()},
    )
