"""A feed's redirect may not send the gatherer to an internal address the source is not on.

A public feed redirecting to the cloud metadata service (169.254.169.254, however written)
or to a private network would have digest request internal services for whoever controls
the feed, and mail an internal feed's items to every reader. The sources here are served
on 127.0.0.1 (loopback): a redirect to another loopback address is still followed, one to
any other internal kind of network is refused before it is requested, the source named.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest.app import App
from digest.config import load_config
from digest.errors import SourceError
from digest.sources import addresses
from digest.sources import fetch as fetch_module
from digest.sources.addresses import literal_kind, reachable, redirect_refusal
from digest.sources.fetch import Fetched, Fetcher, HostPolicy, Limits
from digest.sources.transport import PoolPerOriginTransport, environment_proxies
from tests.conftest import FeedServer, rss, run_cli

FEED = rss([{"title": "Harbour reopens", "link": "https://wire.test/harbour", "guid": "h1"}])
REFUSED = {
    # target: words the refusal names the network with
    "http://169.254.169.254/latest/meta-data/": "link-local",
    "http://2852039166/latest/meta-data/": "link-local",  # 169.254.169.254 as one number
    "http://[::ffff:a9fe:a9fe]/latest/": "link-local",  # the same inside IPv6
    "http://10.20.30.40/intranet/feed.xml": "a private network",
    "http://[fd00:ec2::254]/latest/": "a private network",  # AWS's IPv6 metadata address
}


def serving_feed(feed_server: FeedServer, path: str = "/feed.xml") -> int:
    """The feed server's port, with FEED served at ``path``."""
    return int(feed_server.add(path, FEED).rsplit(":", 1)[1].split("/")[0])


@pytest.fixture
def gathered(feed_server: FeedServer, write_config: Any) -> dict[str, dict[str, Any]]:
    """One gather of a redirect to each refused target and one to localhost, by name."""
    port = serving_feed(feed_server)
    sources = [
        (f"to-{n}", feed_server.add(f"/r{n}", b"", status=302, headers={"Location": target}))
        for n, target in enumerate(REFUSED)
    ]
    back = {"Location": f"http://localhost:{port}/feed.xml"}
    sources.append(("to-localhost", feed_server.add("/rl", b"", status=301, headers=back)))
    config: Path = write_config(sources, timeout=3.0)
    code, out, err = run_cli("--config", str(config), "gather", "--json")
    assert code == 0, err
    return {r["name"]: r for r in json.loads(out)["sources"]}


def test_a_redirect_to_an_internal_network_is_refused_naming_it(
    gathered: dict[str, dict[str, Any]],
) -> None:
    for n, (target, words) in enumerate(REFUSED.items()):
        report = gathered[f"to-{n}"]
        assert report["status"] == "error", report
        error = report["error"]
        assert f"source 'to-{n}'" in error and target[:30] in error, error
        assert "refused" in error and words in error, error
        assert "set the source's url" in report["hint"], report


def test_a_redirect_within_the_sources_own_kind_of_network_is_followed(
    gathered: dict[str, dict[str, Any]],
) -> None:
    report = gathered["to-localhost"]
    assert (report["status"], report["new_items"]) == ("ok", 1), report


