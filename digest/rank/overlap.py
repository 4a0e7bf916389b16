"""Independent coverage: sources that habitually carry the same stories share a vote.

Ten finance wires running one earnings report are one beat's habit, not ten newsrooms
deciding a story matters; three outlets that rarely agree carrying it say more. So the
coverage signal counts each source's vote as its configured weight divided by

    1 + discount * (the story's other sources, each counted by how often it carries
                    what this source carries: P(other | this) over the story memory)

A source whose companions are independent keeps nearly its full vote; a source in a pack
that always moves together gives about 1/(pack size). The frequencies come from the
stories of the story memory, so they follow what the subscribed sources actually do and
need no setting beyond ``rank.overlap_discount`` (0: every source a full vote).

Measured in ``bench/rank_eval.py`` (P@10 against coverage by all publishers): see
bench/README.md.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import permutations

_PRIOR = 5  # stories a source is assumed to have carried alone: few stories, small discount


@dataclass(frozen=True)
class SourceOverlap:
    """How often sources carried the same stories, over the story memory."""

    discount: float = 0.0
    carried: Mapping[str, int] = field(default_factory=dict)  # source -> its stories
    together: Mapping[tuple[str, str], int] = field(default_factory=dict)  # both carried

    @classmethod
    def of(cls, memberships: Iterable[tuple[int, str]], discount: float) -> SourceOverlap:
        """From (story id, source) pairs: one per article of the story memory."""
        sources: dict[int, set[str]] = defaultdict(set)
        for story_id, source in memberships:
            sources[story_id].add(source)
        carried: Counter[str] = Counter()
        together: Counter[tuple[str, str]] = Counter()
        for names in sources.values():
            carried.update(names)
            if len(names) > 1:
                together.update(permutations(names, 2))
        return cls(discount, carried, together)

    def votes(self, weights: Mapping[str, float]) -> dict[str, float]:
        """Each source's vote for one story: its weight, shared with its usual companions.

        ``weights``: the story's sources and their configured weights.
        """
        if not self.discount:
            return dict(weights)
        votes = {}
        for source, weight in weights.items():
            stories = self.carried.get(source, 0) + _PRIOR
            companions = sum(self.together.get((source, o), 0) for o in weights if o != source)
            votes[source] = weight / (1 + self.discount * companions / stories)
        return votes
