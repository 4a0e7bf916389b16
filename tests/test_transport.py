"""The shared client's transport: a host's next requests reuse its connections, 304s too,
and the pools kept open stay bounded however many hosts a gather visits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from digest.sources.fetch import Fetcher, HostPolicy
from digest.sources.transport import PoolPerOriginTransport


class KeepAliveServer:
    """An HTTP/1.1 server on 127.0.0.1 that keeps connections open and counts them."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
                if "if-none-match:" in head:
                    writer.write(b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n')
                else:
                    writer.write(b'HTTP/1.1 200 OK\r\nETag: "v1"\r\nContent-Length: 5\r\n\r\nhello')
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def keep_alive_server() -> AsyncIterator[KeepAliveServer]:
    state = KeepAliveServer()
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()


def client(max_pools: int = 8) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=2)
    return httpx.AsyncClient(transport=PoolPerOriginTransport(limits, max_pools=max_pools))


async def test_a_hosts_requests_and_304s_reuse_its_connections() -> None:
    async with keep_alive_server() as server, client() as http:
        url = f"http://127.0.0.1:{server.port}/feed.xml"
        fetcher = Fetcher(http, hosts=HostPolicy(delay=0))
        for _ in range(3):
            assert (await fetcher.get("wire", url)).body == b"hello"
            assert (await fetcher.get("wire", url, etag='"v1"')).status == 304
        assert server.connections == 1


async def test_idle_pools_past_max_pools_are_closed() -> None:
    async with (
        keep_alive_server() as a,
        keep_alive_server() as b,
        keep_alive_server() as c,
        client(max_pools=2) as http,
    ):
        for server in (a, b, c, a):
            assert (await http.get(f"http://127.0.0.1:{server.port}/")).status_code == 200
        pools = http._transport._pool._pools  # type: ignore[attr-defined]
        assert len(pools) <= 2
        # a's pool was the least recently used when c came, so a connected again
        assert (a.connections, b.connections, c.connections) == (2, 1, 1)