@pytest.mark.parametrize(
    ("origin", "target", "refused"),
    [
        ({"public"}, {"public"}, None),
        ({"public"}, {"private"}, "a private network"),
        ({"public"}, {"loopback"}, "this machine (loopback)"),
        ({"public"}, {"public", "link-local"}, "link-local"),  # one bad address is enough
        ({"private"}, {"private"}, None),  # an intranet feed moving on the intranet
        ({"private"}, {"link-local"}, "link-local"),
        ({"loopback"}, {"public"}, None),
        (set(), {"private"}, "a private network"),  # a source whose name did not resolve
        ({"public"}, set(), None),  # a target that does not resolve fails on its own
    ],
)
def test_the_rule_for_each_kind_of_network(
    origin: set[str], target: set[str], refused: str | None
) -> None:
    said = redirect_refusal(origin, target)
    assert (said is None) if refused is None else (said is not None and refused in said)


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("0.0.0.0", "loopback"),
        ("[::1]", "loopback"),
        ("LocalHost.", "loopback"),
        ("api.localhost", "loopback"),
        ("169.254.169.254", "link-local"),
        ("[fe80::1%eth0]", "link-local"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("224.0.0.1", "reserved"),
        ("93.184.215.14", "public"),
        ("[2606:4700::1111]", "public"),
        # NAT64 (RFC 6052), as DNS64 answers on an IPv6-only host: the IPv4 address inside
        ("[64:ff9b::5db8:d70e]", "public"),  # 93.184.215.14
        ("[64:ff9b::a9fe:a9fe]", "link-local"),  # 169.254.169.254
        ("[64:ff9b::10.0.0.5]", "private"),
        ("[fec0::1]", "private"),  # site-local, deprecated but still routed here and there
        ("example.org", None),  # a name: resolving it says
    ],
)
def test_what_a_host_names_by_itself(host: str, kind: str | None) -> None:
    assert literal_kind(host) == kind


def test_a_stored_move_to_an_internal_network_is_refused_too(
    feed_server: FeedServer, write_config: Any
) -> None:
    """Where a permanent redirect led is fetched from then on: one stored before redirects
    were checked (or whose name now resolves elsewhere) is held to the configured address's
    network as a redirect is."""
    url = feed_server.add("/feed.xml", FEED)
    config: Path = write_config([("Moved", url)])
    app = App.open(load_config(config))
    try:
        moved = app.store.sync_sources([("Moved", url)])["Moved"]
        app.store.update_source(moved, fetch_url="http://169.254.169.254/latest/feed.xml")
    finally:
        app.close()
    code, out, err = run_cli("--config", str(config), "gather", "--json")
    assert code == 1, err  # every source failed
    [report] = json.loads(out)["sources"]
    assert report["status"] == "error", report
    assert "led to http://169.254.169.254/latest/feed.xml" in report["error"], report
    assert "link-local" in report["error"] and "refused" in report["error"], report


@pytest.mark.skipif(environment_proxies(), reason="behind a proxy, the proxy connects")
def test_a_name_that_resolves_to_the_metadata_address_is_never_connected_to(
    write_config: Any,
) -> None:
    """Whoever runs a name's DNS chooses where it points, and may point it at the metadata
    service at any time (or only between a check and the connection): a name is refused
    a link-local address where the connection is made. These are names to an URL parser,
    169.254.169.254 to the resolver."""
    names = ["http://2852039166/latest/meta-data/", "http://0xa9fea9fe/latest/meta-data/"]
    config: Path = write_config([(f"name-{n}", url) for n, url in enumerate(names)])
    code, out, err = run_cli("--config", str(config), "gather", "--json")
    assert code == 1, err  # every source failed
    for report in json.loads(out)["sources"]:
        assert report["status"] == "error", report
        error = report["error"]
        assert "resolves to a link-local address (169.254.169.254)" in error, error
        assert "refused" in error, error
        # not a network fault that a later run gets past: what the admin can do
        assert "try again" not in report["hint"], report
        assert "set the source's url to that address written as one" in report["hint"], report


def test_an_ipv6_only_host_behind_nat64_follows_a_redirect_to_an_ipv4_only_site() -> None:
    """On an IPv6-only host, DNS64 answers a name that has only IPv4 addresses with
    64:ff9b::a.b.c.d: a feed on a host with an IPv6 address of its own that redirects to
    such a site stays on the public internet, and the metadata address stays refused,
    at the redirect and where the connection is made."""
    public = {literal_kind("[2606:4700::1111]") or ""}
    assert redirect_refusal(public, {literal_kind("64:ff9b::5db8:d70e") or ""}) is None
    assert "link-local" in (
        redirect_refusal(public, {literal_kind("64:ff9b::a9fe:a9fe") or ""}) or ""
    )
    with pytest.raises(OSError, match="link-local"):
        reachable("metadata.example", [(socket.AF_INET6, "64:ff9b::a9fe:a9fe", 80)])


