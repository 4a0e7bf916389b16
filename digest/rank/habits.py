"""Sources' habits, kept across runs: what the store has seen each source do, story after story.

The story memory (``rank.story_memory_hours``, 48 h) holds a day of settled stories: a
few stories per source, too few to tell a wire that files five updates on every story
from a paper that runs one article on a quiet day. So each rank run adds the stories that
have settled since the last one (first article ``growth.SETTLED_HOURS`` ago or more) to a
per-source tally the store keeps (``SourceHabits``: stories carried, articles run in
them). A story is tallied once, when it settles: the tally remembers up to when stories
are counted (``until``), so a run that comes again (a preview, ``digest explain``, a
second digest) adds nothing twice.

The memory's day still says what a source does now; the tally is what its few stories
there are believed against (``overlap.reruns``: a source starts from ``_PRIOR`` stories at
its long-run articles per story, not at one article). Read from the tally alone, or
fading it over days, ranked worse on our clusters (bench/README.md). Nothing in it reads
a label: it is which sources carried which stories, in how many articles, as digest
formed them. A new install has an empty tally and learns from the memory alone, as
before: no habit until ``overlap._MIN_SETTLED`` stories have settled, sources counted as
they are.

The tally also counts, for each pair of sources, the settled stories both carried
(``together``): from it comes each source's *breadth* (``breadths``), how much what it
carries alongside looks like what every source carries. A general newsroom's choices are
the press's at large, so its vote says more of how widely a story will be told than a
specialist's (a finance wire, a celebrity site), whose stories its own niche carries: a
per-source weighting fitted on the labels of the dev file follows breadth (r = 0.69),
and breadth from the tally alone ranks better on both months (bench/README.md,
"Breadth"). It needs a long run (``_MIN_BREADTH_CARRIED``): a day's memory is too
few stories to tell a generalist from a specialist.

Measured in ``bench/rank_eval.py`` and ``bench/rank_signals.py`` (bench/README.md,
"Habits kept across runs", "Breadth").
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations

from digest.rank.growth import settled_at, settled_stories

_MIN_BREADTH_CARRIED = 3000  # stories carried, summed over sources, before breadth counts
_MIN_BREADTH_STORIES = 50  # a source's own stories before it has a breadth (else factor 1)
# No source's vote is made more than 4 times or less than a quarter of what it was, however
# odd the set of sources (on two months of news the factors ran from 0.31 to 2.1).
_BREADTH_BOUNDS = (0.25, 4.0)

Pair = tuple[str, str]  # two source names, in order


@dataclass(frozen=True)
class SourceHabit:
    """One source's tally: the settled stories it carried and its articles in them."""

    stories: int = 0
    articles: int = 0

    def __add__(self, other: SourceHabit) -> SourceHabit:
        return SourceHabit(self.stories + other.stories, self.articles + other.articles)


def source_counts(carried: Iterable[tuple[int, str]]) -> dict[str, SourceHabit]:
    """Each source's stories and its articles in them, from (story id, source) pairs, one
    per article: what the tally adds (``SourceHabits.tally``) and what a source's rerun
    habit is read from (``overlap.reruns``)."""
    counts: dict[str, SourceHabit] = {}
    for (_, source), n in Counter(carried).items():
        counts[source] = counts.get(source, SourceHabit()) + SourceHabit(1, n)
    return counts


