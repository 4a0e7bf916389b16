"""A redirect to the source's own host name is a hop like any other.

The name is looked up again for the hop, and its owner may answer otherwise (DNS
rebinding), or the hop may name another port on it: either would have the gatherer request
a service on this machine or a private network and mail its content to every reader. So
every request but the first to the source's own address is held to the kind of network of
the address that first request connected to (not of every address its name gave).

No test here can use a real public address: 127.0.0.2 plays one (its kind is patched where
addresses are judged), or a private network's address for an intranet source; the
internal service the attacker wants is on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.app import App
from digest.config import load_config
from digest.errors import SourceError
from digest.sources import addresses, network
from digest.sources import fetch as fetch_module
from digest.sources.fetch import Fetched, Fetcher, HostPolicy, Limits
from digest.sources.gather import gather
from digest.sources.transport import PoolPerOriginTransport
from tests.conftest import FeedServer, rss
from tests.test_page import ARTICLES, serve
from tests.test_redirect_reach import Resolver, answering

FEED = rss([{"title": "Harbour reopens", "link": "https://wire.test/harbour", "guid": "h1"}])
SECRET = rss([{"title": "INTERNAL ONLY", "link": "https://intra.test/1", "guid": "s1"}])
OUTSIDE = "127.0.0.2"  # plays the source's own address: public, or a private network's


class Server:
    """A real HTTP(S) server on ``bind`` answering each path from ``routes`` (status,
    headers, body), 404 otherwise; records the paths asked."""

    def __init__(
        self,
        bind: str,
        routes: dict[str, tuple[int, dict[str, str], str]],
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                status, headers, body = routes.get(self.path, (404, {}, "not found"))
                data = body.encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer((bind, port), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def internal() -> Iterator[Server]:
    """The service on this machine only that a feed's owner wants fetched and mailed."""
    xml = {"Content-Type": "application/rss+xml"}
    server = Server("127.0.0.1", {"/admin/secret": (200, xml, SECRET)})
    yield server
    server.close()


def outside_is(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """127.0.0.2 judged as an address of ``kind``, wherever addresses are judged."""
    real = addresses.ip_kind

    def ip_kind(ip: Any) -> str:
        return kind if str(ip) == OUTSIDE else real(ip)

    monkeypatch.setattr(addresses, "ip_kind", ip_kind)
    monkeypatch.setattr(network, "ip_kind", ip_kind)


def judging_client(verify: ssl.SSLContext | None = None) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=2)
    return httpx.AsyncClient(transport=PoolPerOriginTransport(limits, 64, verify=verify))


async def get(url: str, verify: ssl.SSLContext | None = None, **kw: Any) -> Fetched:
    async with judging_client(verify) as client:
        fetcher = Fetcher(client, Limits(timeout_seconds=3), HostPolicy(delay=0))
        return await fetcher.get("Src", url, **kw)


def redirecting(port: int, location: str) -> Server:
    """The source's server on 127.0.0.2 at ``port`` (0: any), /feed.xml redirecting."""
    return Server(OUTSIDE, {"/feed.xml": (302, {"Location": location}, "")}, port)


@pytest.mark.parametrize("same_port", [False, True])
async def test_a_hop_to_the_sources_own_name_rebound_to_this_machine_is_refused(
    monkeypatch: pytest.MonkeyPatch, internal: Server, same_port: bool
) -> None:
    """feed.test answers a public address to the source's request and 127.0.0.1 to its
    hop (DNS rebinding), on another port or on the same one: the hop is refused."""
    outside_is(monkeypatch, addresses.PUBLIC)
    front = redirecting(
        internal.port if same_port else 0, f"http://feed.test:{internal.port}/admin/secret"
    )
    dns = Resolver(monkeypatch, {"feed.test": [OUTSIDE, "127.0.0.1"]})
    try:
        with pytest.raises(SourceError) as refused:
            await get(f"http://feed.test:{front.port}/feed.xml")
    finally:
        front.close()
    assert internal.requests == []
    error = refused.value.reason
    assert "led to http://feed.test" in error and "this machine (loopback)" in error, error
    assert "refused" in error, error
    assert dns.calls.count("feed.test") == 2  # the hop was looked up, and judged


@pytest.mark.parametrize("target", ["feed.test", "other.test"])
async def test_the_sources_network_is_the_address_it_connected_to_not_all_its_name_gave(
    monkeypatch: pytest.MonkeyPatch, internal: Server, target: str
) -> None:
    """feed.test answers a public address and 127.0.0.1 at once; the source's request is
    answered by the public one: 127.0.0.1 is not on the source's network for its hops, to
    the same name on another port or to another name."""
    outside_is(monkeypatch, addresses.PUBLIC)
    front = redirecting(0, f"http://{target}:{internal.port}/admin/secret")
    answering(monkeypatch, {"feed.test": [OUTSIDE, "127.0.0.1"], "other.test": ["127.0.0.1"]})
    try:
        with pytest.raises(SourceError):
            await get(f"http://feed.test:{front.port}/feed.xml")
    finally:
        front.close()
    assert front.requests == ["/feed.xml"]
    assert internal.requests == []


