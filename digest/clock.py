"""The one clock digest reads: wall time for what is stored and decided, a monotonic count
for waits and pacing, and the sleep that goes with it.

The composition root makes it: ``App.open(config, clock=...)`` (the system clock unless a
test passes another) hands it to the store, and ``app.clock`` is that same clock, so what
is decided and what is stored agree. The command line's ``main(clock)`` opens its App on
it. Stages take it from the app (``app.clock``), the store's queries from ``self.clock``,
the sending limits, per-host pacing and the web's confirmation links from whoever built
them; the web app's own timers too (CSRF fields' hour stamps, webhook freshness, admin
sessions and the login guard, the sign-up rate windows) run on its app's clock. A test
sets the instant a slot is decided at, or moves a rate window on, with a
``ManualClock`` instead of waiting or patching.

A waiter that computes its wait from this clock also sleeps on it (``sleep``): on a set
clock a real sleep would never move the time it waits for.

``SYSTEM_CLOCK`` is the default where nothing passes one; ``digest.store.utcnow`` reads it
for benchmarks and tests that have no app at hand. What stays on real time, on purpose:
- measurement and real I/O: a batch's seconds on the wire (it paces the claim ahead against
  the transport), a worker's heartbeat (its real rate; a background loop sleeping on a set
  clock would spin), a lease's renewal every third of it, a claim's retry while another
  transaction holds rows, a provider's Retry-After wait, connection fallbacks, PostgreSQL
  lock retries, APScheduler's own triggers;
- pure helpers with no app in reach that take ``now`` where it matters: feed, sitemap and
  article-page parsing (future dates), config validation (a cron that never fires), the
  Date header of a built message, the sample edition of `digest check`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What digest asks of the time."""

    def now(self) -> datetime:
        """Aware UTC now."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for waits and intervals."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock's time."""
        ...


class SystemClock:
    """The real time: ``datetime.now(UTC)``, ``time.monotonic``, ``asyncio.sleep``."""

    def now(self) -> datetime:
        """Aware UTC now."""
        return datetime.now(UTC)

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()


def utc_time(moment: datetime, seconds: bool = False) -> str:
    """A time as digest shows it to an admin (the command line, a source's error and notes),
    to the minute: ``2026-12-07 14:05 UTC`` (``seconds``: ``14:05:09``, where runs a minute
    apart must be told apart). The ``--json`` output stays ISO 8601, for programs."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if seconds else f"{moment:%Y-%m-%d %H:%M} UTC"


class ManualClock:
    """A clock that stands still until told: tests set the instant and move it on.

    ``sleep`` moves the clock on by the time asked instead of waiting (and yields to the
    event loop once), so code that paces itself runs at once and sees the time it slept.
    """

    def __init__(self, start: datetime, monotonic: float = 1000.0) -> None:
        if start.tzinfo is None:
            raise ValueError("a ManualClock needs an aware datetime (UTC)")
        self._now = start.astimezone(UTC)
        self._monotonic = monotonic
        self.slept: list[float] = []  # every sleep asked for, in order

    def now(self) -> datetime:
        """The set instant."""
        return self._now

    def monotonic(self) -> float:
        """The set monotonic count (moves with ``advance``)."""
        return self._monotonic

    def advance(self, by: float | timedelta) -> None:
        """Move both times on by ``by`` (seconds, or a timedelta)."""
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        if seconds < 0:
            raise ValueError("a clock does not go back; use set() for another instant")
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds

    def set(self, when: datetime) -> None:
        """Jump the wall time to ``when`` (the monotonic count moves with it, never back)."""
        if when.tzinfo is None:
            raise ValueError("a ManualClock needs an aware datetime (UTC)")
        self._monotonic += max(0.0, (when - self._now).total_seconds())
        self._now = when.astimezone(UTC)

    async def sleep(self, seconds: float) -> None:
        """Record the sleep, move the clock on by it, and let other tasks run."""
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)
