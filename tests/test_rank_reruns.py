"""The rerun signal: a source that habitually runs a story in several articles says less by
carrying one, learned from the story memory's settled stories; a new install counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.config import DigestConfig, RankConfig
from digest.rank import SentStories, SourceOverlap, rank_memory
from digest.records import ArticleRecord, Story

NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
DIGEST = DigestConfig(id="d", title="D", schedule="0 7 * * *", latest_items=50)
# Only the sources' votes: the other signals would not tell the two stories apart anyway.
COUNTING = {"recency_weight": 0, "velocity_weight": 0, "growth_weight": 0, "overlap_discount": 0}


def _article(i: int, source: str, seen: datetime, title: str) -> ArticleRecord:
    return ArticleRecord(
        i, source, title, f"https://{source}.test/{i}", "", seen, first_seen_at=seen
    )


def _history() -> list[ArticleRecord]:
    """Yesterday's 30 stories: the wire ran each in 4 articles, four papers once each."""
    memory = []
    for s in range(30):
        seen = NOW - timedelta(hours=30) + timedelta(minutes=s)
        words = " ".join(f"w{s}x{j}" for j in range(4))  # its own words: one story each
        for k in range(4):
            memory.append(_article(1000 + 10 * s + k, "Wire", seen, words))
        for k, paper in enumerate(("Gazette", "Herald", "Courier", "Tribune")):
            memory.append(_article(5000 + 10 * s + k, paper, seen, words))
    return memory


def _today() -> list[ArticleRecord]:
    """Two stories of three sources each; the wire's is the newer (first on a tie)."""
    ago = timedelta(hours=3)
    quiet = [
        _article(1 + k, paper, NOW - ago, "Senate passes budget bill")
        for k, paper in enumerate(("Gazette", "Herald", "Courier"))
    ]
    ago = timedelta(hours=1)
    wired = [_article(10 + k, "Wire", NOW - ago, "Volcano erupts on island") for k in range(3)]
    wired += [_article(20, "Tribune", NOW - ago, "Volcano erupts on island")]
    wired += [_article(21, "Gazette", NOW - ago, "Volcano erupts on island")]
    return [*quiet, *wired]


def _ranked(memory: list[ArticleRecord], weights: RankConfig) -> list[Story]:
    def in_window(a: ArticleRecord) -> bool:
        return a.seen_at >= NOW - timedelta(hours=24)

    ranked = rank_memory(memory, in_window, NOW, DIGEST, weights, SentStories())
    return [*ranked.edition.breaking, *ranked.edition.latest]


def _signal(story: Story, name: str) -> float:
    return next(s.value for s in story.signals if s.name == name)


def test_a_story_carried_by_a_habitual_rerunner_ranks_below_one_of_as_many_sources() -> None:
    stories = _ranked([*_history(), *_today()], RankConfig(**COUNTING))
    titles = [s.lead.title for s in stories]
    assert titles == ["Senate passes budget bill", "Volcano erupts on island"]
    quiet, wired = stories
    # The wire runs 4 articles a story where sources usually run 1.6: its vote is about a
    # quarter of a paper's, and `digest explain` shows what that changes as "rerun".
    assert _signal(wired, "rerun") < 0.1 < 1.0 < _signal(quiet, "rerun")
    assert _signal(quiet, "coverage") == _signal(wired, "coverage") == 2.0
    assert quiet.score > wired.score


def test_without_rerun_discount_or_settled_history_stories_are_counted() -> None:
    off = _ranked([*_history(), *_today()], RankConfig(**COUNTING, rerun_discount=0))
    for stories in (off, _ranked(_today(), RankConfig(**COUNTING))):
        # A tie of three sources each: the newer first, as counting ranks it.
        assert stories[0].lead.title == "Volcano erupts on island"
        assert all(_signal(s, "rerun") == 0 for s in stories)
        assert stories[0].score == stories[1].score


def test_a_new_install_learns_no_rerun_habit_from_its_first_window() -> None:
    """Nothing has settled yet: no rerun habit is believed, though the window shows the
    wire running one story three times; the default weights count the sources."""
    weights = RankConfig(recency_weight=0, velocity_weight=0, growth_weight=0)
    assert weights.rerun_discount > 0  # the default
    stories = _ranked(_today(), weights)
    assert {s.lead.title: _signal(s, "coverage") for s in stories} == {
        "Volcano erupts on island": 2.0,
        "Senate passes budget bill": 2.0,
    }
    assert all(_signal(s, "rerun") == 0 for s in stories)
    assert stories[0].score == stories[1].score


def test_rerun_factor_is_the_usual_run_over_the_sources_own() -> None:
    settled = [(s, "Wire") for s in range(30) for _ in range(4)]
    settled += [(s, p) for s in range(30) for p in ("Gazette", "Herald")]
    overlap = SourceOverlap.of(settled, discount=0.0, rerun=1.0, settled=settled)
    usual = (120 + 60 + 5) / (90 + 5)  # every source's articles per story, prior 5 stories
    assert overlap.rerun_factor("Wire") == pytest.approx(usual / ((120 + 5) / (30 + 5)))
    assert overlap.rerun_factor("Gazette") == pytest.approx(usual / 1.0)
    assert overlap.rerun_factor("Unknown") == 1.0
    # Too few settled stories to learn a habit from: every factor 1.
    few = SourceOverlap.of(settled[:40], discount=0.0, rerun=1.0, settled=settled[:40])
    assert few.rerun_factor("Wire") == 1.0