async def test_a_stored_move_on_the_sources_own_host_is_held_to_its_network(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a permanent redirect led on the source's own host name, fetched from then on,
    is held to what the configured address resolves to: the name answering 127.0.0.1
    later reaches nothing here."""
    port = feed_server.add("/feed.xml", FEED).rsplit(":", 1)[1].split("/")[0]
    Resolver(monkeypatch, {"feed.example": ["93.184.215.14", "127.0.0.1"]})
    with pytest.raises(SourceError, match=r"this machine \(loopback\)"):
        await get(f"http://feed.example:{port}/feed.xml", home="http://feed.example/feed.xml")
    assert feed_server.requests == []


async def test_an_intranet_source_follows_its_own_host_to_another_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A source the admin put on a private network may move about its own host (another
    path, another port) and its network: its hops may reach a private network."""
    outside_is(monkeypatch, "private")
    xml = {"Content-Type": "application/rss+xml"}
    feed = Server(OUTSIDE, {"/news/feed.xml": (200, xml, FEED)})
    front = redirecting(0, f"http://intra.test:{feed.port}/news/feed.xml")
    dns = Resolver(monkeypatch, {"intra.test": [OUTSIDE]})
    try:
        fetched = await get(f"http://intra.test:{front.port}/feed.xml")
    finally:
        front.close()
        feed.close()
    assert fetched.status == 200 and b"Harbour reopens" in fetched.body
    assert fetched.url == f"http://intra.test:{feed.port}/news/feed.xml"
    assert fetched.origin == {"private"}
    assert dns.calls == ["intra.test", "intra.test"]  # no look-up but the connections'


async def test_a_source_on_this_machine_follows_http_to_https_on_its_own_host(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    xml = {"Content-Type": "application/rss+xml"}
    secure = Server("127.0.0.1", {"/feed.xml": (200, xml, FEED)}, tls=served)
    moved = {"Location": f"https://127.0.0.1:{secure.port}/feed.xml"}
    plain = Server("127.0.0.1", {"/feed.xml": (301, moved, "")})
    try:
        fetched = await get(
            f"http://127.0.0.1:{plain.port}/feed.xml",
            verify=ssl.create_default_context(cafile=str(cert)),
        )
    finally:
        plain.close()
        secure.close()
    assert fetched.status == 200 and b"Harbour reopens" in fetched.body
    assert fetched.moved_to == f"https://127.0.0.1:{secure.port}/feed.xml"
    assert fetched.origin == {"loopback"}


async def test_a_page_sources_articles_are_held_to_its_listings_network_without_a_look_up(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch, write_config: Any
) -> None:
    """Every article page on the listing's own host is a hop held to the network the
    listing was fetched from, learnt from its connection: its name is not looked up
    beforehand for each article."""
    asked: list[str] = []
    real = fetch_module.home_kinds

    async def home_kinds(url: str, timeout: float) -> set[str]:
        asked.append(url)
        return await real(url, timeout)

    monkeypatch.setattr(fetch_module, "home_kinds", home_kinds)
    listing = serve(feed_server)
    extra = f'\n[[sources]]\nname = "Lantern"\nkind = "page"\nurl = "{listing}"\n'
    app = App.open(load_config(write_config([], extra=extra, timeout=5.0)))
    try:
        async with app.http() as client:
            [report] = await gather(app.config, app.store, client, HostPolicy(delay=0))
    finally:
        app.close()
    assert (report.error, report.new_items) == ("", len(ARTICLES)), report
    assert asked == []


async def test_an_article_at_the_sources_own_address_is_held_to_the_listings_network(
    monkeypatch: pytest.MonkeyPatch, internal: Server
) -> None:
    """A listing that was redirected (/news to /news/) may link to the configured address
    itself, which is then fetched as one of its articles (gather's fetch_article: home and
    origin given). That request is no first request: with feed.test rebound to 127.0.0.1
    on the same port, it must not reach this machine's service."""
    outside_is(monkeypatch, addresses.PUBLIC)
    html = {"Content-Type": "text/html"}
    front = Server(OUTSIDE, {"/admin/secret": (200, html, "<p>public</p>")}, internal.port)
    dns = Resolver(monkeypatch, {"feed.test": [OUTSIDE, "127.0.0.1"]})
    home = f"http://feed.test:{internal.port}/admin/secret"
    try:
        listing = await get(home)
        assert listing.origin == {addresses.PUBLIC}
        with pytest.raises(SourceError, match=r"this machine \(loopback\)"):
            await get(home, home=home, origin=listing.origin)
    finally:
        front.close()
    assert dns.calls.count("feed.test") == 2
    assert internal.requests == []


async def test_a_stored_move_is_held_to_the_public_internet_when_its_name_gives_both(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No connection says where the source is when a stored move is fetched in its stead:
    its configured name answering a public address and 127.0.0.1 at once put the source on
    both, and the move reached this machine's server. Now only the public address is
    tried (and, being no server here, fails)."""
    port = feed_server.add("/feed.xml", FEED).rsplit(":", 1)[1].split("/")[0]
    answering(monkeypatch, {"feed.example": ["93.184.215.14", "127.0.0.1"]})
    with pytest.raises(SourceError, match=r"93\.184\.215\.14"):
        await get(f"http://feed.example:{port}/feed.xml", home="http://feed.example/feed.xml")
    assert feed_server.requests == []
