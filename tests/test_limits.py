"""Sending limits and the error budget: pure buckets with a fake clock, then through a send."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from digest.app import App
from digest.clock import ManualClock
from digest.config import load_config
from digest.deliver.limits import ErrorBudget, RateLimiter, TokenBucket
from digest.schedule.jobs import retry_job
from tests.conftest import FeedServer, SmtpServer, rss, run_cli


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_a_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(600, 60.0, clock=clock)  # 600 a minute: 10 a second
    assert bucket.available() == 600
    bucket.take(600)
    assert bucket.available() == 0
    assert bucket.wait_for_one() == pytest.approx(0.1)
    clock.now = 2.0
    assert bucket.available() == 20
    clock.now = 1000.0
    assert bucket.available() == 600  # never more than one period's worth


def test_tokens_granted_for_rows_that_were_not_sent_go_back() -> None:
    """A run asks for a batch's worth and claims fewer rows (the edition's last): the rest
    of the day's quota stays for the run's next edition."""
    limiter = RateLimiter.from_limits({"per_day": 3}, {})
    assert asyncio.run(limiter.acquire(200)) == 3
    limiter.give_back(2)  # one row was left to claim
    assert asyncio.run(limiter.acquire(200)) == 2
    limiter.give_back(500)
    assert asyncio.run(limiter.acquire(200)) == 3  # never more than the limit


def test_an_hourly_quota_nearly_spent_is_not_refilled_within_the_run() -> None:
    """3,599 of 3,600 sent in the last hour: one more may go now. Refilled at 1 a second,
    the run would go on sending while the hour's sends are all still in the window."""
    limiter = RateLimiter.from_limits({"per_hour": 3600}, {"per_hour": 3599})
    assert asyncio.run(limiter.acquire(100)) == 1
    assert asyncio.run(limiter.acquire(100)) == 0  # at once: no wait for a token
    assert limiter.exhausted() == "the per hour limit of 3600 messages"


def test_an_empty_hourly_window_waits_for_its_oldest_send_to_leave() -> None:
    """With the database's recount: the run waits exactly until the window has room
    (not period/rate, not forever), and sends once it does."""
    clock = Clock()
    answers = iter([(0, 30.0), (1, 0.0)])
    bucket = TokenBucket(
        2, 3600.0, tokens=0, clock=clock, refills=False, recount=lambda: next(answers)
    )
    assert bucket.available() == 0
    assert bucket.wait_for_one() == pytest.approx(30.0)  # the oldest send leaves in 30 s
    clock.now = 10.0
    assert bucket.available() == 0  # not counted again before then
    clock.now = 30.0
    assert bucket.available() == 1


def test_tokens_out_for_a_batch_are_not_counted_again_before_it_is_recorded() -> None:
    """The database does not know the batch in flight yet: giving back the tokens of rows
    not claimed must not recount the window to full and add them on top."""
    bucket = TokenBucket(
        2, 86400.0, tokens=2, clock=Clock(), refills=False, recount=lambda: (2, 0.0)
    )
    bucket.take(2)  # a batch of two asked for, one row claimed
    bucket.give_back(1)
    assert bucket.tokens == 1


