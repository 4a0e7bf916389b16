"""A run's refusals as unknown are weighed against its whole edition's answers, not its own
alone: an edition goes out in several runs (the workers sending it, the retry of its
deferred rows), and a run of one row left over, refused as unknown by a relay that refuses
everyone, was a "lone bounce" believed, its reader suppressed (one more each such run).

Through the CLI against a real aiosmtpd relay; on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta

from aiosmtpd.smtp import SMTP, Envelope, Session

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
