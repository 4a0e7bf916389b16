"""What a source's stored fetch state does to the next gather, over a real local server.

Conditional GET, permanent redirects, 410 Gone, Retry-After, capped exponential backoff,
recovery, and a changed configured URL that forgets all of it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from digest.app import App
from digest.clock import ManualClock
from digest.config import load_config
from digest.pipeline import gather_sources
from digest.sources.fetch import HostPolicy
from digest.sources.gather import backoff
from digest.store import Source
from tests.conftest import FeedServer, OpenApp, config_text, rss, run_cli

FEED = rss(
    [
        {"title": "Bridge closed", "link": "https://wire.test/bridge", "guid": "w1"},
        {"title": "Budget passed", "link": "https://wire.test/budget", "guid": "w2"},
    ]
)


def row(app: App, name: str) -> Source:
    return next(r for r in app.store.list_sources() if r.name == name)


def paths(server: FeedServer) -> list[str]:
    return [path for path, _ in server.requests]


def gather(app: App) -> Any:
    [report] = asyncio.run(gather_sources(app))
    return report


def wait_over(app: App, name: str) -> None:
    """As if the source's pause had run out: its next attempt is due now."""
    app.store.update_source(row(app, name).id or 0, next_attempt_at=datetime.now(UTC))


# --- conditional GET -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "validator",
    [{"ETag": '"v1"'}, {"Last-Modified": "Wed, 25 Nov 2026 10:00:00 GMT"}],
    ids=["etag", "last-modified"],
)
def test_an_unchanged_feed_costs_a_304_and_stores_nothing(
    feed_server: FeedServer, open_app: OpenApp, validator: dict[str, str]
) -> None:
    headers = {"Content-Type": "application/rss+xml", **validator}
    app = open_app([("Wire", feed_server.add("/w.xml", FEED, headers=headers))])
    first = gather(app)
    assert (first.status, first.new_items) == ("ok", 2)

    second = gather(app)

    assert (second.status, second.new_items, second.items_seen) == ("ok", 0, 2)
    assert any("304" in note for note in second.notes)
    [_, (_, sent)] = feed_server.requests
    header, value = next(iter(validator.items()))
    asked = {"ETag": "If-None-Match", "Last-Modified": "If-Modified-Since"}[header]
    assert sent[asked] == value
    state = row(app, "Wire")
    assert (state.consecutive_failures, state.items_seen) == (0, 2)


