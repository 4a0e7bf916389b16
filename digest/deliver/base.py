"""The one interface every transport implements, and the registry that builds one by name."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from concurrent.futures import wait as all_done
from typing import Protocol, TypeVar

from digest.config import Config
from digest.errors import DigestError
from digest.records import OutgoingMessage, SendResult

# Called by a transport with each message's result as soon as it has it (from any thread):
# the batch's progress (``store.journal_progress``), which a sender killed mid-batch leaves.
Answered = Callable[[OutgoingMessage, SendResult], None]


class Sender(Protocol):
    """A transport. ``send_batch`` returns one result per message it was handed, and hands
    each to ``answered`` (if given) the moment the server's answer is in: the SMTP server's
    reply after DATA, a Maildir's file in place, an API's answer to its call.

    Per-message trouble (a refused recipient) is a SendResult; trouble that stops every
    message (no connection, login refused) raises DeliveryError so the dispatcher stops
    and leaves the remaining rows pending for the next run.
    """

    name: str
    # True: each message comes as MessageFields (subject, bodies with tokens, this
    # recipient's values and list headers), not MIME bytes; an HTTP API builds its own MIME.
    wants_fields: bool

    async def send_batch(
        self, messages: Sequence[OutgoingMessage], answered: Answered | None = None
    ) -> list[SendResult]:
        """Send each message; never raise for one recipient's problem."""
        ...

    async def aclose(self) -> None:
        """Close connections and files."""
        ...


_T = TypeVar("_T")


async def in_threads(
    executor: Executor, calls: Sequence[Callable[[], _T]], stop: threading.Event
) -> list[_T | BaseException]:
    """Each of ``calls`` run in ``executor``, their outcomes (an exception as a value).

    A cancel (Ctrl-C) cannot stop a thread, and one left running goes on handing messages to
    the server after its batch's progress is closed: mailed again by the next send. So a
    cancel sets ``stop`` (each thread finishes the message it has on the wire, and stops) and
    waits for them all, every answer handed to ``answered`` first; then it goes on."""
    running = [executor.submit(call) for call in calls]
    try:
        return await asyncio.gather(
            *(asyncio.wrap_future(f) for f in running), return_exceptions=True
        )
    except asyncio.CancelledError:
        stop.set()
        await asyncio.to_thread(all_done, running)
        raise


SenderFactory = Callable[[Config], Sender]
_REGISTRY: dict[str, SenderFactory] = {}
_Factory = TypeVar("_Factory", bound=SenderFactory)


def register(name: str) -> Callable[[_Factory], _Factory]:
    """Class or function decorator: make a transport available under ``delivery.transport``
    (a function may take more, such as a test's HTTP transport, as long as it has defaults)."""

    def add(factory: _Factory) -> _Factory:
        _REGISTRY[name] = factory
        return factory

    return add


def build_sender(config: Config) -> Sender:
    """The transport the config names."""
    name = config.delivery.transport
    if name not in _REGISTRY:
        raise DigestError(
            f"unknown delivery transport {name!r}", f"use one of: {', '.join(sorted(_REGISTRY))}"
        )
    return _REGISTRY[name](config)
