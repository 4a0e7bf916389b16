"""What earlier editions sent, and whether a story has grown since: each story once.

A story an earlier edition sent goes again only when it has grown: a source that did not
carry it then carries it now, or a source that did has run an article since under a
materially new headline (``SentStories.news``, ``new_headline``), which then leads it.
Then it goes marked as an update; otherwise it is a repeat (``Story.repeat``), left out
of the edition (``rank``). Its readers had it: the same story
again is no news, and an edition holding only such stories mails nobody.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from digest.rank.terms import title_terms
from digest.records import ArticleRecord, RankedEdition, Story

# A headline is materially new when fewer than this share of its content words (stemmed)
# were in a headline the story was sent under: "Storm Isolde nears coast" -> "Storm Isolde:
# 12 dead, 40,000 homes without power" is news; "... nears the coast tonight" is not, nor
# is "Storm Isolde nears the coast" after "Storm Isolde makes landfall" (half its words).
SAME_HEADLINE_SHARE = 0.5


@dataclass(frozen=True)
class SentStories:
    """What earlier editions sent: the sources each story had then, and the headlines it
    was sent under (the lead's and the "Also" ones a reader saw).

    Known both by story id and by article id: a story keeps its id from run to run, but it
    may merge into an older story and take that one's id, and its sent articles may leave
    the window while new ones carry it. ``with_stories`` adds the current story ids of
    the sent articles (the pipeline knows them over its whole story memory). A story
    that takes up a sent one after a quiet spell is known through ``rank``'s ``follows``:
    an item is sent if any story of its chain was.
    """

    by_story: Mapping[int, frozenset[str]] = field(default_factory=dict)
    by_article: Mapping[int, frozenset[str]] = field(default_factory=dict)
    # story id -> the headlines it was sent under (by_story's keys, and those with_stories adds)
    titles: Mapping[int, frozenset[str]] = field(default_factory=dict)
    # article id -> the headlines of the story it was sent in
    article_titles: Mapping[int, frozenset[str]] = field(default_factory=dict)

    def with_stories(self, story_of: Mapping[int, int]) -> SentStories:
        """The same, with each sent article's current story (``story_of``) known as sent."""
        by_story = dict(self.by_story)
        titles = dict(self.titles)
        for article_id, sources in self.by_article.items():
            if article_id in story_of:
                sid = story_of[article_id]
                by_story[sid] = by_story.get(sid, frozenset()) | sources
                headlines = self.article_titles.get(article_id, frozenset())
                titles[sid] = titles.get(sid, frozenset()) | headlines
        return SentStories(by_story, self.by_article, titles, self.article_titles)

    def merged(self, other: SentStories) -> SentStories:
        """What either sent, as one memory: the edition rule's memory with what one choice
        of topics was shown beyond it (``rank``'s ``choices``), matched as one."""

        def union(
            a: Mapping[int, frozenset[str]], b: Mapping[int, frozenset[str]]
        ) -> dict[int, frozenset[str]]:
            both = dict(a)
            for key, value in b.items():
                both[key] = both.get(key, frozenset()) | value
            return both

        return SentStories(
            union(self.by_story, other.by_story),
            union(self.by_article, other.by_article),
            union(self.titles, other.titles),
            union(self.article_titles, other.article_titles),
        )

    def sources(
        self, story_ids: Iterable[int], articles: Sequence[ArticleRecord]
    ) -> frozenset[str] | None:
        """The sources an item had when sent; None when no edition sent any of it.

        ``story_ids``: the item's stories (a story and those it follows or that follow it).
        """
        found = [self.by_article[a.id] for a in articles if a.id in self.by_article]
        found += [self.by_story[s] for s in story_ids if s in self.by_story]
        return frozenset().union(*found) if found else None

    def headlines(
        self, story_ids: Iterable[int], articles: Sequence[ArticleRecord]
    ) -> frozenset[str]:
        """The headlines an item was sent under (empty when never sent)."""
        found = [self.article_titles[a.id] for a in articles if a.id in self.article_titles]
        found += [self.titles[s] for s in story_ids if s in self.titles]
        return frozenset().union(*found)

    def news(
        self, story_ids: Iterable[int], articles: Sequence[ArticleRecord]
    ) -> ArticleRecord | None:
        """The newest of the item's articles that no edition sent, under a headline
        materially new against those it was sent under (``new_headline``); None when there
        is none, or the item was never sent. A source that carried the story running a
        new development of it: what an update leads with. (Two outlets' headlines for one
        story differ anyway; only articles since the send count, and a new source is
        growth of its own.)"""
        titles = self.headlines(story_ids, articles)
        if not titles:
            return None
        fresh = [
            a
            for a in articles
            if a.id not in self.by_article and new_headline(a.title, titles, a.language)
        ]
        return max(fresh, key=lambda a: (a.published_at, a.id), default=None)


@dataclass(frozen=True)
class Shown:
    """One story as its readers were shown it, with what the repeat rule compares a later
    story with (``sent_from``): its id, every article's id, its sources, and the headlines
    they saw (the lead's and each "Also" article's). An edition's stories
    (``sent_sources``), or what one choice of topics was shown beyond them (its view's
    ids, found in the edition's ``extra``: ``editions.stored.ViewMemory``)."""

    story_id: int
    articles: tuple[int, ...]
    sources: frozenset[str]
    headlines: frozenset[str]

    @classmethod
    def of(cls, story: Story) -> Shown:
        """The story as shown."""
        return cls(
            story.story_id,
            tuple(a.id for a in (story.lead, *story.others)),
            frozenset(story.sources),
            frozenset({story.lead.title, *(a.title for a in story.also if a.title)}),
        )


def sent_sources(editions: Iterable[RankedEdition]) -> SentStories:
    """The stories of earlier editions of one digest, with the sources each had when sent
    and the headline it was sent under."""
    return sent_from(
        Shown.of(story) for edition in editions for story in (*edition.breaking, *edition.latest)
    )


def sent_from(shown: Iterable[Shown]) -> SentStories:
    """What readers were shown (``Shown``), as the repeat rule reads it (``SentStories``)."""
    by_story: dict[int, frozenset[str]] = {}
    by_article: dict[int, frozenset[str]] = {}
    titles: dict[int, frozenset[str]] = {}
    article_titles: dict[int, frozenset[str]] = {}
    for story in shown:
        sources, headline = story.sources, story.headlines
        by_story[story.story_id] = by_story.get(story.story_id, frozenset()) | sources
        titles[story.story_id] = titles.get(story.story_id, frozenset()) | headline
        for article_id in story.articles:
            by_article[article_id] = by_article.get(article_id, frozenset()) | sources
            article_titles[article_id] = article_titles.get(article_id, frozenset()) | headline
    return SentStories(by_story, by_article, titles, article_titles)


def new_headline(title: str, sent: Iterable[str], language: str | None = None) -> bool:
    """Whether ``title`` says something materially new against every headline ``sent``
    (none sent: no): fewer than ``SAME_HEADLINE_SHARE`` of its content words in any of them."""
    words = _terms(title, language)
    before = [_terms(t, language) for t in sent]
    if not words or not before:
        return False
    return all(len(words & b) < SAME_HEADLINE_SHARE * len(words) for b in before)


@lru_cache(maxsize=4096)
def _terms(title: str, language: str | None) -> frozenset[str]:
    """A headline's content words, stemmed: a sent headline is compared with every article
    since of its story, at every ranking."""
    return frozenset(title_terms(title, language))


def grew(
    sources: Iterable[str], sent_sources: frozenset[str] | None, news: ArticleRecord | None
) -> bool | None:
    """Whether a story sent before has grown since: a source that did not carry it then,
    or ``news`` (``SentStories.news``). None: it was never sent."""
    if sent_sources is None:
        return None
    return not set(sources) <= sent_sources or news is not None
