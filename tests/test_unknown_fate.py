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
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.app import App
from digest.config import Config, load_config
from digest.errors import DeliveryError
from digest.records import SendResult
from tests.conftest import FeedServer, run_cli
from tests.test_providers import (
    LIMITS,
    OK,
    PROVIDERS,
    SPECS,
    Answer,
    Api,
    ApiServer,
    _statuses,
    config,  # noqa: F401  (a fixture)
    feeds,  # noqa: F401  (a fixture)
    messages,
    resend_ok,
    send,
    set_api_keys,
    waits,
)
from tests.test_smtp_faults import GOOD, Faults, FaultyServer, _rows, _send, _setup

needs_specs = pytest.mark.skipif(
    not SPECS.is_dir(), reason=f"the shared specs are not here ({SPECS})"
)
# The providers whose send API takes no idempotency key (see ../shared/specs/README.md).
WITHOUT_KEYS = [p for p in PROVIDERS if p != "resend"]

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


def _edition_id(config_path: Path) -> int:
    app = App.open(load_config(config_path))
    try:
        (edition,) = app.store.editions()
        assert edition.id is not None
        return edition.id
    finally:
        app.close()


def _the_good_sent_and_one_failed(config_path: Path, address: str) -> tuple[str, str]:
    """Send with a gather: every GOOD reader's row is sent and ``address``'s failed; the
    command's stderr and that row's reason."""
    code, _, err = _send(config_path, "--gather")
    assert code == 0, err
    rows = _rows(config_path)
    assert {a: rows[a][0] for a in GOOD} == dict.fromkeys(GOOD, "sent")
    status, reason = rows[address]
    assert status == "failed"
    return err, reason


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_connection_lost_after_the_final_dot_fails_the_message_and_never_sends_it_again(
    feed_server: FeedServer, write_config, losing: LosesTheReplyToTheDot, pipelining: bool
) -> None:
    losing.faults.pipelining = pipelining
    losing.lose = {"lost": 1}
    config_path = _setup(feed_server, write_config, losing.port, *GOOD, "lost@example.org")

    err, reason = _the_good_sent_and_one_failed(config_path, "lost@example.org")
    assert reason.startswith("connection lost after the message was sent")
    assert "fate unknown" in reason
    assert "Message-ID <" in reason and "digest retry" in reason
    assert "lost@example.org: failed: connection lost after the message was sent" in err
    assert losing.drops == 1

    code, _, err = _send(config_path)  # a later run leaves the failed row alone
    assert code == 0, err
    assert _rows(config_path)["lost@example.org"][0] == "failed"
    assert losing.received == Counter(dict.fromkeys([*GOOD, "lost@example.org"], 1))


def test_digest_retry_sends_a_message_of_unknown_fate_the_server_never_queued(
    feed_server: FeedServer, write_config, losing: LosesTheReplyToTheDot
) -> None:
    losing.lose = {"lost": 1}
    losing.queue_then_lose = False  # the server died before queuing it: its log says so
    config_path = _setup(feed_server, write_config, losing.port, "lost@example.org")
    code, _, err = _send(config_path, "--gather")
    assert code == 1, err  # its one message failed, none was sent: the run wants the admin
    assert f"`digest retry {_edition_id(config_path)}`" in err
    assert _rows(config_path)["lost@example.org"][0] == "failed"
    assert not losing.received

    code, out, err = run_cli("--config", str(config_path), "retry", str(_edition_id(config_path)))
    assert code == 0, out + err
    assert _rows(config_path)["lost@example.org"][0] == "sent"
    assert losing.received == Counter({"lost@example.org": 1})


def test_no_reply_to_the_final_dot_within_the_timeout_fails_the_message_and_never_resends_it(
    feed_server: FeedServer, write_config, losing: LosesTheReplyToTheDot
) -> None:
    losing.stall = {"slow": 1}  # the server queued it, then took longer than timeout_seconds
    config_path = _setup(feed_server, write_config, losing.port, *GOOD, "slow@example.org")

    _, reason = _the_good_sent_and_one_failed(config_path, "slow@example.org")
    assert reason.startswith("no reply within 1 s after the message was sent")
    assert "fate unknown" in reason and "digest retry" in reason

    code, _, err = _send(config_path)
    assert code == 0, err
    assert losing.received == Counter(dict.fromkeys([*GOOD, "slow@example.org"], 1))


