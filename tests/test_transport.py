"""The shared client's transport: a host's next requests reuse its connections, 304s too;
the pools kept open stay bounded however many hosts a gather visits; the asyncio network
backend does TLS with verification, notices a connection the server closed, and fails
with httpx's errors."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpcore
import httpx
import pytest

from digest.app import App
from digest.config import load_config
from digest.sources import network, transport
from digest.sources.fetch import Fetcher, HostPolicy
from digest.sources.transport import PoolPerOriginTransport, skip_cookieless_responses
from tests.conftest import self_signed


class KeepAliveServer:
    """An HTTP/1.1 server on 127.0.0.1 that keeps connections open and counts them."""

    def __init__(self, close_after_answer: bool = False) -> None:
        self.connections = 0
        self.port = 0
        self.close_after_answer = close_after_answer  # as a server's idle timeout would
        self.heads: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
                self.heads.append(head)
                if head.startswith("get /set-cookie "):
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nSet-Cookie: consent=yes; Path=/\r\n"
                        b"Content-Length: 0\r\n\r\n"
                    )
                elif "if-none-match:" in head:
                    writer.write(b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n')
                else:
                    writer.write(b'HTTP/1.1 200 OK\r\nETag: "v1"\r\nContent-Length: 5\r\n\r\nhello')
                await writer.drain()
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def keep_alive_server(
    close_after_answer: bool = False, tls: ssl.SSLContext | None = None
) -> AsyncIterator[KeepAliveServer]:
    state = KeepAliveServer(close_after_answer)
    server = await asyncio.start_server(state.handle, "127.0.0.1", 0, ssl=tls)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()


def client(max_pools: int = 8, verify: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=2)
    transport = PoolPerOriginTransport(limits, max_pools=max_pools, verify=verify)
    return httpx.AsyncClient(transport=transport)


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


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    async with keep_alive_server(close_after_answer=True) as server, client() as http:
        url = f"http://127.0.0.1:{server.port}/"
        for _ in range(3):
            assert (await http.get(url)).content == b"hello"
            await asyncio.sleep(0.05)  # the server's close arrives while the connection idles
        assert server.connections == 3


async def test_a_refused_connection_is_httpx_connect_error() -> None:
    async with keep_alive_server() as server:
        port = server.port
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


async def test_tls_is_verified_against_the_trusted_certificates(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    async with keep_alive_server(tls=served) as server:
        url = f"https://127.0.0.1:{server.port}/"
        async with client(verify=trusting) as http:
            assert (await http.get(url)).content == b"hello"
            assert (await http.get(url)).content == b"hello"
        async with client() as http:  # the default CAs do not know a self-signed certificate
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get(url)
        assert server.connections == 1  # both trusted requests on one; the refused one
        # never finished its handshake, so never reached the handler


async def test_cookies_a_server_sets_are_still_sent_back() -> None:
    async with keep_alive_server() as server, skip_cookieless_responses(client()) as http:
        assert type(http.cookies) is not httpx.Cookies  # the jar that skips cookieless answers
        base = f"http://127.0.0.1:{server.port}"
        await http.get(f"{base}/feed.xml")
        await http.get(f"{base}/set-cookie")
        await http.get(f"{base}/feed.xml")
    assert ["cookie: consent=yes" in head for head in server.heads] == [False, False, True]


@pytest.fixture
def pools_closed_in_flight(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many requests each origin's pool still had in flight when it was closed.

    Read from httpcore's own bookkeeping (a request stays in ``_requests`` until its
    response is closed), so it does not trust the counting it checks.
    """
    closed: list[int] = []
    aclose = httpcore.AsyncConnectionPool.aclose

    async def recording_aclose(pool: httpcore.AsyncConnectionPool) -> None:
        closed.append(len(pool._requests))
        await aclose(pool)

    monkeypatch.setattr(httpcore.AsyncConnectionPool, "aclose", recording_aclose)
    return closed


async def test_a_pool_handing_out_a_kept_alive_connection_is_not_closed(
    pools_closed_in_flight: list[int],
) -> None:
    # httpcore gives a request an idle kept-alive connection, then yields before marking it
    # active: a new origin's request in that window must not close the pool under it.
    async with keep_alive_server() as a, keep_alive_server() as b:
        for yields in range(6):  # wherever the request to b lands in the reuse's progress
            async with client(max_pools=1) as http:
                assert (await http.get(f"http://127.0.0.1:{a.port}/")).content == b"hello"
                reuse = asyncio.create_task(http.get(f"http://127.0.0.1:{a.port}/"))
                for _ in range(yields):
                    await asyncio.sleep(0)
                assert (await http.get(f"http://127.0.0.1:{b.port}/")).content == b"hello"
                assert (await reuse).content == b"hello"
    assert pools_closed_in_flight and not any(pools_closed_in_flight)


