"""How far the subscribed rows can take #4's P@10: the breaking ranking's ceiling, measured.

``bench/rank_eval.py`` ranks stories seen through the file's 50 most frequent publishers
and scores the ranking against the stories' distinct publishers over all 3,400. This
script asks how much of that gold order the subscribed rows hold at all, with the gold
stories given (no clustering error), the same digests and candidates as rank_eval:

- ``p_at_10_count``: stories by their distinct subscribed publishers (the issue's baseline).
- ``p_at_10_fitted``: stories by a ridge regression of log(all publishers) on which
  subscribed publishers carry the story, how many, and how many articles they ran,
  fitted on every story of the file, so on the answers themselves: no weighting of the
  subscribed sources a ranker could learn does better on this file.
  ``p_at_10_fitted_big`` weights the fit to the stories with 5 or more subscribed
  publishers (the ones that compete for a top 10).
- ``p_at_10_held_out``: the same two fits made on one half of the file by time and
  judged on the other half's digests, both ways, beside ``p_at_10_count_held_out`` on
  the same digests: whether a learned weighting carries to another window, as the
  issue's other windows would need.
- ``p_at_10_topic_corrected``: stories by distinct subscribed publishers divided by the
  share of their topic's coverage (the file's CATEGORY: business, tech, entertainment,
  health) that the subscribed publishers hold. The subscribed set leans to business
  (about 0.17 of business coverage against 0.13 of the others), so this asks whether
  undoing that lean, with the topic known exactly, helps the ranking.
- ``p_at_10_oracle``: the visible stories by their true publisher count: what a perfect
  size estimate would reach (some gold stories have no subscribed row at all).

    .venv/bin/python bench/rank_ceiling.py [--data FILE.tsv[.gz]]

Last line: one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rank_eval import DEFAULT_DATA, HOUR, Row, digest_times, load, open_text

Story = str
Scores = Mapping[Story, float]


class Gold:
    """Each gold story's publishers (all, and subscribed), subscribed articles, first time."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.top50 = [p for p, _ in Counter(r.publisher for r in rows).most_common(50)]
        subscribed = set(self.top50)
        self.first: dict[Story, datetime] = {}
        self.publishers: dict[Story, set[str]] = defaultdict(set)
        self.seen: dict[Story, set[str]] = defaultdict(set)
        self.articles: Counter[Story] = Counter()
        for r in rows:
            self.first[r.story] = min(self.first.get(r.story, r.time), r.time)
            self.publishers[r.story].add(r.publisher)
            if r.publisher in subscribed:
                self.seen[r.story].add(r.publisher)
                self.articles[r.story] += 1
        self.visible = [s for s in self.first if self.seen[s]]

    def features(self, story: Story) -> list[float]:
        """Which subscribed publishers carry it, how many, their articles, an intercept."""
        carried = self.seen[story]
        return [
            *(1.0 if p in carried else 0.0 for p in self.top50),
            float(len(carried)),
            math.log1p(self.articles[story]),
            1.0,
        ]


def p_at_10(
    gold: Gold, times: Sequence[datetime], scores: Scores, judged: Callable[[datetime], bool]
) -> float:
    """rank_eval's P@10 over the ``judged`` digests, the visible stories ranked by ``scores``."""
    found = []
    for at in times:
        candidates = [s for s, t in gold.first.items() if at - 24 * HOUR <= t < at]
        if len(candidates) < 10 or not judged(at):
            continue
        top = set(sorted(candidates, key=lambda s: (-len(gold.publishers[s]), s))[:10])
        ours = sorted((s for s in candidates if gold.seen[s]), key=lambda s: (-scores[s], s))
        found.append(len(top & set(ours[:10])) / 10)
    return sum(found) / len(found)


