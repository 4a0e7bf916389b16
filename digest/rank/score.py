"""The breaking score: a sum of named signals, so an admin can see why a story ranks where it does.

score = recency_weight  * 0.5 ** (age_hours / half_life_hours)
      + source_weight   * (the highest configured weight among the story's sources)
      + coverage_weight * (the votes of the story's distinct sources, summed, minus the
                           best-weighted one's: one vote per source however many articles
                           it ran, its configured weight shared with the sources that
                           usually come with it (``overlap``, ``rank.overlap_discount``);
                           the best weight already counts in source_weight. Of an item
                           that is a story and its follow-ups, the widest of them counts)
      + coverage_weight * rerun: what the sources' habits change in those votes: a
                           source that runs a story in more articles than sources usually
                           do (a wire filing updates) says less by carrying it, so its
                           vote is (usual articles per story / its own) ** rerun_discount,
                           learned over the story memory's settled stories (``overlap``;
                           0 without enough of them, so a new install counts sources)
      + coverage_weight * breadth: what the sources' breadth changes in those votes: a
                           general newsroom's vote counts more than a specialist's, by
                           (its breadth / the sources' mean) ** breadth_weight, learned
                           over every story the store has tallied (``habits``; 0 until
                           a few thousand are)
      + velocity_weight * (the votes, as for coverage, of the sources whose first article
                           of the story reached digest in the last velocity_hours)
      + growth_weight   * (the votes still to come: all the story's votes times its age's
                           growth factor less one, the factor learned from how the story
                           memory's settled stories grew: ``growth``; 0 without history)
      + cue_weight      * (1 if a headline says 'breaking', 'live' or 'developing',
                           or a source flagged the article breaking on its own page)

A story sent before that has grown is marked an update (``Story.update``); one that has not
(``Story.repeat``: no new source, no materially new headline) is left out of the edition
altogether, whatever its score (see ``repeats``). No signal lowers it: the score is only
ever the sum of the signals.

Sections: "Breaking" holds the stories scoring at least ``breaking_min_score`` that are
carried by ``breaking_min_sources`` sources or have a cue, best first, at most the digest's
``breaking_items``; "Latest" the rest, best first, at most ``latest_items``, and at most
``latest_per_source`` of them led by one source's article (``sections.fill_latest``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from digest.config import DigestConfig, RankConfig
from digest.rank.choices import with_choices
from digest.rank.cluster import StoryIndex
from digest.rank.growth import GrowthCurve
from digest.rank.overlap import SourceOverlap
from digest.rank.repeats import SentStories, grew
from digest.rank.sections import best_first, fill_latest
from digest.records import ArticleRecord, RankedEdition, Signal, Story

_CUES = re.compile(r"\b(breaking|live|developing|just in|urgent)\b", re.IGNORECASE)

SIGNALS = (
    "recency", "source_weight", "coverage", "rerun", "breadth", "velocity", "growth", "cue",
)  # fmt: skip


def story_index(weights: RankConfig) -> StoryIndex:
    """A new StoryIndex configured from [rank]: the one place one is built.

    The two thresholds are the admin's to tune (how readily articles join and stories
    merge); the index's sizes (centroid and index terms) are tuned for speed in
    ``bench/rank_eval.py`` and stay the StoryIndex defaults.
    """
    return StoryIndex(
        similarity=weights.story_similarity,
        merge=weights.merge_similarity,
        gap_hours=weights.story_gap_hours,
    )


@dataclass(frozen=True)
class Membership:
    """Which story each article is in (``story_of``: article id -> story id), and which
    stories take up an earlier one after a quiet spell (``follows``: story id -> story id).
    """

    story_of: dict[int, int]
    follows: dict[int, int] = field(default_factory=dict)


def assign_stories(articles: Sequence[ArticleRecord], weights: RankConfig) -> Membership:
    """Stored members keep their story; new articles join a story or start one.

    Articles already in a story go into the index first, then the new ones, each oldest
    first, so a story keeps the id of its first article and an article arriving today joins
    yesterday's story (if that story was still going within ``rank.story_gap_hours``).
    """
    index = story_index(weights)
    placed = sorted((a for a in articles if a.story_id is not None), key=_arrival)
    for a in placed:
        index.add(a.id, a.title, a.url, a.story_id, a.language, a.summary, story_time(a))
    for a in sorted((a for a in articles if a.story_id is None), key=_arrival):
        index.add(a.id, a.title, a.url, None, a.language, a.summary, story_time(a))
    return Membership(index.assignments(), index.continuations())


def story_time(article: ArticleRecord) -> datetime:
    """When an article belongs in time: its publication, unless a feed dated it after it
    reached digest (a wrong clock or time zone), then when it arrived. (A bare date is
    made a time of day when it is read: ``sources.dates.iso_date``.)"""
    return min(article.published_at, article.seen_at)


def _arrival(article: ArticleRecord) -> tuple[datetime, int]:
    return article.seen_at, article.id


def score_story(
    articles: Sequence[ArticleRecord],
    now: datetime,
    weights: RankConfig,
    sent_sources: frozenset[str] | None = None,
    overlap: SourceOverlap | None = None,
    leads: Sequence[ArticleRecord] | None = None,
    growth: GrowthCurve | None = None,
    news: ArticleRecord | None = None,
    widest: Sequence[ArticleRecord] | None = None,
) -> Story:
    """One story from its articles, with every signal's value and contribution.

    ``sent_sources``: the sources the story had when an earlier edition sent it (None: not
    sent); ``news``: an article it did not have then, under a materially new headline
    (``SentStories.news``), which leads it. Unless it has grown since (a source outside
    those, or news) it is a repeat (``Story.repeat``); a story that grew is an update. ``overlap``:
    how often the sources carry the same stories, this story left out (None: every
    source a full vote). ``leads``: the articles the headline may come from (None: all).
    The lead is the best-weighted source's article with the longest summary, the
    earliest of equals (the first to report). ``widest``: the articles whose sources
    coverage counts (None: all), the item's widest story when it is a story and its
    follow-ups (``rank``).
    """
    lead = news or _lead(leads or articles)  # a new headline leads an update
    others = tuple(a for a in articles if a is not lead)
    newest = max(a.published_at for a in articles)
    age_hours = max(0.0, (now - newest).total_seconds() / 3600)
    freshness = 0.5 ** (age_hours / weights.half_life_hours)
    source_weights, first_seen = _by_source(articles)
    best_weight = max(source_weights.values())
    overlap = overlap or SourceOverlap()
    counted_weights = source_weights if widest is None else _by_source(widest)[0]
    shares = overlap.shares(counted_weights)  # the sources alone decide them: once
    plain = overlap.votes(counted_weights, reruns=False, breadths=False, shares=shares)
    reran = overlap.votes(counted_weights, breadths=False, shares=shares)
    counted = overlap.votes(counted_weights, shares=shares)
    votes = counted if widest is None else overlap.votes(source_weights)
    # The best-weighted source counts in source_weight; coverage is everyone else's vote.
    best = max(counted, key=lambda s: (source_weights[s], counted[s]))
    coverage = round(sum(plain.values()) - plain[best], 4)
    # What the sources' rerun habits, then their breadth, change in those votes (0 without
    # a habit learned). (+ 0.0: a difference rounded to nothing is 0.0, never the -0.0
    # explain prints "-0.00")
    rerun = round(sum(reran.values()) - reran[best] - coverage, 4) + 0.0
    breadth = round(sum(counted.values()) - counted[best] - coverage - rerun, 4) + 0.0
    lately = now - timedelta(hours=weights.velocity_hours)
    velocity = round(sum((votes[s] for s, seen in first_seen.items() if seen >= lately), 0.0), 4)
    to_come = _to_come(articles, now, first_seen, votes, growth or GrowthCurve())
    cue = _cue(articles)
    grown = grew(source_weights, sent_sources, news)
    signals = (
        Signal("recency", round(freshness, 4), weights.recency_weight * freshness),
        Signal("source_weight", best_weight, weights.source_weight * best_weight),
        Signal("coverage", coverage, weights.coverage_weight * coverage),
        Signal("rerun", rerun, weights.coverage_weight * rerun),
        Signal("breadth", breadth, weights.coverage_weight * breadth),
        Signal("velocity", velocity, weights.velocity_weight * velocity),
        Signal("growth", to_come, weights.growth_weight * to_come),
        Signal("cue", cue, weights.cue_weight * cue),
    )
    score = round(sum(s.contribution for s in signals), 4)
    return Story(lead, others, score, signals, update=bool(grown), repeat=grown is False)


def _lead(candidates: Sequence[ArticleRecord]) -> ArticleRecord:
    """The best-weighted source's article with the longest summary, the earliest of equals."""
    return max(
        candidates,
        key=lambda a: (a.source_weight, len(a.summary), -a.published_at.timestamp()),
    )


