"""The shared client's transport: httpx's own, with one small connection pool per origin.

httpcore's pool looks at every connection it holds on every request, so one pool for a
gather of hundreds of hosts costs O(connections) per request, and keeping connections alive
made that worse than reconnecting. A pool per origin (scheme, host, port) holds at most the
few connections that the per-host politeness allows, so a host's next feed reuses a
connection for the price of a dictionary look-up. Pools idle longest are closed once more
than ``max_pools`` are open, which bounds the sockets kept open whatever the number of hosts.
"""

from __future__ import annotations

import functools
import ssl
from collections import OrderedDict

import httpcore
import httpx


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """httpx's verifying TLS context, built once per process (loading the CAs takes ~40 ms)."""
    return httpx.create_ssl_context()


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
    """

    def __init__(self, limits: httpx.Limits, max_pools: int) -> None:
        context = ssl_context()
        super().__init__(verify=context, limits=httpx.Limits(max_connections=1))
        self._pool = _PoolPerOrigin(
            max_pools,
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )
