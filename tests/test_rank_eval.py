"""bench/rank_eval.py: its measures are right on hand-made cases, and it runs end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import rank_eval  # noqa: E402


def test_bcubed_of_a_perfect_a_lumped_and_a_split_clustering() -> None:
    gold = ["a", "a", "b", "b"]
    assert rank_eval.bcubed([1, 1, 2, 2], gold) == (1.0, 1.0, 1.0)
    p, r, f = rank_eval.bcubed([1, 1, 1, 1], gold)
    assert (p, r) == (0.5, 1.0) and f == pytest.approx(2 / 3)
    p, r, _ = rank_eval.bcubed([1, 2, 3, 4], gold)
    assert (p, r) == (1.0, 0.5)


def test_tiled_copies_are_perturbed_never_exact() -> None:
    rows = [
        rank_eval.Row(f"Storm number {i} hits the northern coast", f"https://n.test/s-{i}-x-y", "P",
                      str(i), rank_eval.EPOCH)
        for i in range(5)
    ]  # fmt: skip
    out = rank_eval.tiled(rows, 12, seed=1)
    assert len(out) == 12 and out[:5] == rows
    assert all(copy.title != rows[i % 5].title for i, copy in enumerate(out[5:], 5))


def test_the_evaluation_runs_on_a_small_file_and_ends_with_its_json(tmp_path: Path) -> None:
    lines = ["ID\tTITLE\tURL\tPUBLISHER\tCATEGORY\tSTORY\tHOSTNAME\tTIMESTAMP"]
    topics = ["Volcano erupts on Iceland coast", "Central bank raises interest rates"]
    n = 0
    for s, topic in enumerate(topics):
        for p in range(12):
            n += 1
            ts = 1397221591790 + s * 3_600_000 * 10 + p * 1000
            lines.append(f"{n}\t{topic} says outlet {p}\thttps://p{p}.test/{n}\tPub {p}\tb\tS{s}"
                         f"\tp{p}.test\t{ts}")  # fmt: skip
    data = tmp_path / "small.tsv"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench/rank_eval.py"), "--data", str(data), "--sizes", ""],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["stories"] == 2
    assert figures["bcubed_f1"] == 1.0  # two clearly different stories, told 12 times each


def test_p_at_10_takes_our_first_ten_and_a_split_story_costs_a_place() -> None:
    from datetime import UTC, datetime

    from digest.records import ArticleRecord, Story

    def story(*ids: int) -> Story:
        arts = [ArticleRecord(i, "P", "t", "u", "", datetime(2014, 4, 11, tzinfo=UTC)) for i in ids]
        return Story(arts[0], tuple(arts[1:]), 1.0, ())

    gold_of = {i: f"g{i // 10}" for i in range(200)}  # articles 10-19 are story g1, ...
    gold = {f"g{k}" for k in range(1, 11)}
    ours = [story(10 * k, 10 * k + 1) for k in range(1, 11)]
    assert rank_eval.overlap_at_10(gold, ours, gold_of) == 1.0
    split = [story(10), story(11), *ours[1:]]  # g1 twice: g10 falls off our first ten
    assert rank_eval.overlap_at_10(gold, split, gold_of) == 0.9
    mixed = [story(10, 11, 25), *ours[1:]]  # most of its articles are g1
    assert rank_eval.overlap_at_10(gold, mixed, gold_of) == 1.0