def _cue(articles: Sequence[ArticleRecord]) -> float:
    """A cue: a headline says so, or a source marked the article breaking on its own page."""
    return 1.0 if any(a.breaking or _CUES.search(a.title) for a in articles) else 0.0


def _by_source(
    articles: Sequence[ArticleRecord],
) -> tuple[dict[str, float], dict[str, datetime]]:
    """Each source's best weight among the articles, and when it first carried the story."""
    source_weights: dict[str, float] = {}
    first_seen: dict[str, datetime] = {}
    for a in articles:
        source_weights[a.source] = max(source_weights.get(a.source, 0.0), a.source_weight)
        first_seen[a.source] = min(first_seen.get(a.source, a.seen_at), a.seen_at)
    return source_weights, first_seen


def _to_come(
    articles: Sequence[ArticleRecord],
    now: datetime,
    first_seen: Mapping[str, datetime],
    votes: Mapping[str, float],
    growth: GrowthCurve,
) -> float:
    """Sources still to come: a young story has only the quick ones yet."""
    stories = {a.story_id for a in articles if a.story_id is not None}
    age = growth.age(stories, now, min(first_seen.values()))
    return round(sum(votes.values()) * (growth.factor(age) - 1), 4)


def rank(
    articles: Sequence[ArticleRecord],
    now: datetime,
    digest: DigestConfig,
    weights: RankConfig,
    sent: SentStories | None = None,
    follows: Mapping[int, int] | None = None,
    overlap: SourceOverlap | None = None,
    growth: GrowthCurve | None = None,
    *,
    sent_penalty: float | None = None,
    choices: Mapping[str, SentStories] | None = None,
) -> RankedEdition:
    """Score the window's stories and split them into Breaking and Latest.

    Articles are grouped by their ``story_id``; any without one are clustered here first
    (the pipeline passes them clustered and stored). ``sent``: see ``sent_sources``.
    ``follows`` (``Membership.follows``): a story and the stories taking it up after a
    quiet spell are one item in an edition whose window holds several of them, so a
    reader sees yesterday evening's story and this morning's follow-up once. Its
    coverage is its widest story's, not the union of theirs: a story told again the next
    day is not wider for it, and a follow-up joined by a word or two would otherwise add
    another story's sources (bench/README.md: P@10 up on both months). ``overlap``,
    ``growth``: see ``score_story``. A story sent before that has not grown is left out
    before the sections are filled, and counted in ``RankedEdition.repeats``; with a
    ``sent_penalty``, it stays in instead, its score lowered by that much: how editions
    were ranked before that rule, which ``bench/rank_repeats.py`` replays to compare.

    ``choices``: what each choice of topics (its key) was shown beyond the editions the
    ``sent`` memory holds; each gets its own edition (``RankedEdition.views``,
    ``choices.choice_editions``), a story it had matched as ``sent`` is (its chain of
    follow-ups, its articles, its merged ids), and the stories those show beyond the
    edition's own are its ``extra``. Not with a ``sent_penalty``.
    """
    if any(a.story_id is None for a in articles):
        articles, follows = _clustered(articles, weights, follows)
    follows = follows or {}
    family = _families(follows)
    groups = _groups(articles, follows)
    sent = sent or SentStories()
    overlap = overlap or SourceOverlap()

    def scored(root: int, memory: SentStories) -> Story:
        group = groups[root]
        members = {root, *family.get(root, ())}  # the item's stories, in or out of the window
        return score_story(
            group,
            now,
            weights,
            memory.sources(members, group),
            overlap.excluding(members),
            _newest_story(group),
            growth,
            memory.news(members, group),
            _widest_story(group),
        )

    items = {root: scored(root, sent) for root in groups}
    root_of = {id(story): root for root, story in items.items()}
    stories = list(items.values())
    if sent_penalty:
        stories = [
            replace(s, score=round(s.score - sent_penalty, 4)) if s.repeat else s for s in stories
        ]
    stories = best_first(stories)
    edition = _sections(stories, digest, weights, keep_sent=sent_penalty is not None)
    if not choices or sent_penalty is not None:
        return edition

    def holds(memory: SentStories, story: Story) -> bool:
        root = root_of[id(story)]
        return memory.sources({root, *family.get(root, ())}, groups[root]) is not None

    return with_choices(
        edition,
        stories,
        sent,
        choices,
        lambda story, memory: scored(root_of[id(story)], memory),
        holds,
        digest.latest_items,
        digest.latest_per_source,
    )


