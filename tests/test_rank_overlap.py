"""Independent coverage: sources that habitually carry the same stories share a vote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.config import RankConfig
from digest.rank import SourceOverlap, score_story
from digest.records import ArticleRecord

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
PACK = ("Wire A", "Wire B", "Wire C")  # three finance wires that run every story together


def memory(stories: int = 20) -> list[tuple[int, str]]:
    """(story id, source) pairs: the pack carries stories 0..N-1 together; Gazette, Radio
    and Blog each carry stories of their own, rarely the same as one another."""
    pairs = [(s, name) for s in range(stories) for name in PACK]
    for k, name in enumerate(("Gazette", "Radio", "Blog")):
        pairs += [(100 * (k + 1) + s, name) for s in range(stories)]
    pairs += [(500, "Gazette"), (500, "Radio")]  # once together
    return pairs


def test_a_pack_that_always_moves_together_counts_for_about_one_source() -> None:
    overlap = SourceOverlap.of(memory(), discount=1.0)
    pack = overlap.votes(dict.fromkeys(PACK, 1.0))
    assert sum(pack.values()) == pytest.approx(3 / (1 + 2 * 20 / 25))  # 20 stories + prior 5
    independent = overlap.votes({"Gazette": 1.0, "Radio": 1.0, "Blog": 1.0})
    assert sum(independent.values()) > 2.9  # once together in 21 stories: nearly full votes
    assert sum(independent.values()) > 2 * sum(pack.values())


def test_votes_keep_the_configured_weights_and_discount_zero_changes_nothing() -> None:
    weights = {"Wire A": 2.0, "Wire B": 1.0, "Gazette": 0.5}
    assert SourceOverlap.of(memory(), discount=0.0).votes(weights) == weights
    votes = SourceOverlap.of(memory(), discount=1.0).votes(weights)
    assert votes["Gazette"] == 0.5  # never carried a story with Wire A or B
    assert votes["Wire A"] == pytest.approx(2 * votes["Wire B"])


def test_a_source_seen_in_few_stories_is_discounted_little() -> None:
    """Two stories together are thin evidence of a habit (the prior of 5 stories alone)."""
    young = SourceOverlap.of(memory(stories=2), discount=1.0).votes(dict.fromkeys(PACK, 1.0))
    old = SourceOverlap.of(memory(stories=40), discount=1.0).votes(dict.fromkeys(PACK, 1.0))
    assert sum(young.values()) == pytest.approx(3 / (1 + 2 * 2 / 7))  # 1.91 of 3
    assert sum(old.values()) == pytest.approx(3 / (1 + 2 * 40 / 45))  # 1.08 of 3


def test_coverage_and_velocity_count_the_votes_of_the_storys_sources() -> None:
    def article(i: int, source: str, minutes_ago: int = 10) -> ArticleRecord:
        at = NOW - timedelta(minutes=minutes_ago)
        return ArticleRecord(i, source, "Bank profits rise", "", "", at, first_seen_at=at)

    overlap = SourceOverlap.of(memory(), discount=1.0)
    pack = [article(1, "Wire A"), article(2, "Wire B"), article(3, "Wire C")]
    mixed = [article(1, "Wire A"), article(2, "Gazette"), article(3, "Radio", 600)]
    weights = RankConfig()

    def signal(story_articles: list[ArticleRecord], name: str) -> float:
        story = score_story(story_articles, NOW, weights, overlap=overlap)
        return next(s.value for s in story.signals if s.name == name)

    assert signal(pack, "coverage") == pytest.approx(2 / (1 + 2 * 20 / 25), abs=1e-4)
    # Wire A's full vote counts in source_weight (all weigh 1; the fullest vote is taken);
    # Gazette and Radio carried one of their 21 stories together.
    assert signal(mixed, "coverage") == pytest.approx(2 / (1 + 1 / 26), abs=1e-4)
    assert signal(pack, "velocity") == pytest.approx(3 / (1 + 2 * 20 / 25), abs=1e-4)
    # Radio joined 10 h ago: only Wire A's and Gazette's votes are recent.
    assert signal(mixed, "velocity") == pytest.approx(1 + 1 / (1 + 1 / 26), abs=1e-4)
    plain = score_story(pack, NOW, weights)  # no overlap known: one full vote each
    assert next(s.value for s in plain.signals if s.name == "coverage") == 2.0


def test_the_story_being_scored_is_not_its_own_sources_habit() -> None:
    """60 sources that each carried 10 stories alone and now carry story 7 together keep
    nearly full votes: story 7 is left out of the counts it is scored by."""
    names = [f"S{k}" for k in range(60)]
    pairs = [(1000 * k + s, n) for k, n in enumerate(names) for s in range(10)]
    pairs += [(7, n) for n in names]
    overlap = SourceOverlap.of(pairs, discount=1.0)
    weights = dict.fromkeys(names, 1.0)
    assert sum(overlap.excluding({7}).votes(weights).values()) == pytest.approx(60)
    assert sum(overlap.votes(weights).values()) < 13  # counted with itself: a false habit
