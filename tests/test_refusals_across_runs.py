"""A run's refusals as unknown are weighed against its whole edition's answers, not its own
alone: an edition goes out in several runs (the workers sending it, the retry of its
deferred rows), and a run of one row left over, refused as unknown by a relay that refuses
everyone, was a "lone bounce" believed, its reader suppressed (one more each such run).

Through the CLI against a real aiosmtpd relay; on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import update

from digest.app import App
from digest.config import load_config
from digest.store.tables import DELIVERIES
from tests.test_repeated_refusals import (
    ANA,
    DAY_ONE,
    GONE1,
    GONE2,
    Relay,
    _reasons,
    _send,
    _statuses,
    database,
    relay,
    setup,
)

__all__ = ["database", "relay", "setup"]


class Deferring(Relay):
    """Refuses ``refused`` as unknown, but first defers ``deferred`` once (451)."""

    deferred: set[str]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.deferred:
            self.deferred.discard(address)
            self.asked.append(address)
            return "451 4.3.0 Try again later"
        return await super().handle_RCPT(server, session, envelope, address, options)


def test_a_relay_refusing_everyone_suppresses_nobody_when_the_edition_takes_two_runs(
    setup, relay: Relay
) -> None:
    relay.__class__ = Deferring
    relay.deferred = {ANA}  # type: ignore[attr-defined]
    config = setup(ANA, GONE1, GONE2)
    relay.refused = ("",)  # every address, after one 451 for ana
    _send(config, DAY_ONE)  # gone1 and gone2 refused, ana deferred
    assert _reasons(config, 1)[ANA][0] == "deferred"

    code, said = _send(config, DAY_ONE + timedelta(minutes=5))  # ana's retry, alone

    assert code == 1, said  # nothing sent
    assert relay.asked.count(ANA) == 2
    rows = _reasons(config, 1)
    assert {state for state, _ in rows.values()} == {"failed"}, rows
    assert "not suppressed" in rows[ANA][1], rows
    assert _statuses(config) == dict.fromkeys((ANA, GONE1, GONE2), "active")


def test_the_verdict_suppresses_no_reader_whose_row_another_sender_recorded_since(
    setup, relay: Relay
) -> None:
    """A row whose lease ran out while its run's record waited was taken by another sender,
    and the server accepted it: the first run's verdict on its refusal rewrites nothing
    there, and suppresses nobody for it (the reader just got the edition)."""
    config = setup(GONE1, GONE2, ANA)
    relay.refused = ("gone",)
    assert _send(config, DAY_ONE)[0] == 0  # 2 refused > 1 taken: doubted
    recorded = {a: reason for a, (_, reason) in _reasons(config, 1).items()}
    app = App.open(load_config(config))
    try:
        ids = {s.email: d.id for d, s in app.store.deliveries(1)}
        taken, still = ids[GONE1], ids[GONE2]
        assert taken is not None and still is not None
        with app.engine.begin() as connection:  # as the other sender's record leaves it
            connection.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == taken)
                .values(status="sent", error="250 2.0.0 Queued")
            )
        believed = {
            taken: (recorded[GONE1], "550 believed"),
            still: (recorded[GONE2], "550 believed"),
        }
        suppressed = app.store.settle_refusals(believed, [taken, still])
    finally:
        app.close()
    assert suppressed == 1
    assert _reasons(config, 1)[GONE1] == ("sent", "250 2.0.0 Queued")
    assert _statuses(config) == {GONE1: "active", GONE2: "bounced", ANA: "active"}


class Breaking(Relay):
    """Accepts the first ``accept`` recipients, then refuses every address as unknown (a
    relay whose recipient map broke mid-run: a deploy, a map being rebuilt)."""

    accept: int

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.accept > 0:
            self.accept -= 1
        else:
            self.refused = ("",)
        return await super().handle_RCPT(server, session, envelope, address, options)


LIVE = tuple(f"live{i}@example.org" for i in range(10))


def _in_batches_of_two(config: Path) -> None:
    text = config.read_text()
    assert "[delivery]\n" in text
    config.write_text(text.replace("[delivery]\n", "[delivery]\nbatch_size = 2\n", 1))


def test_a_relay_breaking_mid_run_suppresses_nobody(setup, relay: Relay) -> None:
    """Six taken, then every address refused as unknown: the four refused outnumber no
    one, yet they are the relay's fault (before, all four were suppressed: a relay
    breaking at 80% of a 100,000 list ended 20,000 before the error budget stopped it)."""
    relay.__class__ = Breaking
    relay.accept = 6  # type: ignore[attr-defined]
    config = setup(*LIVE)
    _in_batches_of_two(config)

    code, said = _send(config, DAY_ONE)

    assert code == 0, said
    rows = _reasons(config, 1)
    assert [rows[a][0] for a in LIVE] == ["sent"] * 6 + ["failed"] * 4, rows
    assert all("not suppressed: the server took no message" in rows[a][1] for a in LIVE[6:])
    assert set(_statuses(config).values()) == {"active"}, said
    assert "4 bounced" not in said

    relay.refused = ()  # mended: the next edition reaches everyone
    relay.accept = 100  # type: ignore[attr-defined]
    assert _send(config, DAY_ONE + timedelta(days=1))[0] == 0
    assert {state for state, _ in _reasons(config, 2).values()} == {"sent"}


def test_dead_addresses_at_the_runs_end_are_suppressed_the_next_day(setup, relay: Relay) -> None:
    """The newest import's dead addresses, claimed last, look like a relay broken at the
    end: doubted the first day, suppressed when refused so again the next."""
    config = setup(*LIVE[:4], GONE1, GONE2)
    _in_batches_of_two(config)
    relay.refused = ("gone",)
    assert _send(config, DAY_ONE)[0] == 0
    assert _statuses(config)[GONE1] == "active"

    code, said = _send(config, DAY_ONE + timedelta(days=1))

    assert code == 0, said
    assert _statuses(config)[GONE1] == "bounced" and _statuses(config)[GONE2] == "bounced"
    assert "on 2026-12-07 and 2026-12-08" in _reasons(config, 2)[GONE1][1]
    assert _statuses(config)[LIVE[0]] == "active"
