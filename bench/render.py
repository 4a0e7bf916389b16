"""Personalised messages per second: render once + substitute, against a naive per-recipient build.

The naive baseline renders the jinja2 templates, runs premailer and builds an EmailMessage
for every recipient, as a simple newsletter tool does. Both run in the same process on the
same edition, so only their ratio is meaningful on a noisy machine.

    .venv/bin/python bench/render.py [--recipients 100000] [--naive 300]

Last line: one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digest.records import ArticleRecord, RankedEdition, Recipient, Story
from digest.render import EditionInfo, build_template, render_edition, substitute

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def edition(stories: int = 25) -> RankedEdition:
    def story(i: int) -> Story:
        lead = ArticleRecord(
            i,
            f"Source {i % 7}",
            f"Headline number {i} about a story of the day",
            f"https://news.example/{i}",
            "A summary sentence of the article. " * 8,
            NOW - timedelta(minutes=i),
            image_url=f"https://images.news.example/{i}.jpg?w=460&q=55",  # a picture each
        )
        other = ArticleRecord(i + 1000, "Other", lead.title, f"https://other.example/{i}", "", NOW)
        return Story(lead, (other,), 1.0, ())

    return RankedEdition(
        tuple(story(i) for i in range(5)), tuple(story(i) for i in range(5, stories))
    )


def recipient(i: int) -> Recipient:
    return Recipient(
        i,
        f"reader{i}@example.org",
        f"Reader {i}",
        f"https://digest.example/unsubscribe/token{i:08d}.signature",
        f"mailto:unsubscribe@example.org?subject=unsubscribe%20token{i:08d}",
        f"https://digest.example/preferences/token{i:08d}.signature",
    )


INFO = EditionInfo(
    "Bench Desk", "Morning Briefing", "https://digest.example", "1 Street", "Europe/London", NOW
)
TEMPLATE_ARGS = {
    "sender": "Bench <news@example.org>",
    "reply_to": None,
    "list_name": "Morning Briefing",
    "list_id": "morning.digest.example",
    "message_id_prefix": "digest.1",
}


def ours(n: int, ranked: RankedEdition) -> tuple[float, int]:
    start = time.perf_counter()
    template = build_template(render_edition(INFO, ranked), **TEMPLATE_ARGS)  # type: ignore[arg-type]
    size = 0
    for i in range(n):
        size += len(template.personalise(recipient(i), i)[1])
    return time.perf_counter() - start, size // n


def naive(n: int, ranked: RankedEdition) -> tuple[float, int]:
    start = time.perf_counter()
    size = 0
    for i in range(n):
        r = recipient(i)
        rendered = render_edition(INFO, ranked)  # jinja2 + premailer, every time
        message = EmailMessage()
        message["From"] = TEMPLATE_ARGS["sender"]
        message["To"] = f"{r.name} <{r.email}>"
        message["Subject"] = rendered.subject
        message["List-Unsubscribe"] = f"<{r.unsubscribe_url}>, <{r.unsubscribe_mailto}>"
        message.set_content(substitute(rendered.text, r, is_html=False))
        message.add_alternative(substitute(rendered.html, r, is_html=True), subtype="html")
        size += len(message.as_bytes())
    return time.perf_counter() - start, size // n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=300, help="recipients for the baseline")
    args = parser.parse_args()
    ranked = edition()
    ours_s, ours_bytes = ours(args.recipients, ranked)
    naive_s, naive_bytes = naive(args.naive, ranked)
    ours_rate, naive_rate = args.recipients / ours_s, args.naive / naive_s
    print(
        f"render once + substitute: {args.recipients} messages in {ours_s:.2f} s "
        f"({ours_rate:,.0f} msg/s, {ours_bytes} bytes each)"
    )
    print(
        f"naive per-recipient build: {args.naive} messages in {naive_s:.2f} s "
        f"({naive_rate:,.0f} msg/s, {naive_bytes} bytes each)"
    )
    print(
        json.dumps(
            {
                "recipients": args.recipients,
                "wall_s": round(ours_s, 3),
                "msgs_per_s": round(ours_rate, 1),
                "naive_msgs_per_s": round(naive_rate, 1),
                "speedup_x": round(ours_rate / naive_rate, 1),
                "message_bytes": ours_bytes,
                "peak_mem_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