def test_a_hops_look_ups_share_one_budget(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look-ups a hop to another host makes (the source's own host's, then the
    target's) count against the source's time together: a resolver that answers at the
    last moment costs the source its time once, not once per look-up."""
    given: list[float] = []

    async def slow_addresses(host: str, port: int, timeout: float) -> list[addresses.Address]:
        given.append(timeout)
        await asyncio.sleep(timeout)  # the answer comes as the time runs out
        return [(socket.AF_INET, "127.0.0.1", port)]

    monkeypatch.setattr(addresses, "host_addresses", slow_addresses)
    url = feed_server.add("/feed.xml", FEED)
    budget = 0.4

    async def fetch() -> Fetched:
        async with httpx.AsyncClient(trust_env=False) as client:
            fetcher = Fetcher(client, Limits(timeout_seconds=budget), HostPolicy(delay=0))
            # where a permanent redirect led before, held to the configured address
            return await fetcher.get("Moved", url, home="http://feeds.slow.test/feed.xml")

    fetched = asyncio.run(fetch())
    assert fetched.status == 200
    assert len(given) == 2 and given[0] == pytest.approx(budget, abs=0.05), given
    assert given[1] <= 0.1, given  # what was left of the budget: nothing


# --- judged where the connection is made --------------------------------------------------

PUBLIC_HOME = "http://feed.example/feed.xml"  # a public source's own address
FAILS = "no answer"  # a Resolver's answer: the look-up fails


class Resolver:
    """The machine's resolver, answering for the names in ``answers`` itself: each look-up
    of a name takes its next answer, the last one again once they run out (DNS cannot run
    here; a name whose answer changes is DNS rebinding's). Counts every look-up."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else str(host)
            self.calls.append(name)
            if name not in self.answers:
                return real(host, port, *args, **kwargs)
            seen = self.calls.count(name)
            ip = self.answers[name][min(seen, len(self.answers[name])) - 1]
            if ip == FAILS:
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (ip, int(port or 0)))]

        # asyncio's loop.getaddrinfo asks socket.getaddrinfo, in a thread, at each call
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def judging_client() -> httpx.AsyncClient:
    """A client on the gather's own transport, as the app builds it without a proxy."""
    limits = httpx.Limits(max_connections=8, max_keepalive_connections=2)
    return httpx.AsyncClient(transport=PoolPerOriginTransport(limits, max_pools=64))


async def fetch_moved(url: str, timeout: float = 1.0) -> Fetched:
    """``url`` fetched as a public source's stored move (the hop held to PUBLIC_HOME's rule)."""
    async with judging_client() as client:
        fetcher = Fetcher(client, Limits(timeout_seconds=timeout), HostPolicy(delay=0))
        return await fetcher.get("Moved", url, home=PUBLIC_HOME)


async def test_a_name_that_rebinds_to_this_machine_after_a_check_is_not_connected_to_it(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A public source's hop to a name whose DNS answers a public address first and
    127.0.0.1 after: the name is resolved once, where it is connected, so this machine's
    feed server is never asked."""
    port = serving_feed(feed_server)
    dns = Resolver(
        monkeypatch,
        {"feed.example": ["93.184.215.14"], "moved.test": ["93.184.215.15", "127.0.0.1"]},
    )
    with pytest.raises(SourceError):
        await fetch_moved(f"http://moved.test:{port}/feed.xml")
    assert feed_server.requests == []
    assert dns.calls.count("moved.test") == 1  # no second look-up to answer otherwise


async def test_a_public_sources_hop_to_a_name_on_this_machine_is_refused_where_it_connects(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = serving_feed(feed_server)
    Resolver(monkeypatch, {"feed.example": ["93.184.215.14"], "moved.test": ["127.0.0.1"]})
    url = f"http://moved.test:{port}/feed.xml"
    with pytest.raises(SourceError) as refused:
        await fetch_moved(url)
    error = refused.value
    assert f"{PUBLIC_HOME} led to {url}, an address on this machine (loopback)" in error.reason
    assert "refused" in error.reason and "set the source's url" in error.hint
    assert feed_server.requests == []


async def test_a_hop_whose_name_fails_to_resolve_at_a_check_is_not_let_through(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A look-up that fails (or times out) no longer counts as allowed: there is no look-up
    but the connection's, so a name that fails once and answers 127.0.0.1 next reaches
    nothing."""
    port = serving_feed(feed_server)
    dns = Resolver(
        monkeypatch, {"feed.example": ["93.184.215.14"], "moved.test": [FAILS, "127.0.0.1"]}
    )
    with pytest.raises(SourceError, match=r"cannot connect to moved\.test"):
        await fetch_moved(f"http://moved.test:{port}/feed.xml")
    assert feed_server.requests == []
    assert dns.calls.count("moved.test") == 1


async def test_a_source_on_this_machine_still_follows_a_name_to_this_machine(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = serving_feed(feed_server)
    back = {"Location": f"http://moved.test:{port}/feed.xml"}
    url = feed_server.add("/r", b"", status=302, headers=back)
    dns = Resolver(monkeypatch, {"moved.test": ["127.0.0.1"]})
    async with judging_client() as client:
        fetched = await Fetcher(client, hosts=HostPolicy(delay=0)).get("Local", url)
    assert fetched.status == 200 and b"Harbour reopens" in fetched.body
    assert dns.calls.count("moved.test") == 1


async def test_a_redirect_to_another_host_looks_each_host_up_once(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gather of sources that each redirect to another host: one look-up per host
    connected to (the source's own network is learnt from its connection), none to check."""
    port = serving_feed(feed_server)
    count = 6
    names = [f"s{n}.test" for n in range(count)] + [f"to{n}.test" for n in range(count)]
    dns = Resolver(monkeypatch, {name: ["127.0.0.1"] for name in names})
    for n in range(count):
        back = {"Location": f"http://to{n}.test:{port}/feed.xml"}
        feed_server.add(f"/r{n}", b"", status=302, headers=back)
    async with judging_client() as client:
        fetcher = Fetcher(client, hosts=HostPolicy(delay=0))
        fetched = await asyncio.gather(
            *(fetcher.get(f"s{n}", f"http://s{n}.test:{port}/r{n}") for n in range(count))
        )
    assert all(f.status == 200 for f in fetched)
    assert sorted(dns.calls) == sorted(names)  # each once


async def test_a_name_a_dns_blocklist_answers_with_0000_does_not_resolve_to_a_usable_address(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0.0.0.0 (or ::) is what Pi-hole and filtering resolvers answer for a blocked name;
    the kernel connects it to this machine. A name answered so is never connected to, and
    is said as not resolving, not as a refusal of this machine."""
    port = serving_feed(feed_server)
    Resolver(monkeypatch, {"blocked.test": ["0.0.0.0"], "feed.example": ["93.184.215.14"]})
    url = f"http://blocked.test:{port}/feed.xml"
    async with judging_client() as client:
        with pytest.raises(SourceError) as own:
            await Fetcher(client, hosts=HostPolicy(delay=0)).get("Blocked", url)
    with pytest.raises(SourceError) as hop:
        await fetch_moved(url)
    for error in (own.value, hop.value):
        assert "blocked.test does not resolve to a usable address (it answers 0.0.0.0)" in str(
            error
        ), error
        assert "this machine" not in str(error) and "DNS blocklist" in error.hint, error
        assert "try again" not in error.hint, error
    assert feed_server.requests == []


def test_behind_a_proxy_a_name_answered_with_0000_does_not_read_as_this_machine() -> None:
    """Behind a proxy a hop is judged by this machine's DNS beforehand: a blocklist's
    0.0.0.0 is no address (the proxy's resolver says where the name is), not loopback."""

    async def kinds() -> set[str]:
        return await addresses.host_kinds("blocked.test", 80, 1.0)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            socket,
            "getaddrinfo",
            lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("0.0.0.0", 80))],
        )
        assert asyncio.run(kinds()) == set()


# --- judged beforehand, where someone else connects (behind a proxy) ----------------------


def answering(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    """This machine's resolver answering each name in ``answers`` with all of its addresses
    at once (a ``Resolver`` answers one per look-up)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in answers:
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", sa)
            for ip in answers[name]
            for sa in [(ip, int(port or 0)) if ":" not in ip else (ip, int(port or 0), 0, 0)]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


async def refused_behind_a_proxy(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch, name: str, answer: list[str]
) -> tuple[str, SourceError]:
    """A public source's hop to ``name``, which this machine's DNS answers with ``answer``,
    fetched as behind a proxy (httpx's own transport, which judges nothing where it
    connects): refused beforehand, this machine's feed server never asked. The hop's url
    and the refusal."""
    url = f"http://{name}:{serving_feed(feed_server)}/feed.xml"
    answering(monkeypatch, {"feed.example": ["93.184.215.14"], name: answer})
    async with httpx.AsyncClient(trust_env=False) as client:
        fetcher = Fetcher(client, Limits(timeout_seconds=2.0), HostPolicy(delay=0))
        with pytest.raises(SourceError) as refused:
            await fetcher.get("Moved", url, home=PUBLIC_HOME)
    assert feed_server.requests == []
    return url, refused.value


@pytest.mark.parametrize("answer", [["0.0.0.0"], ["0.0.0.0", "93.184.215.15"]])
async def test_behind_a_proxy_a_hop_to_a_name_answered_with_0000_is_refused_beforehand(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch, answer: list[str]
) -> None:
    """Checked before a connection someone else makes (the proxy; here httpx's own
    transport, as behind one), a name answered with 0.0.0.0 is no address the hop may
    reach: whoever connects to it reaches their own machine (this one, here). The check
    had taken it for no answer at all, and let the hop through to this machine's server."""
    _, error = await refused_behind_a_proxy(feed_server, monkeypatch, "blocked.test", answer)
    said = "blocked.test does not resolve to a usable address (it answers 0.0.0.0)"
    assert said in str(error) and "DNS blocklist" in error.hint, error


async def test_behind_a_proxy_every_address_of_a_hops_name_must_be_one_it_may_reach(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy picks which of a name's addresses it connects to, so one internal address
    among public ones refuses the hop beforehand, naming the network."""
    both = ["93.184.215.15", "127.0.0.1"]
    url, error = await refused_behind_a_proxy(feed_server, monkeypatch, "moved.test", both)
    assert f"{PUBLIC_HOME} led to {url}, an address on this machine (loopback)" in str(error)


async def test_when_httpx_hides_the_transport_a_hop_is_still_judged_where_it_connects(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should httpx rename the private attributes ``judges_addresses`` reads, it says no
    and a hop is judged beforehand, as behind a proxy; the connection, still made by the
    gather's own transport, still judges it too, so a name that answers a public address
    to the check and this machine to the connection (DNS rebinding) reaches nothing."""
    port = serving_feed(feed_server)
    dns = Resolver(
        monkeypatch,
        {"feed.example": ["93.184.215.14"], "moved.test": ["93.184.215.15", "127.0.0.1"]},
    )
    monkeypatch.setattr(fetch_module, "judges_addresses", lambda client: False)
    url = f"http://moved.test:{port}/feed.xml"
    with pytest.raises(SourceError) as refused:
        await fetch_moved(url)
    assert feed_server.requests == []
    assert dns.calls.count("moved.test") == 2  # the check's, then the connection's
    assert f"{PUBLIC_HOME} led to {url}, an address on this machine (loopback)" in str(
        refused.value
    )


# --- a page source's article pages -------------------------------------------------------


async def test_a_public_listings_article_on_a_sibling_host_inside_is_not_fetched(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch, write_config: Any
) -> None:
    """A page source's listing may link article pages on a sibling host of its site
    (www.corp.example's listing, jenkins.corp.example's page); where this machine's DNS
    puts that sibling on an internal network the listing is not on (split-horizon DNS),
    the article is not fetched, and its text not mailed to every reader: the source's own
    network is what an article's connection may reach, as for a redirect. Here 127.0.0.2
    plays the public listing's address and the sibling answers 127.0.0.1."""
    import http.server
    import threading

    from digest.sources import network
    from digest.sources.gather import gather

    real_kind = addresses.ip_kind

    def ip_kind(ip: Any) -> str:
        return addresses.PUBLIC if str(ip) == "127.0.0.2" else real_kind(ip)

    monkeypatch.setattr(addresses, "ip_kind", ip_kind)
    monkeypatch.setattr(network, "ip_kind", ip_kind)
    port = serving_feed(feed_server, "/world/2026/11/27/envoy")
    sibling = f"http://intranet.news.example:{port}"
    listing = (Path(__file__).parent / "data" / "pages" / "listing.html").read_text()
    listing_body = listing.replace('href="/', f'href="{sibling}/').encode()

    class Listing(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(listing_body)))
            self.end_headers()
            self.wfile.write(listing_body)

        def log_message(self, *args: Any) -> None:
            pass

    public = http.server.ThreadingHTTPServer(("127.0.0.2", port), Listing)
    threading.Thread(target=public.serve_forever, daemon=True).start()
    answering(monkeypatch, {"news.example": ["127.0.0.2"], "intranet.news.example": ["127.0.0.1"]})
    url = f"http://news.example:{port}/news/latest"
    extra = f'\n[[sources]]\nname = "Corp news"\nkind = "page"\nurl = "{url}"\n'
    app = App.open(load_config(write_config([], extra=extra, timeout=3.0)))
    try:
        async with app.http() as client:
            [report] = await gather(app.config, app.store, client, HostPolicy(delay=0))
    finally:
        app.close()
        public.shutdown()
        public.server_close()
    assert feed_server.requests == [], report
    said = " ".join(report.notes) + report.error
    assert "an address on this machine (loopback)" in said and "refused" in said, report


async def test_a_hop_refused_where_it_connects_says_what_the_name_resolved_to(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admin who looks the name up afterwards may be answered otherwise (DNS
    rebinding, or a resolver of their own): the refusal says what the connection was given."""
    port = serving_feed(feed_server)
    Resolver(monkeypatch, {"feed.example": ["93.184.215.14"], "moved.test": ["127.0.0.1"]})
    with pytest.raises(SourceError) as refused:
        await fetch_moved(f"http://moved.test:{port}/feed.xml")
    assert "this machine (loopback): moved.test resolves to 127.0.0.1;" in str(refused.value)


@pytest.mark.parametrize("answer", ["0.0.0.0", "::", "::ffff:0.0.0.0"])
def test_every_spelling_of_the_unspecified_address_is_no_usable_address(answer: str) -> None:
    """::ffff:0.0.0.0 is 0.0.0.0 to a dual-stack socket, which the kernel connects to this
    machine: a source's own name answered so is no more connected to than one answered
    0.0.0.0, and says so the same way."""
    family = socket.AF_INET6 if ":" in answer else socket.AF_INET
    with pytest.raises(addresses.AddressRefused, match="does not resolve to a usable address"):
        reachable("blocked.test", [(family, answer, 80)])


async def test_behind_a_proxy_an_article_at_the_sources_own_address_is_checked_beforehand(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind a proxy a listing learns no origin from its connection, so a page source's
    article at the configured address itself (as gather fetches it: ``again``) was taken
    for the source's first request and sent unchecked: with its name now answering
    127.0.0.1 too, the proxy would fetch this machine's service. It is checked first."""
    home = f"http://feed.test:{serving_feed(feed_server)}/feed.xml"
    answering(monkeypatch, {"feed.test": ["93.184.215.15", "127.0.0.1"]})
    async with httpx.AsyncClient(trust_env=False) as client:
        fetcher = Fetcher(client, Limits(timeout_seconds=2.0), HostPolicy(delay=0))
        with pytest.raises(SourceError, match=r"this machine \(loopback\)"):
            await fetcher.get("Page", home, home=home, again=True)
    assert feed_server.requests == []
