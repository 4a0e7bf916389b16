"""Incremental story clustering: an article arriving tomorrow joins yesterday's story.

INTERFACE STUB: the algorithm behind ``StoryIndex`` is being replaced (issue 4); its API
is what the pipeline and the store build on:

- every story is named by the id of its first article (``story_id``), so ids are stable
  across runs without a table of their own;
- ``add(article_id, title, url, story_id=None)``: an article already stored with a story
  passes that ``story_id`` and joins it as is; a new one (``story_id=None``) joins the
  best matching story or starts its own; the story id is returned;
- ``assignments()``: every added article's story id at the end (stories may merge when a
  later article links two of them, so this, not ``add``'s return, is what to store).
"""

from __future__ import annotations

from collections import defaultdict

from digest.rank.stories import title_words


class StoryIndex:
    """Stories of a window of articles, grown one article at a time."""

    def __init__(self, similarity: float = 0.5) -> None:
        self.similarity = similarity
        self._story_of: dict[int, int] = {}
        self._words: dict[int, frozenset[str]] = {}
        self._index: dict[str, set[int]] = defaultdict(set)

    def add(self, article_id: int, title: str, url: str = "", story_id: int | None = None) -> int:
        """Put one article into a story and return that story's id."""
        words = title_words(title)
        if story_id is None:
            story_id = self._best(words) or article_id
        self._story_of[article_id] = story_id
        if story_id not in self._words:
            self._words[story_id] = words
            for w in words:
                self._index[w].add(story_id)
        return story_id

    def assignments(self) -> dict[int, int]:
        """article id -> story id, for every article added."""
        return dict(self._story_of)

    def _best(self, words: frozenset[str]) -> int | None:
        best, best_score = None, 0.0
        for story in set().union(*(self._index[w] for w in words)) if words else set():
            other = self._words[story]
            score = len(words & other) / len(words | other)
            if score > best_score:
                best, best_score = story, score
        return best if best_score >= self.similarity else None