def ridge(xs: Sequence[Sequence[float]], ys: Sequence[float], ws: Sequence[float]) -> list[float]:
    """Weighted least squares with an L2 penalty of 1: (X'WX + I) b = X'Wy, solved directly."""
    n = len(xs[0])
    a = [[float(i == j) for j in range(n)] + [0.0] for i in range(n)]
    for x, y, w in zip(xs, ys, ws, strict=True):
        for i in range(n):
            if x[i]:
                wx = w * x[i]
                row = a[i]
                for j in range(n):
                    row[j] += wx * x[j]
                row[n] += wx * y
    for col in range(n):  # Gauss-Jordan with partial pivoting
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(n):
            if r != col and a[r][col]:
                f = a[r][col] / a[col][col]
                a[r] = [v - f * p for v, p in zip(a[r], a[col], strict=True)]
    return [a[i][n] / a[i][i] for i in range(n)]


def fitted(gold: Gold, train: Sequence[Story], big_only: bool) -> dict[Story, float]:
    """Every visible story's predicted log size, from a fit on ``train``."""
    weights = [1.0 if not big_only or len(gold.seen[s]) >= 5 else 0.05 for s in train]
    sizes = [math.log(len(gold.publishers[s])) for s in train]
    b = ridge([gold.features(s) for s in train], sizes, weights)
    return {
        s: sum(bi * xi for bi, xi in zip(b, gold.features(s), strict=True)) for s in gold.visible
    }


def topic_shares(path: Path, gold: Gold) -> dict[Story, float]:
    """Each story's topic's share of coverage held by the subscribed publishers.

    The topic is the file's CATEGORY column, a label rank_eval never reads: this is a
    ceiling, what knowing the topic exactly would give.
    """
    with open_text(path) as f:
        topic = {
            r["STORY"]: r["CATEGORY"]
            for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        }
    every: Counter[str] = Counter()
    subscribed: Counter[str] = Counter()
    for s in gold.first:
        every[topic[s]] += len(gold.publishers[s])
        subscribed[topic[s]] += len(gold.seen[s])
    return {s: subscribed[topic[s]] / every[topic[s]] for s in gold.first}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="TSV file to evaluate")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"no data file at {args.data}: pass --data FILE.tsv")
    rows = load(args.data, seed=42)
    gold, times = Gold(rows), digest_times(rows)
    every: Callable[[datetime], bool] = lambda at: True  # noqa: E731
    count = {s: float(len(gold.seen[s])) for s in gold.visible}
    share = topic_shares(args.data, gold)
    figures: dict[str, object] = {
        "p_at_10_count": p_at_10(gold, times, count, every),
        "p_at_10_fitted": p_at_10(gold, times, fitted(gold, gold.visible, False), every),
        "p_at_10_fitted_big": p_at_10(gold, times, fitted(gold, gold.visible, True), every),
        "p_at_10_topic_corrected": p_at_10(
            gold, times, {s: count[s] / share[s] for s in gold.visible}, every
        ),
        "p_at_10_oracle": p_at_10(
            gold, times, {s: float(len(gold.publishers[s])) for s in gold.visible}, every
        ),
    }
    middle = sorted(gold.first.values())[len(gold.first) // 2]
    halves = [  # (fitted on, judged on): digests whose whole window lies in the other half
        (lambda s: gold.first[s] < middle, lambda at: at - 24 * HOUR >= middle),
        (lambda s: gold.first[s] >= middle, lambda at: at <= middle),
    ]
    held: dict[str, list[float]] = defaultdict(list)
    for fit_on, judged in halves:
        train = [s for s in gold.visible if fit_on(s)]
        held["count"].append(p_at_10(gold, times, count, judged))
        held["fitted"].append(p_at_10(gold, times, fitted(gold, train, False), judged))
        held["fitted_big"].append(p_at_10(gold, times, fitted(gold, train, True), judged))
    for name, values in held.items():
        figures[f"p_at_10_{name}_held_out"] = [round(v, 4) for v in values]
    figures = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
    for name, value in figures.items():
        print(f"{name:28} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
