"""The breaking score's signals and the sections, each pinned on a small hand-made case."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from digest.config import DigestConfig, RankConfig
from digest.editions.stored import ranked_from_json, ranked_to_json
from digest.rank import SIGNALS, rank, score_story, sent_sources
from digest.records import ArticleRecord, RankedEdition, Story
from digest.render import EditionInfo, group_latest, render_edition

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
DIGEST = DigestConfig(id="d", title="D", breaking_items=5, latest_items=20)


def article(
    i: int,
    source: str,
    title: str = "Storm Isolde makes landfall",
    minutes_ago: int = 10,
    *,
    weight: float = 1.0,
    seen_minutes_ago: int | None = None,
    story: int | None = None,
    topics: tuple[str, ...] = (),
) -> ArticleRecord:
    return ArticleRecord(
        i,
        source,
        title,
        f"https://{source.lower()}.test/{i}",
        "",
        NOW - timedelta(minutes=minutes_ago),
        weight,
        topics=topics,
        story_id=story,
        first_seen_at=None
        if seen_minutes_ago is None
        else NOW - timedelta(minutes=seen_minutes_ago),
    )


def signals(story: Story) -> dict[str, tuple[float, float]]:
    return {s.name: (s.value, s.contribution) for s in story.signals}


def stored_edition(*items: ArticleRecord) -> RankedEdition:
    """An edition of ``items`` sent now, read back as the pipeline stores it."""
    return ranked_from_json(ranked_to_json(rank(list(items), NOW, DIGEST, RankConfig())))


def is_repeat(ranked: RankedEdition) -> bool:
    """Whether the window's first item is a repeat (sent before, not grown since): left
    out of the edition, or the edition's first item."""
    return (*ranked.repeated, *ranked.breaking, *ranked.latest)[0].repeat


def test_every_signal_is_named_and_they_sum_to_the_score() -> None:
    story = score_story([article(1, "Wire"), article(2, "Post")], NOW, RankConfig())
    assert tuple(signals(story)) == SIGNALS
    assert story.score == pytest.approx(sum(c for _, c in signals(story).values()), abs=1e-3)


def test_coverage_is_one_weighted_vote_per_source_beyond_the_lead() -> None:
    weights = RankConfig(coverage_weight=2.0)
    story = score_story(
        [
            article(1, "Wire", weight=3.0),
            article(2, "Wire", weight=3.0),  # a second Wire article adds no vote
            article(3, "Post", weight=0.5),
            article(4, "Post", weight=0.5),
            article(5, "Post", weight=0.5),
            article(6, "Blog", weight=1.0),
        ],
        NOW,
        weights,
    )
    assert story.lead.source == "Wire"
    assert signals(story)["coverage"] == (1.5, 3.0)  # Post 0.5 + Blog 1.0, the lead's left out
    alone = score_story([article(1, "Wire"), article(2, "Wire"), article(3, "Wire")], NOW, weights)
    assert signals(alone)["coverage"] == (0.0, 0.0)


def test_velocity_counts_sources_whose_first_article_joined_within_the_window() -> None:
    weights = RankConfig(velocity_hours=3, velocity_weight=0.5)
    story = score_story(
        [
            article(1, "Wire", seen_minutes_ago=300),  # Wire joined 5 h ago...
            article(2, "Wire", seen_minutes_ago=30),  # ...so its follow-up is not joining
            article(3, "Post", seen_minutes_ago=120),  # joined 2 h ago: counts
            article(4, "Blog", seen_minutes_ago=210),  # 3.5 h ago: outside the window
            article(5, "Desk", minutes_ago=60),  # never seen by digest: its publication time
        ],
        NOW,
        weights,
    )
    assert signals(story)["velocity"] == (2.0, 1.0)  # Post and Desk


def test_a_sent_story_is_a_repeat_until_a_new_source_joins_and_scores_as_any_other() -> None:
    """A repeat is left out of the edition, not scored lower: no signal is about it."""
    weights = RankConfig()
    sent = frozenset({"Wire", "Post"})
    same = score_story([article(1, "Wire"), article(2, "Post")], NOW, weights, sent)
    fewer = score_story([article(1, "Wire")], NOW, weights, sent)
    assert same.repeat and fewer.repeat and not same.update
    grown = score_story(
        [article(1, "Wire"), article(2, "Post"), article(3, "Blog")], NOW, weights, sent
    )
    assert not grown.repeat and grown.update
    never = score_story([article(1, "Wire"), article(2, "Post")], NOW, weights)
    assert not never.repeat and not never.update
    assert same.score == never.score and same.signals == never.signals


