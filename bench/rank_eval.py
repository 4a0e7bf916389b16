"""Story clustering and breaking ranking, measured on real labelled headlines.

Reads a file in the format of ``../shared/data/uci_news_aggregator/`` (tab-separated:
ID TITLE URL PUBLISHER CATEGORY STORY HOSTNAME TIMESTAMP; STORY is the aggregator's own
cluster id) and runs digest's real code on it: ``rank.assign_stories`` (the StoryIndex the
pipeline uses, configured from ``[rank]`` defaults) and ``rank.rank_stories`` (with it,
``rank.rank_memory``: the steps of the pipeline's ``rank_window`` between reading the
store and writing story ids back). The digests' days are replayed once, in
``judged_days``, which ``rank_signals.py`` replays too.

    .venv/bin/python bench/rank_eval.py [--data FILE.tsv[.gz]] [--seed 42] [--sizes 10000,100000]
        [--jitter-hours H] [--months 2014-03,...]

The default file is the two-month dev file (Mar-Apr 2014, 175,755 headlines, read gzipped
as it is); ``--data ../shared/data/uci_news_aggregator/uci_2014-04-11_to_04-13.tsv`` is
the 3-day smoke set. ``--jitter-hours H`` moves each row's time by a uniform random delay
in [0, H) (seeded with ``--seed``): the file's TIMESTAMP is the crawl time of a whole
story, so without it time alone nearly gives the label away. ``--months`` keeps only the
rows of those calendar months (UTC), to iterate on one month and check on another.

Figures (last line, one JSON object):
- ``bcubed_precision`` / ``bcubed_recall`` / ``bcubed_f1``: our stories against STORY, rows
  in shuffled order (``--seed``), title, URL and time (TIMESTAMP, as each article's
  publication time) the inputs, clustered with the ``[rank]`` defaults. Time enters only
  through ``rank.story_gap_hours`` (6 h): an article joins a story with an article
  within 6 hours of it. The rows of one STORY lie within seconds of each other (median
  span 8 s), so no finer use of time is made: it would read the label.
  ``bcubed_f1_timeless`` is the same clustering with every row at one time (no gap).
  ``exact_title_f1`` is the exact normalised-title baseline, computed here too.
  ``gold_merged_as_ours_*``: the gold stories, each moved whole into the cluster of ours
  holding most of it (see ``coarsened_gold``): what our merging of gold stories costs alone.
- ``p_at_10``: a digest every 8 hours (00, 08, 16 UTC); candidates are the stories first
  seen in the 24 hours before it; the gold top 10 are the candidates with the most distinct
  publishers over all rows. The ranker sees only the rows of the file's 50 most frequent
  publishers (the "subscribed" sources) that arrived before the digest, clusters them
  incrementally itself over its story memory (``rank.story_memory_hours``; stories from
  earlier digests keep their ids, as in the pipeline), and ranks the stories having an
  article in the 24-hour window as ``rank.rank_memory`` does, with the ``[rank]`` defaults.
  Nothing sent is remembered: each digest is judged on its own, as the gold lists are
  (they repeat a story in up to three digests). Each of our first 10 stories stands for
  the gold story most of its window articles belong to (``overlap_at_10``); P@10 =
  overlap with the gold top 10 / 10, averaged over the digests with at least 10
  candidates. ``p_at_10_gold_distinct`` is the baseline "distinct subscribed publishers"
  with the gold clusters given, measured the same way. ``p_at_10_by_month``: both, per
  calendar month of the digest's window (its last instant: the 00:00 digest of the 1st
  counts in the month before).
- ``repeat_rate``: the share of a digest's top 10 that were in the previous digest's top 10
  without growing since (no source outside those it had then, no article since under a
  materially new headline: ``rank.grew``), averaged over the digests P@10 judges but the
  first. Measured on the P@10 memory ranked as the pipeline sends: against what the
  earlier digests' top 10s sent (the last ``sent_lookback_editions`` and every one within
  the story memory), a story sent before left out unless it grew.
  ``repeat_rate_penalty_only``: the same with such stories kept, lowered by the sent
  penalty (the pipeline before issue 15's point 4); ``repeat_rate_no_memory``: the P@10
  ranking itself, which knows nothing of what was sent.
- ``seconds_10k`` / ``seconds_100k`` / ``ratio``: clustering 10,000 and 100,000 articles on
  one core (CPU time, the fastest of ``--repeat`` runs: the machine is shared). The file
  is tiled to the largest size with perturbed titles and URLs (``tiled``; the Mar-Apr
  file needs no copies), and each size is a random sample of that corpus
  (``scale_sample``), so both sizes hold the same kind of rows; ``ratio`` near 10 is
  linear.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import re
import sys
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rank_repeats import REPEAT_RANKINGS, Sending

from digest.config import DigestConfig, RankConfig
from digest.rank import RankedMemory, SentStories, SourceHabits, assign_stories, rank_stories
from digest.rank.score import Membership
from digest.rank.window import tallied
from digest.records import ArticleRecord, Story

DEFAULT_DATA = (
    Path(__file__).resolve().parents[2] / "shared/data/uci_news_aggregator/uci_2014-03_to_04.tsv.gz"
)
HOUR = timedelta(hours=1)
# The digest each day is ranked as: every story in order, so the first 10 are the ranking's
# best 10. No per-source cap: ``latest_per_source`` shapes an email's Latest for breadth
# and would reorder the stories of a prolific publisher; P@10 measures the ranking.
EVAL_DIGEST = DigestConfig(
    id="eval", title="eval", schedule="0 */8 * * *", latest_items=200, latest_per_source=0
)
EPOCH = datetime(2014, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    """One labelled headline."""

    title: str
    url: str
    publisher: str
    story: str
    time: datetime


def load(path: Path, seed: int, jitter_hours: float = 0.0, months: Sequence[str] = ()) -> list[Row]:
    """The file's rows (plain or gzipped), shuffled with ``seed`` (rows of one story are
    contiguous in it), each delayed by a uniform random [0, ``jitter_hours``) hours and,
    with ``months`` ("2014-03"), only those months' rows (by the delayed time)."""
    csv.field_size_limit(1 << 24)
    with open_text(path) as f:
        rows = [
            Row(
                r["TITLE"],
                r["URL"],
                r["PUBLISHER"],
                r["STORY"],
                datetime.fromtimestamp(int(r["TIMESTAMP"]) / 1000, UTC),
            )
            for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        ]
    if jitter_hours:
        # Drawn in file order, before the shuffle: the same delays whatever the seed's shuffle.
        rnd = random.Random(seed)
        rows = [replace(r, time=r.time + rnd.uniform(0, jitter_hours) * HOUR) for r in rows]
    if months:
        rows = [r for r in rows if month_of(r.time) in months]
    random.Random(seed).shuffle(rows)
    return rows