async def test_concurrent_requests_over_more_origins_than_max_pools_all_succeed(
    pools_closed_in_flight: list[int],
) -> None:
    async with (
        keep_alive_server() as a,
        keep_alive_server() as b,
        keep_alive_server() as c,
        keep_alive_server() as d,
        client(max_pools=2) as http,
    ):
        urls = [f"http://127.0.0.1:{s.port}/" for s in (a, b, c, d)] * 25
        responses = await asyncio.gather(*(http.get(url) for url in urls))
        assert [r.content for r in responses] == [b"hello"] * len(urls)
        # one request in flight on its own origin: the others' pools may go, not its own
        async with http.stream("GET", urls[0]) as held:
            for url in urls[1:4]:
                assert (await http.get(url)).status_code == 200
            assert await held.aread() == b"hello"
        async with keep_alive_server() as e:  # a new origin closes pools down to max_pools
            assert (await http.get(f"http://127.0.0.1:{e.port}/")).status_code == 200
            assert len(http._transport._pool._pools) <= 2  # type: ignore[attr-defined]
    assert not any(pools_closed_in_flight)


@contextmanager
def silent_address() -> Iterator[tuple[str, int]]:
    """A local address whose connects hang unanswered, as over a route that drops packets.

    A listening socket that never accepts, its one-connection backlog already taken: the
    kernel drops the next handshakes instead of refusing them.
    """
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.connect(listener.getsockname())
        yield listener.getsockname()


def resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: tuple[str, int]) -> None:
    """Make every host name resolve to ``addresses`` (the first tried first)."""

    async def resolve(host: str, port: int) -> list[tuple[int, str, int]]:
        return [(socket.AF_INET, ip, p) for ip, p in addresses]

    monkeypatch.setattr(network, "_resolve", resolve)


async def test_a_silent_first_address_does_not_hold_up_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A dual-stack host whose IPv6 route drops packets: its IPv4 address is tried
    # HAPPY_EYEBALLS_DELAY later, not after the whole connect timeout.
    async with keep_alive_server() as server:
        with silent_address() as silent:
            resolving_to(monkeypatch, silent, ("127.0.0.1", server.port))
            timeout = httpx.Timeout(5.0, connect=3.0)
            async with client() as http:
                started = time.monotonic()
                response = await http.get("http://dual.test/", timeout=timeout)
                assert response.content == b"hello"
                assert time.monotonic() - started < 1.5
    assert server.connections == 1


async def test_a_refused_first_address_hands_over_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with keep_alive_server() as gone:
        refused = ("127.0.0.1", gone.port)
    async with keep_alive_server() as server:
        resolving_to(monkeypatch, refused, ("127.0.0.1", server.port))
        async with client() as http:
            started = time.monotonic()
            assert (await http.get("http://dual.test/")).content == b"hello"
            assert time.monotonic() - started < network.HAPPY_EYEBALLS_DELAY


async def test_addresses_that_all_stay_silent_time_out_at_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with silent_address() as silent:
        resolving_to(monkeypatch, silent, silent)
        async with client() as http:
            started = time.monotonic()
            with pytest.raises(httpx.ConnectTimeout):
                await http.get("http://dual.test/", timeout=httpx.Timeout(5.0, connect=0.6))
            assert time.monotonic() - started < 1.5


async def test_a_names_addresses_alternate_families_first_family_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    v6, v4 = socket.AF_INET6, socket.AF_INET
    answers = [(v6, "2001:db8::1"), (v6, "2001:db8::2"), (v4, "192.0.2.1"), (v6, "2001:db8::1")]

    async def getaddrinfo(host: str, port: int, **kw: object) -> list[tuple[object, ...]]:
        return [(family, socket.SOCK_STREAM, 6, "", (ip, port)) for family, ip in answers]

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    assert await network._resolve("dual.test", 80) == [
        (v6, "2001:db8::1", 80),
        (v4, "192.0.2.1", 80),
        (v6, "2001:db8::2", 80),
    ]


