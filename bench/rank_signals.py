"""Where P@10 is lost by the ranking: digest's own clusters ranked under many weightings.

Clustering is what costs in ``rank_eval.py``'s P@10 loop, and it does not depend on the
score's weights. This replays that loop's days once (``rank_eval.judged_days``: the same
digests, subscribed sources, story memory and stored story ids), keeps each digest's
clustered memory, and then ranks it under each variant given, so a dozen weightings cost
one clustering pass. Every digest adds its settled stories to the sources' habits
(``rank.habits``), as in ``rank_eval``; the judged ones are scored.

    .venv/bin/python bench/rank_signals.py [--data FILE] [--jitter-hours H] [--months M,...]
        [--cache FILE.pickle] VARIANT ...

A VARIANT is ``name:key=value,key=value`` of ``[rank]`` keys (``default`` alone: the
defaults); a name starting with ``memory`` ranks without the sources' habits kept across
digests (``rank.habits``), from each digest's story memory alone, as before they were
kept. Printed: each variant's P@10 per month and over all, beside the gold-cluster count
(``p_at_10_gold_distinct``); the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rank_eval import DEFAULT_DATA, EVAL_DIGEST, Day, Row, judged_days, load, overlap_at_10

from digest.config import RankConfig
from digest.rank import SentStories, SourceHabits, rank_stories
from digest.rank.window import tallied


def replay(rows: Sequence[Row], weights: RankConfig, gold_clusters: bool = False) -> list[Day]:
    """``rank_eval``'s days (``judged_days``: the same clustering, or the gold stories
    with ``gold_clusters``), judged or not."""
    return list(judged_days(rows, weights, gold_clusters))


def evaluate(days: Sequence[Day], weights: RankConfig, kept: bool = True) -> list[float]:
    """P@10 of each judged digest ranked with ``weights`` (as ``rank_eval``'s P@10), the
    sources' habits kept from digest to digest as the store keeps them (``kept=False``:
    learned from each digest's story memory alone, as before they were kept)."""
    digest = EVAL_DIGEST  # as rank_eval's P@10 ranks them
    scores = []
    habits = SourceHabits() if kept else None
    for j in days:
        if habits is not None:
            habits = tallied(habits, j.memory, j.stories, j.at, weights)
        if not j.judged:
            continue
        edition = rank_stories(
            j.memory, j.stories, j.in_window, j.at, digest, weights, SentStories(), habits=habits
        )
        scores.append(overlap_at_10(set(j.gold), edition.breaking + edition.latest, j.gold_of))
    return scores


def variant(spec: str) -> tuple[str, RankConfig]:
    """``name:key=value,...`` as a RankConfig (``default``: the defaults)."""
    name, _, settings = spec.partition(":")
    values = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in settings.split(",") if kv)}
    return name, RankConfig.model_validate(values)  # validated: a wrong key or value is named


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--jitter-hours", type=float, default=0.0)
    parser.add_argument("--months", default="")
    parser.add_argument("--cache", type=Path, help="keep the replay here and reuse it")
    parser.add_argument(
        "--gold-clusters", action="store_true",
        help="rank the gold stories instead of ours (the ranking apart from the clustering)",
    )  # fmt: skip
    parser.add_argument("variants", nargs="*", default=["default"])
    args = parser.parse_args()
    variants = [variant(spec) for spec in args.variants]  # a wrong key fails before the replay
    if args.cache and args.cache.exists():
        days = pickle.loads(args.cache.read_bytes())
    else:
        months = [m for m in args.months.split(",") if m]
        rows = load(args.data, args.seed, args.jitter_hours, months)
        days = replay(rows, RankConfig(), args.gold_clusters)
        if args.cache:
            args.cache.write_bytes(pickle.dumps(days))
    judged = [day for day in days if day.judged]
    months = sorted({j.month for j in judged})
    results: dict[str, dict[str, float]] = {}
    gold = {m: [j.baseline for j in judged if j.month == m] for m in months}
    gold["all"] = [j.baseline for j in judged]
    means = {m: sum(v) / len(v) for m, v in gold.items()}
    print("variant".ljust(28), *(m.ljust(15) for m in means))
    print("gold count".ljust(28), *(f"{x:.3f}".ljust(15) for x in means.values()))
    for name, weights in variants:
        p = evaluate(days, weights, kept=not name.startswith("memory"))
        by = {m: [x for x, j in zip(p, judged, strict=True) if j.month == m] for m in months}
        by["all"] = p
        results[name] = {m: round(sum(v) / len(v), 4) for m, v in by.items()}
        cells = (f"{results[name][m]:.3f} ({results[name][m] - means[m]:+.3f})" for m in by)
        print(name.ljust(28), *(c.ljust(15) for c in cells), flush=True)
    print(json.dumps({"gold": {m: round(x, 4) for m, x in means.items()}, **results}))


if __name__ == "__main__":
    main()
