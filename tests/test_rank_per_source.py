"""Latest's per-source cap (``latest_per_source``): a source that posts a lot does not fill
the section; what it passes over is named by `explain` and stays a candidate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pydantic
import pytest

from digest.app import App
from digest.config import DigestConfig, RankConfig, load_config
from digest.editions import rank_window
from digest.rank import rank
from digest.records import ArticleRecord, RankedEdition, Story
from digest.store import utcnow
from tests.conftest import FeedServer, rss, run_cli

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)

# Headlines that share no words, so each is a story of its own.
HEADLINES = [
    "Harbour strike ends after pay deal",
    "Council approves tram extension",
    "Drought cuts wheat harvest",
    "Museum returns looted bronzes",
    "Rail fares rise in January",
    "Comet visible tonight over valleys",
    "Bakery chain opens flagship store",
    "Glacier retreat alarms climbers",
    "Orchestra tours Scandinavia",
    "Hospital wins cleanliness award",
    "Bridge repairs delay commuters",
    "Library digitises medieval maps",
    "Vineyard frost ruins vintage",
    "Startup unveils folding bicycle",
    "Lighthouse keeper retires",
]


def _article(i: int, source: str, minutes_ago: int, title: str | None = None) -> ArticleRecord:
    return ArticleRecord(
        i,
        source,
        title or HEADLINES[i % len(HEADLINES)],
        f"https://{source.lower()}.test/{i}",
        "",
        NOW - timedelta(minutes=minutes_ago),
    )


def _window() -> list[ArticleRecord]:
    """Ten single-source stories from Busy, the newest (so the best: stories of one source
    tie but for recency), and five older ones from four other sources."""
    busy = [_article(i, "Busy", 1 + i) for i in range(10)]
    others = [
        _article(10 + i, source, 30 + 10 * i)
        for i, source in enumerate(["Post", "Herald", "Times", "Post", "Gazette"])
    ]
    return busy + others


def _rank(latest_items: int, latest_per_source: int = 3) -> RankedEdition:
    digest = DigestConfig(
        id="d", title="D", latest_items=latest_items, latest_per_source=latest_per_source
    )
    return rank(_window(), NOW, digest, RankConfig())


def _ids(stories: tuple[Story, ...]) -> list[int]:
    return [s.lead.id for s in stories]


def test_latest_holds_at_most_n_stories_of_one_source_best_first_and_the_others() -> None:
    ranked = _rank(latest_items=8, latest_per_source=3)
    assert ranked.breaking == ()
    # Busy's three best (its newest), then every other source's, best first.
    assert _ids(ranked.latest) == [0, 1, 2, 10, 11, 12, 13, 14]
    scores = [s.score for s in ranked.latest]
    assert scores == sorted(scores, reverse=True)
    # Passed over for the cap, best first: not in the edition, so not sent.
    assert _ids(ranked.capped) == [3, 4, 5, 6, 7, 8, 9]
    assert ranked.candidates == 15


def test_the_default_cap_is_three_and_zero_means_no_cap() -> None:
    assert DigestConfig(id="d", title="D").latest_per_source == 3
    ranked = rank(_window(), NOW, DigestConfig(id="d", title="D", latest_items=8), RankConfig())
    assert [s.lead.source for s in ranked.latest].count("Busy") == 3
    uncapped = _rank(latest_items=8, latest_per_source=0)
    assert _ids(uncapped.latest) == list(range(8))  # Busy fills it, as before the cap
    assert uncapped.capped == ()
    with pytest.raises(pydantic.ValidationError, match="latest_per_source"):
        DigestConfig(id="d", title="D", latest_per_source=-1)


def test_a_short_section_is_filled_from_the_passed_over_stories_after_the_others() -> None:
    """Eight stories within the cap, room for ten: the reader gets Busy's 4th and 5th best
    at the section's end rather than a section two short."""
    ranked = _rank(latest_items=10, latest_per_source=3)
    assert _ids(ranked.latest) == [0, 1, 2, 10, 11, 12, 13, 14, 3, 4]
    assert _ids(ranked.capped) == [5, 6, 7, 8, 9]
    everything = _rank(latest_items=20, latest_per_source=3)
    assert len(everything.latest) == 15 and everything.capped == ()


def test_breaking_is_not_capped() -> None:
    live = [_article(i, "Busy", 1 + i, f"Live: {HEADLINES[i]}") for i in range(5)]
    ranked = rank(
        live + _window()[10:],
        NOW,
        DigestConfig(id="d", title="D", breaking_items=5, latest_items=4, latest_per_source=1),
        RankConfig(),
    )
    assert _ids(ranked.breaking) == [0, 1, 2, 3, 4]  # five of one source: a big story is big
    assert [s.lead.source for s in ranked.latest] == ["Post", "Herald", "Times", "Gazette"]


def _items(source: str, first: int, count: int, age: timedelta) -> list[dict[str, str]]:
    when = format_datetime(utcnow() - age)
    host = f"{source}.test"
    return [
        {"title": HEADLINES[i], "guid": f"{source}{i}", "date": when,
         "link": f"https://{host}/{i}"}
        for i in range(first, first + count)
    ]  # fmt: skip


def test_explain_names_the_stories_passed_over_for_the_cap_and_they_stay_candidates(
    write_config, feed_server: FeedServer
) -> None:
    busy = feed_server.add("/busy.xml", rss(_items("busy", 0, 5, timedelta(hours=1))))
    quiet = feed_server.add("/quiet.xml", rss(_items("quiet", 5, 2, timedelta(hours=3))))
    config = write_config([("Busy Wire", busy), ("Quiet Wire", quiet)])
    text = config.read_text().replace("latest_items = 20", "latest_items = 3")
    config.write_text(text.replace("[delivery]", "latest_per_source = 2\n\n[delivery]", 1))
    assert run_cli("--config", str(config), "gather")[0] == 0

    code, out, _ = run_cli("--config", str(config), "explain", "--json")
    assert code == 0
    report = json.loads(out)
    latest = [s["sources"] for s in report["stories"] if s["section"] == "latest"]
    assert latest == [["Busy Wire"], ["Busy Wire"], ["Quiet Wire"]]
    expected = [
        "3 more stories from Busy Wire: latest_per_source = 2 in [[digests]] 'daily' (not "
        "sent to readers without topics: candidates for a later edition)",
        # Quiet Wire's second story was never reached: the section was full.
        "1 more story in the window, past breaking_items = 3 and latest_items = 3",
    ]
    assert report["left_out"] == expected
    code, out, _ = run_cli("--config", str(config), "explain")
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith("left out: ")] == [
        f"left out: {note}" for note in expected
    ]

    # The edition goes out; the stories the cap passed over were not in it, so the next
    # edition has them as new, not as sent.
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    assert run_cli("--config", str(config), "send")[0] == 0
    app = App.open(load_config(config))
    try:
        [edition] = app.store.editions()
        ranked = rank_window(app, app.config.digests[0], edition.slot + timedelta(days=1))
    finally:
        app.close()
    assert len(ranked.repeated) == 3  # what the first edition sent
    assert [s.lead.source for s in ranked.latest] == ["Busy Wire", "Busy Wire", "Quiet Wire"]
    assert {s.lead.title for s in ranked.latest[:2]} <= set(HEADLINES[2:5])
