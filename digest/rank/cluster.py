"""Incremental story clustering: an article arriving tomorrow joins yesterday's story.

Each article is a TF-IDF vector of its headline and URL-slug words, and more lightly its
summary's (``terms``), with document frequencies counted as articles arrive, so nothing
is fitted in advance. A story is the sum of its articles' vectors; its centroid keeps the
``centroid_terms`` heaviest words. A new article joins the story whose centroid it is most
similar to (cosine at least ``similarity``) or starts a story of its own. Only a shortlist
of stories is compared: an inverted index maps each word to the stories whose
``index_terms`` heaviest words include it (``_shortlist``), and a story out of reach in
time leaves that index (``_set_aside``), so the cost of an article does not grow with the
window. ``assignments()`` then merges stories whose centroids have come to agree
(cosine at least ``merge``; a story of one or two articles at the joining threshold, if
lower): articles that arrived early, before their story had words in common with them,
end up together. Then stories whose centroids agree once each word lends weight to the
words the run's own stories showed to go with it ("wall street" and "dow"; ``associate``)
merge too: paraphrases that share no word.

Time bounds a story as an editor's desk does: with ``gap_hours`` set, an article joins
only a story with an article published within that many hours of it, and two stories
merge only if they come that close. A story that went quiet and is taken up again later
("Heartbleed: what to change now", a day after "Heartbleed bug found") becomes a new story
that *follows* the old one (``continuations()``), so a digest can still tell its readers
already had it. Without that bound, one event's coverage over days grows into one
ever-wider story, which is what the aggregator's labels in ``bench/rank_eval.py`` split.
Nearness is judged against a story's span, first to last article; an article stored with
a story joins it whatever its time, so a story stored before the bound existed stays whole.

Every story is named by the id of its first article (``story_id``), so ids are stable
across runs without a table of their own; when two stories merge, the older name wins.

Measured on real labelled headlines in ``bench/rank_eval.py`` (see bench/README.md).
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from operator import itemgetter

from digest.config.models import RankConfig, default
from digest.rank.associate import Associations, agreement
from digest.rank.terms import article_terms

Vector = dict[str, float]
_COMMON = 100  # a word indexing more stories than this shortlists none
_QUERY_TERMS = 6  # an article's heaviest words, by which it shortlists stories
_SHORTLIST = 8  # stories whose full similarity is computed per article
_SMALL = 2  # a story this small merges at the joining threshold (``_merge_all``)
# A story whose newest article is this many hours beyond the gap behind the newest article
# added leaves the look-up index until the merging (``_set_aside``): no article joins it
# any more, so a look-up costs the same however long the run. The slack covers feeds that
# date an article well before digest reads it.
_SLACK_HOURS = 24.0


@dataclass
class _Story:
    """One story while clustering: the sum of its articles' vectors and its centroid."""

    id: int
    total: Vector = field(default_factory=dict)
    centroid: Vector = field(default_factory=dict)
    indexed: tuple[str, ...] = ()
    size: int = 0
    stale: int = 0  # articles joined since the centroid was last computed
    first: float = math.inf  # publication hours (since the epoch) of its oldest article...
    last: float = -math.inf  # ...and of its newest; infinite while none had a time

    def spans(self, at: float) -> None:
        self.first, self.last = min(self.first, at), max(self.last, at)


def cosine(a: Vector, b: Vector) -> float:
    """Dot product of two unit vectors (the shorter is walked)."""
    if len(a) > len(b):
        a, b = b, a
    get = b.get
    return sum(x * get(w, 0.0) for w, x in a.items())