def _sections(
    stories: list[Story], digest: DigestConfig, weights: RankConfig, *, keep_sent: bool
) -> RankedEdition:
    """Breaking and Latest filled from the scored items (see ``rank``'s ``keep_sent``)."""
    candidates, repeated = len(stories), []
    if not keep_sent:
        repeated = [s for s in stories if s.repeat]
        stories = [s for s in stories if not s.repeat]
    breaking = [s for s in stories if _is_breaking(s, weights)][: digest.breaking_items]
    chosen = {id(s) for s in breaking}
    latest, capped = fill_latest(
        [s for s in stories if id(s) not in chosen], digest.latest_items, digest.latest_per_source
    )
    return RankedEdition(
        tuple(breaking), tuple(latest), candidates, len(repeated), tuple(repeated), tuple(capped)
    )


def _clustered(
    articles: Sequence[ArticleRecord], weights: RankConfig, follows: Mapping[int, int] | None
) -> tuple[list[ArticleRecord], dict[int, int]]:
    """The articles with a story each (clustered here), and the follows that clustering found
    under those given."""
    membership = assign_stories(articles, weights)
    clustered = [replace(a, story_id=membership.story_of[a.id]) for a in articles]
    return clustered, {**membership.follows, **(follows or {})}


def _families(follows: Mapping[int, int]) -> dict[int, set[int]]:
    """Every story of a chain, siblings included (two follow-ups of one story), by its root:
    an item was sent if any of them was."""
    family: dict[int, set[int]] = {}
    for story_id in follows:
        chain = _chain(story_id, follows)
        family.setdefault(chain[-1], set()).update(chain)
    return family


