"""The growth signal: a young story is credited the sources that past stories gained later.

The curve is learned from the story memory (what the store holds), so a new install ranks
as the other signals alone do, and sources that report all at once teach no growth.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from digest.config import DigestConfig, RankConfig
from digest.rank import GrowthCurve, rank_memory, score_story
from digest.rank.score import SentStories
from digest.records import ArticleRecord

NOW = datetime(2014, 3, 20, 8, 0, tzinfo=UTC)
DIGEST = DigestConfig(id="d", title="D", latest_items=50)


def _settled(
    stories: int, spread_hours: float, sources: int = 4
) -> list[tuple[int, str, datetime]]:
    """Settled stories (begun 30 h ago) whose sources came evenly over ``spread_hours``."""
    start = NOW - timedelta(hours=30)
    return [
        (s, f"S{k}", start + timedelta(hours=spread_hours * k / sources))
        for s in range(stories)
        for k in range(sources)
    ]


def test_stories_that_grew_over_hours_teach_a_young_story_its_growth() -> None:
    curve = GrowthCurve.of(_settled(30, spread_hours=8), NOW)
    # Four sources at 0, 2, 4 and 6 h: one hour in, a story had one of its four.
    assert curve.stories == 30
    assert curve.factor(1.0) == 4.0
    assert curve.factor(2.5) == 2.0
    assert curve.factor(7.0) == 1.0 and curve.factor(30.0) == 1.0


def test_stories_that_arrive_whole_teach_no_growth() -> None:
    curve = GrowthCurve.of(_settled(30, spread_hours=0.01), NOW)
    assert all(curve.factor(h) == 1.0 for h in (0.1, 1, 5, 20))


def test_a_new_install_has_no_curve_and_the_signal_adds_nothing() -> None:
    assert GrowthCurve.of(_settled(5, spread_hours=8), NOW).factor(1.0) == 1.0  # too few
    young = [_article(1, "A", NOW - timedelta(minutes=30))]
    story = score_story(young, NOW, RankConfig(), growth=GrowthCurve())
    growth = next(s for s in story.signals if s.name == "growth")
    assert growth.value == 0.0 and growth.contribution == 0.0


def _article(i: int, source: str, seen: datetime, title: str = "Volcano erupts") -> ArticleRecord:
    return ArticleRecord(
        i, source, title, f"https://{source}.test/{i}", "", seen, first_seen_at=seen
    )


def test_rank_memory_learns_growth_from_the_memory_and_lifts_the_young_story() -> None:
    # Yesterday: 30 stories, each taken up by four sources over six hours.
    memory = []
    for s in range(30):
        for k in range(4):
            seen = NOW - timedelta(hours=30) + timedelta(hours=2 * k, minutes=s)
            words = " ".join(f"w{s}x{j}" for j in range(4))  # its own words: one story each
            memory.append(_article(1000 + 10 * s + k, f"S{k}", seen, words))
    # Today: an old story three sources carried, and one an hour old with two so far.
    ago = timedelta(hours=20)
    old = [_article(1 + k, f"S{k}", NOW - ago, "Senate passes budget bill") for k in range(3)]
    ago = timedelta(minutes=50)
    young = [_article(10 + k, f"S{k}", NOW - ago, "Volcano erupts on island") for k in range(2)]
    weights = RankConfig(recency_weight=0, velocity_weight=0)

    def in_window(a: ArticleRecord) -> bool:
        return a.seen_at >= NOW - timedelta(hours=24)

    ranked = rank_memory([*memory, *old, *young], in_window, NOW, DIGEST, weights, SentStories())
    stories = [*ranked.edition.breaking, *ranked.edition.latest]
    assert stories[0].lead.title == "Volcano erupts on island"
    growth = {s.lead.title: next(g for g in s.signals if g.name == "growth") for s in stories}
    assert growth["Volcano erupts on island"].value > 0
    assert growth["Senate passes budget bill"].value == 0
    off = rank_memory([*memory, *old, *young], in_window, NOW, DIGEST,
                      RankConfig(recency_weight=0, velocity_weight=0, growth_weight=0),
                      SentStories())  # fmt: skip
    first = [*off.edition.breaking, *off.edition.latest][0]
    assert first.lead.title == "Senate passes budget bill"  # counting alone


def test_the_pipeline_learns_growth_from_the_stored_articles(open_app) -> None:
    """rank_window reads the history from the store: empty, no growth; with it, growth."""
    from digest.editions import rank_window
    from digest.records import FeedItem
    from digest.store.ingest import store_items

    names = [f"S{k}" for k in range(4)]
    app = open_app([(n, f"https://{n.lower()}.test/feed") for n in names])
    ids = app.store.sync_sources([(n, f"https://{n.lower()}.test/feed") for n in names])
    now = datetime.now(UTC).replace(microsecond=0)

    def put(source: str, i: int, title: str, seen: datetime) -> None:
        item = FeedItem(f"g{i}", f"https://{source.lower()}.test/{i}", title, "", None, seen)
        with app.store.engine.begin() as connection:
            store_items(connection, [(ids[source], [item])], seen)

    for k, name in enumerate(names[:2]):  # an hour-old story two sources carry so far
        put(name, 1 + k, "Volcano erupts on remote island", now - timedelta(minutes=50))
    for k, name in enumerate(names):  # a story ten hours old with all four
        put(name, 10 + k, "Senate passes the budget bill", now - timedelta(hours=10))

    def growth_of(title: str) -> float:
        ranked = rank_window(app, app.config.digests[0], now)
        story = next(s for s in (*ranked.breaking, *ranked.latest) if s.lead.title == title)
        return next(s.value for s in story.signals if s.name == "growth")

    assert growth_of("Volcano erupts on remote island") == 0.0  # no history: counting only
    for s in range(25):  # yesterday's stories, each taken up by four sources over six hours
        for k, name in enumerate(names):
            seen = now - timedelta(hours=36 - 2 * k, minutes=s)
            put(name, 100 + 10 * s + k, " ".join(f"w{s}x{j}" for j in range(4)), seen)
    assert growth_of("Volcano erupts on remote island") > 0
    assert growth_of("Senate passes the budget bill") == 0.0


def test_a_story_going_since_yesterday_is_not_young_for_its_new_article() -> None:
    """Its age counts from its first article in the memory, not in the window."""
    curve = GrowthCurve.of(
        [*_settled(30, spread_hours=8), (700, "S1", NOW - timedelta(hours=30))], NOW
    )
    new = [replace(_article(1, "S2", NOW - timedelta(minutes=30)), story_id=700)]
    story = score_story(new, NOW, RankConfig(), growth=curve)
    assert next(s.value for s in story.signals if s.name == "growth") == 0.0
    fresh = [replace(new[0], story_id=999)]
    story = score_story(fresh, NOW, RankConfig(), growth=curve)
    assert next(s.value for s in story.signals if s.name == "growth") > 0
