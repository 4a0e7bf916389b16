"""The rank stage: group articles into stories and score them, explainably."""

from digest.rank.choices import beyond, choice_editions, narrow, shown_as
from digest.rank.cluster import StoryIndex
from digest.rank.growth import GrowthCurve
from digest.rank.habits import SourceHabits
from digest.rank.overlap import SourceOverlap
from digest.rank.repeats import SentStories, Shown, grew, new_headline, sent_from, sent_sources
from digest.rank.score import (
    SIGNALS,
    Membership,
    assign_stories,
    rank,
    score_story,
    story_index,
)
from digest.rank.sections import best_first, fill_latest, topic_key
from digest.rank.terms import article_terms
from digest.rank.window import RankedMemory, rank_memory, rank_stories

__all__ = [
    "SIGNALS",
    "GrowthCurve",
    "Membership",
    "RankedMemory",
    "SentStories",
    "Shown",
    "SourceHabits",
    "SourceOverlap",
    "StoryIndex",
    "article_terms",
    "assign_stories",
    "best_first",
    "beyond",
    "choice_editions",
    "fill_latest",
    "grew",
    "narrow",
    "new_headline",
    "rank",
    "rank_memory",
    "rank_stories",
    "score_story",
    "sent_from",
    "sent_sources",
    "shown_as",
    "story_index",
    "topic_key",
]
