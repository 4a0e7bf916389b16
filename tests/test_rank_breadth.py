"""A source's breadth, learned from the stories the store has tallied: a general newsroom,
whose stories every pack of sources carries, gets a bigger vote than a specialist, whose
stories only its own pack carries; nothing until a long history is kept."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.app import App
from digest.clock import ManualClock
from digest.config import DigestConfig, RankConfig, load_config
from digest.editions import window_ranking
from digest.rank import SentStories, SourceHabits, rank_memory
from digest.rank.growth import first_arrivals
from digest.records import ArticleRecord, Story
from digest.reports import explain_report

NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
DIGEST = DigestConfig(id="d", title="D", schedule="0 7 * * *", latest_items=50)
COUNTING = {"recency_weight": 0, "velocity_weight": 0, "growth_weight": 0, "overlap_discount": 0}
FINANCE = ("Wire", "Markets", "Ticker")
CELEBRITY = ("Gossip", "Stars", "Glam")
GENERAL = ("Chronicle", "Courier", "Herald")
PAPER = GENERAL[0]


def _kept(scale: int = 1) -> SourceHabits:
    """Months of stories: each pack of specialists carries its own beat's stories, which
    the general papers carry too, as they carry each other's (``scale`` 100: a hundredth
    as many, a short history)."""
    sources = (*FINANCE, *CELEBRITY, *GENERAL)
    together: dict[tuple[str, str], int] = {}
    for i, a in enumerate(sources):
        for b in sources[i + 1 :]:
            packs = {a in FINANCE, b in FINANCE}, {a in CELEBRITY, b in CELEBRITY}
            same_beat = packs[0] == {True} or packs[1] == {True}
            general = a in GENERAL or b in GENERAL
            n = 500 if same_beat else 300 if general else 5
            together[(a, b) if a < b else (b, a)] = n // scale
    together.update({(name, name): 800 // scale for name in sources})
    counts = {name: (800 // scale, 800 // scale) for name in sources}
    return SourceHabits.kept(counts, NOW - timedelta(hours=32), together)


def test_the_general_paper_is_broader_than_either_pack() -> None:
    kept = _kept()
    breadths = kept.breadths(8.0)
    assert all(breadths[g] > 1.2 for g in GENERAL)
    assert all(breadths[s] < 0.8 for s in FINANCE + CELEBRITY)
    # The mean source keeps its vote: the factors lean around 1, they do not all grow.
    assert min(breadths.values()) < 1 < max(breadths.values())
    assert _kept().breadths(0.0) == {}  # breadth_weight 0: off
    steep = _kept().breadths(40.0)  # however steep: no vote silenced or made to rule
    assert min(steep.values()) == 0.25 and max(steep.values()) == 4.0


def test_breadth_waits_for_a_long_history() -> None:
    short = _kept(scale=100)  # 72 stories carried in all
    assert short.breadths(8.0) == {}
    assert SourceHabits().breadths(8.0) == {}  # a new install counts sources


def test_an_upgraded_install_waits_for_pairs_of_its_own() -> None:
    """Sources' stories were tallied before pairs were (migration 0024): breadth waits
    until the pairs themselves hold a long history, not the older per-source counts."""
    long = _kept()
    upgraded = SourceHabits.kept(long.pairs(), long.until, {("Chronicle", "Wire"): 2})
    assert upgraded.breadths(8.0) == {}


def test_a_source_new_to_the_tally_keeps_its_vote() -> None:
    """A source added (or renamed) lately has a few stories only: it gets no factor, and
    the others' factors do not move for it (it is not in their mean)."""
    kept = _kept()
    newcomer = {**kept.together, ("Chronicle", "Newcomer"): 1, ("Newcomer", "Newcomer"): 1}
    grown = SourceHabits.kept(kept.pairs(), kept.until, newcomer)
    assert "Newcomer" not in grown.breadths(8.0)
    assert grown.breadths(8.0)["Wire"] == pytest.approx(kept.breadths(8.0)["Wire"], rel=1e-4)


def test_the_tally_counts_each_pair_of_sources_once_a_story() -> None:
    arrivals = [
        (1, "Wire", NOW - timedelta(hours=30)),
        (1, "Wire", NOW - timedelta(hours=29)),  # a second article: the pair once still
        (1, PAPER, NOW - timedelta(hours=29)),
        (1, "Markets", NOW - timedelta(hours=28)),
        (2, PAPER, NOW - timedelta(hours=27)),
        (2, "Gossip", NOW - timedelta(hours=27)),
        (3, "Wire", NOW - timedelta(hours=2)),  # not settled: not counted yet
        (3, PAPER, NOW - timedelta(hours=2)),
    ]
    started = first_arrivals((story, seen) for story, _, seen in arrivals)
    carried = [(story, source) for story, source, _ in arrivals]
    habits = SourceHabits().tally(carried, started, NOW, NOW - timedelta(hours=48))
    assert habits.together == {
        (PAPER, "Markets"): 1,
        (PAPER, "Wire"): 1,
        ("Markets", "Wire"): 1,
        (PAPER, "Gossip"): 1,
        (PAPER, PAPER): 2,
        ("Wire", "Wire"): 1,
        ("Markets", "Markets"): 1,
        ("Gossip", "Gossip"): 1,
    }
    later = habits.tally(carried, started, NOW + timedelta(hours=23), NOW - timedelta(hours=25))
    assert later.together[(PAPER, "Wire")] == 2  # story 3 settled since, story 1 not again


