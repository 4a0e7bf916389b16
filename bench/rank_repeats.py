"""The repeat rate of ``rank_eval.py``: one ranking's digests as sent, and the share of
each digest's top 10 that were in the previous one's without growing (issue 15, point 4).

Kept apart from ``rank_eval.py`` (which imports it) so each stays a readable size.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.config import DigestConfig, RankConfig
from digest.rank import RankedMemory, SentStories, grew, rank_stories, sent_sources
from digest.records import ArticleRecord, RankedEdition, Story

# The rankings whose repeat rate is measured: ``rule`` as the pipeline sends (a story sent
# before is left out unless it grew), ``penalty`` as it sent before the rule (the sent
# penalty alone), ``none`` with no memory of what was sent (the P@10 ranking).
REPEAT_RANKINGS = ("rule", "penalty", "none")
# What ``penalty`` lowered a repeat by: [rank] sent_penalty's default before the rule (the
# key is read no more).
PENALTY_BEFORE = 2.0


@dataclass
class Sending:
    """One ranking's digests as sent, each digest's top 10, and its repeat rate: the share
    of a digest's top 10 that were in the previous digest's top 10 without growing since
    (no new source, no materially new headline: ``rank.grew``)."""

    name: str
    sent: list[tuple[datetime, RankedEdition]] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)

    def send(
        self,
        ranked: RankedMemory,
        remembered: Sequence[ArticleRecord],
        in_window: Callable[[ArticleRecord], bool],
        at: datetime,
        digest: DigestConfig,
        weights: RankConfig,
        memory: timedelta,
        judged: bool,
    ) -> None:
        """Rank the digest at ``at`` as this ranking sends it (the memory's stories as
        clustered for ``ranked``), record its top 10, and its repeat rate if ``judged``."""
        edition = ranked.edition
        if self.name != "none":
            # As sent_before: the last few digests, and every one within the story memory.
            recent = [e for t, e in self.sent[-weights.sent_lookback_editions :]]
            recent += [
                e for t, e in self.sent[: -weights.sent_lookback_editions] if t >= at - memory
            ]
            edition = rank_stories(
                remembered,
                ranked.stories,
                in_window,
                at,
                digest,
                weights,
                sent_sources(recent),
                sent_penalty=PENALTY_BEFORE if self.name == "penalty" else None,
                habits=ranked.habits,
            )
        top = (*edition.breaking, *edition.latest)[:10]
        if judged and self.sent and top:
            previous = sent_sources([self.sent[-1][1]]).with_stories(ranked.stories.story_of)
            self.rates.append(sum(repeated(s, previous) for s in top) / len(top))
        self.sent.append((at, RankedEdition(tuple(top), ())))


def repeated(story: Story, previous: SentStories) -> bool:
    """Whether ``previous`` sent the story and it has not grown since."""
    articles = (story.lead, *story.others)
    members = {a.story_id for a in articles if a.story_id is not None}
    news = previous.news(members, articles)
    return grew(story.sources, previous.sources(members, articles), news) is False