def test_the_window_room_counts_recorded_sends(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """Three sends 3,500 s, 3,000 s and 10 s ago: a quota of 5 has room for 2; a quota of
    2 is full until the send of 3,000 s ago leaves the hour, 600 s from now."""
    from datetime import timedelta

    from digest.pipeline import gather_sources, run_digest
    from digest.store import utcnow
    from digest.store.tables import SQLModel

    config = _config(write_config, feed_server, smtp_server.port, "")
    _add(config, "a@example.org", "b@example.org", "c@example.org")
    app = App.open(load_config(config))
    try:
        asyncio.run(gather_sources(app))
        asyncio.run(run_digest(app, "daily", gather_first=False))
        now = utcnow()
        deliveries = SQLModel.metadata.tables["deliveries"]
        with app.engine.begin() as connection:
            for ago, (d, _) in zip((3500, 3000, 10), app.store.deliveries(1), strict=True):
                connection.execute(
                    deliveries.update()
                    .where(deliveries.c.id == d.id)
                    .values(sent_at=now - timedelta(seconds=ago))
                )
        hour = timedelta(hours=1)
        assert app.store.window_room(hour, 5, now) == (2, 0.0)
        room, frees_in = app.store.window_room(hour, 2, now)
        assert room == 0 and frees_in == pytest.approx(600, abs=1)
    finally:
        app.close()


def test_a_limiter_with_a_turn_starts_no_wait_past_its_end() -> None:
    """The retry job's turn: under per_hour = 3600 a backlog would drip for an hour on the
    daemon's one worker; past the turn's end it stops, the rest left for the next turn."""
    clock = ManualClock(datetime(2026, 3, 2, 7, tzinfo=UTC))
    limiter = RateLimiter.from_limits({"per_second": 1}, {}, clock=clock)
    limiter.deadline = clock.monotonic() + 0.5
    assert asyncio.run(limiter.acquire(10)) == 1
    assert asyncio.run(limiter.acquire(10)) == 0  # the next token is a second away
    assert "end of this turn" in limiter.exhausted()
    assert clock.slept == []  # it stopped without starting the wait


def test_a_limiter_waits_on_its_clock_and_the_window_moves_with_it() -> None:
    """Two a second: a third message waits half a second of the limiter's clock, which a
    set clock moves on at once; the wait is exact, and after it one more may go."""
    clock = ManualClock(datetime(2026, 3, 2, 7, tzinfo=UTC))
    limiter = RateLimiter.from_limits({"per_second": 2}, {}, clock=clock)
    assert asyncio.run(limiter.acquire(10)) == 2
    assert limiter.try_acquire(1) == 0  # the second's two are spent
    assert asyncio.run(limiter.acquire(10)) == 1
    assert clock.slept == [pytest.approx(0.5)]
    clock.advance(1.0)  # a whole second later the bucket holds two again
    assert limiter.try_acquire(10) == 2


def test_the_limiter_takes_from_every_bucket_and_stops_at_a_spent_daily_quota() -> None:
    limiter = RateLimiter.from_limits(
        {"per_second": 5, "per_minute": None, "per_hour": None, "per_day": 8}, {"per_day": 5}
    )
    assert asyncio.run(limiter.acquire(100)) == 3  # the day had 8, 5 already sent
    assert asyncio.run(limiter.acquire(100)) == 0  # the next token is hours away
    assert limiter.exhausted() == "the per day limit of 8 messages"


def test_the_error_budget_judges_only_after_its_minimum() -> None:
    budget = ErrorBudget(0.2, 50)
    budget.record(40, 40)
    assert budget.exceeded(7) is None  # too few tried to judge
    budget.record(10, 0)
    assert budget.exceeded(7) and "40 of 50 messages were refused (80%" in str(budget.exceeded(7))
    fine = ErrorBudget(0.2, 50)
    fine.record(100, 20)
    assert fine.exceeded(7) is None


def _config(write_config, feed_server: FeedServer, port: int, delivery: str) -> Path:
    url = feed_server.add(
        "/f.xml",
        rss([{"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}]),
    )
    config = write_config([("Wire", url)], transport="smtp", smtp_port=port)
    anchor = "retry_base_seconds = 0  # tests retry deferred messages on the very next run"
    config.write_text(config.read_text().replace(anchor, f"{anchor}\n{delivery}"))
    return config


def _add(config: Path, *addresses: str) -> None:
    for address in addresses:
        assert run_cli("--config", str(config), "subscribers", "add", address)[0] == 0


def test_a_daily_limit_sends_what_it_may_and_keeps_the_rest_queued(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    config = _config(
        write_config,
        feed_server,
        smtp_server.port,
        "batch_size = 10\n\n[delivery.rate]\nper_day = 2",
    )
    _add(config, "a@example.org", "b@example.org", "c@example.org")
    code, out, _ = run_cli("--config", str(config), "send", "--gather")
    assert code == 0  # a limit is not a failure
    assert "2 sent" in out and "delivery waiting: the per day limit of 2 messages" in out
    assert len(smtp_server.messages) == 2
    code, out, _ = run_cli("--config", str(config), "send")
    assert len(smtp_server.messages) == 2  # still the same day: nothing more
    _, status, _ = run_cli("--config", str(config), "status", "--json")
    assert json.loads(status)["editions"][0]["deliveries"] == {"sent": 2, "pending": 1}


def test_the_error_budget_pauses_an_edition_instead_of_burning_the_list(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    config = _config(
        write_config,
        feed_server,
        smtp_server.port,
        "batch_size = 10\nerror_budget = 0.5\nerror_budget_minimum = 10",
    )
    # conftest's server defers every 'later*' address with a 451.
    _add(config, *(f"later{i}@example.org" for i in range(30)))
    code, _, err = run_cli("--config", str(config), "send", "--gather")
    assert code == 1
    assert "error budget exceeded: 10 of 10 messages were refused" in err
    assert "`digest retry 1` sends the paused and failed ones" in err
    assert "30 unsent messages paused" in err and "stay queued for the next run" not in err
    _, status, _ = run_cli("--config", str(config), "status", "--json")
    counts = json.loads(status)["editions"][0]["deliveries"]
    # The rest was not tried; the ten refused wait with it, not for their retry time.
    assert counts == {"paused": 30}

    # Paused until the admin says so: neither the next send nor the daemon's retry job
    # tries the rest against the same refusals.
    app = App.open(load_config(config))
    try:
        code, _, _ = run_cli("--config", str(config), "send")
        retry_job(app)
        assert app.store.delivery_counts(1) == {"paused": 30}
        assert max(d.attempts for d, _ in app.store.deliveries(1)) == 1  # none tried again
        assert len(smtp_server.messages) == 0
    finally:
        app.close()

    # The cause is fixed: `digest retry` sends the paused rows.
    smtp_server.handler.defer_later = False
    code, out, err = run_cli("--config", str(config), "retry", "1")
    assert code == 0, err
    assert "30 paused ones resumed" in out, out
    assert len(smtp_server.messages) == 30


def test_a_deferred_message_waits_longer_each_time_with_jitter() -> None:
    from digest.deliver.limits import retry_delay

    assert retry_delay(1, 0, 3600) == 0.0
    first = [retry_delay(1, 300, 6 * 3600) for _ in range(50)]
    assert all(240 <= d <= 360 for d in first) and len(set(first)) > 1  # jittered
    assert 960 <= retry_delay(3, 300, 6 * 3600) <= 1440  # 300 * 2^2, +-20 %
    assert retry_delay(30, 300, 6 * 3600) <= 6 * 3600 * 1.2  # capped


def test_deferred_rows_are_not_retried_before_their_time(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    config = _config(write_config, feed_server, smtp_server.port, "")
    config.write_text(
        config.read_text().replace("retry_base_seconds = 0", "retry_base_seconds = 600")
    )
    _add(config, "later1@example.org", "ana@example.org")
    code, out, _ = run_cli("--config", str(config), "send", "--gather")
    assert code == 0 and "1 deferred" in out and "1 sent" in out
    code, out, _ = run_cli("--config", str(config), "send")
    assert "nothing to send" in out  # the deferred one waits its ten minutes
    _, status, _ = run_cli("--config", str(config), "status", "--json")
    assert json.loads(status)["editions"][0]["deliveries"] == {"sent": 1, "deferred": 1}


def test_one_run_shares_one_limiter_between_the_editions_it_sends(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer, monkeypatch
) -> None:
    """A run resuming yesterday's deferred rows and sending today's edition keeps one set
    of limits: the second and minute buckets live only in the limiter, so a limiter per
    edition would start today's with a full minute's worth after yesterday's burst."""
    from datetime import timedelta

    import digest.sending
    from digest.pipeline import gather_sources, run_digest
    from digest.store import utcnow

    config = _config(
        write_config, feed_server, smtp_server.port, "\n[delivery.rate]\nper_minute = 600"
    )
    # Tomorrow's edition has no story of its own (each story goes once): it goes empty.
    config.write_text(
        config.read_text().replace("lookback_hours = 48", "lookback_hours = 48\nsend_empty = true")
    )
    _add(config, "ana@example.org", "later1@example.org")
    limiters: list[object] = []
    real_dispatch = digest.sending.dispatch

    async def spy(*args: Any, **kw: Any) -> object:
        limiters.append(kw["limiter"])
        return await real_dispatch(*args, **kw)

    monkeypatch.setattr(digest.sending, "dispatch", spy)
    app = App.open(load_config(config))
    try:
        asyncio.run(gather_sources(app))
        first = asyncio.run(run_digest(app, "daily", gather_first=False))
        assert first.delivery is not None and first.delivery.counts == {"sent": 1, "deferred": 1}
        smtp_server.handler.defer_later = False
        limiters.clear()

        tomorrow = utcnow() + timedelta(days=1)
        second = asyncio.run(run_digest(app, "daily", now=tomorrow, gather_first=False))

        assert [r.counts for _, r in second.resumed] == [{"sent": 1}]
        assert second.delivery is not None and second.delivery.counts == {"sent": 2}
        assert len(limiters) == 2 and limiters[0] is limiters[1]
    finally:
        app.close()
