"""The ranker: a score that is a sum of named signals, sections, and `digest explain`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.config import DigestConfig, RankConfig
from digest.rank import SIGNALS, rank, score_story
from digest.records import ArticleRecord

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def article(
    i: int, source: str, title: str, minutes_ago: int = 10, weight: float = 1.0, summary: str = ""
) -> ArticleRecord:
    return ArticleRecord(
        i,
        source,
        title,
        f"https://{source.lower()}.test/{i}",
        summary,
        NOW - timedelta(minutes=minutes_ago),
        weight,
    )


def test_score_is_the_sum_of_its_named_signals() -> None:
    weights = RankConfig(
        half_life_hours=6, recency_weight=2, source_weight=0.5, coverage_weight=1.5, cue_weight=0.25
    )
    story = score_story(
        [
            article(1, "Wire", "Breaking: bridge closed", 360, weight=2.0),
            article(2, "Post", "Bridge closed after crash", 360),
            article(3, "Post", "Bridge closed for weeks", 400),
        ],
        NOW,
        weights,
    )
    signals = {s.name: (s.value, s.contribution) for s in story.signals}
    assert signals["recency"] == (pytest.approx(0.5), pytest.approx(1.0))  # one half-life old
    assert signals["source_weight"] == (2.0, 1.0)
    assert signals["coverage"] == (1, 1.5)  # two outlets: one extra, however many articles
    assert signals["cue"] == (1.0, 0.25)
    assert story.score == pytest.approx(1.0 + 1.0 + 1.5 + 0.25)
    assert story.lead.source == "Wire"  # the heaviest source supplies the headline
    assert story.sources == ("Wire", "Post")


def test_breaking_needs_several_sources_or_a_cue_and_latest_is_newest_first() -> None:
    items = [
        article(1, "Wire", "Parliament passes data protection bill", 50),
        article(2, "Post", "Data protection bill passes parliament", 40),
        article(3, "Wire", "Orchestra announces free summer concerts", 5),
        # A lone source with a cue, fresh enough to score breaking_min_score (1.85).
        article(4, "Post", "Developing: power cut hits the north", 100),
        article(5, "Post", "Library reopens after restoration", 30),
        article(6, "Wire", "Tram line extension opens", 300),
    ]
    edition = rank(
        items, NOW, DigestConfig(id="d", title="D", breaking_items=5, latest_items=2), RankConfig()
    )
    assert [s.lead.id for s in edition.breaking] == [1, 4] or [
        s.lead.id for s in edition.breaking
    ] == [2, 4]
    assert [s.lead.id for s in edition.latest] == [3, 5]  # newest first, capped at 2
    assert edition.count == 4


def test_breaking_is_capped_and_ordered_by_score() -> None:
    headlines = [
        "Harbour strike ends",
        "Comet visible tonight",
        "Museum roof repaired",
        "Election date announced",
    ]
    items = [
        article(i * 10 + j, f"S{j}", headlines[i - 1], 10 * i)
        for i in range(1, 5)
        for j in range(i + 1)
    ]
    edition = rank(items, NOW, DigestConfig(id="d", title="D", breaking_items=2), RankConfig())
    # Stories 4 and 3 are carried by the most sources.
    assert [len(s.sources) for s in edition.breaking] == [5, 4]
    assert [s.score for s in edition.breaking] == sorted(
        (s.score for s in edition.breaking), reverse=True
    )


def _widen_lookback(config: Path) -> None:
    """The demo's articles are minutes old and its edition is the current slot's, so the
    next edition's 24-hour window starts at the current slot: from the slot until their age
    has passed, none of them would be in it. Two days keep them in, whatever the hour."""
    text = config.read_text()
    assert "lookback_hours = 24" in text
    config.write_text(text.replace("lookback_hours = 24", "lookback_hours = 48"))


def test_explain_shows_each_signal_and_they_add_up_to_the_score(tmp_path, monkeypatch) -> None:
    import json

    from tests.conftest import run_cli

    monkeypatch.delenv("DIGEST_SECRET", raising=False)
    assert run_cli("demo", "--dir", str(tmp_path / "demo"))[0] == 0
    _widen_lookback(tmp_path / "demo" / "digest.toml")
    code, out, _ = run_cli("--config", str(tmp_path / "demo" / "digest.toml"), "explain", "--json")
    assert code == 0
    stories = json.loads(out)["stories"]
    # The demo sent its edition: the next one leaves its stories out, listed as sent.
    storm = next(s for s in stories if s["headline"].startswith("Storm"))
    assert len(storm["sources"]) == 3 and storm["section"] == "sent"
    for story in stories:
        assert list(story["signals"]) == list(SIGNALS) and isinstance(story["story_id"], int)
        total = sum(s["adds"] for s in story["signals"].values())
        assert total == pytest.approx(story["score"], abs=1e-3)


def test_explain_table_fits_a_terminal_and_names_its_columns(tmp_path, monkeypatch) -> None:
    from tests.conftest import run_cli

    monkeypatch.delenv("DIGEST_SECRET", raising=False)
    monkeypatch.setenv("COLUMNS", "80")
    assert run_cli("demo", "--dir", str(tmp_path / "demo"))[0] == 0
    _widen_lookback(tmp_path / "demo" / "digest.toml")
    code, out, _ = run_cli("--config", str(tmp_path / "demo" / "digest.toml"), "explain")
    assert code == 0
    table = out.split("#: B = Breaking")[0]
    assert all(len(line) <= 80 for line in table.splitlines())
    assert "Storm Isolde makes" in table  # the headline is readable, not a few letters a line
    assert "fresh = recency" in out and "S = sent before and not grown since" in out
    assert "already_sent" not in out  # no penalty column: a repeat is left out, not lowered
