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
from digest.sources import addresses
from digest.sources.addresses import literal_kind, redirect_refusal
from digest.sources.fetch import Fetched, Fetcher, HostPolicy, Limits
from digest.sources.network import _reachable
from digest.sources.transport import environment_proxies
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


@pytest.fixture
def gathered(feed_server: FeedServer, write_config: Any) -> dict[str, dict[str, Any]]:
    """One gather of a redirect to each refused target and one to localhost, by name."""
    local = feed_server.add("/feed.xml", FEED)
    port = local.rsplit(":", 1)[1].split("/")[0]
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
        _reachable("metadata.example", [(socket.AF_INET6, "64:ff9b::a9fe:a9fe", 80)])


def test_a_hops_look_ups_share_one_budget(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look-ups a hop to another host makes (the source's own host's, then the
    target's) count against the source's time together: a resolver that answers at the
    last moment costs the source its time once, not once per look-up."""
    given: list[float] = []

    async def slow_kinds(host: str, port: int, timeout: float) -> set[str]:
        given.append(timeout)
        await asyncio.sleep(timeout)  # the answer comes as the time runs out
        return {"loopback"}

    monkeypatch.setattr(addresses, "host_kinds", slow_kinds)
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