def open_text(path: Path) -> io.TextIOWrapper:
    """A data file for reading as text, gunzipped on the fly when it ends in ``.gz``."""
    # The caller closes it (a with block): the wrapper closes the raw file with it.
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8", newline="")


def month_of(t: datetime) -> str:
    """The calendar month (UTC) of a time, as "2014-03"."""
    return t.strftime("%Y-%m")


def bcubed(predicted: Sequence[object], gold: Sequence[object]) -> tuple[float, float, float]:
    """B-cubed precision, recall and F1 of a clustering against the gold one."""
    both = Counter(zip(predicted, gold, strict=True))
    size_p, size_g = Counter(predicted), Counter(gold)
    precision = sum(n * n / size_p[p] for (p, _), n in both.items()) / len(gold)
    recall = sum(n * n / size_g[g] for (_, g), n in both.items()) / len(gold)
    return precision, recall, 2 * precision * recall / (precision + recall)


def article(i: int, row: Row, seen: datetime = EPOCH) -> ArticleRecord:
    """A row as the ranker's record; ``seen`` stands in for publish and first-seen time."""
    return ArticleRecord(
        id=i, source=row.publisher, title=row.title, url=row.url, summary="",
        published_at=seen, first_seen_at=seen,
    )  # fmt: skip


def cluster(rows: Sequence[Row], weights: RankConfig, timed: bool = True) -> list[int]:
    """Our story id of each row, in the given order; ``timed=False``: every row at one time."""
    ids = assign_stories(
        [article(i, r, r.time if timed else EPOCH) for i, r in enumerate(rows, 1)], weights
    ).story_of
    return [ids[i] for i in range(1, len(rows) + 1)]


