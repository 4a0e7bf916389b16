"""The gather stage over real HTTP: a local feed server, the real config, App and database.

One broken source is a warning naming the source and the cause; the run goes on and the
healthy sources' articles are stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from digest.app import App
from digest.errors import SourceError
from digest.pipeline import gather_sources
from digest.rank import assign_stories
from digest.records import FeedItem
from digest.sources.gather import SourceReport
from digest.sources.site import Site
from digest.store import Source
from tests.conftest import FeedServer, OpenApp, ago, rss, run_cli
from tests.store_queries import every_article

# The modules, not the functions of the same name that digest.sources exports.
fetch_module = importlib.import_module("digest.sources.fetch")
gather_module = importlib.import_module("digest.sources.gather")


def health(app: App) -> dict[str, Source]:
    return {row.name: row for row in app.store.list_sources()}


def by_name(reports: list[SourceReport]) -> dict[str, SourceReport]:
    return {r.name: r for r in reports}


HEALTHY = [
    {
        "title": "Bridge closed",
        "link": "https://wire.test/bridge",
        "guid": "w1",
        "date": ago(hours=1),
    },
    {
        "title": "Budget passed",
        "link": "https://wire.test/budget",
        "guid": "w2",
        "date": ago(hours=2),
    },
]


# --- one healthy source among broken ones ------------------------------------------------------


def broken_sources(feed_server: FeedServer) -> list[tuple[str, str]]:
    page = "<!DOCTYPE html><html><head><title>Home</title></head><body>Welcome</body></html>"
    return [
        ("Wire", feed_server.add("/wire.xml", rss(HEALTHY))),
        ("Broken", feed_server.add("/broken.xml", "oops", status=500)),
        ("Homepage", feed_server.add("/", page, headers={"Content-Type": "text/html"})),
        ("Sleepy", feed_server.add("/slow.xml", rss(HEALTHY), delay=5.0)),
        ("Gone", feed_server.url("/gone.xml")),  # the server answers 404 to unknown paths
    ]


# Each broken source: what its error must say.
CAUSES = {
    "Broken": "HTTP 500",
    "Homepage": "HTML page",
    "Sleepy": "timed out",
    "Gone": "HTTP 404",
}


def test_gather_command_goes_on_past_broken_sources(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    config = write_config(broken_sources(feed_server), timeout=1.0)

    started = time.monotonic()
    code, out, err = run_cli("--config", str(config), "gather", "--json")
    assert time.monotonic() - started < 4.5  # the sleepy server was not waited for

    assert code == 0, err
    doc = json.loads(out)
    reports = {s["name"]: s for s in doc["sources"]}
    assert set(reports) == {"Wire", *CAUSES}
    assert reports["Wire"] == {
        "name": "Wire",
        "status": "ok",
        "new_items": 2,
        "items_seen": 2,
        "error": None,
        "hint": None,
        "notes": [],
        "next_attempt_at": None,
    }
    for name, cause in CAUSES.items():
        report = reports[name]
        assert (report["status"], report["new_items"]) == ("error", 0)
        assert f"'{name}'" in report["error"] and cause in report["error"], report
        assert report["hint"]
        # the same warning, by name and cause, in the log on stderr
        assert any(f"'{name}'" in line and cause in line for line in err.splitlines()), err
        assert "WARNING" in err


def test_gather_stores_the_healthy_source_and_records_every_source_health(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    app = open_app(broken_sources(feed_server), timeout=1.0)
    asyncio.run(gather_sources(app))
    stored = every_article(app)
    assert sorted((a.url, name) for a, name in stored) == [
        ("https://wire.test/bridge", "Wire"),
        ("https://wire.test/budget", "Wire"),
    ]
    rows = health(app)
    assert rows["Wire"].consecutive_failures == 0
    assert rows["Wire"].last_error is None
    assert rows["Wire"].last_success_at is not None
    assert rows["Wire"].items_seen == 2
    for name, cause in CAUSES.items():
        assert rows[name].consecutive_failures == 1
        assert rows[name].last_success_at is None
        assert rows[name].last_attempt_at is not None
        assert cause in (rows[name].last_error or "")

    asyncio.run(gather_sources(app))  # failures count up in a row; success stays reset
    rows = health(app)
    assert [rows[n].consecutive_failures for n in CAUSES] == [2, 2, 2, 2]
    assert rows["Wire"].consecutive_failures == 0


def test_a_source_recovering_resets_its_failures(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    url = feed_server.add("/flaky.xml", "down", status=503)
    app = open_app([("Flaky", url)])
    [report] = asyncio.run(gather_sources(app))
    assert report.status == "error" and "HTTP 503" in report.error
    feed_server.add("/flaky.xml", rss(HEALTHY))
    [report] = asyncio.run(gather_sources(app))
    assert (report.status, report.new_items) == ("ok", 2)
    row = health(app)["Flaky"]
    assert (row.consecutive_failures, row.last_error) == (0, None)
    assert row.last_success_at is not None


def test_sources_command_shows_health(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    config = write_config(
        [("Wire", feed_server.add("/w.xml", rss(HEALTHY))), ("Gone", feed_server.url("/x"))]
    )
    assert run_cli("--config", str(config), "gather")[0] == 0
    code, out, _ = run_cli("--config", str(config), "sources")
    assert code == 0
    rows = {cells[1]: cells[2:5] for cells in table_rows(out)}
    assert rows["Gone"] == ["never", "1", "0"]  # last success, failures in a row, items
    assert rows["Wire"][1:] == ["0", "2"] and rows["Wire"][0] != "never"
    assert "HTTP 404" in out


def test_sources_command_shows_each_state_and_when_it_is_tried_again(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    """A source that fails, waits, is gone or broken reads as such, not as a row of numbers;
    a waiting one says when it is tried again."""
    cut_off = '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>A'
    sources = [
        ("Wire", feed_server.add("/w.xml", rss(HEALTHY))),
        ("Retired", feed_server.add("/retired.xml", "gone", status=410)),
        ("Busy", feed_server.add("/busy.xml", "", status=429, headers={"Retry-After": "3600"})),
        ("Broken", feed_server.add("/broken.xml", cut_off)),
        ("Down", feed_server.add("/down.xml", "oops", status=500)),
        ("Old", feed_server.add("/old.xml", rss(HEALTHY))),
    ]
    config = write_config(sources)
    code, out, _ = run_cli("--config", str(config), "gather")
    assert code == 0
    # The malformed feed that yielded nothing is a failure in gather's report, not "ok".
    assert "FAIL  Broken: source 'Broken': the feed is not well-formed XML" in out
    assert "ok    Broken" not in out

    # "Old" leaves the config, "Fresh" joins it (not gathered yet).
    config = write_config([*sources[:-1], ("Fresh", feed_server.add("/f.xml", rss(HEALTHY)))])
    before = datetime.now(UTC)
    code, out, _ = run_cli("--config", str(config), "sources", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)["sources"]}
    states = {name: row["state"] for name, row in rows.items()}
    assert states == {
        "Broken": "failing",
        "Busy": "waiting",
        "Down": "failing",
        "Fresh": "new",
        "Old": "off",
        "Retired": "gone",
        "Wire": "ok",
    }
    due = datetime.fromisoformat(rows["Busy"]["next_attempt_at"])
    assert timedelta(minutes=55) < due - before <= timedelta(hours=1)
    assert "not well-formed XML" in rows["Broken"]["last_error"]
    assert [rows[n]["next_attempt_at"] for n in ("Broken", "Down", "Retired", "Wire")] == [None] * 4

    code, out, _ = run_cli("--config", str(config), "sources")
    assert code == 0
    state = {name: cells[3] for name, cells in table_cells(out).items()}
    assert state["Busy"] == f"WAIT until {due:%Y-%m-%d %H:%M} UTC"
    del state["Busy"]
    assert state == {
        "Broken": "FAIL",
        "Down": "FAIL",
        "Fresh": "new",
        "Old": "off",
        "Retired": "GONE",
        "Wire": "ok",
    }


def table_cells(out: str) -> dict[str, list[str]]:
    """Each table row's cells by its first one, the lines of a wrapped cell joined."""
    rows: dict[str, list[str]] = {}
    last: list[str] = []
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")][1:-1]
        if not cells:
            continue
        if cells[0]:
            last = rows.setdefault(cells[0], cells[1:])
        else:
            for n, more in enumerate(cells[1:]):
                last[n] = f"{last[n]} {more}".strip()
    return rows


