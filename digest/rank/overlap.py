"""Independent coverage: sources that habitually carry the same stories share a vote.

Ten finance wires running one earnings report are one beat's habit, not ten newsrooms
deciding a story matters; three outlets that rarely agree carrying it say more. So the
coverage signal counts each source's vote as its configured weight divided by

    1 + discount * (the story's other sources, each counted by how often it carries
                    what this source carries: P(other | this) over the story memory)

A source whose companions are independent keeps nearly its full vote; a source in a pack
that always moves together gives about 1/(pack size). The frequencies come from the
stories of the story memory, so they follow what the subscribed sources actually do and
need no setting beyond ``rank.overlap_discount`` (0: every source a full vote). Each source
starts with 5 stories' worth of carrying alone (``_PRIOR``), so a habit is believed only
once seen a few times; the story being scored is left out of the counts (``excluding``),
or a big story would look like a habit of its own sources.

Measured in ``bench/rank_eval.py`` (P@10 against coverage by all publishers): see
bench/README.md.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from itertools import permutations

from digest.rank.habits import SourceHabit, source_counts

_PRIOR = 5  # stories a source is assumed to have carried alone: few stories, small discount
_MIN_SETTLED = 20  # settled stories needed before sources' rerun habits are believed


@dataclass(frozen=True)
class SourceOverlap:
    """How often sources carried the same stories, over the story memory."""

    discount: float = 0.0
    carried: Mapping[str, int] = field(default_factory=dict)  # source -> its stories
    together: Mapping[tuple[str, str], int] = field(default_factory=dict)  # both carried
    story_sources: Mapping[int, frozenset[str]] = field(default_factory=dict)
    excluded: frozenset[int] = frozenset()  # stories left out of the counts
    rerun: float = 0.0  # exponent of the rerun factor (``rank.rerun_discount``; 0: none)
    runs: Mapping[str, float] = field(default_factory=dict)  # source -> articles per story
    usual_run: float = 1.0  # articles per story over every source of the memory
    breadths: Mapping[str, float] = field(default_factory=dict)  # source -> breadth factor

    @classmethod
    def of(
        cls,
        memberships: Iterable[tuple[int, str]],
        discount: float,
        rerun: float = 0.0,
        settled: Iterable[tuple[int, str]] = (),
        habits: Mapping[str, tuple[float, float]] | None = None,
        breadths: Mapping[str, float] | None = None,
    ) -> SourceOverlap:
        """From (story id, source) pairs: one per article of the story memory.

        ``settled``: the same pairs of the memory's settled stories only (see ``reruns``),
        whose articles per source say how many a source usually runs; ``rerun``: the
        exponent of the factor that makes of it (``rank.rerun_discount``; 0: none).
        ``habits``: each source's (stories, articles) over every story settled since the
        install (``habits.SourceHabits``, kept in the store): what a source's own few
        stories in the memory are believed against (``reruns``). ``breadths``: each
        source's breadth factor (``habits.SourceHabits.breadths``; none: every factor 1).
        """
        sources: dict[int, set[str]] = defaultdict(set)
        for story_id, source in memberships:
            sources[story_id].add(source)
        carried: Counter[str] = Counter()
        together: Counter[tuple[str, str]] = Counter()
        for names in sources.values():
            carried.update(names)
            if len(names) > 1:
                together.update(permutations(names, 2))
        frozen = {story_id: frozenset(names) for story_id, names in sources.items()}
        runs, usual = reruns(settled, habits) if rerun else ({}, 1.0)
        return cls(
            discount,
            carried,
            together,
            frozen,
            rerun=rerun,
            runs=runs,
            usual_run=usual,
            breadths=dict(breadths or {}),
        )

    def excluding(self, story_ids: Iterable[int]) -> SourceOverlap:
        """The same counts with these stories (the one being scored) left out."""
        return replace(self, excluded=frozenset(story_ids).intersection(self.story_sources))

    def rerun_factor(self, source: str) -> float:
        """How much a source's vote is worth for its habit of running a story in several
        articles: (the usual articles per story / its own) ** ``rerun``; 1 unknown."""
        if not self.runs:
            return 1.0
        return (self.usual_run / self.runs.get(source, self.usual_run)) ** self.rerun

    def votes(
        self,
        weights: Mapping[str, float],
        reruns: bool = True,
        breadths: bool = True,
        shares: Mapping[str, float] | None = None,
    ) -> dict[str, float]:
        """Each source's vote for one story: its weight, shared with its usual companions,
        times its ``rerun_factor`` and its breadth factor (``reruns=False``,
        ``breadths=False``: without them).

        ``weights``: the story's sources and their configured weights; ``shares``: their
        ``shares``, if the caller has them already (they depend on the sources alone).
        """
        if reruns and self.runs:
            weights = {s: w * self.rerun_factor(s) for s, w in weights.items()}
        if breadths and self.breadths:
            weights = {s: w * self.breadths.get(s, 1.0) for s, w in weights.items()}
        if not self.discount:
            return dict(weights)
        shares = shares if shares is not None else self.shares(weights)
        return {source: weight / shares[source] for source, weight in weights.items()}

    def shares(self, sources: Iterable[str]) -> dict[str, float]:
        """What each of a story's sources divides its vote by: 1 + discount x how often
        its companions in the story carry what it carries (1 each without a discount)."""
        names = list(sources)
        if not self.discount:
            return dict.fromkeys(names, 1.0)
        own = [self.story_sources[s] for s in self.excluded]
        shares = {}
        for source in names:
            mine = [story for story in own if source in story]
            stories = self.carried.get(source, 0) - len(mine) + _PRIOR
            companions = sum(
                self.together.get((source, o), 0) - sum(o in story for story in mine)
                for o in names
                if o != source
            )
            shares[source] = 1 + self.discount * companions / stories
        return shares


def reruns(
    settled: Iterable[tuple[int, str]], habits: Mapping[str, tuple[float, float]] | None = None
) -> tuple[dict[str, float], float]:
    """Each source's articles per story it carried, and every source's together, over the
    settled stories given as (story id, source) pairs, one per article.

    Each source starts with ``_PRIOR`` stories at its long-run articles per story, from
    ``habits`` (stories, articles) when the store has kept them, else at one article (a
    habit is believed once seen a few times): the memory's day says what a source does
    now, the long run what it usually does, and its few stories a day are believed only
    as far as they outweigh that. With fewer than ``_MIN_SETTLED`` stories in the memory
    there is no habit to learn (``{}``, every factor 1: a new install counts sources).
    """
    settled = list(settled)
    if len({story_id for story_id, _ in settled}) < _MIN_SETTLED:
        return {}, 1.0
    counts = source_counts(settled)
    habits = habits or {}
    per_source = {s: _run(c.stories, c.articles, _usual(habits.get(s))) for s, c in counts.items()}
    every = sum(counts.values(), SourceHabit())
    return per_source, _run(every.stories, every.articles)


def _usual(habit: tuple[float, float] | None) -> float:
    """A source's long-run articles per story (``_PRIOR`` stories of one article first);
    1 without a habit kept."""
    return 1.0 if habit is None else _run(*habit)


def _run(stories: float, articles: float, prior: float = 1.0) -> float:
    """Articles per story over these, believed against ``_PRIOR`` stories of ``prior``
    articles each: a run is believed only once seen a few times."""
    return (articles + _PRIOR * prior) / (stories + _PRIOR)