def coarsened_gold(predicted: Sequence[int], gold: Sequence[str]) -> list[int]:
    """The gold clustering with each gold story moved whole into the cluster holding most of it.

    Its B-cubed says what merging whole gold stories (the labels split one event into
    several stories, e.g. one per crawl) costs by itself: with recall perfect, precision
    falls only where our clusters join gold stories.
    """
    where: dict[str, Counter[int]] = defaultdict(Counter)
    for p, g in zip(predicted, gold, strict=True):
        where[g][p] += 1
    home = {g: c.most_common(1)[0][0] for g, c in where.items()}
    return [home[g] for g in gold]


def exact_title(rows: Sequence[Row]) -> list[str]:
    return [re.sub(r"\W+", " ", r.title.casefold()).strip() for r in rows]


def digest_times(rows: Sequence[Row]) -> list[datetime]:
    first, last = min(r.time for r in rows), max(r.time for r in rows)
    t = first.replace(hour=0, minute=0, second=0, microsecond=0)
    times = []
    while t <= last + 8 * HOUR:
        if t > first:
            times.append(t)
        t += 8 * HOUR
    return times


@dataclass(frozen=True)
class Precision:
    """P@10 of our ranking and of the gold-cluster baseline, each digest's, by its month."""

    ours: Sequence[float] = ()
    baseline: Sequence[float] = ()
    months: Sequence[str] = ()
    # Each ranking's repeat rate per digest (see ``Sending``), by ranking
    repeats: Mapping[str, Sequence[float]] = field(default_factory=dict)

    @property
    def digests(self) -> int:
        return len(self.ours)

    def mean(self, month: str | None = None) -> tuple[float | None, float | None]:
        """Both means over all digests or one month's; None without a digest."""
        keep = [i for i, m in enumerate(self.months) if month in (None, m)]
        if not keep:
            return None, None
        return (
            sum(self.ours[i] for i in keep) / len(keep),
            sum(self.baseline[i] for i in keep) / len(keep),
        )

    def by_month(self) -> dict[str, dict[str, float | int | None]]:
        """Each month's means and digest count, rounded for the JSON."""
        out: dict[str, dict[str, float | int | None]] = {}
        for month in sorted(set(self.months)):
            ours, gold = self.mean(month)
            out[month] = {
                "p_at_10": _round(ours),
                "p_at_10_gold_distinct": _round(gold),
                "digests": self.months.count(month),
            }
        return out


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def gold_frame(
    rows: Sequence[Row],
) -> tuple[dict[str, datetime], dict[str, set[str]], list[tuple[int, Row]], dict[int, str]]:
    """What the judging reads from the labels: each gold story's first time and
    publishers, the subscribed rows (the 50 most frequent publishers', numbered as article
    ids) and each such article's gold story. The ranker sees only the subscribed rows."""
    first_seen: dict[str, datetime] = {}
    publishers: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        first_seen[r.story] = min(first_seen.get(r.story, r.time), r.time)
        publishers[r.story].add(r.publisher)
    top50 = {p for p, _ in Counter(r.publisher for r in rows).most_common(50)}
    subscribed = [(i, r) for i, r in enumerate(rows, 1) if r.publisher in top50]
    return first_seen, publishers, subscribed, {i: r.story for i, r in subscribed}


def gold_top(candidates: Sequence[str], publishers: Mapping[str, set[str]]) -> set[str]:
    """The digest's true top 10: the candidate stories with the most publishers overall."""
    return set(sorted(candidates, key=lambda s: (-len(publishers[s]), s))[:10])