# --- HTTP API providers ----------------------------------------------------------------------


@needs_specs
@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_auth_error_on_a_later_call_carries_the_results_of_the_calls_before_it(
    provider: str,
    config: Config,  # noqa: F811
) -> None:
    limit = LIMITS[provider]

    def revoked_after_the_first_call(doc: Any) -> Answer:
        if len(api.requests) > 1:
            return Answer(401, {"message": "API key revoked"})
        return OK[provider](doc)

    api = Api(provider, revoked_after_the_first_call)
    with pytest.raises(DeliveryError) as caught:
        send(provider, api, config, messages(limit + 1))  # calls of the limit, then 1
    assert [p for p in api.problems if p.startswith("request")] == []
    assert len(api.requests) == 2
    results = [r for r in caught.value.results if isinstance(r, SendResult)]
    assert len(results) == len(caught.value.results)
    assert [r.delivery_id for r in results] == list(range(1, limit + 1))
    assert {r.status for r in results} == {"sent"}


def _import_subscribers(config_path: Path, count: int) -> list[str]:
    addresses = [f"reader{n}@example.org" for n in range(count)]
    csv = config_path.parent / "people.csv"
    csv.write_text("email\n" + "\n".join(addresses) + "\n", encoding="utf-8")
    code, out, err = run_cli("--config", str(config_path), "subscribers", "import", str(csv))
    assert code == 0, out + err
    return addresses


def _api_config(config_path: Path, provider: str, url: str, *more: str) -> None:
    """Point ``[delivery.PROVIDER]`` at the local server (with ``more`` lines)."""
    text = config_path.read_text()
    table = f'[delivery.{provider}]\nbase_url = "{url}"\n' + "".join(f"{m}\n" for m in more)
    config_path.write_text(text + "\n" + table)


