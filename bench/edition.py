"""An edition as a reader gets it, built from the real feeds in ../shared/data/feeds/.

Every feed is parsed as the gatherer parses it (``parse_feed``, summaries written for the
email at ``--summary-chars``). The feeds were captured years apart: each one's dates are
moved so that its newest item is an hour old, as if all were fetched this morning. The
articles are ranked and the edition's first 20 stories (Breaking, then Latest) rendered.
Printed: the words a reader reads in the text part (URLs left out), the reading time at
238 words a minute (the average adult's silent reading of non-fiction, Brysbaert 2019),
and the summaries' median and longest length. ``--show`` prints the edition's summaries,
for a person to read.

    .venv/bin/python bench/edition.py [--feeds DIR] [--summary-chars 250] [--show]

Last line: one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.config.models import DigestConfig, RankConfig
from digest.rank import rank
from digest.records import ArticleRecord, RankedEdition
from digest.render import EditionInfo, render_edition
from digest.sources.parse import parse_feed
from digest.sources.summary import DEFAULT_CHARS

FEEDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "feeds"
WORDS_PER_MINUTE = 238
# The sources' names as a reader would see them.
NAMES = {
    "guardian.rss": "The Guardian",
    "heise.atom": "heise Developer",
    "uolNoticias.rss": "UOL Notícias",
    "encoding.rss": "Jornal de Notícias",
    "customfields.rss": "Varthabharathi",
    "instant-article.rss": "Instant Article",
}


NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
STORIES = 20


def articles(feeds: Path, summary_chars: int = DEFAULT_CHARS) -> list[ArticleRecord]:
    """Every item of every feed in ``feeds``, as the ranker gets it from the store."""
    out: list[ArticleRecord] = []
    for path in sorted(feeds.iterdir()):
        items, _ = parse_feed(
            path.name, path.read_bytes(), {"Content-Type": "text/xml"}, 500, None, summary_chars
        )
        dated = [(i, i.published_at) for i in items if i.published_at is not None]
        if not dated:
            continue
        shift = NOW - timedelta(hours=1) - max(when for _, when in dated)
        for item, when in dated:
            out.append(
                ArticleRecord(
                    len(out) + 1,
                    NAMES.get(path.name, path.stem),
                    item.title,
                    item.url,
                    item.summary,
                    when + shift,
                    image_url=item.image_url,
                    image_alt=item.image_alt,
                    language=item.language,
                )
            )
    return out


def edition(feeds: Path, summary_chars: int = DEFAULT_CHARS) -> RankedEdition:
    """The first 20 stories (Breaking, then Latest) a digest of those feeds carries."""
    digest = DigestConfig(id="bench", title="Morning Briefing", breaking_items=5, latest_items=20)
    ranked = rank(articles(feeds, summary_chars), NOW, digest, RankConfig())
    breaking = ranked.breaking[:STORIES]
    return RankedEdition(breaking, ranked.latest[: STORIES - len(breaking)])


def figures(feeds: Path, summary_chars: int = DEFAULT_CHARS) -> tuple[dict[str, float], str]:
    """The edition's words, reading time and summary lengths; and its text part."""
    ranked = edition(feeds, summary_chars)
    info = EditionInfo(
        "The Demo Desk",
        "Morning Briefing",
        "https://digest.example",
        "1 Example Street, London",
        "Europe/London",
        NOW,
        web_url="https://digest.example/editions/morning/x",
    )
    text = render_edition(info, ranked).text
    words = [
        w for w in text.split() if any(c.isalnum() for c in w) and "://" not in w and "@" not in w
    ]
    lengths = [len(s.lead.summary) for s in (*ranked.breaking, *ranked.latest)]
    return {
        "stories": ranked.count,
        "words": len(words),
        "reading_minutes": round(len(words) / WORDS_PER_MINUTE, 1),
        "summary_median": statistics.median(lengths) if lengths else 0,
        "summary_max": max(lengths, default=0),
        "summary_chars": summary_chars,
    }, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=Path, default=FEEDS, help="a folder of RSS/Atom files")
    parser.add_argument("--summary-chars", type=int, default=DEFAULT_CHARS)
    parser.add_argument("--show", action="store_true", help="print the edition's summaries")
    args = parser.parse_args()
    if not args.feeds.is_dir():
        sys.exit(f"no feeds at {args.feeds} (the shared sample feeds: ../shared/data/feeds)")
    if args.show:
        ranked = edition(args.feeds, args.summary_chars)
        for n, story in enumerate((*ranked.breaking, *ranked.latest), 1):
            print(
                f"{n:2}. {story.lead.title}\n    [{len(story.lead.summary)}] {story.lead.summary}"
            )
    result, _ = figures(args.feeds, args.summary_chars)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
