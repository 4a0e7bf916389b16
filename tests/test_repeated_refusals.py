"""A "550 5.1.1 user unknown" that a run doubts (the server refused more of its readers so
than it took) is believed when the same reader is refused so again on a later day while
the server accepts others: a small list's dead addresses end, instead of failing every
edition for ever. A relay that accepts no one, or refuses too many at once, stays doubted,
and the run's output and `digest status` say so with the fix.

Through the CLI, a day apart on a set clock, against a real aiosmtpd server that refuses
the chosen readers at RCPT; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.app import App
from digest.clock import ManualClock
from digest.config import load_config
from tests.conftest import FeedServer, free_port, rss, run_cli
from tests.pg import fresh_database

DAY_ONE = datetime(2026, 12, 7, 7, 5, tzinfo=UTC)
ANA, GONE1, GONE2 = "ana@example.org", "gone1@example.org", "gone2@example.org"


class Relay:
    """An aiosmtpd handler that refuses the addresses starting with ``refused`` as unknown
    and counts every RCPT it was asked, per address."""

    def __init__(self) -> None:
        self.refused: tuple[str, ...] = ()
        self.asked: list[str] = []
        self.port = 0  # set once it listens

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.asked.append(address)
        if address.startswith(self.refused):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 2.0.0 Queued"


@pytest.fixture
def relay() -> Iterator[Relay]:
    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for the config's own SQLite file, or a fresh PostgreSQL database (skipped
    without a server)."""
    if request.param == "sqlite":
        yield None
        return
    with fresh_database() as url:
        yield url


@pytest.fixture
def setup(write_config, feed_server: FeedServer, relay: Relay, database: str | None):
    """A daily digest that goes out even with no news, on ``database``, mailing through
    the relay, with the given readers subscribed."""

    def make(*readers: str, schedule: str = "0 7 * * *") -> Path:
        config = write_config(
            [("Wire", feed_server.add("/f.xml", rss([])))],
            transport="smtp",
            smtp_port=relay.port,
            schedule=schedule,
        )
        text = config.read_text().replace(
            "lookback_hours = 48", "lookback_hours = 48\nsend_empty = true"
        )
        if database is not None:
            text = text.replace('"sqlite:///digest.db"', f'"{database}"')
        config.write_text(text)
        for reader in readers:
            assert run_cli("--config", str(config), "subscribers", "add", reader)[0] == 0
        return config

    return make


def _send(config: Path, at: datetime) -> tuple[int, str]:
    code, out, err = run_cli("--config", str(config), "send", clock=ManualClock(at))
    return code, out + err


def _statuses(config: Path) -> dict[str, str]:
    app = App.open(load_config(config))
    try:
        return {s.email: s.status for s in app.store.subscribers()}
    finally:
        app.close()


def _reasons(config: Path, edition: int) -> dict[str, tuple[str, str]]:
    """Each reader's row of ``edition``: (state, reason)."""
    app = App.open(load_config(config))
    try:
        return {s.email: (d.status, d.error or "") for d, s in app.store.deliveries(edition)}
    finally:
        app.close()


def test_two_gone_of_three_are_suppressed_when_refused_again_the_next_day(
    setup, relay: Relay
) -> None:
    config = setup(ANA, GONE1, GONE2)
    relay.refused = ("gone",)

    code, said = _send(config, DAY_ONE)  # 2 refused > 1 taken: doubted
    assert code == 0, said
    assert _statuses(config) == dict.fromkeys((ANA, GONE1, GONE2), "active")
    first = _reasons(config, 1)
    assert {first[a][0] for a in (GONE1, GONE2)} == {"failed"}
    assert all("not suppressed" in first[a][1] for a in (GONE1, GONE2)), first

    code, said = _send(config, DAY_ONE + timedelta(days=1))  # the same two, ana taken
    assert code == 0, said
    assert _statuses(config) == {ANA: "active", GONE1: "bounced", GONE2: "bounced"}
    second = _reasons(config, 2)
    assert second[ANA][0] == "sent"
    for gone in (GONE1, GONE2):
        assert second[gone][0] == "failed"
        assert (
            "refused as unknown on 2026-12-07 and 2026-12-08 while the server accepted others"
            in second[gone][1]
        ), second
    assert "2 bounced: address suppressed" in said

    relay.asked.clear()
    code, said = _send(config, DAY_ONE + timedelta(days=2))
    assert code == 0, said
    assert relay.asked == [ANA]  # the third edition is not sent to them
    assert set(_reasons(config, 3)) == {ANA}