def _article(i: int, source: str, title: str, minutes: int = 0) -> ArticleRecord:
    seen = NOW - timedelta(hours=2, minutes=-minutes)
    url = f"https://{source}.test/{i}"
    return ArticleRecord(i, source, title, url, "", seen, first_seen_at=seen)


def _ranked(weights: RankConfig) -> list[Story]:
    """Two stories of three sources each: the finance wires' earnings report (the newer,
    first on a tie), and a flood two general papers and a celebrity site carry."""
    memory = [
        *(
            _article(i, source, "Acme quarterly earnings beat forecasts", minutes=5)
            for i, source in enumerate(FINANCE, start=1)
        ),
        _article(4, "Chronicle", "River floods the old town overnight"),
        _article(5, "Courier", "River floods the old town overnight"),
        _article(6, "Gossip", "River floods the old town overnight"),
    ]
    ranked = rank_memory(
        memory, lambda a: True, NOW, DIGEST, weights, SentStories(), habits=_kept()
    )
    return [*ranked.edition.breaking, *ranked.edition.latest]


def test_a_story_the_general_paper_carries_ranks_above_a_packs_story() -> None:
    off = _ranked(RankConfig(**COUNTING, breadth_weight=0))
    on = _ranked(RankConfig(**COUNTING))
    assert off[0].lead.title.startswith("Acme")  # a tie on counts: the newer first
    assert on[0].lead.title.startswith("River")
    flood = {s.name: s for s in on[0].signals}
    earnings = {s.name: s for s in on[1].signals}
    # Shown by name in `digest explain` (its "brd" column), apart from the count.
    assert flood["breadth"].value > 0 > earnings["breadth"].value
    assert flood["coverage"].value == earnings["coverage"].value == 2.0
    assert all(s.name != "breadth" or s.value == 0 for s in off[0].signals)


CONFIGURED = (*FINANCE, *GENERAL)  # the celebrity sites removed from the config


def test_a_removed_source_weighs_no_more_in_the_others_breadth(
    write_config: Callable[..., Path],
) -> None:
    """The celebrity sites' months in the store, kept since they left the config, count
    for nothing in the breadth of the sources the ranking reads now: the factors are those
    of the configured sources' pairs alone, at once, not once the history outgrows them."""
    config = load_config(write_config([(n, f"file:{n.lower()}.xml") for n in CONFIGURED]))
    app = App.open(config, clock=ManualClock(NOW))
    try:
        kept = _kept()
        assert kept.until is not None
        app.store.save_source_habits(kept.pairs(), kept.until, was=None, pairs=kept.together)
        ranked = window_ranking(app, app.config.digest(None), NOW).kept
    finally:
        app.close()
    weight = config.rank.breadth_weight
    configured = {p: n for p, n in kept.together.items() if not set(p) & set(CELEBRITY)}
    alone = SourceHabits.kept({}, kept.until, configured).breadths(weight)
    assert set(alone) == set(CONFIGURED)
    assert ranked.breadths(weight) == alone
    # The removed sites' pairs did move the wire's factor while they were read.
    assert kept.breadths(weight)["Wire"] != pytest.approx(alone["Wire"], rel=1e-3)


def test_explain_names_the_breadth_learned_from_the_store(
    write_config: Callable[..., Path],
) -> None:
    """The tally the store keeps, pairs and all, is what `digest explain` says it learned
    from: no breadth on a short history, the sources' breadth once it is long."""
    config = load_config(write_config([(n, f"file:{n.lower()}.xml") for n in CONFIGURED]))
    app = App.open(config, clock=ManualClock(NOW))
    try:
        short, long = _kept(scale=100), _kept()
        app.store.save_source_habits(short.pairs(), NOW, was=None, pairs=short.together)
        report = explain_report(app, app.config.digest(None), NOW)
        assert report.header()[4] == "breadth: not yet (needs a few thousand stories tallied)"
        assert report.to_json()["learned"]["breadth_sources"] == 0

        later = NOW + timedelta(hours=8)
        assert app.store.save_source_habits(
            long.pairs(), later, was=NOW, pairs=long.changed_pairs(short)
        )
        report = explain_report(app, app.config.digest(None), later)
        # Of the nine sources tallied, six are in this install's config, each with a breadth.
        assert report.header()[4] == "breadth: learned for 6 sources"
        assert report.to_json()["learned"]["breadth_sources"] == 6
    finally:
        app.close()
    off = config.model_copy(update={"rank": config.rank.model_copy(update={"breadth_weight": 0})})
    app = App.open(off, clock=ManualClock(later))
    try:
        report = explain_report(app, app.config.digest(None), later)
        assert report.header()[4] == "breadth: off (rank.breadth_weight = 0)"
        assert report.to_json()["learned"]["breadth_sources"] is None
    finally:
        app.close()