class ForwardProxy:
    """A forward proxy on 127.0.0.1 that records each request line and answers it itself."""

    def __init__(self) -> None:
        self.request_lines: list[str] = []
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            self.request_lines.append(head.split("\r\n")[0])
            if head.startswith("CONNECT "):  # no tunnel: the line is what the test needs
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nproxied")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def forward_proxy(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ForwardProxy]:
    """A local proxy, and an environment that names no proxy until a test sets one."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    proxy = ForwardProxy()
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    proxy.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield proxy
    finally:
        server.close()


@pytest.fixture
def open_app(write_config: Callable[..., Path]) -> Iterator[App]:
    app = App.open(load_config(write_config([("Wire", "http://feeds.test/feed.xml")])))
    yield app
    app.close()


async def test_the_apps_client_sends_through_the_environments_proxy(
    forward_proxy: ForwardProxy,
    open_app: App,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", forward_proxy.url)
    monkeypatch.setattr(transport, "_proxy_noted", False)
    with caplog.at_level(logging.INFO, logger="digest.sources"):
        async with open_app.http() as http:
            assert (await http.get("http://feeds.test/feed.xml")).content == b"proxied"
            with pytest.raises(httpx.ProxyError):  # the proxy refused the tunnel
                await http.get("https://feeds.test/feed.xml")
    assert forward_proxy.request_lines == [
        "GET http://feeds.test/feed.xml HTTP/1.1",
        "CONNECT feeds.test:443 HTTP/1.1",
    ]
    assert "proxy" in caplog.text


async def test_hosts_in_no_proxy_are_reached_directly(
    forward_proxy: ForwardProxy, open_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    async with keep_alive_server() as server, open_app.http() as http:
        assert (await http.get(f"http://127.0.0.1:{server.port}/")).content == b"hello"
        assert (await http.get("http://feeds.test/")).content == b"proxied"
    assert server.connections == 1
    assert forward_proxy.request_lines == ["GET http://feeds.test/ HTTP/1.1"]


async def test_without_a_proxy_the_apps_client_keeps_a_pool_per_origin(
    forward_proxy: ForwardProxy, open_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_app.http() as http:
        assert isinstance(http._transport, PoolPerOriginTransport)
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
    monkeypatch.setenv("NO_PROXY", "*")  # httpx: no proxy for any host
    async with open_app.http() as http:
        assert isinstance(http._transport, PoolPerOriginTransport)


async def test_a_connection_made_for_one_reach_is_not_reused_for_a_narrower_one() -> None:
    """A kept-alive connection to a host on this machine, made for a request that may reach
    it (its source's own), does not carry a public source's redirect there."""
    async with keep_alive_server() as server, client() as http:
        url = f"http://127.0.0.1:{server.port}/feed.xml"
        assert (await http.get(url)).content == b"hello"
        public_only = {transport.REACH: frozenset({"public"})}
        with pytest.raises(httpx.ConnectError, match="this machine"):
            await http.get(url, extensions=public_only)
        loopback = {transport.REACH: frozenset({"public", "loopback"})}
        assert (await http.get(url, extensions=loopback)).content == b"hello"
    assert server.connections == 2  # one per reach


async def test_only_the_gathers_own_transport_judges_addresses_where_it_connects(
    forward_proxy: ForwardProxy, open_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_app.http() as http:
        assert transport.judges_addresses(http)
    async with httpx.AsyncClient() as http:
        assert not transport.judges_addresses(http)
    monkeypatch.setenv("HTTP_PROXY", forward_proxy.url)
    async with open_app.http() as http:  # the proxy connects: judged beforehand
        assert not transport.judges_addresses(http)


async def test_a_name_connected_to_the_address_judged_keeps_its_name_for_tls_and_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection goes to the address the name resolved to, once; the certificate is
    verified for the name, which TLS (SNI) and the Host header still carry."""
    cert, key = self_signed(tmp_path, "feeds.test", "DNS:feeds.test")
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    names: list[str | None] = []

    def sni(sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
        names.append(name)

    served.sni_callback = sni
    trusting = ssl.create_default_context(cafile=str(cert))
    async with keep_alive_server(tls=served) as server:
        resolving_to(monkeypatch, ("127.0.0.1", server.port))
        reach = {transport.REACH: frozenset({"public", "loopback"})}
        async with client(verify=trusting) as http:
            url = f"https://feeds.test:{server.port}/"
            assert (await http.get(url, extensions=reach)).content == b"hello"
    assert names == ["feeds.test"]
    assert f"host: feeds.test:{server.port}" in server.heads[0]
