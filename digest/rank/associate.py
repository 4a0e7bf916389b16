"""Words the stream itself shows to go together, so paraphrased stories can merge.

Word overlap cannot join "Wall Street ends down" and "How the Dow fared": they share no
word. But across the stories digest has formed, "wall", "street", "dow" and "stock" keep
being among the same story's heaviest words. ``Associations`` counts that, from the
stories of the run alone (nothing fitted in advance, no labels): two words are associated
when they are among the heaviest words of at least ``_MIN_STORIES`` stories together and
their co-occurrence, ``n(a, b) / sqrt(n(a) n(b))``, is at least ``_MIN_STRENGTH``. A story's
centroid is then *expanded*: each of its words lends part of its weight (``_SHARE``) to its
few strongest associates, and two stories near in time whose expanded centroids agree
merge (``StoryIndex._merge_associated``), unless one word gives most of that agreement
(``agreement``): "Microsoft ends Windows XP support" and "Microsoft Office comes to the
iPad" share "microsoft" and little else, however much weight it lends to its associates.

Counting stories, not headlines, is what makes it work on headlines: a story's heaviest
words are what its several sources agreed on, while a single headline's words are one
writer's choice. Measured in ``bench/rank_eval.py`` (bench/README.md, issue 15).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from itertools import combinations
from operator import itemgetter

_MIN_STORIES = 3  # stories a pair of words must share before they count as associated
_MIN_STRENGTH = 0.2  # n(a, b) / sqrt(n(a) n(b)) at least this
_ASSOCIATES = 5  # a word's strongest associates kept
_SHARE = 0.5  # of a word's weight, the share lent to an associate of strength 1
_DOMINANT = 0.6  # one word giving more than this share of an agreement: no agreement


class Associations:
    """Which words keep being among the same stories' heaviest words.

    ``words``: one collection of words per story (its heaviest, as the index keeps them).
    """

    def __init__(self, words: Iterable[Iterable[str]]) -> None:
        single: Counter[str] = Counter()
        pairs: Counter[tuple[str, str]] = Counter()
        for story in words:
            terms = sorted(set(story))
            single.update(terms)
            pairs.update(combinations(terms, 2))
        related: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for (a, b), n in pairs.items():
            if n < _MIN_STORIES:
                continue
            strength = n / math.sqrt(single[a] * single[b])
            if strength >= _MIN_STRENGTH:
                related[a].append((b, strength))
                related[b].append((a, strength))
        self.related: dict[str, list[tuple[str, float]]] = {
            a: heapq.nlargest(_ASSOCIATES, found, key=itemgetter(1)) for a, found in related.items()
        }

    def expand(self, vector: Mapping[str, float]) -> dict[str, float]:
        """The unit vector with each word's associates given a share of its weight."""
        out = dict(vector)
        related = self.related
        for word, x in vector.items():
            for other, strength in related.get(word, ()):
                out[other] = out.get(other, 0.0) + _SHARE * x * strength
        norm = math.sqrt(sum(x * x for x in out.values())) or 1.0
        return {w: x / norm for w, x in out.items()}


def agreement(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    """The cosine of two (expanded) unit vectors, or 0.0 when one word gives most of it.

    Expansion lends a shared word's weight to its associates in both vectors, so two
    stories with one word in common come to agree beyond what their words say; an
    association merge needs the agreement spread over several words. On March 2014's
    rows the words it stops are company names ("microsoft", "google") and generic ones
    ("business", "damage", "heart", "ftse"). Measured in bench/README.md (issue 15): on
    each month, raw and jittered, B-cubed precision +0.006 to +0.010, recall -0.001 to
    -0.006.
    """
    if len(a) > len(b):
        a, b = b, a
    get = b.get
    parts = [x * y for w, x in a.items() if (y := get(w, 0.0))]
    total = sum(parts)
    if total <= 0.0 or max(parts) > _DOMINANT * total:
        return 0.0
    return total