@dataclass(frozen=True)
class SourceHabits:
    """Each source's tally over the stories settled so far, and up to when it counts.

    A ranking reads the tally of the sources configured now alone (``store.source_habits``):
    a source removed or renamed keeps its rows in the store (for
    ``retention.source_habits_days`` after its last fetch), but its pairs would weigh in
    the others' breadth (``breadths``) until the history outgrew them.

    ``until``: stories whose first article reached digest at or before it are tallied
    (None: nothing yet).
    """

    sources: Mapping[str, SourceHabit] = field(default_factory=dict)
    until: datetime | None = None
    # Settled stories both carried, each pair once in name order; (a, a): a's own stories,
    # counted from when pairs were first kept (migration 0024), as the pairs are.
    together: Mapping[Pair, int] = field(default_factory=dict)

    @classmethod
    def kept(
        cls,
        pairs: Mapping[str, tuple[int, int]],
        until: datetime | None,
        together: Mapping[Pair, int] | None = None,
    ) -> SourceHabits:
        """As the store keeps them: each source's (stories, articles), ``until``, and each
        pair of sources' stories carried together."""
        habits = {name: SourceHabit(*counts) for name, counts in pairs.items()}
        return cls(habits, until, together or {})

    def tally(
        self,
        carried: Iterable[tuple[int, str]],
        started: Mapping[int, datetime],
        now: datetime,
        memory_from: datetime,
    ) -> SourceHabits:
        """The tally with the stories of the memory that settled since ``until`` added.

        ``carried``: (story id, source), one per article of the story memory, which
        reaches back to ``memory_from``; ``started``: each of its stories' first arrival
        (``growth.first_arrivals``). A story is added when its first article is at least
        ``SETTLED_HOURS`` old (``growth.settled_stories``), once: a later run counts only
        those that first arrived after ``until``. After a gap between runs longer than a
        day, the stories that settled in it and left the memory are not seen: the tally
        goes on from the memory's beginning.
        """
        settled = settled_at(now)
        if memory_from > settled or (self.until is not None and self.until >= settled):
            return self
        new = {
            story_id
            for story_id in settled_stories(started, now)
            if memory_from <= started[story_id]
            and (self.until is None or started[story_id] > self.until)
        }
        if not new:  # nothing settled since: the store keeps what it has, not rewritten
            return self
        articles = [pair for pair in carried if pair[0] in new]
        sources = dict(self.sources)
        for source, counts in source_counts(articles).items():
            sources[source] = sources.get(source, SourceHabit()) + counts
        carriers: dict[int, set[str]] = defaultdict(set)
        for story_id, source in articles:
            carriers[story_id].add(source)
        together = Counter(self.together)
        for names in carriers.values():
            together.update((name, name) for name in names)
            together.update(combinations(sorted(names), 2))
        return SourceHabits(sources, settled, dict(together))

    def breadths(self, power: float) -> dict[str, float]:
        """Each source's breadth, as a factor on its vote: (the cosine of the stories it
        carried with each other source and the stories each other source carried, over
        the mean of every source's) ** ``power``, within ``_BREADTH_BOUNDS``.

        Counted over the pairs alone (``together``; its own stories are ``(a, a)``), so
        both sides of the cosine cover the same stories; over the sources this tally holds,
        which for a ranking are those configured now (the store reads no other's pairs):
        what a removed source carried says nothing of the press the digest reads now.
        Empty (every factor 1) with ``power`` 0 or before ``_MIN_BREADTH_CARRIED``
        stories are tallied: a new install counts sources as they are. A source with fewer
        than ``_MIN_BREADTH_STORIES`` of its own (new, or renamed) has no factor and is not
        in the mean: its first few stories would make it look like a specialist.
        """
        carried = {a: n for (a, b), n in self.together.items() if a == b}
        if not power or sum(carried.values()) < _MIN_BREADTH_CARRIED:
            return {}
        alongside: dict[str, Counter[str]] = defaultdict(Counter)
        for (a, b), n in self.together.items():
            if a != b:
                alongside[a][b] += n
                alongside[b][a] += n
        squares = sum(n * n for n in carried.values())
        cosines = {}
        for name, others in alongside.items():
            if carried.get(name, 0) < _MIN_BREADTH_STORIES:
                continue
            dot = sum(n * carried.get(other, 0) for other, n in others.items())
            norm = sum(n * n for n in others.values()) * (squares - carried[name] ** 2)
            if dot and norm:
                cosines[name] = dot / math.sqrt(norm)
        if not cosines:
            return {}
        mean = sum(cosines.values()) / len(cosines)
        low, high = _BREADTH_BOUNDS
        return {name: min(high, max(low, (c / mean) ** power)) for name, c in cosines.items()}

    def changed_pairs(self, since: SourceHabits) -> dict[Pair, int]:
        """The pairs whose counts differ from ``since``'s (the tally this one grew from):
        all a save need write, the rest kept as they are. ``since`` read the sources the
        ranking ranks (the store's read names them) and the tally adds their stories
        alone, so each pair written is one whose kept count ``since`` held: a pair of a
        source left out of the read is not written over, nor counted twice."""
        return {pair: n for pair, n in self.together.items() if since.together.get(pair) != n}

    def pairs(self) -> dict[str, tuple[int, int]]:
        """Each source's (stories, articles): what ``overlap.reruns`` leans on, and what the
        store keeps."""
        return {name: (h.stories, h.articles) for name, h in self.sources.items()}
