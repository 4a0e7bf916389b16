"""The one clock digest reads: wall time for what is stored and decided, a monotonic count
for waits and pacing, and the sleep that goes with it.

The composition root (``App.open``) makes one and hands it to the store, the stages and the
web context; code that needs the time asks the clock it was given, so a test can set the
instant a slot is decided at, or move a rate window on, without waiting for it.

``SYSTEM_CLOCK`` is the default where no clock is passed. The module-level ``utcnow`` in
``digest.store.tables`` reads it too: it is left only for leaf helpers with no object to
carry a clock (column defaults); everything with a store or an app uses theirs.

Pure measurement of how long something took (``time.perf_counter`` in logs and reports)
does not go through the clock: a set clock would make those figures meaningless, and no
decision depends on them.
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
