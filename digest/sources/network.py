"""The gather's network under httpx: an asyncio protocol in place of httpcore's anyio backend.

anyio wraps every read and write in a cancel scope and a checkpoint and rebuilds a socket's
attributes on every keep-alive check, which was a quarter of the event loop's time in a
gather of hundreds of feeds (bench/gather.py); asyncio's streams, tried next, still armed a
timer for every read. Connecting races a host's addresses ("happy eyeballs", RFC 8305), as
anyio did, so a broken IPv6 route does not cost the connect timeout.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import itertools
import socket
import ssl
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, cast

import httpcore
import httpx

from digest.sources.addresses import (
    ANY,
    Address,
    ip_kind,
    reachable,
)


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """httpx's verifying TLS context, built once per process (loading the CAs takes ~40 ms)."""
    return httpx.create_ssl_context()


# What a connection's stream answers, asked for this: the kind of network of the address it
# is connected to, as a frozenset (empty if the socket cannot say). The redirect rule's
# "source's own network", learnt without a look-up of its own: of the very address, not of
# every address the name resolved to, one of which the name's owner may have put inside.
KINDS = "digest.kinds"

_HIGH_WATER = 256 * 1024  # bytes received and not yet read before the socket is paused
_LOW_WATER = _HIGH_WATER // 4