def gold_count_precision(
    gold: set[str] | frozenset[str], window: Sequence[ArticleRecord], gold_of: Mapping[int, str]
) -> float:
    """The baseline's P@10: the gold stories of the window's articles ranked by how many
    subscribed sources carried each."""
    by_gold: dict[str, set[str]] = defaultdict(set)
    for a in window:
        by_gold[gold_of[a.id]].add(a.source)
    top = sorted(by_gold, key=lambda s: (-len(by_gold[s]), s))[:10]
    return len(gold & set(top)) / 10


def story_memory(weights: RankConfig) -> timedelta:
    """How far back the ranker remembers articles: the story memory, at least the window."""
    return max(24 * HOUR, timedelta(hours=weights.story_memory_hours))


@dataclass(frozen=True)
class Day:
    """One digest of the replay (``judged_days``): the ranker's story memory at its time,
    clustered, and what the digest is judged against."""

    at: datetime
    memory: list[ArticleRecord]  # the story memory at ``at``, with the ids stored before
    stories: Membership  # the memory's stories, clustered at ``at`` (ids carried over)
    gold: frozenset[str]  # the gold top 10; empty: under 10 candidates, not judged
    gold_of: Mapping[int, str]  # each subscribed article's gold story
    baseline: float  # the gold-count baseline's P@10 (0.0 when not judged)

    @property
    def since(self) -> datetime:
        """The start of the digest's 24-hour window."""
        return self.at - 24 * HOUR

    @property
    def judged(self) -> bool:
        """Whether P@10 judges this digest (it had at least 10 candidates)."""
        return bool(self.gold)

    @property
    def month(self) -> str:
        """The calendar month of the window's last instant."""
        return month_of(self.at - timedelta(microseconds=1))

    def in_window(self, a: ArticleRecord) -> bool:
        """Whether ``a`` reached the ranker in the digest's window."""
        return self.since <= a.seen_at < self.at


def judged_days(
    rows: Sequence[Row], weights: RankConfig, gold_clusters: bool = False
) -> Iterator[Day]:
    """Every digest of the file, in order, as the ranker lives it: the rows that arrived
    before it join the story memory, its stories are formed over that memory (the
    ``[rank]`` thresholds of ``weights``), and the ids carry over to the next digest, as
    stored story ids do in the pipeline. Ranking is the caller's: ``precision_at_10``
    ranks each day once, ``rank_signals.py`` under many weightings.

    ``gold_clusters``: each article's story is its gold story (named by its first
    subscribed article's id, no follow-ups), not ours: the ranking judged apart from the
    clustering, on perfect stories."""
    first_seen, publishers, subscribed, gold_of = gold_frame(rows)
    gold_id: dict[str, int] = {}
    for i, story in sorted(gold_of.items()):
        gold_id.setdefault(story, i)
    known: dict[int, ArticleRecord] = {}
    memory = story_memory(weights)
    for at in digest_times(rows):
        since = at - 24 * HOUR
        candidates = [s for s, t in first_seen.items() if since <= t < at]
        # The ranker's day: new rows arrive, join stories, and stored ids carry over.
        new = [article(i, r, r.time) for i, r in subscribed if r.time < at and i not in known]
        known.update({a.id: a for a in new})
        # As rank_window: stories formed over the story memory, ids kept from before.
        remembered = [a for a in known.values() if a.seen_at >= at - memory]
        stories = (
            Membership({a.id: gold_id[gold_of[a.id]] for a in remembered})
            if gold_clusters
            else assign_stories(remembered, weights)
        )
        known.update({a.id: replace(a, story_id=stories.story_of[a.id]) for a in remembered})
        gold: frozenset[str] = frozenset()
        baseline = 0.0
        if len(candidates) >= 10:
            gold = frozenset(gold_top(candidates, publishers))
            window = [a for a in remembered if since <= a.seen_at < at]
            baseline = gold_count_precision(gold, window, gold_of)
        yield Day(at, remembered, stories, gold, gold_of, baseline)


