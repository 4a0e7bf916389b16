"""The email as a reader meets it: an edition built from real news feeds, measured as a brief.

Every feed in ``../shared/data/feeds/`` (RSS and Atom captured from real news sites) is
parsed as gathering parses it, a placeholder or test item left out as gathering leaves it
out, summaries written for the email at ``--summary-chars`` (``gather.summary_chars``;
Latest's shown at ``--latest-summary-chars``, the digest's ``latest_summary_chars``). The
feeds were captured years apart, so each one's dates are moved together until its newest
item is ``NOW`` (the gaps between its items kept); then the articles are ranked as a
24-hour edition with the default digest settings, its first ``--stories`` stories kept
(Breaking, then Latest) and rendered once, as the pipeline does.

Printed: the words of the text part as one reader gets it, URLs left out (everything else
counts: the email's own lines, headlines, source and time lines, headings, summaries,
footer; the HTML's "In this edition" list, which repeats the first headlines, is not in the
text part, so nothing is counted twice), the reading time the email states (headlines and
summaries at ``WORDS_PER_MINUTE``), the shown summaries' median and longest and how many
end in an ellipsis, pictures offered and shown, the HTML part's size as sent. ``--show``
prints the text part, for a person to read; ``--html`` writes the HTML part as the sample
reader gets it.

    .venv/bin/python bench/brief.py [--feeds DIR] [--stories 20] [--summary-chars 250]
                                    [--latest-summary-chars 180] [--show] [--html OUT.html]

Last line: one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.config import DigestConfig, GatherConfig, RankConfig
from digest.rank import rank
from digest.records import ArticleRecord, RankedEdition, Recipient, RenderedEdition
from digest.render import EditionInfo, qp, render_edition, substitute
from digest.render.edition import WORDS_PER_MINUTE, reading_words, shown_summary
from digest.sources.parse import kept_items, parse_feed
from digest.sources.summary import DEFAULT_CHARS

# The shared data beside the checkout, or where DIGEST_SHARED says (as for the tests).
SHARED = Path(os.environ.get("DIGEST_SHARED") or Path(__file__).resolve().parents[2] / "shared")
FEEDS = SHARED / "data" / "feeds"
NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
# The measure: an edition of 20 stories.
STORIES = 20
# Each captured feed as the source an admin would configure: name, topics, and the
# language of those that declare none (heise, UOL) or one their items are not in
# (Varthabharathi's English section says "kn").
SOURCES = {
    "guardian.rss": ("The Guardian", ("world",), None),
    "heise.atom": ("heise developer", ("technology",), "de"),
    "uolNoticias.rss": ("UOL Notícias", ("brazil",), "pt-BR"),
    "encoding.rss": ("Jornal de Notícias", ("portugal",), None),
    "customfields.rss": ("Varthabharathi", ("india",), "en"),
    "instant-article.rss": ("Instant Article", ("media",), None),
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
# The reader the text part is measured for: a greeting by first name, personal links.
READER = Recipient(
    1,
    "ada@example.org",
    "Ada Lovelace",
    "https://digest.example/u/1/token",
    "mailto:unsubscribe@digest.example",
    "https://digest.example/p/1/token",
)


def articles(feeds: Path = FEEDS, summary_chars: int = DEFAULT_CHARS) -> list[ArticleRecord]:
    """Every item of every feed in ``feeds``, as stored articles, newest of each feed at NOW."""
    out: list[ArticleRecord] = []
    limit = GatherConfig().max_items_per_source
    for path in sorted(feeds.iterdir()):
        source, topics, language = SOURCES.get(path.name, (path.stem, (), None))
        items, _ = parse_feed(
            source,
            path.read_bytes(),
            limit=limit,
            base_url=f"https://{path.stem}.example/",
            summary_chars=summary_chars,
            language=language,
        )
        items, _ = kept_items(items, limit)  # as gathering keeps them
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
                    image_width=item.image_width,
                    image_height=item.image_height,
                )
            )
    return out


def edition(
    feeds: Path = FEEDS, summary_chars: int = DEFAULT_CHARS, stories: int = STORIES
) -> RankedEdition:
    """The 24-hour edition of the real feeds, ranked with the default settings: its first
    ``stories`` stories, Breaking then Latest."""
    digest = DigestConfig(id="morning", title=INFO.title)
    window = [
        a
        for a in articles(feeds, summary_chars)
        if (NOW - a.published_at).total_seconds() <= 24 * 3600
    ]
    ranked = rank(window, NOW, digest, RankConfig())
    breaking = ranked.breaking[:stories]
    return RankedEdition(breaking, ranked.latest[: stories - len(breaking)])


@dataclass(frozen=True)
class Figures:
    """What a reader meets in one rendered edition."""

    stories: int
    words: int  # of the text part, URLs left out
    reading_words: int  # headlines and summaries: what the stated reading time counts
    reading_minutes: int  # as the email states it
    summary_median: float  # of the summaries shown
    summary_max: int
    summaries_cut: int  # shown summaries ending in an ellipsis (the source's cut or ours)
    summary_chars: int
    latest_summary_chars: int
    images_offered: int
    images_shown: int
    html_bytes_sent: int


def text_words(text: str) -> int:
    """Words of a text part as one reader gets it (greeting and links in place); a URL is
    not read."""
    text = substitute(text, READER, is_html=False)
    return sum(1 for w in text.split() if any(c.isalnum() for c in w) and "://" not in w)


def shown(ranked: RankedEdition, info: EditionInfo = INFO) -> list[str]:
    """The summaries as the email prints them (Latest's at ``info.latest_summary_chars``);
    empty where it prints none."""
    latest = info.latest_summary_chars
    return [shown_summary(s) for s in ranked.breaking] + [
        shown_summary(s, latest) for s in ranked.latest
    ]


def measure(
    ranked: RankedEdition,
    rendered: RenderedEdition,
    summary_chars: int = DEFAULT_CHARS,
    info: EditionInfo = INFO,
) -> Figures:
    """The figures of ``rendered``, the render of ``ranked`` with ``info``."""
    stories = [*ranked.breaking, *ranked.latest]
    summaries = [s for s in shown(ranked, info) if s]
    lengths = [len(s) for s in summaries] or [0]
    minutes = re.search(r"(\d+) min read", rendered.html)
    return Figures(
        stories=len(stories),
        words=text_words(rendered.text),
        reading_words=reading_words(ranked, info.latest_summary_chars),
        reading_minutes=int(minutes.group(1)) if minutes else 0,
        summary_median=statistics.median(lengths),
        summary_max=max(lengths),
        summaries_cut=sum(1 for s in summaries if s.endswith("…")),
        summary_chars=summary_chars,
        latest_summary_chars=info.latest_summary_chars,
        images_offered=sum(1 for s in stories if s.lead.image_url),
        images_shown=len(re.findall(r"<img\b", rendered.html)),
        html_bytes_sent=len(qp.encode(rendered.html)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=Path, default=FEEDS, help="a folder of RSS/Atom files")
    parser.add_argument("--stories", type=int, default=STORIES, help="the edition's first N")
    parser.add_argument("--summary-chars", type=int, default=DEFAULT_CHARS)
    parser.add_argument("--latest-summary-chars", type=int, default=INFO.latest_summary_chars)
    parser.add_argument("--show", action="store_true", help="print the text part")
    parser.add_argument("--html", type=Path, help="write the rendered HTML here")
    args = parser.parse_args()
    if not args.feeds.is_dir():
        sys.exit(f"no feeds folder at {args.feeds}; pass --feeds DIR")
    ranked = edition(args.feeds, args.summary_chars, args.stories)
    info = replace(INFO, latest_summary_chars=args.latest_summary_chars)
    rendered = render_edition(info, ranked)
    if args.html:
        args.html.write_text(substitute(rendered.html, READER, is_html=True))  # as READER gets it
    if args.show:  # as READER gets it, greeting and personal links in place
        print(substitute(rendered.text, READER, is_html=False))
    figures = measure(ranked, rendered, args.summary_chars, info)
    print(f"subject: {rendered.subject}")
    print(
        f"{figures.stories} stories ({len(ranked.breaking)} breaking), {figures.words} words "
        f"in the text part; {figures.reading_minutes} min read ({figures.reading_words} words "
        f"of headlines and summaries at {WORDS_PER_MINUTE} a minute); summaries shown median "
        f"{figures.summary_median:.0f}, max {figures.summary_max} characters (limits "
        f"{figures.summary_chars}, Latest {figures.latest_summary_chars}), "
        f"{figures.summaries_cut} of {len([s for s in shown(ranked, info) if s])} ending in "
        f"an ellipsis; images {figures.images_shown} shown of "
        f"{figures.images_offered} offered; HTML {figures.html_bytes_sent:,} bytes as sent"
    )
    print(json.dumps(asdict(figures)))


if __name__ == "__main__":
    main()
