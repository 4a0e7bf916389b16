"""The rank stage: group articles into stories and score them, explainably."""

from digest.rank.score import narrow, rank, score_story
from digest.rank.stories import group_stories, title_words

__all__ = ["group_stories", "narrow", "rank", "score_story", "title_words"]