def precision_at_10(rows: Sequence[Row], weights: RankConfig) -> Precision:
    """P@10 of our ranking with our own clusters, and of the gold-cluster baseline; and
    the repeat rate of three rankings (``Sending``).

    Empty when no digest had 10 candidates (a file too small or too short).
    """
    digest = EVAL_DIGEST
    memory = story_memory(weights)
    ours, baseline, months = [], [], []
    sendings = {name: Sending(name) for name in REPEAT_RANKINGS}
    habits = SourceHabits()  # a new install's: the sources' habits kept from run to run
    for day in judged_days(rows, weights):
        # As rank_memory, past the clustering judged_days did: nothing sent is known.
        habits = tallied(habits, day.memory, day.stories, day.at, weights)
        edition = rank_stories(
            day.memory, day.stories, day.in_window, day.at, digest, weights, SentStories(),
            habits=habits,
        )  # fmt: skip
        ranked = RankedMemory(edition, day.stories, habits)
        for sending in sendings.values():
            sending.send(
                ranked, day.memory, day.in_window, day.at, digest, weights, memory, day.judged
            )
        if not day.judged:
            continue
        ours.append(overlap_at_10(set(day.gold), edition.breaking + edition.latest, day.gold_of))
        baseline.append(day.baseline)
        months.append(day.month)
    repeats = {name: sending.rates for name, sending in sendings.items()}
    return Precision(ours, baseline, months, repeats)


def overlap_at_10(gold: set[str], stories: Sequence[Story], gold_of: Mapping[int, str]) -> float:
    """Share of the gold top 10 among our first 10 stories.

    Each of our stories stands for the gold story most of its articles belong to; two of
    ours standing for one gold story count once (the second is a miss): a story split in
    two costs a place, as it would in the email.
    """
    mine = {
        Counter(gold_of[a.id] for a in (s.lead, *s.others)).most_common(1)[0][0]
        for s in stories[:10]
    }
    return len(gold & mine) / 10


def tiled(rows: Sequence[Row], size: int, seed: int) -> list[Row]:
    """``size`` rows: the file, then copies of it with every title perturbed.

    In copy N a word is dropped and two swapped in each title, and half the vocabulary
    (chosen per word and copy, so consistently) is respelled ("heartbleed" -> "heartbleedN"):
    each copy tells new stories that still share many words with the others, as a bigger
    window would.
    """
    rnd = random.Random(seed)
    out: list[Row] = []
    copy = 0
    while len(out) < size:
        for r in rows[: size - len(out)]:
            words = r.title.split()
            if copy and len(words) > 3:
                del words[rnd.randrange(len(words))]
                j = rnd.randrange(len(words) - 1)
                words[j], words[j + 1] = words[j + 1], words[j]
                words = [_respell(w, copy) for w in words]
            url = _WORDS.sub(lambda m, c=copy: _respell(m[0], c), r.url) if copy else r.url  # type: ignore[misc]
            out.append(replace(r, title=" ".join(words), url=url))
        copy += 1
    return out


_WORDS = re.compile(r"[^\W_]+")


def _respell(word: str, copy: int) -> str:
    if len(word) < 4 or zlib.crc32(f"{copy}:{word.lower()}".encode()) % 2:
        return word
    return f"{word}{copy}"


def scale_sample(corpus: Sequence[Row], size: int, seed: int) -> list[Row]:
    """``size`` rows drawn evenly at random from the tiled corpus, in its order.

    Each size is timed on the same kind of rows (originals and perturbed copies in the
    same proportions), so the ratio of two timings measures size alone.
    """
    if size >= len(corpus):
        return list(corpus)
    keep = sorted(random.Random(seed).sample(range(len(corpus)), size))
    return [corpus[i] for i in keep]