def _groups(
    articles: Sequence[ArticleRecord], follows: Mapping[int, int]
) -> dict[int, list[ArticleRecord]]:
    """The articles by the root of their story's chain, newest first within each item."""
    groups: dict[int, list[ArticleRecord]] = {}
    for a in sorted(articles, key=lambda a: a.published_at, reverse=True):
        root = _chain(a.story_id if a.story_id is not None else a.id, follows)[-1]
        groups.setdefault(root, []).append(a)
    return groups


def _newest_story(articles: Sequence[ArticleRecord]) -> list[ArticleRecord]:
    """The articles of the group's newest story: a follow-up's headline leads the item."""
    newest = max(articles, key=lambda a: (story_time(a), a.story_id or 0)).story_id
    return [a for a in articles if a.story_id == newest]


def _widest_story(articles: Sequence[ArticleRecord]) -> list[ArticleRecord] | None:
    """The articles of the item's story with the most sources; None if it is one story.

    Ties go to the story with more articles, then the newer (its id is its first
    article's, so the higher).
    """
    by_story: dict[int, list[ArticleRecord]] = {}
    for a in articles:
        by_story.setdefault(a.story_id or 0, []).append(a)
    if len(by_story) < 2:
        return None
    return max(
        by_story.items(), key=lambda kv: (len({a.source for a in kv[1]}), len(kv[1]), kv[0])
    )[1]


def _chain(story_id: int, follows: Mapping[int, int]) -> list[int]:
    """The story, the story it takes up, and that one's, back to the first."""
    chain = [story_id]
    while (story_id := follows.get(story_id, story_id)) not in chain:
        chain.append(story_id)
    return chain


def _is_breaking(story: Story, weights: RankConfig) -> bool:
    wide = len(story.sources) >= weights.breaking_min_sources or _signal(story, "cue") > 0
    return wide and story.score >= weights.breaking_min_score


def _signal(story: Story, name: str) -> float:
    return next(s.value for s in story.signals if s.name == name)