@needs_specs
def test_rows_accepted_before_the_key_was_refused_are_recorded_sent_and_the_rest_wait(
    feeds: list[tuple[str, str]],  # noqa: F811
    write_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_api_keys(monkeypatch)
    accepted: Counter[str] = Counter()
    revoked = [True]

    def reply(doc: Any) -> Answer:
        if revoked[0] and accepted:  # the key is revoked after Resend took the first call
            return Answer(401, {"statusCode": 401, "name": "invalid_api_key", "message": "bad"})
        accepted.update(m["to"][0] for m in doc)
        return resend_ok(doc)

    api = Api("resend", reply)
    server = ApiServer(api)
    try:
        config_path = write_config(feeds, transport="resend")
        _api_config(config_path, "resend", server.url)
        addresses = _import_subscribers(config_path, 150)  # one batch of 150: calls of 100 and 50

        code, _, err = run_cli("--config", str(config_path), "send", "--gather")
        assert code == 1 and "resend refused the API key" in err
        statuses = _statuses(config_path)
        assert Counter(statuses.values()) == Counter({"sent": 100, "pending": 50})
        assert {a for a, s in statuses.items() if s == "sent"} == set(accepted)

        revoked[0] = False  # a new key
        code, _, err = run_cli("--config", str(config_path), "send")
        assert code == 0, err
        assert set(_statuses(config_path).values()) == {"sent"}
        assert accepted == Counter(dict.fromkeys(addresses, 1))
        assert len(api.requests) == 3 and api.problems == []
    finally:
        server.close()


def _lost(answer: str) -> Exception | Answer:
    """How the answer to a request that went out is lost."""
    if answer.startswith("HTTP "):
        return Answer(int(answer[5:]), {"message": "Internal Server Error"})
    return {
        "ReadTimeout": httpx.ReadTimeout("timed out"),
        "WriteTimeout": httpx.WriteTimeout("timed out"),
        "RemoteProtocolError": httpx.RemoteProtocolError("Server disconnected"),
        "ReadError": httpx.ReadError("Connection reset by peer"),
    }[answer]


@needs_specs
@pytest.mark.parametrize("provider", WITHOUT_KEYS)
@pytest.mark.parametrize(
    "answer",
    ["ReadTimeout", "WriteTimeout", "RemoteProtocolError", "ReadError", "HTTP 500", "HTTP 503"],
)
def test_a_lost_answer_fails_the_rows_of_a_provider_without_idempotency_keys(
    provider: str,
    answer: str,
    config: Config,  # noqa: F811
) -> None:
    def accepts_then_loses_the_answer(doc: Any) -> Answer:
        lost = _lost(answer)
        if isinstance(lost, Exception):
            raise lost
        return lost

    api = Api(provider, accepts_then_loses_the_answer)
    results = send(provider, api, config, messages(3))
    assert [p for p in api.problems if p.startswith("request")] == []
    assert len(api.requests) == 1 and waits == [], "a call that may have been taken is not repeated"
    assert [r.status for r in results] == ["failed"] * 3
    reason = results[0].detail
    assert f"{provider} may have accepted these messages (fate unknown" in reason
    assert f"look for them in {provider}'s activity log" in reason and "digest retry" in reason


@needs_specs
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("never_sent", [httpx.ConnectError, httpx.ConnectTimeout])
def test_a_request_that_never_reached_the_provider_is_retried(
    provider: str,
    never_sent: type[httpx.TransportError],
    config: Config,  # noqa: F811
) -> None:
    def unreachable_once(doc: Any) -> Answer:
        if len(api.requests) == 1:
            raise never_sent("no connection")
        return OK[provider](doc)

    api = Api(provider, unreachable_once)
    results = send(provider, api, config, messages(2))
    assert [r.status for r in results] == ["sent", "sent"]
    assert len(api.requests) == 2 and len(waits) == 1


@needs_specs
def test_resend_retries_a_lost_answer_with_the_same_idempotency_key(
    config: Config,  # noqa: F811
) -> None:
    def loses_two_answers(doc: Any) -> Answer:
        if len(api.requests) == 1:
            raise httpx.ReadTimeout("timed out")
        if len(api.requests) == 2:
            return Answer(500, {"message": "Internal Server Error"})
        return resend_ok(doc)

    api = Api("resend", loses_two_answers)
    results = send("resend", api, config, messages(2))
    assert [r.status for r in results] == ["sent", "sent"]
    assert len({headers["idempotency-key"] for headers, _ in api.requests}) == 1
    assert len(api.requests) == 3


@needs_specs
def test_resend_fails_the_rows_when_every_retry_loses_its_answer(
    config: Config,  # noqa: F811
) -> None:
    """Deferred, they would go out next run in other batches under other keys: a repeat
    Resend would not recognise."""

    def always_times_out(doc: Any) -> Answer:
        raise httpx.ReadTimeout("timed out")

    api = Api("resend", always_times_out)
    results = send("resend", api, config, messages(2))
    assert [r.status for r in results] == ["failed", "failed"]
    assert "fate unknown; its answers were lost on every retry" in results[0].detail
    assert len({headers["idempotency-key"] for headers, _ in api.requests}) == 1


@needs_specs
@pytest.mark.parametrize("provider", WITHOUT_KEYS)
def test_a_batch_whose_answer_timed_out_is_failed_not_sent_again_by_a_later_run(
    provider: str,
    feeds: list[tuple[str, str]],  # noqa: F811
    write_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_api_keys(monkeypatch)

    def slow_first_answer(doc: Any) -> Answer:
        if len(api.requests) == 1:
            time.sleep(1.5)  # accepted, but the answer comes after the client gave up
        return OK[provider](doc)

    api = Api(provider, slow_first_answer)
    server = ApiServer(api)
    # Its late answer meets a closed connection: the broken pipe is the point, not news.
    server.httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
    try:
        config_path = write_config(feeds, transport=provider)
        more = ['domain = "mg.example.org"'] if provider == "mailgun" else []
        _api_config(config_path, provider, server.url, "timeout_seconds = 0.5", *more)
        addresses = _import_subscribers(config_path, 3)

        code, _, err = run_cli("--config", str(config_path), "send", "--gather")
        assert code == 1, err  # every message failed, none was sent: the run wants the admin
        assert _statuses(config_path) == dict.fromkeys(addresses, "failed")
        assert f"{addresses[0]}: failed: {provider} did not answer in time" in err
        assert "fate unknown" in err and "digest retry" in err

        code, _, err = run_cli("--config", str(config_path), "send")
        assert code == 0, err
        assert len(api.requests) == 1, "a later run sent the batch again"
        assert api.problems == []
    finally:
        server.close()
