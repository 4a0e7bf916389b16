"""How big a young story will become, learned from how the stories before it grew.

A story an hour old has only the sources that were quick to it; by the time the edition
is read, others will have joined. Counting its sources so far ranks it below a day-old
story that had all day to gather them. The subscribed sources' own past says by how much:
over the settled stories of the story memory (first article ``SETTLED_HOURS`` ago or
more), the ratio of their sources a day in to their sources ``h`` hours in is the growth
a story ``h`` hours old can expect (``GrowthCurve.factor``). Nothing is fitted in advance
and nothing reads a label: it is what digest saw happen, recomputed at each ranking from
the stored articles. The ``growth`` signal is then the sources a story can expect still to
come, counted in votes as coverage is (``score.score_story``).

Where stories arrive whole (every source within minutes) the curve is flat, every factor
1 and the signal 0; a new install with less than ``_MIN_STORIES`` settled stories has no
curve at all, so it ranks exactly by the other signals (counting, as before).

Measured in ``bench/rank_eval.py`` (see bench/README.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta

SETTLED_HOURS = 24.0  # a story this old has the sources it will get (and the curve's end)
_AGES = (0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)  # hours a factor is known at
_MIN_STORIES = 20  # settled stories needed before the curve is believed


def first_arrivals(arrivals: Iterable[tuple[int, datetime]]) -> dict[int, datetime]:
    """Each story's first arrival, from (story id, when an article of it reached digest):
    its age counts from there, and whether it has settled (``settled_stories``)."""
    started: dict[int, datetime] = {}
    for story_id, seen in arrivals:
        was = started.get(story_id)
        if was is None or seen < was:
            started[story_id] = seen
    return started


def settled_at(now: datetime) -> datetime:
    """The latest first arrival of a story settled at ``now``: ``SETTLED_HOURS`` before."""
    return now - timedelta(hours=SETTLED_HOURS)


def settled_stories(started: Mapping[int, datetime], now: datetime) -> set[int]:
    """The stories settled at ``now``: first arrival ``SETTLED_HOURS`` ago or more (exactly
    then included), so they have the sources they will get."""
    cutoff = settled_at(now)
    return {story_id for story_id, first in started.items() if first <= cutoff}


@dataclass(frozen=True)
class GrowthCurve:
    """Expected growth of a story's sources by its age: (age hours, factor), ages rising."""

    points: tuple[tuple[float, float], ...] = ()
    stories: int = 0  # the settled stories it was learned from
    # story id -> hours (since the epoch) its first article reached digest, over the
    # memory: a story's age counts from there, not from its first article in the window
    started: Mapping[int, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        arrivals: Iterable[tuple[int, str, datetime]],
        now: datetime,
        started: Mapping[int, datetime] | None = None,
        settled: Set[int] | None = None,
    ) -> GrowthCurve:
        """From (story id, source, when the article reached digest): the story memory.

        ``started``: its stories' ``first_arrivals`` and ``settled``: the
        ``settled_stories`` among them at ``now``, if the caller has them already.
        """
        if started is None:
            arrivals = list(arrivals)  # read twice: here, and below
            started = first_arrivals((story_id, seen) for story_id, _, seen in arrivals)
        if settled is None:
            settled = settled_stories(started, now)
        first: dict[int, dict[str, float]] = {}
        for story_id, source, seen in arrivals:
            if story_id in settled:
                hours = seen.timestamp() / 3600
                sources = first.setdefault(story_id, {})
                sources[source] = min(sources.get(source, hours), hours)
        begun = {story_id: seen.timestamp() / 3600 for story_id, seen in started.items()}
        grown = [  # each settled story's sources, by hours from its first arrival
            [t - begun[story_id] for t in sources.values()] for story_id, sources in first.items()
        ]
        if len(grown) < _MIN_STORIES:
            return cls((), len(grown), begun)
        final = sum(sum(1 for t in ages if t <= SETTLED_HOURS) for ages in grown)
        points = []
        for age in _AGES:
            by_then = sum(sum(1 for t in ages if t <= age) for ages in grown)
            points.append((age, max(1.0, final / by_then)))
        return cls(tuple(points), len(grown), begun)

    def age(self, story_ids: Iterable[int], now: datetime, first_seen: datetime) -> float:
        """Hours since the story's first article reached digest, over the memory.

        ``first_seen``: its first article among those at hand, for a story not in it.
        """
        hours = [self.started[s] for s in story_ids if s in self.started]
        start = min([*hours, first_seen.timestamp() / 3600])
        return max(0.0, now.timestamp() / 3600 - start)

    def factor(self, age_hours: float) -> float:
        """How many times its sources so far a story this old can expect to end with.

        The factor of the latest known age not after ``age_hours`` (of the first known age
        for a younger story): 1 for a story older than the curve or without a curve.
        """
        if not self.points or age_hours >= SETTLED_HOURS:
            return 1.0
        found = self.points[0][1]
        for age, factor in self.points:
            if age > age_hours:
                break
            found = factor
        return found
