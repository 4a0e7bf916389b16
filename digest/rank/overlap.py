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

_PRIOR = 5  # stories a source is assumed to have carried alone: few stories, small discount


@dataclass(frozen=True)
class SourceOverlap:
    """How often sources carried the same stories, over the story memory."""

    discount: float = 0.0
    carried: Mapping[str, int] = field(default_factory=dict)  # source -> its stories
    together: Mapping[tuple[str, str], int] = field(default_factory=dict)  # both carried
    story_sources: Mapping[int, frozenset[str]] = field(default_factory=dict)
    excluded: frozenset[int] = frozenset()  # stories left out of the counts

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
        frozen = {story_id: frozenset(names) for story_id, names in sources.items()}
        return cls(discount, carried, together, frozen)

    def excluding(self, story_ids: Iterable[int]) -> SourceOverlap:
        """The same counts with these stories (the one being scored) left out."""
        return replace(self, excluded=frozenset(story_ids).intersection(self.story_sources))

    def votes(self, weights: Mapping[str, float]) -> dict[str, float]:
        """Each source's vote for one story: its weight, shared with its usual companions.

        ``weights``: the story's sources and their configured weights.
        """
        if not self.discount:
            return dict(weights)
        own = [self.story_sources[s] for s in self.excluded]
        votes = {}
        for source, weight in weights.items():
            mine = [names for names in own if source in names]
            stories = self.carried.get(source, 0) - len(mine) + _PRIOR
            companions = sum(
                self.together.get((source, o), 0) - sum(o in names for names in mine)
                for o in weights
                if o != source
            )
            votes[source] = weight / (1 + self.discount * companions / stories)
        return votes
