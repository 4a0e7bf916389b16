"""A run weighs its "user unknown" refusals on all its answers, once it ends, not batch by
batch: an old import's dead addresses, the lowest ids and so the first batch claimed,
outnumber that batch's acceptances, yet the run took most of its mail, and they are
suppressed wherever in the run they came (judged per batch, they were doubted every
edition, in the same order, and mailed for ever).

Through the CLI, in batches of two, against a real aiosmtpd relay; on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from digest.app import App
from digest.config import load_config
from digest.deliver.doubts import DOUBTED
from tests.test_repeated_refusals import (
    DAY_ONE,
    Relay,
    _reasons,
    _send,
    _statuses,
    database,
    relay,
    setup,
)

__all__ = ["database", "relay", "setup"]  # the fixtures, used by name

GHOSTS = ("ghost1@example.org", "ghost2@example.org")
LIVE = tuple(f"live{i}@example.org" for i in range(8))


def _in_batches_of(config: Path, size: int) -> None:
    text = config.read_text()
    assert "[delivery]\n" in text
    config.write_text(text.replace("[delivery]\n", f"[delivery]\nbatch_size = {size}\n", 1))


@pytest.mark.parametrize("ghosts_first", [True, False], ids=["ghosts-first", "ghosts-last"])
def test_dead_addresses_are_suppressed_wherever_in_the_run_they_come(
    setup, relay: Relay, ghosts_first: bool
) -> None:
    readers = (*GHOSTS, *LIVE) if ghosts_first else (*LIVE, *GHOSTS)
    config = setup(*readers)
    _in_batches_of(config, 2)
    relay.refused = ("ghost",)

    code, said = _send(config, DAY_ONE)

    assert code == 0, said
    asked = [a for a in relay.asked if a.startswith("ghost")]
    assert (relay.asked.index(asked[0]) < 2) is ghosts_first  # the first batch, or the last
    if not ghosts_first:
        # The last batches refused whole look like a relay broken mid-run
        # (test_refusals_across_runs): doubted today, believed when refused so again.
        assert {_statuses(config)[a] for a in GHOSTS} == {"active"}
        assert all(DOUBTED in _reasons(config, 1)[a][1] for a in GHOSTS)
        code, said = _send(config, DAY_ONE.replace(day=DAY_ONE.day + 1))
        assert code == 0, said
    statuses = _statuses(config)
    assert {statuses[a] for a in GHOSTS} == {"bounced"}, statuses
    assert {statuses[a] for a in LIVE} == {"active"}
    rows = _reasons(config, 1 if ghosts_first else 2)
    assert {rows[a][0] for a in LIVE} == {"sent"}
    for ghost in GHOSTS:
        state, reason = rows[ghost]
        assert state == "failed" and "User unknown" in reason
        assert DOUBTED not in reason, reason  # the doubt it was recorded with is gone
    assert "2 failed (2 bounced: address suppressed)" in said, said
    assert "not suppressed" not in said

    relay.asked.clear()
    assert _send(config, DAY_ONE.replace(day=DAY_ONE.day + 2))[0] == 0
    assert sorted(relay.asked) == sorted(LIVE)  # the next edition does not mail them


def test_the_verdict_rewrites_only_rows_still_as_the_run_recorded_them(setup, relay: Relay) -> None:
    """A row recorded otherwise since (another sender took it, `digest retry` put it back)
    keeps what it has (and suppresses nobody: test_refusals_across_runs); the believed
    readers of rows it rewrote are suppressed."""
    config = setup(GHOSTS[0], GHOSTS[1], LIVE[0])
    relay.refused = ("ghost",)
    assert _send(config, DAY_ONE)[0] == 0  # 2 refused > 1 taken: doubted
    rows = _reasons(config, 1)
    app = App.open(load_config(config))
    try:
        ids = {s.email: d.id for d, s in app.store.deliveries(1)}
        mine, other = ids[GHOSTS[0]], ids[GHOSTS[1]]
        assert mine is not None and other is not None
        recorded = rows[GHOSTS[0]][1]
        suppressed = app.store.settle_refusals(
            {mine: (recorded, "550 believed"), other: (recorded, "550 believed")}, [mine]
        )
        assert suppressed == 1
    finally:
        app.close()
    after = _reasons(config, 1)
    assert after[GHOSTS[0]] == ("failed", "550 believed")
    assert after[GHOSTS[1]] == rows[GHOSTS[1]]  # its reason was not the one given
    assert _statuses(config)[GHOSTS[0]] == "bounced"
    assert _statuses(config)[GHOSTS[1]] == "active"