def timed(fn: Callable[[], object]) -> float:
    """CPU seconds of ``fn``: the work on one core, not what other processes took from it."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="TSV file (or .tsv.gz) to evaluate"
    )
    parser.add_argument("--seed", type=int, default=42, help="shuffle seed")
    parser.add_argument(
        "--sizes", default="10000,100000", help="article counts to time (empty: no timing)"
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="time each size this many times, keep the fastest"
    )
    parser.add_argument(
        "--jitter-hours", type=float, default=0.0,
        help="delay each row by a uniform random [0, H) hours (seeded)",
    )  # fmt: skip
    parser.add_argument(
        "--months", default="", help="only these calendar months' rows, e.g. 2014-03,2014-04"
    )
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"no data file at {args.data}: pass --data FILE.tsv")
    weights = RankConfig()
    months = [m for m in args.months.split(",") if m]
    rows = load(args.data, args.seed, args.jitter_hours, months)
    gold = [r.story for r in rows]
    start = time.perf_counter()
    predicted = cluster(rows, weights)
    precision, recall, f1 = bcubed(predicted, gold)
    cluster_s = time.perf_counter() - start
    merged_p, _, merged_f1 = bcubed(coarsened_gold(predicted, gold), gold)
    _, _, timeless_f1 = bcubed(cluster(rows, weights, timed=False), gold)
    _, _, exact_f1 = bcubed(exact_title(rows), gold)
    print(
        f"{len(rows)} rows, {len(set(gold))} stories: B-cubed P {precision:.3f} R {recall:.3f}"
        f" F1 {f1:.3f} in {cluster_s:.1f} s (without time F1 {timeless_f1:.3f};"
        f" exact title F1 {exact_f1:.3f})"
    )
    precision_10 = precision_at_10(rows, weights)
    p10, p10_gold = precision_10.mean()

    def shown(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    for month, m in precision_10.by_month().items():
        print(
            f"  {month}: P@10 {shown(m['p_at_10'])} over {m['digests']} digests"
            f" (gold clusters: {shown(m['p_at_10_gold_distinct'])})"
        )
    print(
        f"P@10 {shown(p10)} over {precision_10.digests} digests (gold clusters: {shown(p10_gold)})"
    )
    repeat = {name: _mean(rates) for name, rates in precision_10.repeats.items()}
    print(
        f"repeat rate {shown(repeat['rule'])} as sent (sent penalty alone: "
        f"{shown(repeat['penalty'])}; no memory of what was sent: {shown(repeat['none'])})"
    )
    figures: dict[str, object] = {
        "rows": len(rows),
        "stories": len(set(gold)),
        "bcubed_precision": round(precision, 4),
        "bcubed_recall": round(recall, 4),
        "bcubed_f1": round(f1, 4),
        "bcubed_f1_timeless": round(timeless_f1, 4),
        "exact_title_f1": round(exact_f1, 4),
        "gold_merged_as_ours_precision": round(merged_p, 4),
        "gold_merged_as_ours_f1": round(merged_f1, 4),
        "p_at_10": _round(p10),
        "p_at_10_gold_distinct": _round(p10_gold),
        "p_at_10_by_month": precision_10.by_month(),
        "digests": precision_10.digests,
        "repeat_rate": _round(repeat["rule"]),
        "repeat_rate_penalty_only": _round(repeat["penalty"]),
        "repeat_rate_no_memory": _round(repeat["none"]),
        "jitter_hours": args.jitter_hours,
    }
    sizes = [int(s) for s in args.sizes.split(",") if s]
    corpus = tiled(rows, max(sizes, default=0), args.seed)
    for size in sizes:
        data = scale_sample(corpus, size, args.seed)
        seconds = min(
            timed(lambda data=data: cluster(data, weights))  # type: ignore[misc]
            for _ in range(args.repeat)
        )
        figures[f"seconds_{size // 1000}k"] = round(seconds, 2)
        print(f"clustering {size} articles: {seconds:.1f} s", flush=True)
    if len(sizes) == 2:
        figures["ratio"] = round(
            figures[f"seconds_{sizes[1] // 1000}k"] / figures[f"seconds_{sizes[0] // 1000}k"],  # type: ignore[operator]
            2,
        )
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
