"""bench/rank_eval.py: its measures are right on hand-made cases, and it runs end to end."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import rank_eval  # noqa: E402
import rank_repeats  # noqa: E402


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


@pytest.mark.slow
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
    data = tmp_path / "small.tsv.gz"
    data.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))  # read gzipped as is
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench/rank_eval.py"), "--data", str(data), "--sizes", "",
         "--jitter-hours", "2"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["stories"] == 2
    assert figures["bcubed_f1"] == 1.0  # two clearly different stories, told 12 times each
    assert figures["jitter_hours"] == 2.0
    assert figures["p_at_10_by_month"] == {}  # too few stories for a digest of 10
    assert figures["repeat_rate"] is None and "repeat_rate_no_memory" in figures


def _tsv(path: Path, times_ms: list[int]) -> Path:
    lines = ["ID\tTITLE\tURL\tPUBLISHER\tCATEGORY\tSTORY\tHOSTNAME\tTIMESTAMP"]
    lines += [f"{i}\tTitle {i}\thttps://p.test/{i}\tPub\tb\tS{i}\tp.test\t{ms}"
              for i, ms in enumerate(times_ms)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jitter_delays_each_row_by_less_than_h_hours_the_same_way_each_run(tmp_path: Path) -> None:
    at = 1396310400000  # 2014-04-01 00:00 UTC
    data = _tsv(tmp_path / "f.tsv", [at] * 200)
    plain = {r.title: r.time for r in rank_eval.load(data, seed=3)}
    moved = {r.title: r.time for r in rank_eval.load(data, seed=3, jitter_hours=6)}
    delays = [(moved[t] - plain[t]).total_seconds() / 3600 for t in plain]
    assert all(0 <= d < 6 for d in delays) and max(delays) > 4 and min(delays) < 2
    assert moved == {r.title: r.time for r in rank_eval.load(data, seed=3, jitter_hours=6)}


def test_months_keep_only_those_calendar_months_rows(tmp_path: Path) -> None:
    march, april = 1396223999000, 1396310400000  # 2014-03-30 23:59:59, 2014-04-01 00:00
    data = _tsv(tmp_path / "f.tsv", [march, april, april])
    assert [r.title for r in rank_eval.load(data, 1, months=["2014-03"])] == ["Title 0"]
    assert len(rank_eval.load(data, 1, months=["2014-03", "2014-04"])) == 3


def test_p_at_10_is_averaged_per_month_beside_the_mean() -> None:
    p = rank_eval.Precision([0.5, 0.7, 0.9], [0.4, 0.6, 0.6], ["2014-03", "2014-04", "2014-04"])
    assert p.mean() == pytest.approx((0.7, 1.6 / 3))
    assert p.by_month() == {
        "2014-03": {"p_at_10": 0.5, "p_at_10_gold_distinct": 0.4, "digests": 1},
        "2014-04": {"p_at_10": 0.8, "p_at_10_gold_distinct": 0.6, "digests": 2},
    }


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


def test_repeat_rate_counts_a_story_of_the_last_top_10_that_did_not_grow() -> None:
    from datetime import UTC, datetime

    from digest.rank import sent_sources
    from digest.records import ArticleRecord, RankedEdition, Story

    when = datetime(2014, 4, 11, tzinfo=UTC)

    def story(*articles: tuple[int, str, str]) -> Story:
        arts = [ArticleRecord(i, p, t, "u", "", when, story_id=1) for i, p, t in articles]
        return Story(arts[0], tuple(arts[1:]), 1.0, ())

    sent = story((1, "Wire", "Heartbleed bug hits routers"), (2, "Post", "Routers hit by bug"))
    previous = sent_sources([RankedEdition((sent,), ())])
    assert rank_repeats.repeated(sent, previous)  # the same story again
    wider = story(*((a.id, a.source, a.title) for a in (sent.lead, *sent.others)), (3, "Blog", "x"))
    assert not rank_repeats.repeated(wider, previous)  # a new source carries it
    news = story((1, "Wire", "Heartbleed bug hits routers"), (4, "Wire", "Cisco patches routers"))
    assert not rank_repeats.repeated(news, previous)  # its source ran a new headline since
