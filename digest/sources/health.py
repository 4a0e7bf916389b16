"""How each source stands between gathers, for `digest sources`: read from its stored health.

A row's columns say it piecemeal (failures in a row, a backoff's ``next_attempt_at``, a 410's
``status``); this names the one state an admin acts on, and when the source is tried again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from digest.clock import utc_time
from digest.config import SourceConfig
from digest.states import SourceStatus
from digest.store import Source, Store


class SourceCondition(StrEnum):
    """One source's state between gathers."""

    OK = "ok"  # its last fetch was read
    FAILING = "failing"  # its last fetch failed; the next gather tries it again
    WAITING = "waiting"  # failed and backing off (or asked to wait): not fetched before a time
    GONE = "gone"  # answered 410 Gone: not fetched until its url changes (or --force)
    NEW = "new"  # not fetched yet
    OFF = "off"  # stored from an earlier config, but disabled or no longer configured


# The hint beside an off source's last error: the one stored with it ("digest will try
# again on the next run", "find its new address") is about a fetch that no longer comes.
OFF_HINT = (
    "not fetched any more: it is disabled or no longer in the config (the error is old); "
    "set enabled = true (or put it back in the config) to fetch it again"
)


@dataclass(frozen=True)
class SourceHealth:
    """One source's health as `digest sources` prints it."""

    name: str
    condition: SourceCondition
    last_success_at: datetime | None
    consecutive_failures: int
    items_seen: int
    last_error: str | None
    next_attempt_at: datetime | None  # when a waiting source is tried again
    last_hint: str | None = None  # what to do about last_error


def source_health(
    store: Store, sources: Sequence[SourceConfig], now: datetime | None = None
) -> list[SourceHealth]:
    """Every source's health by name: the stored ones, and the configured ones (``sources``:
    the config's ``[[sources]]``) that no gather has met yet: new, or off when disabled.
    `digest sources`, `digest check` and the console all read it, so they say one thing."""
    return health_of(store.list_sources(), sources, now or store.clock.now())


def health_of(
    rows: Sequence[Source], sources: Sequence[SourceConfig], now: datetime
) -> list[SourceHealth]:
    """``source_health`` of the stored source ``rows`` (for a caller that has them)."""
    gathered = {source.name for source in sources if source.enabled}
    out = []
    for name in {source.name for source in sources} - {row.name for row in rows}:
        condition = SourceCondition.NEW if name in gathered else SourceCondition.OFF
        out.append(SourceHealth(name, condition, None, 0, 0, None, None))
    for row in rows:
        waits = row.next_attempt_at is not None and row.next_attempt_at > now
        if row.name not in gathered:
            condition = SourceCondition.OFF
        elif row.status == SourceStatus.GONE:
            condition = SourceCondition.GONE
        elif waits:
            condition = SourceCondition.WAITING
        elif row.consecutive_failures:
            condition = SourceCondition.FAILING
        elif row.last_attempt_at is None:
            condition = SourceCondition.NEW
        else:
            condition = SourceCondition.OK
        out.append(
            SourceHealth(
                row.name,
                condition,
                row.last_success_at,
                row.consecutive_failures,
                row.items_seen,
                row.last_error,
                row.next_attempt_at if waits else None,
                _hint(condition, row.last_error, row.last_hint),
            )
        )
    return sorted(out, key=lambda health: health.name)


def _hint(condition: SourceCondition, error: str | None, stored: str | None) -> str | None:
    """What to do about a source's last error: the stored hint, or, for a source no longer
    fetched, that it is not (its stored one would promise a next try)."""
    if not error:
        return None
    return OFF_HINT if condition is SourceCondition.OFF else stored


def state_words(h: SourceHealth) -> str:
    """The state in words, a problem in capitals as `digest gather` labels it, and when the
    source is fetched again."""
    if h.condition is SourceCondition.WAITING and h.next_attempt_at is not None:
        return f"WAIT until {utc_time(h.next_attempt_at)}"
    return _STATES[h.condition]


# FAIL: tried again at the next gather; GONE: not fetched until its url changes (or
# `digest gather --force`); off: disabled or no longer in the config (README, Commands).
_STATES = {
    SourceCondition.OK: "ok",
    SourceCondition.FAILING: "FAIL",
    SourceCondition.WAITING: "WAIT",
    SourceCondition.GONE: "GONE",
    SourceCondition.NEW: "new",
    SourceCondition.OFF: "off",
}


def health_warning(h: SourceHealth) -> str:
    """One failing source as `digest check` (and the console's Config screen) warns of it;
    "" for one that is not failing."""
    failures = h.consecutive_failures
    in_a_row = f"{failures} failure{'s' if failures != 1 else ''} in a row"
    if h.condition is SourceCondition.FAILING:
        state = (
            "FAIL at its last gather" if failures == 1 else f"FAIL for {failures} gathers in a row"
        )
    elif h.condition is SourceCondition.WAITING:
        state = f"{state_words(h)} after {in_a_row}"
    elif h.condition is SourceCondition.GONE:
        state = "GONE: not fetched until its url changes (or `digest gather --force`)"
    else:
        return ""
    error = (h.last_error or "none recorded").removeprefix(f"source {h.name!r}: ")
    hint = f"\n  hint: {h.last_hint}" if h.last_hint else ""
    return f"source {h.name!r}: {state}; last error: {error}{hint}"