def test_a_ranking_given_a_sent_penalty_keeps_repeats_lowered_by_it() -> None:
    """How editions were ranked before repeats were left out: bench/rank_repeats.py
    replays it beside the rule."""
    stored = stored_edition(article(1, "Wire", story=1), article(2, "Post", story=1))
    again = [article(1, "Wire", story=1), article(2, "Post", story=1)]
    later = NOW + timedelta(hours=1)
    left_out = rank(again, later, DIGEST, RankConfig(), sent_sources([stored]))
    kept = rank(again, later, DIGEST, RankConfig(), sent_sources([stored]), sent_penalty=2.5)
    [repeat] = left_out.repeated
    assert (*left_out.breaking, *left_out.latest) == () and left_out.repeats == 1
    assert kept.breaking == () and kept.repeats == 0  # lowered below Breaking's threshold
    assert kept.latest[0].repeat and kept.latest[0].score == pytest.approx(repeat.score - 2.5)


def test_sent_stories_are_read_back_from_a_stored_edition_by_their_articles() -> None:
    first = rank(
        [article(1, "Wire", story=1), article(2, "Post", story=1)], NOW, DIGEST, RankConfig()
    )
    stored = ranked_from_json(ranked_to_json(first))
    sent = sent_sources([stored])
    assert sent.by_story == {1: frozenset({"Wire", "Post"})}
    assert sent.by_article == {1: frozenset({"Wire", "Post"}), 2: frozenset({"Wire", "Post"})}

    later = NOW + timedelta(hours=1)
    again = [article(1, "Wire", story=1), article(2, "Post", story=1)]
    ranked = rank(again, later, DIGEST, RankConfig(), sent_sources([stored]))
    assert (*ranked.breaking, *ranked.latest) == ()  # left out: its readers had it
    assert ranked.repeated[0].repeat
    grown = [*again, article(3, "Blog", story=1)]
    assert rank(grown, later, DIGEST, RankConfig(), sent_sources([stored])).breaking != ()
    # The sent story merged into an older one (id 0) since: still recognised by its articles.
    merged = [article(0, "Post", story=0), *(replace(a, story_id=0) for a in again)]
    ranked = rank(merged, later, DIGEST, RankConfig(), sent_sources([stored]))
    assert is_repeat(ranked)


def test_a_sent_story_is_recognised_after_its_sent_articles_left_the_window() -> None:
    """Sent with Wire and Post; the next day only a new Wire article is in the window."""
    stored = stored_edition(article(1, "Wire", story=1), article(2, "Post", story=1))
    tomorrow = NOW + timedelta(days=1)
    today = [article(5, "Wire", story=1, minutes_ago=-1440 + 10)]
    ranked = rank(today, tomorrow, DIGEST, RankConfig(), sent_sources([stored]))
    assert is_repeat(ranked)
    # Merged since into story 0: known through the sent articles' current story.
    moved = [article(5, "Wire", story=0, minutes_ago=-1440 + 10)]
    sent = sent_sources([stored]).with_stories({1: 0, 2: 0, 5: 0})
    ranked = rank(moved, tomorrow, DIGEST, RankConfig(), sent)
    assert is_repeat(ranked)
    unknown = rank(moved, tomorrow, DIGEST, RankConfig(), sent_sources([stored]))
    assert not is_repeat(unknown)


def test_a_story_following_a_sent_one_after_a_quiet_spell_is_a_repeat_unless_it_grew() -> None:
    """Story 1 was sent; a day later story 9 takes it up (``follows``), then story 12 takes
    up 9: both are known as sent, until a source the sent story did not have carries one."""
    stored = stored_edition(article(1, "Wire", story=1), article(2, "Post", story=1))
    tomorrow = NOW + timedelta(days=1)
    follows = {9: 1, 12: 9}
    sent = sent_sources([stored])
    for story in (9, 12):
        again = [article(story, "Wire", story=story, minutes_ago=-1440 + 10)]
        ranked = rank(again, tomorrow, DIGEST, RankConfig(), sent, follows)
        assert is_repeat(ranked)
    grown = [article(9, "Wire", story=9), article(10, "Blog", story=9)]
    ranked = rank(grown, tomorrow, DIGEST, RankConfig(), sent, follows)
    assert not is_repeat(ranked)
    ranked = rank(grown[:1], tomorrow, DIGEST, RankConfig(), sent)  # no follow-up known
    assert not is_repeat(ranked)