def test_a_changed_feed_is_read_again_with_its_new_validator(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    url = feed_server.add("/w.xml", FEED, headers={"ETag": '"v1"'})
    app = open_app([("Wire", url)])
    gather(app)
    newer = rss([{"title": "Fresh", "link": "https://wire.test/fresh", "guid": "w3"}])
    feed_server.add("/w.xml", newer, headers={"ETag": '"v2"'})
    assert gather(app).new_items == 1
    assert row(app, "Wire").etag == '"v2"'


# --- redirects -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 308])
def test_a_permanent_redirect_moves_the_source_for_good(
    feed_server: FeedServer, open_app: OpenApp, status: int
) -> None:
    new = feed_server.add("/new.xml", FEED)
    old = feed_server.add("/old.xml", "", status=status, headers={"Location": "/new.xml"})
    app = open_app([("Wire", old)])
    report = gather(app)
    assert (report.status, report.new_items) == ("ok", 2)
    assert any("moved permanently" in note for note in report.notes)
    assert row(app, "Wire").fetch_url == new

    gather(app)

    assert paths(feed_server) == ["/old.xml", "/new.xml", "/new.xml"]


@pytest.mark.parametrize("first", [302, 307])
def test_a_chain_with_a_temporary_hop_does_not_move_the_source(
    feed_server: FeedServer, open_app: OpenApp, first: int
) -> None:
    feed_server.add("/final.xml", FEED)
    feed_server.add("/mid.xml", "", status=301, headers={"Location": "/final.xml"})
    old = feed_server.add("/old.xml", "", status=first, headers={"Location": "/mid.xml"})
    app = open_app([("Wire", old)])
    assert gather(app).new_items == 2
    assert row(app, "Wire").fetch_url is None
    gather(app)
    assert paths(feed_server)[3] == "/old.xml"


# --- 410, Retry-After, backoff ------------------------------------------------------------


def test_410_marks_the_source_gone_and_it_is_not_asked_again(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    app = open_app([("Old", feed_server.add("/old.xml", "gone", status=410))])
    first = gather(app)
    assert first.status == "gone" and "HTTP 410" in first.error
    assert "remove the source" in first.hint
    assert row(app, "Old").status == "gone"

    second = gather(app)

    assert second.status == "gone" and "'Old'" in second.error and "410" in second.error
    assert "change the source's url" in second.hint
    assert paths(feed_server) == ["/old.xml"]


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_respected(
    feed_server: FeedServer, open_app: OpenApp, status: int, form: str
) -> None:
    later = datetime.now(UTC) + timedelta(hours=2)
    value = "7200" if form == "seconds" else format_datetime(later, usegmt=True)
    url = feed_server.add("/busy.xml", "slow down", status=status, headers={"Retry-After": value})
    app = open_app([("Busy", url)])
    first = gather(app)
    assert first.status == "error" and f"HTTP {status}" in first.error
    due = row(app, "Busy").next_attempt_at
    assert due is not None and abs((due - later).total_seconds()) < 5
    assert first.next_attempt_at == due

    second = gather(app)

    assert second.status == "skipped" and second.next_attempt_at == due
    assert paths(feed_server) == ["/busy.xml"]
    wait_over(app, "Busy")
    feed_server.add("/busy.xml", FEED)
    assert gather(app).new_items == 2
    assert row(app, "Busy").next_attempt_at is None


def test_a_hostile_retry_after_is_held_to_the_backoff_cap(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    url = feed_server.add("/busy.xml", "", status=429, headers={"Retry-After": "999999999"})
    app = open_app([("Busy", url)], gather="backoff_max_hours = 3")
    gather(app)
    due = row(app, "Busy").next_attempt_at
    assert due is not None
    assert abs((due - datetime.now(UTC)).total_seconds() - 3 * 3600) < 10


def test_a_retry_after_date_past_the_calendar_is_ignored_not_a_crash(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    far = "Fri, 31 Dec 9999 23:00:00 -0100"  # in UTC, year 10000: no datetime holds it
    url = feed_server.add("/busy.xml", "", status=503, headers={"Retry-After": far})
    app = open_app([("Busy", url)])
    report = gather(app)
    assert report.status == "error" and "HTTP 503" in (report.error or "")
    assert row(app, "Busy").consecutive_failures == 1  # an ordinary backoff, not a bug report


def test_backoff_doubles_and_is_capped() -> None:
    hours = [backoff(n, 30, 24).total_seconds() / 3600 for n in range(1, 9)]
    assert hours == [0, 1, 2, 4, 8, 16, 24, 24]
    assert backoff(10_000, 30, 24) == timedelta(hours=24)


def test_a_failing_source_backs_off_and_a_recovered_one_resets(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    url = feed_server.add("/flaky.xml", "down", status=500)
    app = open_app([("Flaky", url)], gather="interval_minutes = 60\nbackoff_max_hours = 3")
    waits = []
    for _ in range(4):
        report = gather(app)
        assert report.status == "error"
        due = row(app, "Flaky").next_attempt_at
        waits.append(round((due - datetime.now(UTC)).total_seconds() / 3600) if due else 0)
        if due is not None:
            skipped = gather(app)  # in backoff: reported with its time, not fetched
            assert skipped.status == "skipped" and skipped.next_attempt_at == due
            assert any("next try at" in note for note in skipped.notes)
            wait_over(app, "Flaky")
    assert waits == [0, 2, 3, 3]  # one failure is retried at once, then 2 h, then the cap
    assert len(feed_server.requests) == 4
    assert row(app, "Flaky").consecutive_failures == 4

    feed_server.add("/flaky.xml", FEED)
    recovered = gather(app)
    assert (recovered.status, recovered.new_items) == ("ok", 2)
    state = row(app, "Flaky")
    assert (state.consecutive_failures, state.next_attempt_at, state.last_error) == (0, None, None)


def test_gather_json_names_a_skipped_source_and_when_it_is_tried_next(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    url = feed_server.add("/busy.xml", "", status=429, headers={"Retry-After": "600"})
    config = write_config([("Busy", url)])
    clock = ManualClock(datetime(2026, 3, 2, 7, 0, tzinfo=UTC))  # the gathers' time, set
    run_cli("--config", str(config), "gather", "--json", clock=clock)
    clock.advance(5)
    code, out, err = run_cli("--config", str(config), "gather", "--json", clock=clock)
    assert code == 1, err  # no source read
    [busy] = json.loads(out)["sources"]
    assert busy["status"] == "skipped"
    assert "'Busy'" in busy["error"] and "not fetched until" in busy["error"]
    when = busy.get("next_attempt_at") or busy["notes"][0].removeprefix("next try at ")
    due = datetime.fromisoformat(when.replace("Z", "+00:00"))
    assert 590 < (due - clock.now()).total_seconds() <= 600
    assert due == datetime(2026, 3, 2, 7, 10, tzinfo=UTC)  # ten minutes after the answer


# --- a changed configured URL ----------------------------------------------------------------


def test_changing_the_configured_url_forgets_the_old_state(
    feed_server: FeedServer, tmp_path: Path, secret: str
) -> None:
    old = feed_server.add("/old.xml", "gone", status=410)
    path = tmp_path / "digest.toml"
    path.write_text(config_text([("Wire", old)]), encoding="utf-8")
    app = App.open(load_config(path))
    try:
        assert gather(app).status == "gone"
    finally:
        app.close()

    new = feed_server.add("/new.xml", FEED, headers={"ETag": '"n1"'})
    path.write_text(config_text([("Wire", new)]), encoding="utf-8")
    app = App.open(load_config(path))
    try:
        report = gather(app)
        assert (report.status, report.new_items) == ("ok", 2)
        state = row(app, "Wire")
        assert (state.status, state.fetch_url) == ("active", None)
        assert state.url == new  # a plain feed: the bare url, as stored before fingerprints
        assert state.consecutive_failures == 0
    finally:
        app.close()
    assert paths(feed_server) == ["/old.xml", "/new.xml"]
    assert "If-None-Match" not in feed_server.requests[1][1]


# --- politeness -----------------------------------------------------------------------------


def test_requests_to_one_host_are_spaced_and_bounded() -> None:
    """On a set clock the spacing is exact: each request to host a starts the delay after
    the one before, while host b's goes at once."""
    clock = ManualClock(datetime(2026, 3, 2, 7, tzinfo=UTC))
    policy = HostPolicy(per_host=1, delay=0.1, clock=clock)
    starts: dict[str, list[float]] = {"a": [], "b": []}
    in_flight = {"a": 0, "b": 0}
    most = {"a": 0, "b": 0}

    async def request(host: str) -> None:
        async with policy.turn(host):
            starts[host].append(clock.monotonic())
            in_flight[host] += 1
            most[host] = max(most[host], in_flight[host])
            await clock.sleep(0.01)
            in_flight[host] -= 1

    async def main() -> float:
        began = clock.monotonic()
        await asyncio.gather(*(request(h) for h in "aaaab"))
        return clock.monotonic() - began

    elapsed = asyncio.run(main())
    gaps = [b - a for a, b in zip(starts["a"], starts["a"][1:], strict=False)]
    assert all(gap >= 0.095 for gap in gaps), gaps
    assert gaps == pytest.approx([0.1, 0.1, 0.1])
    assert most == {"a": 1, "b": 1}
    assert elapsed < 0.6  # the other host was not held up behind host a
    assert starts["b"][0] - min(starts["a"]) < 0.05


def test_a_late_wake_up_does_not_shorten_the_next_pause() -> None:
    """The loop is blocked just as the second request should start (a busy gather): it
    starts late, and the third still waits the whole delay after it."""
    clock = ManualClock(datetime(2026, 3, 2, 7, tzinfo=UTC))
    policy = HostPolicy(per_host=1, delay=0.1, clock=clock)
    starts: list[float] = []

    async def request() -> None:
        async with policy.turn("a"):
            starts.append(clock.monotonic())

    async def block_the_loop() -> None:
        await clock.sleep(0.09)
        clock.advance(0.04)  # a parse or a store write holding the loop, no await between

    async def main() -> None:
        await asyncio.gather(block_the_loop(), *(request() for _ in range(3)))

    asyncio.run(main())
    gaps = [b - a for a, b in pairwise(starts)]
    assert gaps[0] >= 0.12  # the second woke late
    assert gaps[1] >= 0.1, gaps
    assert gaps == pytest.approx([0.14, 0.1])


def test_the_configured_politeness_applies_to_one_gather(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    sources = [(f"S{n}", feed_server.add(f"/{n}.xml", FEED)) for n in range(4)]
    app = open_app(sources, per_host_delay=0.15)
    began = time.monotonic()
    reports = asyncio.run(gather_sources(app))
    assert [r.status for r in reports] == ["ok"] * 4
    assert time.monotonic() - began >= 0.45  # three pauses between four requests