def table_rows(out: str) -> list[list[str]]:
    """The cells of each table line that starts a row (its first cell is not empty)."""
    lines = [[c.strip() for c in line.split("│")] for line in out.splitlines() if "│" in line]
    return [cells for cells in lines if len(cells) > 2 and cells[1]]


# --- dedup and dates -----------------------------------------------------------------------


async def test_a_second_gather_stores_nothing_new(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    app = open_app([("Wire", feed_server.add("/w.xml", rss(HEALTHY)))])
    [first] = await gather_sources(app)
    [second] = await gather_sources(app)
    assert (first.new_items, second.new_items) == (2, 0)
    assert (first.items_seen, second.items_seen) == (2, 2)
    assert len(every_article(app)) == 2


async def test_same_article_in_two_feeds_is_one_story_from_two_sources(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    """Each source keeps its copy (its coverage vote, its topics); the clusterer joins them."""
    date = ago(minutes=30)
    one = rss([{"title": "Story", "link": "https://news.test/story?utm_source=a", "date": date}])
    two = rss(
        [
            {
                "title": "Story",
                "link": "https://NEWS.test/story?utm_source=b&fbclid=x#top",
                "date": date,
            }
        ]
    )
    app = open_app([("A", feed_server.add("/a.xml", one)), ("B", feed_server.add("/b.xml", two))])
    reports = by_name(await gather_sources(app))
    assert (reports["A"].new_items, reports["B"].new_items) == (1, 1)
    stored = every_article(app)
    assert sorted((a.url, name) for a, name in stored) == [
        ("https://news.test/story", "A"),
        ("https://news.test/story", "B"),
    ]
    records = app.store.window_articles(
        datetime.now(UTC) - timedelta(days=1), datetime.now(UTC), ["A", "B"]
    )
    assert len(set(assign_stories(records, app.config.rank).story_of.values())) == 1


async def test_same_guid_twice_in_one_feed_is_stored_once(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    feed = rss(
        [
            {
                "title": "First copy",
                "link": "https://x.test/a",
                "guid": "same",
                "date": ago(hours=1),
            },
            {
                "title": "Second copy",
                "link": "https://x.test/b",
                "guid": "same",
                "date": ago(hours=2),
            },
        ]
    )
    app = open_app([("X", feed_server.add("/x.xml", feed))])
    [report] = await gather_sources(app)
    assert (report.items_seen, report.new_items) == (2, 1)
    assert [a.title for a, _ in every_article(app)] == ["First copy"]


async def test_future_and_missing_dates_count_from_first_seen(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    future = format_datetime(datetime.now(UTC) + timedelta(days=3))
    feed = rss(
        [
            {"title": "From the future", "link": "https://x.test/future", "date": future},
            {"title": "Undated", "link": "https://x.test/undated"},
            {
                "title": "Dated",
                "link": "https://x.test/dated",
                "date": "Tue, 03 Jan 2023 12:00:00 GMT",
            },
        ]
    )
    app = open_app([("X", feed_server.add("/x.xml", feed))])
    before = datetime.now(UTC)
    await gather_sources(app)
    after = datetime.now(UTC)
    stored = {a.title: a for a, _ in every_article(app)}
    for title in ("From the future", "Undated"):
        article = stored[title]
        assert before - timedelta(seconds=1) <= article.published_at <= after
        assert article.published_at == article.first_seen_at
    assert stored["Dated"].published_at == datetime(2023, 1, 3, 12, 0, tzinfo=UTC)


async def test_skipped_items_are_reported_not_dropped_silently(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    feed = rss(
        [
            {"title": "Good", "link": "https://x.test/good"},
            {"title": "Hostile", "link": "javascript:alert(1)"},
            {"title": "Bad port", "link": "http://x.test:notaport/a"},
            {"title": "Relative", "link": "/news/relative?utm_source=rss"},
        ]
    )
    url = feed_server.add("/feeds/x.xml", feed)
    app = open_app([("X", url)])
    [report] = await gather_sources(app)
    assert report.status == "ok"
    assert report.new_items == 2
    assert {a.url for a, _ in every_article(app)} == {
        "https://x.test/good",
        feed_server.url("/news/relative"),  # resolved against the feed's address
    }
    assert len(report.notes) == 2
    assert "Hostile" in report.notes[0] and "Bad port" in report.notes[1]


async def test_a_parser_surprise_fails_only_that_source(
    feed_server: FeedServer, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = gather_module.parse_feed

    def fragile(source: str, *args: Any, **kw: Any) -> Any:
        if source == "Odd":
            raise RuntimeError("feedparser tripped")
        return real(source, *args, **kw)

    monkeypatch.setattr(gather_module, "parse_feed", fragile)
    app = open_app(
        [
            ("Wire", feed_server.add("/w.xml", rss(HEALTHY))),
            ("Odd", feed_server.add("/odd.xml", rss(HEALTHY))),
        ]
    )
    reports = by_name(await gather_sources(app))
    assert reports["Wire"].new_items == 2
    assert reports["Odd"].status == "error"
    assert "RuntimeError: feedparser tripped" in reports["Odd"].error
    assert health(app)["Odd"].consecutive_failures == 1


# --- what we send, and what we refuse to take ----------------------------------------------------


async def test_requests_carry_a_user_agent_and_a_feed_accept_header(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    app = open_app([("Wire", feed_server.add("/w.xml", rss(HEALTHY)))])
    await gather_sources(app)
    [(path, headers)] = feed_server.requests
    assert path == "/w.xml"
    agent = headers["User-Agent"]
    assert agent.startswith("digest/") and "python-httpx" not in agent
    assert "https://digest.test" in agent  # says whom to contact
    accept = headers["Accept"]
    assert "application/rss+xml" in accept and "application/atom+xml" in accept
    assert "application/feed+json" in accept


@pytest.mark.parametrize("announce_length", [True, False])
async def test_a_body_over_the_size_cap_is_cut_off(
    feed_server: FeedServer,
    open_app: OpenApp,
    monkeypatch: pytest.MonkeyPatch,
    announce_length: bool,
) -> None:
    big = rss([{"title": f"Item {n}", "link": f"https://x.test/{n}"} for n in range(200)])
    assert len(big) > 2048
    # Without a Content-Length, only counting the bytes as they come can catch it.
    url = feed_server.add("/big.xml", big) if announce_length else chunked_server(big.encode())
    app = open_app(
        [("Big", url), ("Wire", feed_server.add("/w.xml", rss(HEALTHY)))],
        gather=f"max_body_mb = {2048 / 1024 / 1024!r}",
    )
    reports = by_name(await gather_sources(app))
    assert reports["Big"].status == "error"
    assert "'Big'" in reports["Big"].error and "2.0 KB" in reports["Big"].error
    assert reports["Wire"].new_items == 2
    assert [name for _, name in every_article(app)] == ["Wire", "Wire"]


def test_a_local_file_over_the_size_cap_is_refused(
    tmp_path: Path, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "big.xml").write_text(
        rss([{"title": f"Item {n}", "link": f"https://x.test/{n}"} for n in range(100)])
    )
    (tmp_path / "small.xml").write_text(rss(HEALTHY))
    app = open_app(
        [("Big", "file:big.xml"), ("Small", "file:small.xml")],
        gather=f"max_body_mb = {1024 / 1024 / 1024!r}",
    )
    reports = by_name(asyncio.run(gather_sources(app)))
    assert reports["Big"].status == "error" and "1.0 KB" in reports["Big"].error
    assert reports["Small"].new_items == 2


async def test_a_server_that_trickles_is_given_up_on_in_time(open_app: OpenApp) -> None:
    # Each byte comes well within the read timeout, so only a deadline on the whole
    # download stops it.
    url = trickle_server(b"<rss>" + b" " * 100, every=0.2)
    app = open_app([("Trickle", url)], timeout=1.0)
    started = time.monotonic()
    [report] = await gather_sources(app)
    assert time.monotonic() - started < 3
    assert report.status == "error"
    assert "'Trickle'" in report.error and "timed out" in report.error


# --- small raw HTTP servers for what http.server cannot do ------------------------------------


def raw_server(answer: Callable[[socket.socket], None]) -> str:
    """A one-thread HTTP server on port 0 that hands each connection to ``answer``."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        with listener:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                with contextlib.suppress(OSError):  # the client gave up: that is the point
                    answer(conn)

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml"


def chunked_server(body: bytes) -> str:
    """Serves ``body`` with chunked transfer encoding: no Content-Length announced."""

    def answer(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        for start in range(0, len(body), 512):
            piece = body[start : start + 512]
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.sendall(b"0\r\n\r\n")

    return raw_server(answer)


def trickle_server(body: bytes, every: float) -> str:
    """Announces ``body`` and then sends it one byte every ``every`` seconds."""

    def answer(conn: socket.socket) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        )
        for byte in body:
            conn.sendall(bytes([byte]))
            time.sleep(every)

    return raw_server(answer)


# --- kinds: sitemap and page sources go to their readers ------------------------------------

sitemap_module = importlib.import_module("digest.sources.sitemap")
page_module = importlib.import_module("digest.sources.page")


def kind_source(name: str, kind: str, url: str) -> str:
    return f'\n[[sources]]\nname = "{name}"\nkind = "{kind}"\nurl = "{url}"\n'


def story(url: str, title: str) -> FeedItem:
    return FeedItem(guid=url, url=url, title=title, summary="", author=None, published_at=None)


async def test_a_sitemap_source_is_read_by_parse_sitemap(
    feed_server: FeedServer, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, bytes, str]] = []

    def fake(
        source: str, body: bytes, base_url: str, language: str | None = None
    ) -> tuple[list[FeedItem], list[str]]:
        calls.append((source, body, base_url))
        return [story("https://map.test/a", "From the map")], ["one entry skipped"]

    monkeypatch.setattr(sitemap_module, "parse_sitemap", fake)
    feed_server.add("/final-map.xml", b"<urlset/>")
    moved = feed_server.add("/map.xml", "", status=301, headers={"Location": "/final-map.xml"})
    app = open_app([], extra=kind_source("Map", "sitemap", moved))
    [report] = await gather_sources(app)
    assert (report.status, report.new_items) == ("ok", 1)
    assert calls == [("Map", b"<urlset/>", feed_server.url("/final-map.xml"))]
    assert "one entry skipped" in report.notes
    assert [a.title for a, _ in every_article(app)] == ["From the map"]


async def test_a_sitemap_over_the_item_limit_is_cut_like_a_feed_and_says_so(
    feed_server: FeedServer, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A news sitemap may hold 1,000 entries: the newest are kept (an undated one at the
    top stays), and the cut is a note on the report, as for a feed."""
    dated = datetime(2026, 11, 27, 12, tzinfo=UTC)

    def fake(
        source: str, body: bytes, base_url: str, language: str | None = None
    ) -> tuple[list[FeedItem], list[str]]:
        undated = story("https://map.test/newest", "Undated, at the top")
        older = [
            replace(
                story(f"https://map.test/{n}", f"Story {n}"),
                published_at=dated - timedelta(hours=n),
            )
            for n in range(3)
        ]
        return [undated, *older], []

    monkeypatch.setattr(sitemap_module, "parse_sitemap", fake)
    url = feed_server.add("/map.xml", b"<urlset/>")
    app = open_app([], extra=kind_source("Map", "sitemap", url), gather="max_items_per_source = 2")
    [report] = await gather_sources(app)
    assert sorted(a.title for a, _ in every_article(app)) == ["Story 0", "Undated, at the top"]
    assert "2 older items past max_items_per_source = 2 (the limit in [gather]) left out" in (
        report.notes
    )


async def test_a_page_source_fetches_its_articles_through_the_same_client(
    feed_server: FeedServer, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    async def fake(
        source: Any,
        listing: Any,
        listing_url: str,
        fetch_article: Any,
        known: Any,
        summary_chars: int,
    ) -> tuple[list[FeedItem], list[str]]:
        seen["listing"] = (source.name, listing.body, listing_url)
        seen["summary_chars"] = summary_chars
        seen["known"] = known(
            ["https://wire.test/bridge", "https://site.test/story", "https://elsewhere.test/x"]
        )
        site = Site.of(listing_url)
        page = await fetch_article(feed_server.url("/article.html"), site)
        seen["article"] = page.body
        try:
            await fetch_article(feed_server.url("/missing.html"), site)
        except SourceError as exc:
            seen["missing"] = exc.message
        return [story("https://site.test/story", "Read from its page")], []

    monkeypatch.setattr(page_module, "read_page_source", fake)
    feed_server.add("/article.html", "<html>story</html>", headers={"Content-Type": "text/html"})
    listing = feed_server.add(
        "/latest", "<html>links</html>", headers={"Content-Type": "text/html"}
    )
    app = open_app(
        [("Wire", feed_server.add("/w.xml", rss(HEALTHY)))],
        extra=kind_source("Site", "page", listing),
    )
    # Site's own article is stored now; known() answers for it, not for Wire's articles
    # (a page source stores its copy of an article another source carried too).
    await gather_sources(app)
    reports = by_name(await gather_sources(app))

    assert reports["Site"].status == "ok"
    assert ("https://site.test/story", "Site") in [(a.url, n) for a, n in every_article(app)]
    assert seen["listing"] == ("Site", b"<html>links</html>", listing)
    assert seen["summary_chars"] == 250  # [gather] summary_chars, its default
    assert seen["known"] == {"https://site.test/story"}
    assert seen["article"] == b"<html>story</html>"
    assert "'Site'" in seen["missing"] and "HTTP 404" in seen["missing"]
    article_requests = [h for p, h in feed_server.requests if p == "/article.html"]
    assert article_requests and "text/html" in article_requests[0]["Accept"]
    assert article_requests[0]["User-Agent"].startswith("digest/")


@pytest.mark.parametrize("kind", ["page", "sitemap"])
async def test_a_reader_not_implemented_fails_only_that_source(
    feed_server: FeedServer, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    def missing(*args: Any) -> Any:
        raise NotImplementedError(f"{kind} sources are not implemented yet")

    monkeypatch.setattr(sitemap_module, "parse_sitemap", missing)
    monkeypatch.setattr(page_module, "read_page_source", missing)
    url = feed_server.add("/odd", "<html/>", headers={"Content-Type": "text/html"})
    app = open_app(
        [("Wire", feed_server.add("/w.xml", rss(HEALTHY)))], extra=kind_source("Odd", kind, url)
    )
    reports = by_name(await gather_sources(app))
    assert reports["Wire"].new_items == 2
    assert reports["Odd"].status == "error"
    assert f"kind {kind!r} cannot be read" in reports["Odd"].error and reports["Odd"].hint


def test_the_json_report_says_when_a_waiting_source_is_tried_next(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    busy = feed_server.add(
        "/busy.xml",
        "slow down",
        status=429,
        headers={"Content-Type": "text/plain", "Retry-After": "3600"},
    )
    config = write_config([("Busy", busy)])
    for attempt in (1, 2):
        code, out, _ = run_cli("--config", str(config), "gather", "--json")
        assert code == 1  # its only source was not read
        (report,) = json.loads(out)["sources"]
        assert report["status"] == ("error" if attempt == 1 else "skipped")
        due = datetime.fromisoformat(report["next_attempt_at"])
        assert timedelta(minutes=59) < due - datetime.now(UTC) <= timedelta(hours=1)
    code, out, _ = run_cli("--config", str(config), "gather")
    assert "WAIT  Busy: " in out and "hint: digest tries it again by itself" in out


def test_logs_can_be_one_json_object_a_line(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    broken = feed_server.add("/broken.xml", "oops", status=500)
    config = write_config([("Broken", broken)])
    code, _, err = run_cli("--log-json", "--config", str(config), "gather")
    assert code == 1  # its only source failed
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert any(r["level"] == "warning" and "source 'Broken'" in r["message"] for r in records)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)


@pytest.mark.slow
def test_parser_processes_do_not_run_the_main_script_again(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    script = tmp_path / "main_script.py"
    script.write_text(
        f"""
import asyncio, os
with open({str(marks)!r}, "a") as f:
    f.write(f"{{os.getpid()}}\\n")  # every process that runs this file leaves its pid


async def main():
    from digest.sources.parsers import ParserPool
    pool = ParserPool(2)
    executor = await pool.executor()
    assert os.getpid() not in {{executor.submit(os.getpid).result() for _ in range(8)}}
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
"""
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, str(script)], check=True, env=env, timeout=60)
    assert len(marks.read_text().split()) == 1  # the parent only


# --- what the database cannot store ---------------------------------------------------------


def test_unstorable_characters_are_replaced_and_fail_no_batch(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    """A JSON feed's lone surrogate and NUL: stored as U+FFFD / dropped, others unharmed."""
    bad = (
        '{"version": "https://jsonfeed.org/version/1.1", "title": "Odd", "items": ['
        '{"id": "odd-\\u0000-1", "url": "https://odd.test/1", "title": "Bad \\ud800 title",'
        ' "content_text": "text \\u0007 bell", "date_published": "2026-11-28T06:00:00Z"}]}'
    )
    app = open_app(
        [
            ("Wire", feed_server.add("/wire.xml", rss(HEALTHY))),
            (
                "Odd",
                feed_server.add(
                    "/odd.json", bad, headers={"Content-Type": "application/feed+json"}
                ),
            ),
        ]
    )
    reports = by_name(asyncio.run(gather_sources(app)))
    assert reports["Odd"].status == "ok" and reports["Wire"].new_items == 2
    odd = [a for a, name in every_article(app) if name == "Odd"]
    assert [(a.guid, a.title, a.summary) for a in odd] == [
        ("odd--1", "Bad \ufffd title", "text  bell.")
    ]


def test_a_source_the_database_refuses_fails_alone_by_name(
    feed_server: FeedServer, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One source's articles break the batch's transaction: the others are still stored."""
    sources = [(f"S{i}", feed_server.add(f"/s{i}.xml", rss(
        [{**item, "guid": f"{i}-{item['guid']}", "link": f"{item['link']}-{i}"} for item in HEALTHY]
    ))) for i in range(4)]  # fmt: skip
    app = open_app(sources)
    refused = app.store.sync_sources([(n, u) for n, u in sources])["S2"]
    save = app.store.save_fetches

    def save_fetches(outcomes: Any) -> Any:
        if any(o.source_id == refused and o.items for o in outcomes):
            raise ValueError("value too long for type character varying(500)")
        return save(outcomes)

    monkeypatch.setattr(app.store, "save_fetches", save_fetches)
    reports = by_name(asyncio.run(gather_sources(app)))
    assert reports["S2"].status == "error" and "could not be stored" in reports["S2"].error
    assert "character varying" in reports["S2"].error
    assert {n: r.new_items for n, r in reports.items() if n != "S2"} == {"S0": 2, "S1": 2, "S3": 2}
    assert sorted({name for _, name in every_article(app)}) == ["S0", "S1", "S3"]
    assert "could not be stored" in (health(app)["S2"].last_error or "")


HOMEPAGE = """<!doctype html><html><head><title>The Daily Ledger</title>
<link rel="stylesheet" href="/site.css">
<link rel="alternate" type="application/rss+xml" title="Latest" href="/feeds/latest.xml">
</head><body><h1>The Daily Ledger</h1></body></html>"""


@pytest.mark.parametrize(
    ("page", "hint"),
    [
        (
            HOMEPAGE,
            'hint: the page names its feed: set url = "{base}/feeds/latest.xml"; or set '
            'kind = "page" to read this page\'s article links as they are',
        ),
        (
            HOMEPAGE.replace("alternate", "author"),
            "hint: point url at the site's RSS, Atom or JSON feed (look for a link "
            'rel=alternate of type application/rss+xml on the page), or set kind = "page" '
            "to read this page's article links as they are",
        ),
    ],
)
def test_a_homepage_given_as_a_feed_names_its_feed_or_kind_page(
    feed_server: FeedServer, write_config: Callable[..., Path], page: str, hint: str
) -> None:
    """Issue 20, point 4: the project's own answer for a news site is kind = "page"."""
    url = feed_server.add("/", page, headers={"Content-Type": "text/html; charset=utf-8"})
    config = write_config([("Ledger", url)])
    code, out, _ = run_cli("--config", str(config), "gather")
    assert code == 1
    assert "FAIL  Ledger: source 'Ledger': the address returned an HTML page, not a feed" in out
    assert hint.format(base=url.rstrip("/")) in out


def test_gather_counts_in_words_a_reader_would_write(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    """One item is "1 item", as the console's "Fetch now" says it, not "1 items"."""
    one = feed_server.add(
        "/one.xml", rss([{"title": "T", "guid": "1", "link": "https://w.test/1"}])
    )
    config = write_config([("Wire", one)])
    code, out, err = run_cli("--config", str(config), "gather")
    assert code == 0, err
    assert "  ok    Wire: 1 item, 1 new\n" in out