def test_rank_groups_by_story_id_and_clusters_articles_without_one() -> None:
    items = [
        article(1, "Wire", "Harbour strike ends after talks", story=1),
        article(2, "Post", "Museum roof repaired", story=1),  # the store says: same story
        article(3, "Blog", "Harbour strike ends after long talks"),  # clustered here
        article(4, "Desk", "Comet visible tonight"),
    ]
    ranked = rank(items, NOW, DIGEST, RankConfig())
    groups = sorted(
        sorted(a.id for a in (s.lead, *s.others)) for s in (*ranked.breaking, *ranked.latest)
    )
    assert groups == [[1, 2, 3], [4]]


HEADLINES = [
    "Harbour strike ends",
    "Comet visible tonight",
    "Museum roof repaired",
    "Election date announced",
    "Bridge reopens early",
]


def test_breaking_needs_the_threshold_and_is_capped() -> None:
    weights = RankConfig(breaking_min_score=2.5, breaking_min_sources=2)
    items = [
        # Five two-source stories, fresh: above the threshold.
        *(
            article(10 * i + j, f"S{j}", headline, 5 * i)
            for i, headline in enumerate(HEADLINES)
            for j in range(2)
        ),
        # A two-source story a day old: wide enough, but below the threshold.
        article(90, "S0", "Yesterday's council vote", 24 * 60),
        article(91, "S1", "Yesterday's council vote", 24 * 60),
        # A fresh single-source story without a cue: never Breaking.
        article(95, "S0", "Quiet single report", 1),
    ]
    ranked = rank(items, NOW, DigestConfig(id="d", title="D", breaking_items=3), weights)
    assert len(ranked.breaking) == 3  # capped
    assert all(s.score >= 2.5 and len(s.sources) == 2 for s in ranked.breaking)
    assert [s.score for s in ranked.breaking] == sorted(
        (s.score for s in ranked.breaking), reverse=True
    )
    late = {s.lead.title for s in ranked.latest}
    assert {"Yesterday's council vote", "Quiet single report"} <= late
    assert [s.score for s in ranked.latest] == sorted(
        (s.score for s in ranked.latest), reverse=True
    )


def _story(i: int, source: str, topics: tuple[str, ...], title: str) -> Story:
    return Story(article(i, source, title, topics=topics), (), 1.0, ())


LATEST = (
    _story(1, "Wire", ("politics",), "Parliament passes data bill"),
    _story(2, "Post", ("science",), "Comet visible tonight"),
    _story(3, "Post", ("politics",), "Mayor resigns"),
    _story(4, "Blog", (), "Local bakery wins prize"),
)


def test_latest_is_grouped_by_topic_or_by_source_in_rank_order() -> None:
    by_topic = [(k, [s.lead.id for s in v]) for k, v in group_latest(LATEST, "topic")]
    assert by_topic == [("Politics", [1, 3]), ("Science", [2]), ("Blog", [4])]
    by_source = [(k, [s.lead.id for s in v]) for k, v in group_latest(LATEST, "source")]
    assert by_source == [("Wire", [1]), ("Post", [2, 3]), ("Blog", [4])]


@pytest.mark.parametrize(
    "by,headings", [("topic", ["Politics", "Science"]), ("source", ["Wire", "Post"])]
)
def test_the_email_shows_latest_under_the_configured_headings(by: str, headings: list[str]) -> None:
    info = EditionInfo("Desk", "Daily", "https://d.test", "", "UTC", NOW, latest_group_by=by)
    text = render_edition(info, RankedEdition((), LATEST)).text
    for heading in headings:
        assert f"\n{heading}\n{'-' * len(heading)}\n" in text


def test_a_story_shows_once_with_its_other_sources_each_listed_once() -> None:
    lead = article(1, "Wire", "Storm Isolde makes landfall", weight=2.0)
    story = score_story(
        [lead, article(2, "Post"), article(3, "Post"), article(4, "Wire"), article(5, "Blog")],
        NOW,
        RankConfig(),
    )
    assert story.lead.id == 1
    assert [a.source for a in story.also] == ["Post", "Blog"]
    info = EditionInfo("Desk", "Daily", "https://d.test", "", "UTC", NOW)
    text = render_edition(info, RankedEdition((story,), ())).text
    assert text.count("Storm Isolde makes landfall") == 1
    assert text.count("Also Post:") == 1 and text.count("Also Blog:") == 1
    assert "Also Wire" not in text


