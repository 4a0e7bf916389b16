"""Sending limits an operator can reason about: token buckets per second, minute, hour and
day, and an error budget that stops an edition instead of burning the list.

Each bucket starts full less what the database says was sent in its last period, so
restarting the daemon, a second edition or a second sender does not reset a provider's
quota. A second or minute bucket of ``rate`` messages per ``period`` refills continuously,
so ``per_minute = 600`` allows a burst of 600 and then 10 a second. An hour or day quota is
a window over the sends the database records: when its bucket is empty the window is
counted again, and the run waits (up to its ``max_wait``) for the oldest send to leave it,
never refilling ahead of it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from digest.clock import SYSTEM_CLOCK, Clock

PERIODS = {"per_second": 1.0, "per_minute": 60.0, "per_hour": 3600.0, "per_day": 86400.0}
# Rates that refill within a run; hour and day quotas are windows the database counts.
REFILLING = ("per_second", "per_minute")

# For an hour or day quota: (messages that may go now, seconds until one more may go).
Recount = Callable[[], tuple[int, float]]


@dataclass
class TokenBucket:
    """``rate`` tokens per ``period`` seconds, at most ``rate`` at once.

    Without ``refills`` the bucket does not refill at its rate: an hour or day quota is a
    window over the sends the database records, and refilling it at its rate would let a
    run that starts with the window nearly full go past the quota. When it is empty it
    asks ``recount`` (the database) how much room the window has and when the next send
    leaves it; without ``recount`` it stays empty.
    """

    rate: float
    period: float
    tokens: float = -1.0
    clock: Callable[[], float] = SYSTEM_CLOCK.monotonic
    updated: float = field(default=0.0)
    refills: bool = True
    recount: Recount | None = None
    recount_at: float = 0.0  # clock time before which the window is not counted again

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.rate
        self.updated = self.clock()

    def _refill(self, recount: bool = True) -> None:
        """Tokens gained since the last look. ``recount=False`` while tokens are out for a
        batch not yet recorded: the database would not count those sends yet."""
        now = self.clock()
        if self.refills:
            gained = (now - self.updated) * self.rate / self.period
            self.tokens = min(self.rate, self.tokens + gained)
        elif recount and self.tokens < 1 and self.recount and now >= self.recount_at:
            room, frees_in = self.recount()
            self.tokens = float(min(self.rate, room))
            self.recount_at = now + max(frees_in, 1.0)  # at most once a second
        self.updated = now

    def available(self) -> int:
        """Whole tokens that can be taken now."""
        self._refill()
        return int(self.tokens)

    def take(self, count: int) -> None:
        """Spend ``count`` tokens (the caller checked ``available``)."""
        self._refill(recount=False)
        self.tokens -= count

    def give_back(self, count: int) -> None:
        """Return ``count`` tokens taken but not spent (never above ``rate``)."""
        self._refill(recount=False)
        self.tokens = min(self.rate, self.tokens + count)

    def wait_for_one(self) -> float:
        """Seconds until one token is available (infinite when nothing refills it)."""
        self._refill()
        if self.tokens >= 1:
            return 0.0
        if self.refills:
            return (1 - self.tokens) * self.period / self.rate
        return max(0.0, self.recount_at - self.clock()) if self.recount else math.inf


@dataclass
class SharedWindow:
    """A per-second or per-minute limit shared by every sender on the database (the store's
    ``take_tokens``): each takes its room from one token-bucket row before it claims, so N
    workers on N machines send ``rate`` messages a period between them, not N times that."""

    name: str
    take: Callable[[int], tuple[int, float]]  # wanted -> (granted, seconds until room)
    give: Callable[[int], None]  # return tokens granted but not used


class RateLimiter:
    """All configured buckets at once: a message needs a token from each (and from each
    shared window: the same limits, counted for the whole installation)."""

    def __init__(
        self,
        buckets: dict[str, TokenBucket],
        max_wait: float = 3600.0,
        deadline: float | None = None,
        shared: list[SharedWindow] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.buckets = buckets
        self.max_wait = max_wait
        # clock.monotonic() after which no wait starts: a run with a turn of bounded length
        self.deadline = deadline
        self.shared = shared or []
        self.clock = clock  # the buckets' too: waits are on it, and sleeps

    @classmethod
    def from_limits(
        cls,
        limits: dict[str, int | None],
        sent_recently: dict[str, int],
        max_wait: float = 3600.0,
        recounts: Mapping[str, Recount] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> RateLimiter:
        """Buckets for the limits set, each less what was sent in its last period; the
        hour and day ones count their window again through ``recounts`` when empty."""
        buckets = {}
        for name, rate in limits.items():
            if rate:
                start = max(0.0, rate - sent_recently.get(name, 0))
                buckets[name] = TokenBucket(
                    rate,
                    PERIODS[name],
                    tokens=start,
                    refills=name in REFILLING,
                    recount=(recounts or {}).get(name),
                    clock=clock.monotonic,
                )
        return cls(buckets, max_wait, clock=clock)

    async def acquire(self, wanted: int) -> int:
        """Wait until at least one message may go; return how many (at most ``wanted``).

        Returns 0 when the wait would exceed ``max_wait`` (a daily quota spent): the caller
        stops, and the rest goes out on a later run.
        """
        if not self.buckets and not self.shared:
            return wanted
        while True:
            allowed, wait = self._take(wanted)
            if allowed > 0:
                return allowed
            wait = max([wait, *(b.wait_for_one() for b in self.buckets.values())])
            if wait > self.max_wait or self._past_deadline(wait):
                return 0
            await self.clock.sleep(max(wait, 0.01))

    def try_acquire(self, wanted: int) -> int:
        """As ``acquire``, without waiting: how many may go now (0: none now).

        For a batch claimed ahead while another is on the wire: a wait there could be for
        room that the batch on the wire frees only once it is recorded, after the wait.
        """
        if not self.buckets and not self.shared:
            return wanted
        return self._take(wanted)[0]

    def _take(self, wanted: int) -> tuple[int, float]:
        """Take what every bucket and shared window grants now, at most ``wanted``.
        Returns (granted, seconds a shared window asks to wait when it granted none)."""
        allowed = min([wanted, *(b.available() for b in self.buckets.values())])
        wait = 0.0
        if allowed > 0:
            allowed, wait = self._take_shared(allowed)
        if allowed > 0:
            for bucket in self.buckets.values():
                bucket.take(allowed)
        return allowed, wait

    def _take_shared(self, wanted: int) -> tuple[int, float]:
        """Take ``wanted`` (or fewer) from every shared window; what one window could not
        grant goes back to those taken before it. Returns (granted, seconds to wait)."""
        taken: list[SharedWindow] = []
        for window in self.shared:
            got, frees_in = window.take(wanted)
            if got < wanted:
                for earlier in taken:
                    earlier.give(wanted - got)
                if got == 0:
                    return 0, frees_in
                wanted = got
            taken.append(window)
        return wanted, 0.0

    def give_back(self, count: int) -> None:
        """Return tokens ``acquire`` granted for messages that were not sent."""
        if count > 0:
            for bucket in self.buckets.values():
                bucket.give_back(count)
            for window in self.shared:
                window.give(count)

    def ready(self) -> bool:
        """A message may go now, with no wait."""
        return all(b.available() >= 1 for b in self.buckets.values())

    def _past_deadline(self, wait: float) -> bool:
        return self.deadline is not None and self.clock.monotonic() + wait > self.deadline

    def exhausted(self) -> str:
        """Which limit stopped the run, for the report."""
        for name, bucket in self.buckets.items():
            if bucket.wait_for_one() > self.max_wait:
                return f"the {name.replace('_', ' ')} limit of {bucket.rate:g} messages"
        if self._past_deadline(max((b.wait_for_one() for b in self.buckets.values()), default=0)):
            return "the end of this turn under the sending limits (the next turn goes on)"
        return "a sending limit"


@dataclass
class ErrorBudget:
    """Stop when too many messages of this run are refused: a broken server or a bad list."""

    ratio: float
    minimum: int
    attempted: int = 0
    refused: int = 0

    def record(self, attempted: int, refused: int) -> None:
        """Count one batch's outcome."""
        self.attempted += attempted
        self.refused += refused

    def exceeded(self, edition_id: int) -> str | None:
        """Why to stop, or None while within budget."""
        if self.attempted < self.minimum or self.refused <= self.ratio * self.attempted:
            return None
        return (
            f"error budget exceeded: {self.refused} of {self.attempted} messages were refused "
            f"({self.refused / self.attempted:.0%}, budget {self.ratio:.0%}); edition "
            f"{edition_id} is paused with the rest unsent. Read the refusals above, fix the "
            f"cause, then `digest retry {edition_id}` sends the paused and failed ones"
        )


def retry_delay(attempts: int, base: float, cap: float, jitter: float = 0.2) -> float:
    """Seconds a deferred message waits before try ``attempts + 1``: doubling, capped, with
    +-``jitter`` so a thousand deferred messages do not all come back in the same second."""
    if base <= 0:
        return 0.0
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return delay * random.uniform(1 - jitter, 1 + jitter)
