"""A message whose fate is unknown is failed with a reason, never sent again on its own.

When a transport cannot tell whether the other side took a message (the line died, or went
silent, after SMTP's final dot; an API's answer was lost after the request went out),
sending it again could mail the reader twice. These tests play peers that take a message and
then lose the answer, and check that each message reaches the peer once, that its row ends
failed with a reason the operator can act on (look it up, then ``digest retry``), and that a
message that surely never arrived is still tried again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.app import App
from digest.config import load_config
from tests.conftest import FeedServer, run_cli
from tests.test_smtp_faults import GOOD, Faults, FaultyServer, _rows, _send, _setup

# --- SMTP ------------------------------------------------------------------------------------


class LosesTheReplyToTheDot(FaultyServer):
    """An SMTP server that reads a message up to its final dot and then, for the address
    prefixes in ``lose`` (and as many times as they say), lets the line die instead of
    answering 250; for those in ``stall`` it goes silent. ``queue_then_lose``: whether it
    had queued the message (counted in ``received``) before the line died."""

    def __init__(self) -> None:
        super().__init__()
        self.lose: dict[str, int] = {}
        self.stall: dict[str, int] = {}
        self.queue_then_lose = True

    async def _converse(
        self, f: Faults, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        def say(line: str) -> None:
            writer.write(line.encode() + b"\r\n")

        say("220 lose.test ESMTP")
        rcpts: list[str] = []
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                say("250-lose.test" + ("\r\n250-PIPELINING" if f.pipelining else ""))
                say("250 8BITMIME")
            elif verb == b"MAIL":
                rcpts = []
                say("250 2.1.0 OK")
            elif verb == b"RCPT":
                rcpts.append(line.decode().split(":", 1)[1].strip().strip("<>"))
                say("250 2.1.5 OK")
            elif verb == b"DATA":
                say("354 End data with <CR><LF>.<CR><LF>")
                await writer.drain()
                await reader.readuntil(b"\r\n.\r\n")
                if _due(self.lose, rcpts):
                    if self.queue_then_lose:
                        self.received.update(rcpts)
                    self.drops += 1
                    writer.transport.abort()  # the 250 never leaves
                    return
                self.received.update(rcpts)
                if _due(self.stall, rcpts):
                    await reader.read()  # silent until the client gives up
                    return
                say("250 2.0.0 Queued")
            elif verb == b"QUIT":
                say("221 Bye")
                await writer.drain()
                return
            else:
                say("250 OK")
            await writer.drain()


def _due(faults: dict[str, int], rcpts: list[str]) -> bool:
    """Whether this message's first recipient has a fault left to play; uses one up."""
    prefix = next((p for p, n in faults.items() if n > 0 and rcpts[0].startswith(p)), None)
    if prefix is None:
        return False
    faults[prefix] -= 1
    return True


@pytest.fixture
def losing() -> Iterator[LosesTheReplyToTheDot]:
    server = LosesTheReplyToTheDot()
    server.start()
    yield server
    server.stop()


def _edition_id(config: Path) -> int:
    app = App.open(load_config(config))
    try:
        (edition,) = app.store.editions()
        assert edition.id is not None
        return edition.id
    finally:
        app.close()


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_connection_lost_after_the_final_dot_fails_the_message_and_never_sends_it_again(
    feed_server: FeedServer, write_config, losing: LosesTheReplyToTheDot, pipelining: bool
) -> None:
    losing.faults.pipelining = pipelining
    losing.lose = {"lost": 1}
    config = _setup(feed_server, write_config, losing.port, *GOOD, "lost@example.org")

    code, _, err = _send(config, "--gather")
    assert code == 0, err
    rows = _rows(config)
    assert {a: rows[a][0] for a in GOOD} == dict.fromkeys(GOOD, "sent")
    status, reason = rows["lost@example.org"]
    assert status == "failed"
    assert reason.startswith("connection lost after the message was sent")
    assert "fate unknown" in reason
    assert "Message-ID <" in reason and "digest retry" in reason
    assert "lost@example.org: failed: connection lost after the message was sent" in err
    assert losing.drops == 1

    code, _, err = _send(config)  # a later run leaves the failed row alone
    assert code == 0, err
    assert _rows(config)["lost@example.org"][0] == "failed"
    assert losing.received == Counter(dict.fromkeys([*GOOD, "lost@example.org"], 1))


def test_digest_retry_sends_a_message_of_unknown_fate_the_server_never_queued(
    feed_server: FeedServer, write_config, losing: LosesTheReplyToTheDot
) -> None:
    losing.lose = {"lost": 1}
    losing.queue_then_lose = False  # the server died before queuing it: its log says so
    config = _setup(feed_server, write_config, losing.port, "lost@example.org")
    code, _, err = _send(config, "--gather")
    assert code == 0, err
    assert _rows(config)["lost@example.org"][0] == "failed"
    assert not losing.received

    code, out, err = run_cli("--config", str(config), "retry", str(_edition_id(config)))
    assert code == 0, out + err
    assert _rows(config)["lost@example.org"][0] == "sent"
    assert losing.received == Counter({"lost@example.org": 1})


def test_no_reply_to_the_final_dot_within_the_timeout_fails_the_message_and_never_resends_it(
    feed_server: FeedServer, write_config, losing: LosesTheReplyToTheDot
) -> None:
    losing.stall = {"slow": 1}  # the server queued it, then took longer than timeout_seconds
    config = _setup(feed_server, write_config, losing.port, *GOOD, "slow@example.org")

    code, _, err = _send(config, "--gather")
    assert code == 0, err
    rows = _rows(config)
    assert {a: rows[a][0] for a in GOOD} == dict.fromkeys(GOOD, "sent")
    status, reason = rows["slow@example.org"]
    assert status == "failed"
    assert reason.startswith("no reply within 1 s after the message was sent")
    assert "fate unknown" in reason and "digest retry" in reason

    code, _, err = _send(config)
    assert code == 0, err
    assert losing.received == Counter(dict.fromkeys([*GOOD, "slow@example.org"], 1))