def test_a_story_and_its_follow_up_in_one_window_are_one_item() -> None:
    """Yesterday evening's story 1 and this morning's story 5, which takes it up after a
    quiet night (``follows``), are one item with the sources of both; unrelated story 7 stays
    apart, and without ``follows`` the two would be two items."""
    items = [
        article(1, "Wire", minutes_ago=780, story=1),
        article(2, "Post", minutes_ago=770, story=1),
        article(5, "Blog", "Storm Isolde: the morning after", minutes_ago=30, story=5),
        article(7, "Desk", "Comet visible tonight", story=7),
    ]
    ranked = rank(items, NOW, DIGEST, RankConfig(), follows={5: 1})
    stories = (*ranked.breaking, *ranked.latest)
    assert sorted(sorted(s.sources) for s in stories) == [["Blog", "Post", "Wire"], ["Desk"]]
    apart = rank(items, NOW, DIGEST, RankConfig())
    assert len(apart.breaking) + len(apart.latest) == 3


def test_an_item_whose_sent_story_sits_mid_chain_is_still_a_repeat() -> None:
    """Story 9 (Wire) was sent; it follows story 1, which this digest never sent. Next
    morning a new Wire article joins 9: the item (1 and 9 together) is still known as sent,
    and its headline comes from the newest story."""
    stored = stored_edition(article(90, "Wire", story=9))
    tomorrow = NOW + timedelta(hours=10)
    items = [
        article(1, "Wire", "Storm Isolde nears the coast", minutes_ago=-300, story=1),
        article(91, "Wire", "Storm Isolde: the morning after", minutes_ago=-590, story=9),
    ]
    sent = sent_sources([stored]).with_stories({1: 1, 90: 9, 91: 9})
    ranked = rank(items, tomorrow, DIGEST, RankConfig(), sent, follows={9: 1})
    (item,) = ranked.repeated
    assert item.repeat
    assert item.lead.id == 91  # the follow-up's headline leads


def test_a_follow_up_led_by_a_lighter_source_does_not_count_the_heavy_one_twice() -> None:
    """Wire (weight 3) carried yesterday's story 1; Post (weight 1) leads this morning's
    follow-up 5. Wire's weight is source_weight, counted once; each story is one source
    wide, so the item has no coverage beyond it (its widest story's, not the union's)."""
    items = [
        article(1, "Wire", minutes_ago=780, weight=3.0, story=1),
        article(5, "Post", "Storm Isolde: the morning after", weight=1.0, story=5),
    ]
    ranked = rank(items, NOW, DIGEST, RankConfig(), follows={5: 1})
    (item,) = (*ranked.breaking, *ranked.latest)
    assert item.lead.id == 5
    assert signals(item)["source_weight"][0] == 3.0
    assert signals(item)["coverage"][0] == 0.0


def test_a_story_and_its_follow_up_count_as_wide_as_the_widest_of_them() -> None:
    """Story 1 (yesterday evening, Wire, Post, Blog) and its follow-up 5 (this morning,
    Desk, Herald) are one item with five sources listed, but it is as wide as story 1:
    coverage 2 (three sources beyond the first), not 4. So a story four sources carried
    today ranks above it: a story told again the next day is not wider for it."""
    items = [
        article(1, "Wire", minutes_ago=780, story=1),
        article(2, "Post", minutes_ago=775, story=1),
        article(3, "Blog", minutes_ago=770, story=1),
        article(5, "Desk", "Storm Isolde: the morning after", minutes_ago=60, story=5),
        article(6, "Herald", "Storm Isolde: the morning after", minutes_ago=55, story=5),
        *(
            article(i, s, "Comet visible tonight", minutes_ago=60 + i, story=10)
            for i, s in enumerate(["Wire", "Post", "Desk", "Herald"], 10)
        ),
    ]
    weights = RankConfig(velocity_weight=0, growth_weight=0, recency_weight=0)
    ranked = rank(items, NOW, DIGEST, weights, follows={5: 1})
    stories = (*ranked.breaking, *ranked.latest)
    storm = next(s for s in stories if "Blog" in s.sources)
    assert sorted(storm.sources) == ["Blog", "Desk", "Herald", "Post", "Wire"]
    assert signals(storm)["coverage"][0] == 2.0
    assert stories[0].lead.title == "Comet visible tonight"  # coverage 3


def test_a_follow_up_is_a_repeat_when_its_sibling_was_sent() -> None:
    """Stories 2 and 4 both take up story 1 (never sent here); 2 was sent with Wire and
    Post. This morning 4, from Wire alone, is the same story again: a repeat."""
    stored = stored_edition(article(20, "Wire", story=2), article(21, "Post", story=2))
    tomorrow = NOW + timedelta(days=1)
    again = [article(40, "Wire", story=4, minutes_ago=-1440 + 10)]
    ranked = rank(again, tomorrow, DIGEST, RankConfig(), sent_sources([stored]), {2: 1, 4: 1})
    assert is_repeat(ranked)
