"""The shared client's transport: httpx's own, with one small connection pool per origin.

httpcore's pool looks at every connection it holds on every request, so one pool for a
gather of hundreds of hosts costs O(connections) per request, and keeping connections alive
made that worse than reconnecting. A pool per origin (scheme, host, port) holds at most the
few connections that the per-host politeness allows, so a host's next feed reuses a
connection for the price of a dictionary look-up. Pools idle longest are closed once more
than ``max_pools`` are open, which bounds the sockets kept open whatever the number of hosts.

The pools talk to the network through ``network.AsyncioBackend``, a small asyncio protocol
in place of httpcore's anyio backend (see that module for why), which connects a request
only to addresses on the kinds of network its ``REACH`` extension allows (a redirect hop's:
see addresses.py); requests that may reach different kinds never share a connection.
"""

from __future__ import annotations

import functools
import logging
import ssl
import urllib.request
from collections import Counter, OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import cast

import httpcore
import httpx

from digest.sources.addresses import ANY
from digest.sources.network import AsyncioBackend, ssl_context

log = logging.getLogger("digest.sources")


# A request's extension (httpx passes it on to httpcore): the frozenset of kinds of network
# its connection may reach (addresses.hop_reach); without it, any (addresses.ANY).
REACH = "digest.reach"

_Origin = tuple[bytes, bytes, int | None, frozenset[str]]


class _PoolPerOrigin(httpcore.AsyncConnectionPool):
    """An httpcore pool that hands each request to the pool of its origin.

    A pool is closed only when no request on it is in flight, counted here from the moment
    a request arrives until its response body is closed. Asking the pool's connections
    instead (``is_idle()``) misses a request that httpcore has just handed a kept-alive
    connection: the connection says idle until that request runs, after a yield.
    """

    def __init__(self, max_pools: int, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self._options = options
        self._max_pools = max_pools
        self._pools: OrderedDict[_Origin, httpcore.AsyncConnectionPool] = OrderedDict()
        self._in_flight: Counter[_Origin] = Counter()

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        """Send the request through its origin's pool (made on first use)."""
        url = request.url
        reach = request.extensions.get(REACH, ANY)
        key = (url.scheme, url.host, url.port, reach)
        # Counted before any await, so a pool made here is never closed under this request.
        self._in_flight[key] += 1
        try:
            pool = self._pools.get(key)
            if pool is None:
                options = {**self._options, "network_backend": AsyncioBackend(reach)}
                pool = httpcore.AsyncConnectionPool(**options)  # type: ignore[arg-type]
                self._pools[key] = pool
                await self._close_idle_pools()
            else:
                self._pools.move_to_end(key)
            response = await pool.handle_async_request(request)
        except BaseException:
            self._done(key)
            raise
        response.stream = _CountedStream(response.stream, functools.partial(self._done, key))
        return response

    def _done(self, key: _Origin) -> None:
        self._in_flight[key] -= 1
        if self._in_flight[key] <= 0:
            del self._in_flight[key]

    async def _close_idle_pools(self) -> None:
        """Close the least recently used pools with nothing in flight, down to max_pools."""
        excess = len(self._pools) - self._max_pools
        if excess <= 0:
            return
        for key, pool in list(self._pools.items()):
            if self._in_flight[key] == 0 and self._pools.get(key) is pool:
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


class _CountedStream:
    """A response body that reports once when it is closed: its request is then done."""

    def __init__(self, stream: Iterable[bytes] | AsyncIterable[bytes], done: Callable[[], None]):
        self._stream = cast(AsyncIterable[bytes], stream)
        self._done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        """Close the body (the connection goes back to its pool), then count the request done."""
        try:
            aclose = getattr(self._stream, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done()


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


def judges_addresses(client: httpx.AsyncClient) -> bool:
    """Whether ``client`` connects through ``AsyncioBackend``, which judges a request's
    addresses where it connects (``REACH``); not behind a proxy (httpx's own transport),
    nor a client built without ours. httpx keeps both in private attributes; should that
    change, this says no and the fetcher judges a redirect beforehand too, as behind a
    proxy (its requests still carry ``REACH``, which our transport applies)."""
    mounts = getattr(client, "_mounts", None)
    return isinstance(getattr(client, "_transport", None), PoolPerOriginTransport) and not any(
        (mounts or {}).values()
    )


def environment_proxies() -> bool:
    """Whether the environment names a proxy for HTTP(S), as httpx reads it.

    The same variables and rules as httpx: HTTP_PROXY, HTTPS_PROXY, ALL_PROXY (any case, or
    the system's settings where urllib reads them), none if NO_PROXY is ``*``.
    """
    proxies = urllib.request.getproxies()
    bypass_all = "*" in (host.strip() for host in proxies.get("no", "").split(","))
    return not bypass_all and any(proxies.get(scheme) for scheme in ("http", "https", "all"))


_proxy_noted = False


def gather_transport(limits: httpx.Limits, max_pools: int) -> PoolPerOriginTransport | None:
    """The shared client's transport: a pool per origin, or None (httpx's own) behind a proxy.

    httpx honours the proxy variables only for a client given no transport, so with ours an
    operator behind an egress proxy would see every feed fail. Behind a proxy every
    connection goes to the proxy, so a pool per origin has little to split, and httpx's own
    transport already applies the proxies and NO_PROXY exactly as documented; mounting
    proxy transports beside ours would mean copying httpx's private NO_PROXY parsing. So
    the client falls back to httpx's transport whenever a proxy is set.
    """
    global _proxy_noted
    if environment_proxies():
        if not _proxy_noted:
            _proxy_noted = True
            log.info(
                "a proxy is set in the environment: gathering through it with httpx's "
                "own transport (no pool per origin)"
            )
        return None
    return PoolPerOriginTransport(limits, max_pools)


class _CookiesFromSetCookie(httpx.Cookies):
    """A client's cookie jar that skips responses setting no cookie.

    httpx hands every response to the jar through urllib request and response stand-ins,
    ~10% of a conditional GET's CPU; without a Set-Cookie header the jar learns nothing.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        """Store the cookies the response sets (see httpx.Cookies)."""
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


def skip_cookieless_responses(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """``client``, its jar asked only about responses that set a cookie (same cookies kept).

    httpx keeps the jar in a private attribute; should that change, this does nothing.
    """
    if isinstance(getattr(client, "_cookies", None), httpx.Cookies):
        client._cookies = _CookiesFromSetCookie(client._cookies)
    return client
