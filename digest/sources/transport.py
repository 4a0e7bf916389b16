"""The shared client's transport: httpx's own, with one small connection pool per origin.

httpcore's pool looks at every connection it holds on every request, so one pool for a
gather of hundreds of hosts costs O(connections) per request, and keeping connections alive
made that worse than reconnecting. A pool per origin (scheme, host, port) holds at most the
few connections that the per-host politeness allows, so a host's next feed reuses a
connection for the price of a dictionary look-up. Pools idle longest are closed once more
than ``max_pools`` are open, which bounds the sockets kept open whatever the number of hosts.

The pools talk to the network through ``AsyncioBackend``, asyncio's own streams in place of
httpcore's anyio backend: anyio wraps every read and write in a cancel scope and a
checkpoint and rebuilds a socket's attributes on every keep-alive check, which was a
quarter of the event loop's time in a gather of hundreds of feeds (bench/gather.py).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """httpx's verifying TLS context, built once per process (loading the CAs takes ~40 ms)."""
    return httpx.create_ssl_context()


class _Stream(httpcore.AsyncNetworkStream):
    """One connection as asyncio streams, failing with httpcore's exceptions."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes`` (b"" at the end), within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send ``buffer``, waiting within ``timeout`` while the kernel's buffer is full."""
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except (OSError, RuntimeError) as exc:  # RuntimeError: written after the close
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        """Close the connection (without waiting for the peer)."""
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """The same connection after a TLS handshake."""
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as exc:
            self._writer.close()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except (OSError, ssl.SSLError) as exc:
            self._writer.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        """What httpcore and httpx ask of a connection (see httpcore's anyio backend)."""
        if info == "is_readable":
            # Asked of an idle kept-alive connection: readable means closed by the server
            # (or garbage sent), so it must not be reused.
            reader = self._reader
            return reader.at_eof() or reader.exception() is not None or self._writer.is_closing()
        name = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        return self._writer.get_extra_info(name)


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network on asyncio streams (TCP only; TCP_NODELAY is asyncio's default)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """A connection to host:port, within ``timeout`` seconds."""
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, local_addr=local)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        """Sleep (httpcore's retry back-off)."""
        await asyncio.sleep(seconds)


class _PoolPerOrigin(httpcore.AsyncConnectionPool):
    """An httpcore pool that hands each request to the pool of its origin."""

    def __init__(self, max_pools: int, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self._options = options
        self._max_pools = max_pools
        self._pools: OrderedDict[tuple[bytes, bytes, int | None], httpcore.AsyncConnectionPool]
        self._pools = OrderedDict()

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        """Send the request through its origin's pool (made on first use)."""
        url = request.url
        key = (url.scheme, url.host, url.port)
        pool = self._pools.get(key)
        if pool is None:
            await self._close_idle_pools()
            pool = httpcore.AsyncConnectionPool(**self._options)  # type: ignore[arg-type]
            self._pools[key] = pool
        else:
            self._pools.move_to_end(key)
        return await pool.handle_async_request(request)

    async def _close_idle_pools(self) -> None:
        """Close the least recently used pools with nothing in flight, down to max_pools."""
        excess = len(self._pools) + 1 - self._max_pools
        if excess <= 0:
            return
        for key, pool in list(self._pools.items()):
            if all(c.is_idle() for c in pool.connections):
                del self._pools[key]
                await pool.aclose()
                excess -= 1
                if excess <= 0:
                    return

    async def aclose(self) -> None:
        """Close every origin's pool."""
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.aclose()
        await super().aclose()


class PoolPerOriginTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (request and error mapping unchanged) over a pool per origin.

    ``limits`` apply per origin; the gatherer bounds requests in flight overall and per host
    itself, so each origin's pool only holds what the politeness rules let through.
    ``verify`` replaces the default TLS context (tests trust their own certificate with it).
    """

    def __init__(
        self, limits: httpx.Limits, max_pools: int, verify: ssl.SSLContext | None = None
    ) -> None:
        context = verify or ssl_context()
        super().__init__(verify=context, limits=httpx.Limits(max_connections=1))
        self._pool = _PoolPerOrigin(
            max_pools,
            ssl_context=context,
            network_backend=AsyncioBackend(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )
