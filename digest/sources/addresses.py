"""Which network a host is on: the public internet, or one of the internal kinds (this
machine, a private network, a link-local one, where cloud metadata services answer).

A source's own address is the admin's choice, and a feed on the intranet or on this
machine is a fair one. What a remote document names is not: a redirect from a public feed
to ``http://169.254.169.254/`` or ``http://10.0.0.5/wiki/feed`` would have the gatherer
request an internal service for whoever controls that feed (and mail an internal feed's
items to every reader), and a picture at ``http://192.168.1.1/reboot`` in an email has
every reader's mail client request their own router. So a redirect may reach an internal
kind of address only when the source's own address is of that kind (``redirect_refusal``,
``hop_reach``): the kind of the very address its first request connected to, not of
every address its name gave, and a redirect to the source's own host name is held to it
too (the name is looked up again for the hop, and its owner may answer otherwise, or the
hop name another port). A host name never connects to a link-local address (DNS is its
owner's to change), a picture at an internal address is left out of the email
(``picture_refusal``), and an OPML list adds no feed at one (``internal_words``).

A hop's host name is judged where the connection is made (``reachable``), on the
addresses it is connected to: resolved once, so a DNS answer that changes between a check
and the connection (DNS rebinding) reaches nothing it may not. Only behind a proxy, which
resolves names itself, is a redirect judged beforehand by what this machine's DNS says.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import re
import socket
from collections.abc import Set as AbstractSet
from urllib.parse import urlsplit

from digest.records import FeedItem
from digest.sources.hosts import web_host

PUBLIC = "public"
LINK_LOCAL = "link-local"
# The internal kinds, each with the words an error says it with.
_KIND_WORDS = {
    "loopback": "this machine (loopback)",
    "private": "a private network",
    LINK_LOCAL: "a link-local network (where cloud metadata services answer)",
    "reserved": "a reserved or multicast range",
}


# Every kind: what a request to the source's own host may reach (the admin's choice; a name
# still never a link-local address).
ANY = frozenset({PUBLIC, *_KIND_WORDS})
REDIRECT_HINT = (
    "nothing to do if the feed's server is not yours (tell its owner); if the feed "
    "really lives there, set the source's url to that address"
)


def kind_words(kind: str) -> str:
    """The words an error says the kind of network ``kind`` with."""
    return _KIND_WORDS.get(kind, kind)


def hop_reach(origin: AbstractSet[str]) -> frozenset[str]:
    """The kinds of network a hop (any request but the source's first, to its own address)
    may reach from a source whose own address is on ``origin`` (``redirect_refusal``'s
    rule): public, and the source's own."""
    return frozenset(origin) | {PUBLIC}


def literal_kind(host: str) -> str | None:
    """The kind of network ``host`` names by itself: an IP address's (any written form
    Python reads, IPv4 inside IPv6 included), or loopback for ``localhost`` names; None
    for any other name (resolving it says)."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"  # RFC 6761: always this machine, whatever DNS says
    if not (host[-1:].isdigit() or ":" in host):
        # Every address ipaddress reads ends in a digit (IPv4) or has a colon (IPv6): a
        # name is told in a test, not a failed parse (each picture of a gather asks).
        return None
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])  # an IPv6 zone id is no address
    except ValueError:
        return None
    return ip_kind(ip)


# An IPv4 address in a form inet_aton and browsers' URL parsers (WHATWG) read, beside the
# dotted quad: one number (2852039166), hex or octal parts (0xa9fea9fe, 0251.0376...), or
# fewer than four parts (127.1).
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?")


def url_literal_kind(url: str) -> str | None:
    """``literal_kind`` of ``url``'s host, or of the IPv4 address it writes as numbers: a
    link's host is read by a reader's mail client and browser, which take
    ``http://3232235777/`` for 192.168.1.1, and ``http://%31%39%32.168.1.1/`` or
    ``http://１９２.168.1.1/`` too (``web_host``: canonical_url stores the host so read);
    None for a name, or an address without one."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # unbalanced IPv6 brackets
        return None
    if ("%" in host or not host.isascii()) and ":" not in host:
        host = web_host(host) or ""  # none it reads is no address: canonical_url drops it
    kind = literal_kind(host)
    if kind is None and host[:1].isdigit() and _NUMERIC_HOST.fullmatch(host):
        try:
            return ip_kind(ipaddress.IPv4Address(socket.inet_aton(host.rstrip("."))))
        except OSError:  # past 32 bits, or a part past its size: a name after all
            return None
    return kind


# NAT64's well-known prefix (RFC 6052): on an IPv6-only host, DNS64 answers a name with
# only IPv4 addresses with 64:ff9b::a.b.c.d, which the gateway translates to a.b.c.d. The
# address is the IPv4 one's kind: ipaddress files the whole prefix under ::/8, "reserved",
# which refused every redirect to such a host from one with an IPv6 address of its own.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Site-local (fec0::/10): deprecated by RFC 3879, still routed inside some networks, and
# not among ipaddress's private ranges.
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")


def ip_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """PUBLIC, or the internal kind of network ``ip`` is on."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            return ip_kind(inner)
        if ip in _SITE_LOCAL:
            return "private"
    if ip.is_loopback or ip.is_unspecified:  # 0.0.0.0 and :: reach this machine too
        return "loopback"
    if ip.is_link_local:
        return LINK_LOCAL
    if ip.is_multicast or ip.is_reserved:
        return "reserved"
    if ip.is_global:
        return PUBLIC
    return "private"  # RFC 1918, unique local, shared (CGNAT), documentation ranges


Address = tuple[int, str, int]  # family, IP address, port: a name resolved for TCP


def unspecified(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``ip`` is 0.0.0.0 or :: (a DNS blocklist's answer for a name it blocks),
    however written: ::ffff:0.0.0.0 is 0.0.0.0 to a dual-stack socket."""
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return ip.is_unspecified or (mapped is not None and mapped.is_unspecified)


async def host_kinds(host: str, port: int, timeout: float) -> set[str]:
    """The kinds of every address ``host`` resolves to; empty when it does not resolve in
    ``timeout`` seconds (the request then fails on its own, or a proxy resolves it), or
    only to 0.0.0.0 or :: (what a DNS blocklist answers for a name it blocks)."""
    kind = literal_kind(host)
    if kind is not None:
        return {kind}
    if not host:  # a file: source's, say
        return set()
    kinds: set[str] = set()
    for address in await host_addresses(host, port, timeout):
        ip = ipaddress.ip_address(address[1].partition("%")[0])
        if not unspecified(ip):  # a DNS blocklist's answer: no usable address
            kinds.add(ip_kind(ip))
    return kinds


async def host_addresses(host: str, port: int, timeout: float) -> list[Address]:
    """``host``'s addresses for TCP, as this machine's resolver gives them; empty when it
    does not answer in ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, TimeoutError):
        return []
    found: list[Address] = []
    for family, _, _, _, sockaddr in infos:
        try:
            ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        except ValueError:
            continue
        found.append((int(family), str(sockaddr[0]), int(sockaddr[1])))
    return found


def redirect_refusal(origin: AbstractSet[str], target: AbstractSet[str]) -> str | None:
    """Why a redirect from a source whose own address is of the kinds ``origin`` to a host
    of the kinds ``target`` is refused, or None when it may be followed: every kind of the
    target must be public or one of the source's own."""
    allowed = hop_reach(origin)
    refused = sorted(target - allowed)
    if not refused:
        return None
    return " and ".join(kind_words(kind) for kind in refused)


def internal_words(url: str) -> str | None:
    """The words for the internal network ``url``'s host names by itself (an IP address,
    localhost): "this machine (loopback)"; None for a public address or a name."""
    kind = url_literal_kind(url)
    return None if kind is None or kind == PUBLIC else _KIND_WORDS.get(kind, kind)


# Internal kinds no reader's picture is on, whatever the source: a reader's mail client or
# browser would request their own machine, their own router's network, or nothing real.
_NEVER_SHOWN = frozenset({"loopback", LINK_LOCAL, "reserved"})


def picture_refusal(url: str, source_kinds: set[str]) -> str | None:
    """Why the picture at ``url`` is not shown to readers, or None when it may be: its host
    names an internal address by itself (an IP literal, localhost), and only a private
    network's picture from a source on a private network is kept (an intranet's digest
    read on that intranet)."""
    return _kind_refusal(url_literal_kind(url), source_kinds)


def _kind_refusal(kind: str | None, source_kinds: set[str]) -> str | None:
    """``picture_refusal`` for a picture whose host names ``kind`` by itself."""
    if kind is None or kind == PUBLIC or (kind not in _NEVER_SHOWN and kind in source_kinds):
        return None
    return _KIND_WORDS.get(kind, kind)


async def without_internal_pictures(
    items: list[FeedItem], source_url: str, timeout: float
) -> tuple[list[FeedItem], list[str]]:
    """``items`` with each picture ``picture_refusal`` refuses taken off (the story stays),
    and a note naming each one. The source's own address (``source_url``) is resolved only
    when a picture on a private network asks whether the source is on one too."""
    # Each address read once: a gather asks this of every item of every source.
    kinds = [url_literal_kind(item.image_url) if item.image_url else None for item in items]
    own = await url_kinds(source_url, timeout) if "private" in kinds else set()
    kept: list[FeedItem] = []
    notes: list[str] = []
    for item, kind in zip(items, kinds, strict=True):
        refused = _kind_refusal(kind, own)
        if refused is None:
            kept.append(item)
            continue
        notes.append(
            f"item {item.title[:80]!r}: its picture {str(item.image_url)[:200]} is on "
            f"{refused}; left out (each reader's mail client would request it from their "
            "own network)"
        )
        kept.append(
            dataclasses.replace(
                item, image_url=None, image_alt=None, image_width=None, image_height=None
            )
        )
    return kept, notes


async def url_kinds(url: str, timeout: float) -> set[str]:
    """The kinds of network ``url``'s host resolves to (``host_kinds``); empty for an
    address without a usable host or port (its request fails on its own)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        return set()
    return await host_kinds(parts.hostname or "", port, timeout)


async def url_addresses(url: str, timeout: float) -> tuple[str, list[Address]]:
    """``url``'s host and the addresses it resolves to (``host_addresses``); no address
    for an address without a usable host or port (its request fails on its own)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        return "", []
    host = parts.hostname or ""
    return host, await host_addresses(host, port, timeout) if host else []


async def home_kinds(url: str, timeout: float) -> set[str]:
    """The kinds of network a source's own address ``url`` puts it on, for
    ``redirect_refusal``: an address written as one, its kind; a name, the kinds it resolves
    to but link-local (whoever runs a name's DNS chooses where it points, and no feed is
    served by a name at the metadata service's address: the connection refuses it too).
    A name with a public address is on the public internet only: an internal address
    beside it is its owner's to add (no split-horizon view answers both), and would open
    every hop to that network where no connection says which address the source is on (a
    stored move, behind a proxy)."""
    kinds = await url_kinds(url, timeout)
    if url_literal_kind(url) is not None:
        return kinds
    return {PUBLIC} if PUBLIC in kinds else kinds - {LINK_LOCAL}


class AddressRefused(OSError):
    """No address of ``host`` may be connected to for this request; ``reason`` says why
    (said as "resolves to ..., an address on ...; refused"), ``words`` names the refused
    kinds of network for a redirect's refusal ("" when the name resolves to no usable
    address), ``shown`` the addresses refused (one of each kind), and ``hint`` says what
    the admin can do."""

    def __init__(self, host: str, reason: str, words: str, hint: str, shown: str = "") -> None:
        super().__init__(reason)
        self.host = host
        self.words = words
        self.hint = hint
        self.shown = shown


_UNUSABLE = "unusable"  # 0.0.0.0 or :: as a name's address, in reachable's refusals
_LINK_LOCAL_HINT = (
    "digest never connects a name to a link-local address, where cloud metadata services "
    "answer: if the feed really is served there, set the source's url to that address "
    "written as one (http://169.254.x.x/...); otherwise tell the name's owner"
)
_UNUSABLE_HINT = (
    "0.0.0.0 or :: is what a DNS blocklist (Pi-hole, a filtering resolver) answers for a "
    "name it blocks: allow the name there, or check the source's url"
)


def reachable(
    host: str, addresses: list[Address], reach: frozenset[str] = ANY, *, every: bool = False
) -> list[Address]:
    """``host``'s addresses that may be connected to for a request that may reach the kinds
    of network ``reach`` (a redirect's: public and the source's own; see addresses.py).

    Judged here, where the connection is made, on the very addresses it is made to: a
    name whose DNS answers one address to a check and another to the connection (DNS
    rebinding) cannot reach an internal service. A name is never connected to a
    link-local address (the cloud metadata service answers at 169.254.169.254, and no feed
    is served there by a name) nor to 0.0.0.0 or :: (a DNS blocklist's answer, which the
    kernel takes for this machine). AddressRefused when no address is left, or with
    ``every`` when any address is refused: a check made before a connection that someone
    else makes (a proxy), which may pick any of them."""
    literal = literal_kind(host) is not None
    kept: list[Address] = []
    refused: dict[str, str] = {}  # kind: the first address of it
    for address in addresses:
        ip = ipaddress.ip_address(address[1].partition("%")[0])
        if not literal and unspecified(ip):
            refused.setdefault(_UNUSABLE, address[1])
            continue
        kind = ip_kind(ip)
        if kind not in reach or (kind == LINK_LOCAL and not literal):
            refused.setdefault(kind, address[1])
            continue
        kept.append(address)
    if not refused or (kept and not every):
        return kept
    if set(refused) == {_UNUSABLE}:
        raise AddressRefused(
            host,
            f"{host} does not resolve to a usable address (it answers {refused[_UNUSABLE]})",
            "",
            _UNUSABLE_HINT,
        )
    refused.pop(_UNUSABLE, None)
    if set(refused) == {LINK_LOCAL} and LINK_LOCAL in reach:
        raise AddressRefused(
            host,
            f"{host} resolves to a link-local address ({refused[LINK_LOCAL]}), where cloud "
            "metadata services answer; refused",
            kind_words(LINK_LOCAL),
            _LINK_LOCAL_HINT,
            refused[LINK_LOCAL],
        )
    words = " and ".join(kind_words(kind) for kind in sorted(refused))
    shown = ", ".join(refused[kind] for kind in sorted(refused))
    reason = f"{host} resolves to {shown}, an address on {words}; refused"
    raise AddressRefused(host, reason, words, REDIRECT_HINT, shown)
