"""A relay that answers "550 5.1.1 user unknown" to every recipient (a Postfix that takes the
readers' domain for its own, a connector with a broken address map) is the server's fault,
not a list of dead addresses: nobody is suppressed for it, the run fails and says so, and
once the relay is mended `digest retry` sends everyone their copy, once.

Against the misbehaving SMTP server of test_smtp_faults.py, through the CLI.
"""

from __future__ import annotations

from collections import Counter

from digest.app import App
from digest.config import load_config
from tests.conftest import FeedServer, run_cli
from tests.test_smtp_faults import GOOD, FaultyServer, _rows, _send, _setup, faulty

__all__ = ["faulty"]  # the fixture, used by name

UNKNOWN = "550 5.1.1 Recipient address rejected: User unknown in local recipient table"


def _statuses(config_path) -> dict[str, str]:
    app = App.open(load_config(config_path))
    try:
        return {s.email: s.status for s in app.store.subscribers()}
    finally:
        app.close()


def test_a_relay_refusing_every_reader_as_unknown_suppresses_nobody_and_fails_the_run(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    faulty.faults.refuse = {"": UNKNOWN}  # every address
    config = _setup(feed_server, write_config, faulty.port, *GOOD)

    code, out, err = _send(config, "--gather")

    assert code == 1, (out, err)
    assert {status for status, _ in _rows(config).values()} == {"failed"}
    assert _statuses(config) == dict.fromkeys(GOOD, "active")
    assert "address suppressed" not in out + err
    assert "every message tried failed" in out + err
    assert "not suppressed" in out + err
    code, out, err = run_cli("--config", str(config), "status")
    assert code == 0, err
    assert "not suppressed" in out and "`digest retry 1`" in out, out

    faulty.faults.refuse = {}  # the relay mended
    code, out, err = run_cli("--config", str(config), "retry", "1")
    assert code == 0, (out, err)
    assert {status for status, _ in _rows(config).values()} == {"sent"}
    assert faulty.received == Counter(dict.fromkeys(GOOD, 1))


def test_a_dead_address_among_readers_the_relay_takes_is_still_suppressed(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    faulty.faults.refuse = {"ghost": UNKNOWN}
    config = _setup(feed_server, write_config, faulty.port, *GOOD, "ghost@example.org")

    code, out, err = _send(config, "--gather")

    assert code == 0, (out, err)
    assert _statuses(config)["ghost@example.org"] == "bounced"
    assert {_statuses(config)[a] for a in GOOD} == {"active"}
    assert "1 bounced: address suppressed" in out + err


UNKNOWN_READERS = tuple(f"u{i}@example.org" for i in range(1, 6))


def test_a_relay_taking_one_reader_and_refusing_the_rest_as_unknown_suppresses_nobody(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    """The relay takes the one address it knows (the admin's own, on its local domain) and
    answers "user unknown" to every other: one message taken must not make its word on the
    rest believed, or the whole list but one is suppressed."""
    faulty.faults.refuse = {"u": UNKNOWN}
    config = _setup(feed_server, write_config, faulty.port, "ana@example.org", *UNKNOWN_READERS)

    code, out, err = _send(config, "--gather")

    assert _statuses(config) == dict.fromkeys(("ana@example.org", *UNKNOWN_READERS), "active")
    rows = _rows(config)
    assert rows["ana@example.org"][0] == "sent"
    assert {rows[a][0] for a in UNKNOWN_READERS} == {"failed"}
    assert all("not suppressed" in rows[a][1] for a in UNKNOWN_READERS), rows
    assert "address suppressed" not in out + err

    faulty.faults.refuse = {}  # the relay mended
    code, out, err = run_cli("--config", str(config), "retry", "1")
    assert code == 0, (out, err)
    assert faulty.received == Counter(dict.fromkeys(("ana@example.org", *UNKNOWN_READERS), 1))


def test_a_few_dead_addresses_among_many_the_relay_takes_are_suppressed(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    """Two gone of six: an ordinary list's dead addresses, believed."""
    faulty.faults.refuse = {"ghost": UNKNOWN}
    readers = (*GOOD, "eva@example.org", "ghost1@example.org", "ghost2@example.org")
    config = _setup(feed_server, write_config, faulty.port, *readers)

    code, out, err = _send(config, "--gather")

    assert code == 0, (out, err)
    statuses = _statuses(config)
    assert statuses["ghost1@example.org"] == statuses["ghost2@example.org"] == "bounced"
    assert {statuses[a] for a in (*GOOD, "eva@example.org")} == {"active"}
