"""The rank stage: group articles into stories and score them, explainably."""

from digest.rank.score import (
    SIGNALS,
    assign_stories,
    narrow,
    rank,
    score_story,
    sent_sources,
    story_index,
)
from digest.rank.stories import group_stories, title_words

__all__ = [
    "SIGNALS",
    "assign_stories",
    "group_stories",
    "narrow",
    "rank",
    "score_story",
    "sent_sources",
    "story_index",
    "title_words",
]
