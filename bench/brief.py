"""The email as a reader meets it: an edition built from real news feeds, measured as a brief.

Every feed in ``../shared/data/feeds/`` (RSS and Atom captured from real news sites) is
parsed as gathering parses it. The feeds were captured years apart, so each one's dates are
moved together until its newest item is ``NOW`` (the gaps between its items kept); then the
articles are ranked as a 24-hour edition with the default digest settings and rendered
once, as the pipeline does. Printed: stories, words and reading time, the summaries' median
and longest, images offered and shown, the HTML part's size as sent.

    .venv/bin/python bench/brief.py [--feeds DIR] [--html OUT.html]

Last line: one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.config import DigestConfig, RankConfig
from digest.rank import rank
from digest.records import ArticleRecord, RankedEdition, RenderedEdition
from digest.render import EditionInfo, qp, render_edition
from digest.render.edition import reading_words
from digest.sources.parse import parse_feed

FEEDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "feeds"
NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
# Each captured feed as the source an admin would configure: name and topics.
SOURCES = {
    "guardian.rss": ("The Guardian", ("world",)),
    "heise.atom": ("heise developer", ("technology",)),
    "uolNoticias.rss": ("UOL Notícias", ("brazil",)),
    "encoding.rss": ("Jornal de Notícias", ("portugal",)),
    "customfields.rss": ("Varthabharathi", ("india",)),
    "instant-article.rss": ("Instant Article", ("media",)),
}
INFO = EditionInfo(
    "The Demo Desk",
    "Morning Briefing",
    "https://digest.example",
    "1 Example Street, London EC1A 1AA",
    "Europe/Paris",
    NOW,
    web_url="https://digest.example/editions/morning/20261128T0600Z",
    subscribe_url="https://digest.example/",
)


def articles(feeds: Path = FEEDS) -> list[ArticleRecord]:
    """Every item of every feed in ``feeds``, as stored articles, newest of each feed at NOW."""
    out: list[ArticleRecord] = []
    for path in sorted(feeds.iterdir()):
        source, topics = SOURCES.get(path.name, (path.stem, ()))
        items, _ = parse_feed(source, path.read_bytes(), base_url=f"https://{path.stem}.example/")
        dated = [i for i in items if i.published_at is not None]
        if not dated:
            continue
        shift = NOW - max(i.published_at for i in dated if i.published_at)
        for item in dated:
            assert item.published_at is not None
            out.append(
                ArticleRecord(
                    len(out) + 1,
                    source,
                    item.title,
                    item.url,
                    item.summary,
                    item.published_at + shift,
                    topics=topics,
                    image_url=item.image_url,
                    image_alt=item.image_alt,
                    language=item.language,
                )
            )
    return out


def edition(feeds: Path = FEEDS) -> RankedEdition:
    """The 24-hour edition of the real feeds, ranked with the default settings."""
    digest = DigestConfig(id="morning", title=INFO.title)
    window = [a for a in articles(feeds) if (NOW - a.published_at).total_seconds() <= 24 * 3600]
    return rank(window, NOW, digest, RankConfig())


@dataclass(frozen=True)
class Figures:
    """What a reader meets in one rendered edition."""

    stories: int
    words: int
    reading_minutes: int
    summary_median: float
    summary_max: int
    images_offered: int
    images_shown: int
    html_bytes_sent: int


def measure(ranked: RankedEdition, rendered: RenderedEdition) -> Figures:
    """The figures of ``rendered``, the render of ``ranked``."""
    stories = [*ranked.breaking, *ranked.latest]
    summaries = [len(s.lead.summary) for s in stories if s.lead.summary] or [0]
    minutes = re.search(r"(\d+) min read", rendered.html)
    return Figures(
        stories=len(stories),
        words=reading_words(ranked),
        reading_minutes=int(minutes.group(1)) if minutes else 0,
        summary_median=statistics.median(summaries),
        summary_max=max(summaries),
        images_offered=sum(1 for s in stories if s.lead.image_url),
        images_shown=len(re.findall(r"<img\b", rendered.html)),
        html_bytes_sent=len(qp.encode(rendered.html)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=Path, default=FEEDS)
    parser.add_argument("--html", type=Path, help="write the rendered HTML here")
    args = parser.parse_args()
    if not args.feeds.is_dir():
        sys.exit(f"no feeds folder at {args.feeds}; pass --feeds DIR")
    ranked = edition(args.feeds)
    rendered = render_edition(INFO, ranked)
    if args.html:
        args.html.write_text(rendered.html)
    figures = measure(ranked, rendered)
    print(f"subject: {rendered.subject}")
    print(
        f"{figures.stories} stories ({len(ranked.breaking)} breaking), {figures.words} words, "
        f"{figures.reading_minutes} min read; summaries median {figures.summary_median:.0f}, "
        f"max {figures.summary_max} characters; images {figures.images_shown} shown of "
        f"{figures.images_offered} offered; HTML {figures.html_bytes_sent:,} bytes as sent"
    )
    print(json.dumps(figures.__dict__))


if __name__ == "__main__":
    main()