class StoryIndex:
    """Stories of a window of articles, grown one article at a time.

    ``add(article_id, title, url, story_id=None, at=...)``: an article already stored with
    a story passes that ``story_id`` and joins it as is; a new one joins the best matching
    story near ``at`` in time or starts its own. ``assignments()``: every added article's
    story id after merging, which is what to store; ``continuations()``: which stories
    take up an earlier one.
    """

    def __init__(
        self,
        similarity: float = default(RankConfig, "story_similarity"),
        merge: float = default(RankConfig, "merge_similarity"),
        centroid_terms: int = 100,
        index_terms: int = 12,
        slug_weight: float = 1.0,
        gap_hours: float | None = None,
        associate: bool = True,
    ) -> None:
        self.similarity = similarity
        self.merge = merge
        self.gap = math.inf if gap_hours is None else gap_hours
        self.centroid_terms = centroid_terms
        self.index_terms = index_terms
        self.slug_weight = slug_weight
        self.associate = associate
        self._documents = 0
        self._frequency: dict[str, int] = defaultdict(int)
        self._stories: dict[int, _Story] = {}
        # word -> {story id: the word's weight in the story's centroid}, for the
        # ``index_terms`` heaviest words of each story
        self._index: dict[str, dict[int, float]] = defaultdict(dict)
        self._story_of: dict[int, int] = {}
        self._renamed: dict[int, int] = {}  # merged story -> the story it joined
        self._follows: dict[int, int] = {}  # story -> the earlier story it takes up
        self._by_last: list[tuple[float, int]] = []  # (newest article's hour, story), a heap
        self._aside: set[int] = set()  # stories out of the look-up index (``_set_aside``)
        self._newest = -math.inf  # the newest article's hour so far

    def add(
        self,
        article_id: int,
        title: str,
        url: str = "",
        story_id: int | None = None,
        language: str | None = None,
        summary: str = "",
        at: datetime | None = None,
    ) -> int:
        """Put one article into a story and return that story's id (before merging).

        ``at``: when the article was published; None puts it at no distance from any story.
        """
        terms = article_terms(title, url, language, self.slug_weight, summary)
        vector = self._vector(terms)
        hours = None if at is None else at.timestamp() / 3600
        if story_id is None:
            best = self._best(vector, hours)
            story_id = article_id if best is None else best
        else:
            story_id = self._current(story_id)
        story = self._stories.get(story_id)
        if story is None:
            story = self._stories[story_id] = _Story(story_id)
        if hours is not None:
            story.spans(hours)
            heapq.heappush(self._by_last, (story.last, story_id))
        self._join(story, vector)
        if story_id in self._aside:  # a stored article joined it: back in the index
            self._aside.discard(story_id)
            self._recentre(story)
        self._story_of[article_id] = story_id
        if hours is not None and self.gap < math.inf and hours > self._newest:
            self._newest = hours
            self._set_aside(hours - self.gap - _SLACK_HOURS)
        return story_id

    def _set_aside(self, before: float) -> None:
        """Take the stories whose newest article is before ``before`` out of the index."""
        heap = self._by_last
        while heap and heap[0][0] < before:
            last, story_id = heapq.heappop(heap)
            story = self._stories.get(story_id)
            if story is None or story_id in self._aside or story.last != last:
                continue  # merged away, already aside, or a later entry stands for it
            for w in story.indexed:
                self._index[w].pop(story_id, None)
            story.indexed = ()
            self._aside.add(story_id)

    def assignments(self) -> dict[int, int]:
        """article id -> story id for every article added, after merging agreeing stories."""
        for story_id in self._aside:  # merging and follow-ups look far back: all indexed
            self._recentre(self._stories[story_id])
        self._aside.clear()
        self._merge_all()
        if self.associate:
            self._merge_associated()
        return {a: self._current(s) for a, s in self._story_of.items()}

    def continuations(self) -> dict[int, int]:
        """story id -> the id of the earlier story it takes up after a quiet spell.

        Known once ``assignments()`` has run: two stories that would have merged but for
        the time between them. A story may take up several; the oldest is kept.
        """
        follows: dict[int, int] = {}
        for later, earlier in self._follows.items():
            later, earlier = self._current(later), self._current(earlier)
            if later != earlier:
                follows[later] = min(earlier, follows.get(later, earlier))
        return follows

    def _vector(self, counts: dict[str, float]) -> Vector:
        """TF-IDF weights from the frequencies seen so far, this article included."""
        self._documents += 1
        n = self._documents + 1
        frequency = self._frequency
        weights = {}
        for word, count in counts.items():
            frequency[word] += 1
            weights[word] = count * (math.log(n / (frequency[word] + 1)) + 1.0)
        norm = math.sqrt(sum(x * x for x in weights.values())) or 1.0
        return {w: x / norm for w, x in weights.items()}

    def _best(self, vector: Vector, hours: float | None) -> int | None:
        """The most similar story near in time at or above the threshold, if any."""
        best, best_score = None, self.similarity
        for story_id in self._shortlist(vector, near=hours):
            score = cosine(vector, self._stories[story_id].centroid)
            if score >= best_score:
                best, best_score = story_id, score
        return best

    def _near(self, story: _Story, first: float, last: float) -> bool:
        """Whether the story has an article within the gap of the span first..last.

        A story or span without a time (first > last) is near every other.
        """
        if story.first > story.last or first > last:
            return True
        return story.first - self.gap <= last and first <= story.last + self.gap

    def _shortlist(
        self,
        vector: Vector,
        terms: int = _QUERY_TERMS,
        size: int = _SHORTLIST,
        near: float | None = None,
    ) -> list[int]:
        """The stories most likely to match ``vector``, found through the index.

        Stories are ranked by the part of the cosine that the vector's ``terms``
        heaviest words give; a word in more than ``_COMMON`` stories' index is too common
        to shortlist by. Only the shortlist's full cosines are then computed, so the cost
        of a look-up does not grow with the number of stories. ``near``: only stories
        within the gap of that hour.
        """
        partial: dict[int, float] = defaultdict(float)
        for word, x in sorted(vector.items(), key=itemgetter(1), reverse=True)[:terms]:
            found = self._index.get(word)
            if found and len(found) <= _COMMON:
                for story_id, weight in found.items():
                    partial[story_id] += x * weight
        if near is not None and self.gap < math.inf:
            stories, ranked = self._stories, sorted(partial, key=partial.__getitem__, reverse=True)
            return list(islice((s for s in ranked if self._near(stories[s], near, near)), size))
        if len(partial) <= size:
            return list(partial)
        return sorted(partial, key=partial.__getitem__, reverse=True)[:size]

    def _join(self, story: _Story, vector: Vector) -> None:
        total = story.total
        for w, x in vector.items():
            total[w] = total.get(w, 0.0) + x
        story.size += 1
        story.stale += 1
        # A young story's centroid moves with every article; a big one's barely does, so
        # it is recomputed once its new articles are an eighth of it (bounded work per add).
        if story.size <= 16 or story.stale * 8 >= story.size:
            self._recentre(story)

    def _recentre(self, story: _Story) -> None:
        if len(story.total) > 8 * self.centroid_terms:
            # A big story's tail words weigh next to nothing: keep its sum bounded.
            kept = heapq.nlargest(4 * self.centroid_terms, story.total.items(), key=itemgetter(1))
            story.total = dict(kept)
            top = kept[: self.centroid_terms]
        else:
            top = heapq.nlargest(self.centroid_terms, story.total.items(), key=itemgetter(1))
        norm = math.sqrt(sum(x * x for _, x in top)) or 1.0
        story.centroid = {w: x / norm for w, x in top}
        story.stale = 0
        indexed = tuple(w for w, _ in top[: self.index_terms])
        for w in set(story.indexed).difference(indexed):
            self._index[w].pop(story.id, None)
        for w in indexed:
            self._index[w][story.id] = story.centroid[w]
        story.indexed = indexed

    def _merge_all(self) -> None:
        """Merge stories whose centroids agree, the biggest absorbing first.

        Agreeing stories too far apart in time do not merge: the later follows the earlier.
        A follow-up link needs agreement at ``merge`` whatever the stories' sizes, so it is
        as sure as a merge: the lower threshold of a story of an article or two is what
        its article would have *joined*, which no article does across the gap. (Linked at
        the joining threshold, a lone headline sharing a word or two with yesterday's
        story made the edition show and count both as one item.) Measured in
        bench/README.md: linking at the joining threshold groups more of the labels'
        separate stories and loses about 0.01 of P@10.
        """
        for story in self._stories.values():
            if story.stale:
                self._recentre(story)
        for story in sorted(self._stories.values(), key=lambda s: (-s.size, s.id)):
            if story.id not in self._stories:
                continue
            absorbed = []
            first, last = story.first, story.last  # the merged story's span so far
            for c in self._shortlist(story.centroid, self.index_terms, 4 * _SHORTLIST):
                other = self._stories[c]
                # A story of an article or two merges at the joining threshold too: what
                # its article would have joined, had the story existed when it arrived.
                small = min(story.size, other.size) <= _SMALL
                need = min(self.similarity, self.merge) if small else self.merge
                if c == story.id:
                    continue
                agreement = cosine(story.centroid, other.centroid)
                if agreement < need:
                    continue
                if self._near(other, first, last):
                    absorbed.append(other)
                    first, last = min(first, other.first), max(last, other.last)
                elif story.first > story.last or agreement < self.merge:
                    continue  # no place in an order without a time; too unlike to follow
                elif other.first > story.last:
                    self._follow(c, story.id)
                else:
                    self._follow(story.id, c)
            if absorbed:
                self._absorb(story, absorbed)

    def _merge_associated(self) -> None:
        """Merge stories near in time whose centroids agree once expanded by association.

        The associations are learned from this index's own stories of two or more
        articles (``associate.Associations``); then, as in ``_merge_all``, the biggest
        absorb first, at ``merge``, if no one word gives most of their agreement
        (``associate.agreement``). Only stories within the gap merge; no follow-up link is
        made from an association alone.
        """
        stories = self._stories
        learned = Associations(s.indexed for s in stories.values() if s.size >= _SMALL)
        if not learned.related:
            return
        expanded = {s.id: learned.expand(s.centroid) for s in stories.values()}
        for story in sorted(stories.values(), key=lambda s: (-s.size, s.id)):
            if story.id not in stories:
                continue
            mine, absorbed = expanded[story.id], []
            first, last = story.first, story.last
            for c in self._shortlist(mine, self.index_terms, 4 * _SHORTLIST):
                other = stories[c]
                if c == story.id or agreement(mine, expanded[c]) < self.merge:
                    continue
                if self._near(other, first, last):
                    absorbed.append(other)
                    first, last = min(first, other.first), max(last, other.last)
            if absorbed:
                keeper = self._absorb(story, absorbed)
                expanded[keeper.id] = learned.expand(keeper.centroid)

    def _follow(self, later: int, earlier: int) -> None:
        """Record that ``later`` takes up ``earlier``; of several, the oldest is kept."""
        self._follows[later] = min(earlier, self._follows.get(later, earlier))

    def _absorb(self, story: _Story, others: list[_Story]) -> _Story:
        """Fold ``others`` into ``story``; the merged story keeps the oldest id (returned)."""
        keeper = min([story, *others], key=lambda s: s.id)
        for other in [story, *others]:
            if other is keeper:
                continue
            for w, x in other.total.items():
                keeper.total[w] = keeper.total.get(w, 0.0) + x
            keeper.size += other.size
            keeper.first = min(keeper.first, other.first)
            keeper.last = max(keeper.last, other.last)
            for w in other.indexed:
                self._index[w].pop(other.id, None)
            del self._stories[other.id]
            self._renamed[other.id] = keeper.id
        self._recentre(keeper)
        return keeper

    def _current(self, story_id: int) -> int:
        """The id a story goes by now, after any merges."""
        while story_id in self._renamed:
            story_id = self._renamed[story_id]
        return story_id
