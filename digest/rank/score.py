"""The breaking score: a sum of named signals, so an admin can see why a story ranks where it does.

score = recency_weight  * 0.5 ** (age_hours / half_life_hours)
      + source_weight   * (the highest configured weight among the story's sources)
      + coverage_weight * (distinct sources carrying the story - 1)
      + cue_weight      * (1 if a headline says 'breaking', 'live' or 'developing',
                           or a source flagged the article breaking on its own page)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from digest.config import DigestConfig, RankConfig
from digest.rank.stories import group_stories
from digest.records import ArticleRecord, RankedEdition, Signal, Story

_CUES = re.compile(r"\b(breaking|live|developing|just in|urgent)\b", re.IGNORECASE)


def score_story(articles: Sequence[ArticleRecord], now: datetime, weights: RankConfig) -> Story:
    """One story from its articles, with every signal's value and contribution."""
    lead = max(
        articles, key=lambda a: (a.source_weight, len(a.summary), -a.published_at.timestamp())
    )
    others = tuple(a for a in articles if a is not lead)
    newest = max(a.published_at for a in articles)
    age_hours = max(0.0, (now - newest).total_seconds() / 3600)
    freshness = 0.5 ** (age_hours / weights.half_life_hours)
    best_weight = max(a.source_weight for a in articles)
    extra_sources = len({a.source for a in articles}) - 1
    # A cue: a headline says so, or a source marked the article breaking on its own page.
    cue = 1.0 if any(a.breaking or _CUES.search(a.title) for a in articles) else 0.0
    signals = (
        Signal("recency", round(freshness, 4), weights.recency_weight * freshness),
        Signal("source_weight", best_weight, weights.source_weight * best_weight),
        Signal("coverage", extra_sources, weights.coverage_weight * extra_sources),
        Signal("cue", cue, weights.cue_weight * cue),
    )
    return Story(lead, others, round(sum(s.contribution for s in signals), 4), signals)


def rank(
    articles: Sequence[ArticleRecord], now: datetime, digest: DigestConfig, weights: RankConfig
) -> RankedEdition:
    """Group the window's articles into stories and split them into Breaking and Latest."""
    ordered = sorted(articles, key=lambda a: a.published_at, reverse=True)
    stories = [score_story(g, now, weights) for g in group_stories(ordered, weights.similarity)]
    stories.sort(key=lambda s: (-s.score, -s.lead.published_at.timestamp(), s.lead.id))
    breaking = [
        s
        for s in stories
        if len(s.sources) >= weights.breaking_min_sources or _signal(s, "cue") > 0
    ][: digest.breaking_items]
    chosen = {id(s) for s in breaking}
    latest = sorted(
        (s for s in stories if id(s) not in chosen),
        key=lambda s: (-max(a.published_at for a in (s.lead, *s.others)).timestamp(), s.lead.id),
    )[: digest.latest_items]
    return RankedEdition(tuple(breaking), tuple(latest))


def _signal(story: Story, name: str) -> float:
    return next(s.value for s in story.signals if s.name == name)


def narrow(ranked: RankedEdition, topics: set[str]) -> RankedEdition:
    """Only the stories about one of ``topics`` (a subscriber's choice), in the same order."""

    def keep(stories: tuple[Story, ...]) -> tuple[Story, ...]:
        return tuple(s for s in stories if s.topics & topics)

    return RankedEdition(keep(ranked.breaking), keep(ranked.latest))
