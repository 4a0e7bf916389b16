"""Taking turns: politeness per host, and the deadline one source's requests share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from digest.clock import SYSTEM_CLOCK, Clock
from digest.config.models import GatherConfig, default


class HostPolicy:
    """Politeness per host: at most ``per_host`` requests in flight, ``delay`` s between starts
    (on ``clock``, which it also sleeps on)."""

    def __init__(
        self,
        per_host: int = default(GatherConfig, "per_host_concurrency"),
        delay: float = default(GatherConfig, "per_host_delay_seconds"),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.per_host = per_host
        self.delay = delay
        self.clock = clock
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}

    @asynccontextmanager
    async def turn(self, host: str) -> AsyncIterator[None]:
        """Wait for this host's turn, then hold one of its slots for the request."""
        slots = self._slots.setdefault(host, asyncio.Semaphore(self.per_host))
        async with slots:
            if self.delay > 0:
                # Claim the next start time before sleeping, so waiters queue up in order.
                now = self.clock.monotonic()
                start = max(now, self._next_start.get(host, 0.0))
                self._next_start[host] = start + self.delay
                if start > now:
                    await self.clock.sleep(start - now)
                    # A busy loop wakes us late: count the pause from when we really start,
                    # so the host never sees two requests closer than ``delay``.
                    late = self.clock.monotonic() - start
                    if late > 0:
                        self._next_start[host] += late
            yield


class Deadline:
    """The time one source may take (gather.timeout_seconds), shared by all its requests.

    It starts when the source's first request gets its turn: waiting behind other sources'
    requests for a slot is not the source's time. From then on, its redirect hops, its
    article pages and their waits for a turn all count, and whatever is still going at the
    deadline is cut off. ``cut`` counts the requests it cut off.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at: float | None = None  # the event loop's time it ends; None until started
        self.cut = 0

    def start(self) -> float:
        """Start the clock, if it has not started; the loop time it ends."""
        if self.at is None:
            self.at = asyncio.get_running_loop().time() + self.seconds
        return self.at

    def left(self) -> float:
        """The seconds left once the clock runs (at least 50 ms, the least a look-up of an
        address is given), else all of them: what the source's next step may still take."""
        if self.at is None:
            return self.seconds
        return max(0.05, self.at - asyncio.get_running_loop().time())
