"""An admin's first week, end to end on local servers (issue 20): three feeds and one news
site without a feed on a real HTTP server, 500 readers from an HR system's export, then
check, gather, explain, send into a real SMTP server, and status, as the README tells it.

What the admin reads at each step is asserted: the counts, and with each count its reasons.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from tests.conftest import FeedServer, SmtpServer, rss, run_cli

HTML = {"Content-Type": "text/html; charset=utf-8"}
NOW = datetime.now(UTC)

WORLD = [
    "Ceasefire talks resume in Geneva after a week of delays",
    "Flooding forces thousands from their homes along the river",
    "Election officials begin the recount in the northern province",
    "Trade ministers agree on a new tariff framework",
    "Drought cuts the wheat harvest to a ten year low",
]
REGION = [
    "Port workers end their strike after a pay deal",
    "New tram line approved by the city council",
    "Museum returns looted bronzes to their home country",
]
TECH = [
    "Chip maker opens a new fabrication plant",
    "Open source database reaches version twenty",
    "Phone makers agree on a common charger",
]
# The news site without a feed: a Latest column, a Breaking block, three article pages.
PAGES = {
    "/news/2026/harbour-bridge-closed-after-ship-strikes-pillar": (
        "Harbour bridge closed after a ship strikes a pillar", True),
    "/news/2026/city-budget-adds-funds-for-night-buses": (
        "City budget adds funds for night buses", False),
    "/news/2026/library-extends-weekend-opening-hours": (
        "Library extends its weekend opening hours", False),
}  # fmt: skip


def _items(host: str, titles: list[str], age: timedelta) -> list[dict[str, str]]:
    return [
        {
            "title": title,
            "guid": f"{host}-{i}",
            "link": f"https://{host}/story/{i}",
            "date": format_datetime(NOW - age - timedelta(minutes=i)),
        }
        for i, title in enumerate(titles)
    ]


def _article(title: str) -> str:
    published = (NOW - timedelta(hours=1)).isoformat()
    ld = {"@type": "NewsArticle", "headline": title, "datePublished": published}
    return (
        f"<!doctype html><html lang='en'><head><title>{title}</title>"
        f"<script type='application/ld+json'>{json.dumps(ld)}</script>"
        f"<meta property='og:title' content='{title}'></head>"
        f"<body><article><h1>{title}</h1><p>Text.</p></article></body></html>"
    )


def _listing() -> str:
    breaking = "".join(
        f'<a href="{path}">{title}</a>' for path, (title, hot) in PAGES.items() if hot
    )
    latest = "".join(
        f'<li><a class="headline" href="{path}">{title}</a></li>'
        for path, (title, _) in PAGES.items()
    )
    return (
        "<!doctype html><html><body><header><nav><a href='/'>Home</a>"
        "<a href='/sport'>Sport</a></nav></header><main>"
        f"<section class='breaking-news'><h2>Breaking News</h2>{breaking}</section>"
        f"<section class='latest'><h2>Latest</h2><ul>{latest}</ul></section>"
        "</main><footer><a href='/about'>About us</a></footer></body></html>"
    )


def _hr_export(path: Path) -> dict[str, int]:
    """500 people as an HR system exports them (semicolons, its own column names), with the
    mistakes such files have; how many rows of each kind."""
    rng = random.Random(20)
    zones = ["Europe/Paris", "Asia/Karachi", "America/New_York", ""]
    rows = ["Email Address;First Name;Last Name;Interests;Time Zone"]
    kinds = {"world": 0, "technology": 0, "all": 0, "bad": 0}
    for i in range(500):
        interest = rng.choice(["world", "world", "technology", ""])
        email = f"Reader.{i}@Example.COM"
        if i % 100 == 99:
            email, interest = f"reader.{i}.example.com", "world"  # no @: refused by line
            kinds["bad"] += 1
        else:
            kinds[interest or "all"] += 1
        rows.append(f"{email};Given{i};Family{i};{interest};{zones[i % 4]}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return kinds


def _config(write_config: Any, feed_server: FeedServer, smtp_server: SmtpServer) -> Path:
    world = feed_server.add("/world.xml", rss(_items("world.test", WORLD, timedelta(hours=2))))
    region = feed_server.add("/region.xml", rss(_items("region.test", REGION, timedelta(hours=3))))
    # A technology feed that stopped updating four days ago
    tech = feed_server.add("/tech.xml", rss(_items("tech.test", TECH, timedelta(days=4))))
    for path, (title, _) in PAGES.items():
        feed_server.add(path, _article(title), headers=HTML)
    site = feed_server.add("/news", _listing(), headers=HTML)
    sources = "".join(
        f'\n[[sources]]\nname = "{name}"\nurl = "{url}"\ntopics = ["{topic}"]\n{more}'
        for name, url, topic, more in (
            ("World Wire", world, "world", ""),
            ("Region Post", region, "world", ""),
            ("Tech Daily", tech, "technology", ""),
            # only the Latest column named: breaking detection stays on
            ("City Desk", site, "world", 'kind = "page"\nlinks = "section.latest a"\n'),
        )
    )
    return write_config([], transport="smtp", smtp_port=smtp_server.port, extra=sources)


def test_the_first_week(
    write_config: Any, feed_server: FeedServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    config = _config(write_config, feed_server, smtp_server)

    def digest(*args: str) -> tuple[int, str, str]:
        return run_cli("--config", str(config), *args)

    # Day 1: the config checks clean.
    code, out, err = digest("check")
    assert code == 0, out + err

    # The HR export: good rows in, each bad one named by its line.
    people = tmp_path / "hr-export.csv"
    kinds = _hr_export(people)
    code, out, err = digest("subscribers", "import", str(people))
    assert code == 1  # some rows had problems
    assert out == f"imported {500 - kinds['bad']} new, 0 already subscribed, 5 rows with problems\n"
    assert f"{people}:101: 'reader.99.example.com' is not a valid address" in err
    code, out, _ = digest("subscribers", "list", "--topic", "technology", "--json")
    assert code == 0
    assert len(json.loads(out)) == kinds["technology"] + kinds["all"]  # all topics: tech too

    # Gather: every source read, the page source's articles and its breaking one found.
    code, out, err = digest("gather", "--json")
    assert code == 0, err
    sources = {s["name"]: s for s in json.loads(out)["sources"]}
    assert {n: s["status"] for n, s in sources.items()} == dict.fromkeys(sources, "ok")
    assert sources["City Desk"]["new_items"] == 3
    assert sources["Tech Daily"]["new_items"] == 3

    # Explain: what the edition shows, and what it leaves out and why.
    code, out, _ = digest("explain", "--json")
    assert code == 0
    explained = json.loads(out)
    headlines = [s["headline"] for s in explained["stories"]]
    sections = {s["headline"]: s["section"] for s in explained["stories"]}
    assert sections.pop("Harbour bridge closed after a ship strikes a pillar") == "breaking"
    assert set(sections.values()) == {"latest"}
    assert not set(TECH) & set(headlines)
    assert explained["left_out"][0].startswith(
        "3 articles older than the look-back window (lookback_hours = 48"
    )

    # Send into the SMTP server: every reader with a story gets one; the others are
    # skipped, and the send says why.
    code, out, err = digest("send")
    assert code == 0, out + err
    readers = 500 - kinds["bad"]
    sent = readers - kinds["technology"]
    assert f"delivery: {sent} sent, {kinds['technology']} skipped" in out
    reason = "no story of this edition is in their topics (technology)"
    assert f"  skipped {kinds['technology']}: {reason}" in out
    assert len(smtp_server.messages) == sent
    assert len({m.recipients[0] for m in smtp_server.messages}) == sent
    assert all(m.recipients[0].startswith("reader.") for m in smtp_server.messages)

    # Status: the edition's counts, each with its reasons, and the last gather.
    code, out, _ = digest("status", "--json")
    assert code == 0
    status = json.loads(out)
    [edition] = status["editions"]
    assert edition["deliveries"] == {"sent": sent, "skipped": kinds["technology"]}
    assert edition["reasons"] == {"skipped": {reason: kinds["technology"]}}
    assert status["jobs"]["gather"]["summary"] == "4 sources, 14 new articles"
    code, out, _ = digest("status")
    assert f"edition 1: skipped {kinds['technology']}: {reason}" in out
    assert "last gather: ok" in out

    # A second send the same day sends nobody anything twice.
    code, out, _ = digest("send")
    assert code == 0 and "nothing to send" in out
    assert len(smtp_server.messages) == sent
