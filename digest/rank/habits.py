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

Measured in ``bench/rank_eval.py`` and ``bench/rank_signals.py`` (bench/README.md,
"Habits kept across runs").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from digest.rank.growth import settled_at, settled_stories


@dataclass(frozen=True)
class SourceHabit:
    """One source's tally: the settled stories it carried and its articles in them."""

    stories: int = 0
    articles: int = 0


@dataclass(frozen=True)
class SourceHabits:
    """Every source's tally over the stories settled so far, and up to when it counts.

    ``until``: stories whose first article reached digest at or before it are tallied
    (None: nothing yet).
    """

    sources: Mapping[str, SourceHabit] = field(default_factory=dict)
    until: datetime | None = None

    @classmethod
    def kept(cls, pairs: Mapping[str, tuple[int, int]], until: datetime | None) -> SourceHabits:
        """As the store keeps them: each source's (stories, articles), and ``until``."""
        return cls({name: SourceHabit(*counts) for name, counts in pairs.items()}, until)

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
        articles = Counter(pair for pair in carried if pair[0] in new)
        sources = dict(self.sources)
        for (_, source), n in articles.items():
            was = sources.get(source, SourceHabit())
            sources[source] = SourceHabit(was.stories + 1, was.articles + n)
        return SourceHabits(sources, settled)

    def pairs(self) -> dict[str, tuple[int, int]]:
        """Each source's (stories, articles): what ``overlap.reruns`` leans on, and what the
        store keeps."""
        return {name: (h.stories, h.articles) for name, h in self.sources.items()}
