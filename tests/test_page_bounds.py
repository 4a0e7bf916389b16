"""A page source stays on its listing's site and within its time, over real HTTP.

Every hop of an article fetch is checked before it is requested: a redirect to another
host, or to another port of the same machine, is never requested (a second local server
counts what reaches it). ``gather.timeout_seconds`` is the time of one source, its article
pages and redirect hops included: stalling article pages cost the source that time, not
that time each; a source that overran is a failure that backs off; and its article pages
are fetched concurrently, within the per-host limits.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from sqlmodel import select

from digest.app import App
from digest.pipeline import gather_sources
from digest.sources.gather import SourceReport, end_waits
from digest.sources.site import Site
from digest.store import Article
from tests.conftest import FeedServer, OpenApp, rss, run_cli

HTML = {"Content-Type": "text/html; charset=utf-8"}
STALL = 10.0  # seconds an article page keeps the gatherer waiting: far past the timeouts here


@pytest.fixture
def other_server() -> Iterator[FeedServer]:
    """A second local server on another port: the place a redirect must not reach."""
    server = FeedServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def article_path(n: int) -> str:
    return f"/world/2026/11/27/story-number-{n}-about-the-budget"


def article_page(title: str) -> str:
    return (
        f'<html><head><title>{title}</title><script type="application/ld+json">'
        f'{{"@type": "NewsArticle", "headline": "{title}", '
        '"datePublished": "2026-11-27T08:00:00Z"}</script></head>'
        "<body><article>Text</article></body></html>"
    )


def listing(
    server: FeedServer, paths: list[str], extra: str = "", headers: dict[str, str] | None = None
) -> str:
    """A listing at /latest linking ``paths`` (and ``extra`` anchors); returns its URL."""
    anchors = "".join(
        f'<li><a href="{path}">Story number {n} about the budget</a></li>'
        for n, path in enumerate(paths)
    )
    body = f"<html><body><main><ul>{anchors}{extra}</ul></main></body></html>"
    return server.add("/latest", body, headers={**HTML, **(headers or {})})


def page_source(url: str) -> str:
    return f'\n[[sources]]\nname = "Lantern"\nkind = "page"\nurl = "{url}"\n'


def stored_urls(app: App) -> list[str]:
    with app.store.session() as s:
        return sorted(a.url for a in s.exec(select(Article)))


# --- every hop stays on the listing's site ----------------------------------------------------


def test_an_article_redirecting_off_the_site_is_never_requested(
    feed_server: FeedServer, other_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    # The other server is the same host, 127.0.0.1, on another port: another service.
    elsewhere = other_server.add(article_path(9), article_page("Planted headline"), headers=HTML)
    feed_server.add(article_path(0), article_page("The real story"), headers=HTML)
    feed_server.add(article_path(1), "", status=302, headers={"Location": elsewhere})
    # A redirect through the site and then off it is refused at the hop that leaves.
    feed_server.add(article_path(2), "", status=301, headers={"Location": article_path(3)})
    feed_server.add(article_path(3), "", status=307, headers={"Location": elsewhere})
    # A link on the listing straight to the other port is not followed either.
    direct = f'<li><a href="{elsewhere}">Story number nine about the budget</a></li>'
    url = listing(feed_server, [article_path(n) for n in range(3)], extra=direct)
    config = write_config([], extra=page_source(url))

    code, out, err = run_cli("--config", str(config), "gather", "--json")

    assert code == 0, err
    [report] = json.loads(out)["sources"]
    assert (report["status"], report["new_items"]) == ("ok", 1)
    assert other_server.requests == []
    refused = [note for note in report["notes"] if "off the listing's site" in note]
    assert len(refused) == 2, report["notes"]
    assert all(feed_server.url("") in note and elsewhere in note for note in refused)
    # The hop that stayed on the site was followed; the one that left was not.
    assert article_path(3) in [path for path, _ in feed_server.requests]


@pytest.mark.parametrize(
    ("listing", "url", "on_site"),
    [
        ("http://127.0.0.1:8000/latest", "http://127.0.0.1:8000/a", True),
        ("http://127.0.0.1:8000/latest", "http://127.0.0.1:6379/a", False),  # another service
        ("http://127.0.0.1:8000/latest", "http://127.0.0.1/a", False),
        ("http://localhost:8000/latest", "http://localhost:8001/a", False),
        ("https://www.news.example/latest", "https://news.example:8443/a", False),
        ("https://www.news.example/latest", "https://news.example:443/a", True),  # the default
        ("https://www.news.example/latest", "https://feeds.news.example/a", True),  # a sibling
        ("https://www.news.example/latest", "https://news.example.evil.test/a", False),
        ("https://www.news.example/latest", "http://www.news.example/a", False),  # downgrade
        ("http://www.news.example/latest", "https://www.news.example/a", True),  # the upgrade
        ("http://www.news.example:8080/latest", "https://www.news.example/a", False),
        ("https://www.news.example/latest", "ftp://www.news.example/a", False),
        ("https://www.news.example/latest", "https://www.news.example:99999/a", False),
        ("https://[::1]:8000/latest", "https://[::1]:8000/a", True),
        ("https://[::1]:8000/latest", "https://[::1]:8001/a", False),
    ],
)
def test_the_site_is_scheme_host_and_port(listing: str, url: str, on_site: bool) -> None:
    assert Site.of(listing).holds(url) is on_site


# --- one deadline per source --------------------------------------------------------------


def test_stalling_article_pages_cost_the_source_its_timeout_not_each(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    paths = [article_path(n) for n in range(5)]
    for path in paths:
        feed_server.add(path, article_page("Never arrives"), headers=HTML, delay=STALL)
    config = write_config([], extra=page_source(listing(feed_server, paths)), timeout=1.0)

    started = time.monotonic()
    code, out, err = run_cli("--config", str(config), "gather", "--json")
    took = time.monotonic() - started

    assert took < 1.0 + 2.0, took  # one timeout and a margin (start-up included); not five
    [report] = json.loads(out)["sources"]
    assert report["status"] == "error", report
    assert "gather.timeout_seconds = 1 s" in report["error"]
    assert "5 article pages not read in time" in report["error"]
    assert code == 1, err  # its only source was not read in full


def test_slow_redirect_hops_count_against_the_sources_time(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    # Each hop answers within the timeout; together they take three times as long.
    for hop in range(4):
        feed_server.add(
            f"/hop{hop}", "", status=302, headers={"Location": f"/hop{hop + 1}"}, delay=0.8
        )
    feed_server.add("/hop4", rss([{"title": "Late", "link": "https://wire.test/l", "guid": "l"}]))
    app = open_app([("Wire", feed_server.url("/hop0"))], timeout=1.0)
    started = time.monotonic()
    [report] = run(app)
    assert time.monotonic() - started < 1.0 + 1.0
    assert report.status == "error"
    assert "timed out" in report.error and "gather.timeout_seconds" in report.error
    assert "/hop4" not in [path for path, _ in feed_server.requests]


def test_an_overrun_page_source_stores_what_it_read_fails_and_backs_off(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    quick = [article_path(n) for n in range(2)]
    stalled = [article_path(n) for n in range(2, 5)]
    for path in quick:
        feed_server.add(path, article_page(f"Quick {path}"), headers=HTML)
    for path in stalled:
        feed_server.add(path, article_page("Never arrives"), headers=HTML, delay=STALL)
    # Validators on the listing: an overrun must not let the next run take a 304 for it.
    url = listing(feed_server, quick + stalled, headers={"ETag": '"v1"'})
    app = open_app([], extra=page_source(url), timeout=1.0, gather="per_host_concurrency = 8")

    [first] = run(app)
    assert first.status == "error" and "3 article pages not read in time" in first.error
    assert first.hint
    assert first.new_items == 2  # what was read in time is stored, not fetched again
    assert stored_urls(app) == sorted(feed_server.url(p) for p in quick)
    row = app.store.source_states()[source_id(app)]
    assert row.consecutive_failures == 1 and row.etag is None
    assert "gather.timeout_seconds" in (row.last_error or "")

    [second] = run(app)  # one failure is retried at once; the listing is read again
    assert second.status == "error" and second.next_attempt_at is not None
    asked = [path for path, _ in feed_server.requests]
    assert asked.count("/latest") == 2
    assert all(asked.count(path) == 1 for path in quick)
    assert app.store.source_states()[source_id(app)].consecutive_failures == 2

    [third] = run(app)  # now it waits, like any failing source
    assert third.status == "skipped"
    assert [path for path, _ in feed_server.requests].count("/latest") == 2


def test_pages_that_stall_at_the_top_of_the_listing_do_not_hold_up_the_rest_for_ever(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    # Two stalling pages take both of the host's slots until the deadline. Fetched in the
    # listing's order each run, they would do so on every run, and the source would never
    # store an article again; in another order each run, the others get through.
    stalled = [article_path(n) for n in range(2)]
    quick = [article_path(n) for n in range(2, 5)]
    for path in stalled:
        feed_server.add(path, article_page("Never arrives"), headers=HTML, delay=STALL)
    for path in quick:
        feed_server.add(path, article_page(f"Quick {path}"), headers=HTML)
    app = open_app([], extra=page_source(listing(feed_server, stalled + quick)), timeout=0.5)
    runs = 0
    while stored_urls(app) != sorted(feed_server.url(p) for p in quick) and runs < 40:
        end_waits(app.config, app.store)  # as `digest gather --force`: no backoff wait
        [report] = run(app)
        assert report.status == "error"  # the stalled pages still overrun it
        runs += 1
    assert stored_urls(app) == sorted(feed_server.url(p) for p in quick), runs


def test_article_pages_are_fetched_concurrently_within_the_per_host_limits(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    lock = threading.Lock()
    spans: list[tuple[float, float]] = []

    def slow_page(handler: BaseHTTPRequestHandler) -> None:
        begun = time.monotonic()
        time.sleep(0.5)
        body = article_page(f"Story at {handler.path}").encode()
        handler.send_response(200)
        handler.send_header("Content-Type", HTML["Content-Type"])
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        with lock:
            spans.append((begun, time.monotonic()))

    paths = [article_path(n) for n in range(6)]
    for path in paths:
        feed_server.add(path, b"", raw=slow_page)
    app = open_app(
        [],
        extra=page_source(listing(feed_server, paths)),
        timeout=10.0,
        per_host_delay=0.05,
        gather="per_host_concurrency = 3",
    )
    [report] = run(app)
    assert (report.status, report.new_items) == ("ok", 6), (report.error, report.notes)
    assert len(spans) == 6
    # The server saw requests overlap, never more than the per-host limit at once...
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert 2 <= most <= 3, spans
    # ...and each start spaced by the politeness pause (0.05 s): seen by the server, whose
    # threads start a little late under load, so half of it is the bound (none would be ~0).
    starts = sorted(start for start, _ in spans)
    assert min(b - a for a, b in itertools.pairwise(starts)) >= 0.025, starts


def run(app: App) -> list[SourceReport]:
    return asyncio.run(gather_sources(app))


def source_id(app: App) -> int:
    [row] = [r for r in app.store.source_states().values() if r.name == "Lantern"]
    return row.id