class _Connection(asyncio.Protocol):
    """One connection's received bytes and state, and at most one read or write waiting."""

    def __init__(self) -> None:
        self.transport: asyncio.BaseTransport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.writing_paused = False
        self.reading_paused = False
        self._waiter: asyncio.Future[bool] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and not self.reading_paused:
            self.reading_paused = True
            self.tcp().pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof = True
        self.error = exc
        self.writing_paused = False
        self._wake()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def wait(self, timeout: float | None) -> bool:
        """Wait for the next event on the connection; False if ``timeout`` s pass first."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        if timeout is None:
            return await waiter
        expiry = loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            expiry.cancel()

    def tcp(self) -> asyncio.Transport:
        """The transport (plain or TLS) the connection is on."""
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        return cast(asyncio.Transport, self.transport)


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class _Stream(httpcore.AsyncNetworkStream):
    """One connection on an asyncio protocol, failing with httpcore's exceptions.

    A read answers from what has already arrived without waiting or arming a timer, which
    is the common case; only an empty buffer waits, with the read timeout.
    """

    def __init__(self, connection: _Connection, kinds: frozenset[str] = frozenset()) -> None:
        self._connection = connection
        self._kinds = kinds  # of the address it is connected to (KINDS)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` (b"" at the end), within ``timeout`` seconds."""
        connection = self._connection
        while not connection.buffer:
            if connection.error is not None:
                raise httpcore.ReadError(_reason(connection.error))
            if connection.eof:
                return b""
            if not await connection.wait(timeout):
                raise httpcore.ReadTimeout(f"no data in {timeout:g} s")
        data = bytes(connection.buffer[:max_bytes])
        del connection.buffer[:max_bytes]
        if connection.reading_paused and len(connection.buffer) <= _LOW_WATER:
            connection.reading_paused = False
            connection.tcp().resume_reading()
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send ``buffer``, waiting within ``timeout`` while the kernel's buffer is full."""
        if not buffer:
            return
        connection = self._connection
        transport = connection.tcp()
        if connection.error is not None or transport.is_closing():
            raise httpcore.WriteError(_reason(connection.error) if connection.error else "closed")
        transport.write(buffer)
        while connection.writing_paused:
            if not await connection.wait(timeout):
                raise httpcore.WriteTimeout(f"could not send in {timeout:g} s")
        if connection.error is not None:
            raise httpcore.WriteError(_reason(connection.error))

    async def aclose(self) -> None:
        """Close the connection (without waiting for the peer)."""
        self._connection.tcp().close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """The same connection after a TLS handshake."""
        connection = self._connection
        transport = connection.tcp()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                tls = await loop.start_tls(
                    transport, connection, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            transport.close()
            raise httpcore.ConnectTimeout(f"no TLS handshake in {timeout:g} s") from exc
        except (OSError, ssl.SSLError) as exc:
            transport.close()
            raise httpcore.ConnectError(_reason(exc)) from exc
        if tls is None:  # the loop gave up on the handshake without an error
            raise httpcore.ConnectError("TLS could not be started")
        connection.transport = tls
        return self

    def get_extra_info(self, info: str) -> Any:
        """What httpcore and httpx ask of a connection (see httpcore's anyio backend)."""
        connection = self._connection
        transport = connection.tcp()
        if info == KINDS:
            return self._kinds
        if info == "is_readable":
            # Asked of an idle kept-alive connection: anything readable (the server's close,
            # or bytes nobody asked for) means it must not be reused.
            return (
                connection.eof
                or connection.error is not None
                or bool(connection.buffer)
                or transport.is_closing()
            )
        name = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        return transport.get_extra_info(name)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


_Connected = tuple[asyncio.BaseTransport, _Connection]

HAPPY_EYEBALLS_DELAY = 0.25  # s before the next address is tried (RFC 8305's default)


async def _resolve(host: str, port: int) -> list[Address]:
    """host's addresses for TCP, alternating families, first family first (RFC 8305 4)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    by_family: dict[int, list[Address]] = {}
    for family, _, _, _, sockaddr in infos:
        address = (family, str(sockaddr[0]), int(sockaddr[1]))
        if address not in by_family.setdefault(family, []):
            by_family[family].append(address)
    interleaved = itertools.zip_longest(*by_family.values())
    return [address for group in interleaved for address in group if address is not None]


async def _connect_first(
    addresses: list[Address], local: tuple[str, int] | None, delay: float
) -> _Connected:
    """A connection to the first of ``addresses`` to answer ("happy eyeballs", RFC 8305).

    Attempts start ``delay`` s apart, or at once when one fails; the first to connect wins
    and the others are cancelled (and closed, should one connect meanwhile). Trying one
    address after another under one timeout, as ``create_connection`` does, lets an IPv6
    route that drops packets use up the whole connect timeout before IPv4 is tried.
    """
    loop = asyncio.get_running_loop()

    async def attempt(address: Address) -> _Connected:
        family, ip, port = address
        return await loop.create_connection(_Connection, ip, port, family=family, local_addr=local)

    if not addresses:
        raise OSError("the name resolved to no address")
    if len(addresses) == 1:
        return await attempt(addresses[0])
    started: list[asyncio.Task[_Connected]] = []
    winner: asyncio.Task[_Connected] | None = None
    try:
        winner = await _race(list(addresses), attempt, delay, started)
        return winner.result()
    finally:
        await _cancel_losers(started, winner)


async def _race(
    waiting: list[Address],
    attempt: Callable[[Address], Coroutine[Any, Any, _Connected]],
    delay: float,
    started: list[asyncio.Task[_Connected]],
) -> asyncio.Task[_Connected]:
    """The first attempt to connect, the next one started every ``delay`` s or as soon as
    one fails; each attempt started is added to ``started``. OSError when all fail."""
    running: set[asyncio.Task[_Connected]] = set()
    errors: list[OSError] = []
    while waiting or running:
        if waiting:
            task = asyncio.create_task(attempt(waiting.pop(0)))
            running.add(task)
            started.append(task)
        done, running = await asyncio.wait(
            running, timeout=delay if waiting else None, return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            error = task.exception()
            if error is None:
                return task
            if not isinstance(error, OSError):
                raise error
            errors.append(error)
    if len(errors) == 1:
        raise errors[0]
    raise OSError(f"all {len(errors)} addresses failed: " + "; ".join(map(_reason, errors)))


async def _cancel_losers(
    started: list[asyncio.Task[_Connected]], winner: asyncio.Task[_Connected] | None
) -> None:
    """Cancel every attempt but the winner's, and close a connection one made meanwhile."""
    losers = [task for task in started if task is not winner]
    for task in losers:
        task.cancel()
    if losers:
        await asyncio.wait(losers)
    for task in losers:  # one may have connected before its cancel arrived
        if not task.cancelled() and task.exception() is None:
            task.result()[0].close()


def _peer_kind(transport: asyncio.BaseTransport) -> frozenset[str]:
    """The kind of network of the address ``transport`` is connected to (``KINDS``)."""
    peer = transport.get_extra_info("peername")
    try:
        return frozenset({ip_kind(ipaddress.ip_address(str(peer[0]).partition("%")[0]))})
    except (TypeError, IndexError, ValueError):  # no peer (closed at once), or not IP
        return frozenset()


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network on an asyncio protocol (TCP only; TCP_NODELAY is asyncio's default),
    connecting only to addresses on the kinds of network ``reach`` (``addresses.reachable``)."""

    def __init__(self, reach: frozenset[str] = ANY) -> None:
        self.reach = reach

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A connection to host:port, within ``timeout`` seconds, its addresses raced: those
        host resolves to once, here, judged and connected to (no second look-up)."""
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                addresses = reachable(host, await _resolve(host, port), self.reach)
                transport, connection = await _connect_first(addresses, local, HAPPY_EYEBALLS_DELAY)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"no connection in {timeout:g} s") from exc
        except OSError as exc:
            raise httpcore.ConnectError(_reason(exc)) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(connection, _peer_kind(transport))

    async def sleep(self, seconds: float) -> None:
        """Sleep (httpcore's retry back-off)."""
        await asyncio.sleep(seconds)
