"""bench/rank_signals.py: its replay ranks exactly as rank_eval's P@10 loop does."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pydantic
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import rank_eval  # noqa: E402
import rank_signals  # noqa: E402

from digest.config import RankConfig  # noqa: E402

_TOPICS = [
    "Volcano erupts on Iceland coast", "Central bank raises interest rates",
    "Storm floods northern towns", "Election results delayed again", "New phone unveiled today",
    "Oil prices fall sharply", "Football club sacks manager", "Museum returns stolen painting",
    "Airline cancels winter flights", "Drug trial shows promise", "Bridge collapse injures ten",
    "Singer announces world tour", "Court blocks merger deal", "Wildfire forces evacuations",
]  # fmt: skip


def _rows() -> list[rank_eval.Row]:
    """Fourteen stories over a day, story s told by 14 - s publishers: the later, the smaller."""
    rows = []
    for s, topic in enumerate(_TOPICS):
        at = rank_eval.EPOCH + timedelta(hours=1 + s)
        for p in range(len(_TOPICS) - s):
            rows.append(
                rank_eval.Row(f"{topic}, outlet {p} says", f"https://p{p}.test/{s}-{p}",
                              f"Pub {p}", f"S{s}", at + timedelta(minutes=p))
            )  # fmt: skip
    return rows


def test_the_replay_ranks_each_digest_as_rank_eval_does() -> None:
    rows = _rows()
    weights = RankConfig()
    expected = rank_eval.precision_at_10(rows, weights)
    days = rank_signals.replay(rows, weights)
    judged = [j for j in days if j.judged]
    assert len(judged) == expected.digests > 0
    assert rank_signals.evaluate(days, weights) == list(expected.ours)
    assert [j.baseline for j in judged] == list(expected.baseline)
    # Another weighting ranks the same clustered memory: coverage off changes the order.
    off = rank_signals.evaluate(days, RankConfig(coverage_weight=0, growth_weight=0))
    assert off != list(expected.ours)


def test_a_variant_is_a_validated_rank_config() -> None:
    name, weights = rank_signals.variant("count:recency_weight=0,cue_weight=0.5")
    assert name == "count" and weights.recency_weight == 0 and weights.cue_weight == 0.5
    assert rank_signals.variant("default") == ("default", RankConfig())
    with pytest.raises(pydantic.ValidationError, match="no_such_weight"):
        rank_signals.variant("bad:no_such_weight=1")


def test_both_benches_replay_the_same_days() -> None:
    """One replay of the digests' days (``rank_eval.judged_days``) serves both: every
    digest time is a day, P@10 judges the days with ten candidates, and rank_signals
    keeps every day (each adds its settled stories to the sources' habits, as in
    rank_eval) and scores those."""
    rows = _rows()
    weights = RankConfig()
    days = list(rank_eval.judged_days(rows, weights))
    expected = rank_eval.precision_at_10(rows, weights)
    judged = [d for d in days if d.judged]
    assert [d.at for d in days] == rank_eval.digest_times(rows)
    assert [d.month for d in judged] == list(expected.months)
    assert [d.baseline for d in judged] == list(expected.baseline)
    assert rank_signals.replay(rows, weights) == days
    assert all(len(d.gold) == 10 for d in judged) and not days[0].judged