def test_a_relay_refusing_everyone_for_three_editions_suppresses_nobody_and_says_so(
    setup, relay: Relay
) -> None:
    config = setup(ANA, GONE1, GONE2)
    relay.refused = ("",)  # every address

    outputs = []
    for day in range(3):
        code, said = _send(config, DAY_ONE + timedelta(days=day))
        assert code == 1, said  # nothing sent: the run fails, every day
        outputs.append(said)

    assert _statuses(config) == dict.fromkeys((ANA, GONE1, GONE2), "active")
    fix = (
        "3 refused as unknown again while the server accepted no one: if those addresses "
        "are really gone, `digest subscribers remove EMAIL` for each (ana@example.org, "
        "gone1@example.org, gone2@example.org); if not, check the relay"
    )
    assert "refused as unknown again" not in outputs[0]  # the first day has nothing to repeat
    assert fix in outputs[1] and fix in outputs[2], outputs

    code, out, err = run_cli(
        "--config", str(config), "status", clock=ManualClock(DAY_ONE + timedelta(days=2))
    )
    assert code == 0, err
    assert f"edition 3: {fix}" in out and f"edition 2: {fix}" in out, out
    assert "edition 1: 3 refused as unknown again" not in out
    code, out, err = run_cli(
        "--config", str(config), "status", "--json", clock=ManualClock(DAY_ONE + timedelta(days=2))
    )
    assert code == 0, err
    newest = json.loads(out)["editions"][0]
    assert newest["still_doubted"] == {
        "refused as unknown again while the server accepted no one": {
            "rows": 3,
            "emails": [ANA, GONE1, GONE2],
        }
    }
    each = _reasons(config, 3)[GONE1][1]
    assert "`digest subscribers remove gone1@example.org`; if not, check the relay" in each

    relay.refused = ()  # the relay mended: everyone gets the edition
    code, said = _send(config, DAY_ONE + timedelta(days=3))
    assert code == 0, said
    assert {state for state, _ in _reasons(config, 4).values()} == {"sent"}


def test_a_refusal_once_then_an_acceptance_suppresses_nobody(setup, relay: Relay) -> None:
    """Refused, accepted the next day, refused again the day after: the acceptance between
    ends the evidence, so the third day's refusal is doubted as a first one."""
    config = setup(ANA, GONE1, GONE2)
    relay.refused = ("gone",)
    assert _send(config, DAY_ONE)[0] == 0
    relay.refused = ()
    assert _send(config, DAY_ONE + timedelta(days=1))[0] == 0
    assert {state for state, _ in _reasons(config, 2).values()} == {"sent"}
    relay.refused = ("gone",)

    code, said = _send(config, DAY_ONE + timedelta(days=2))

    assert code == 0, said
    assert _statuses(config) == dict.fromkeys((ANA, GONE1, GONE2), "active")
    third = _reasons(config, 3)
    assert all("not suppressed" in third[a][1] for a in (GONE1, GONE2)), third
    assert "refused as unknown again" not in said


def test_a_refusal_again_the_same_day_is_not_another_days_evidence(setup, relay: Relay) -> None:
    """A twice-daily digest: the evening's refusal repeats the morning's too soon (a fault
    of the relay may last the day); the next morning's, a day after the first, is believed."""
    config = setup(ANA, GONE1, GONE2, schedule="0 7,19 * * *")
    relay.refused = ("gone",)
    assert _send(config, DAY_ONE)[0] == 0

    code, said = _send(config, DAY_ONE + timedelta(hours=12))
    assert code == 0, said
    assert _statuses(config)[GONE1] == "active"
    assert "not suppressed" in _reasons(config, 2)[GONE1][1]

    code, said = _send(config, DAY_ONE + timedelta(days=1))
    assert code == 0, said
    assert _statuses(config) == {ANA: "active", GONE1: "bounced", GONE2: "bounced"}
    assert "on 2026-12-07 and 2026-12-08" in _reasons(config, 3)[GONE1][1]


UNKNOWN_READERS = tuple(f"u{i}@example.org" for i in range(1, 6))


def test_a_relay_refusing_all_but_one_on_two_days_still_suppresses_nobody(
    setup, relay: Relay
) -> None:
    """More than 3 refused as unknown in a run, more than taken: a relay that knows only
    the admin's own address looks so every day, and its word would end the list."""
    config = setup(ANA, *UNKNOWN_READERS)
    relay.refused = ("u",)
    assert _send(config, DAY_ONE)[0] == 0

    code, said = _send(config, DAY_ONE + timedelta(days=1))

    assert code == 0, said
    assert _statuses(config) == dict.fromkeys((ANA, *UNKNOWN_READERS), "active")
    assert (
        "5 refused as unknown again along with too many others at once: if those addresses "
        "are really gone, `digest subscribers remove EMAIL` for each" in said
    ), said
    reason = _reasons(config, 2)["u1@example.org"][1]
    assert "(5 in the run, more than it accepted and more than 3), as on 2026-12-07" in reason
    code, out, err = run_cli(
        "--config", str(config), "status", clock=ManualClock(DAY_ONE + timedelta(days=1))
    )
    assert code == 0, err
    assert "edition 2: 5 refused as unknown again along with too many others" in out, out
