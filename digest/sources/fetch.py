"""Fetching one source's bytes politely: httpx for http(s), the file system for ``file:``.

``Fetcher`` wraps the one shared httpx client. Every request it makes, feed or article page,
goes through the same rules: a bound on requests in flight overall and per host, a pause
between requests to one host, conditional GET, redirects followed by hand (at most N, http
and https only, each hop checked before it is requested, noting whether every hop was
permanent; never from the source's own kind of network to an internal one, the source's
own host included, see addresses.py), a body cap counted while streaming, after
decompression, so a gzip bomb is cut off early, and a deadline: a request's own, or the
one its source shares with all its requests (``Deadline``).

Errors are ``SourceError``; an HTTP status the gatherer must act on (410, 429, 503) comes as
``HttpStatusError``, which carries the status and any Retry-After time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from digest.clock import SYSTEM_CLOCK, Clock
from digest.config.models import GatherConfig, default, file_path
from digest.errors import SourceError
from digest.sources.addresses import (
    ANY,
    REDIRECT_HINT,
    AddressRefused,
    home_kinds,
    hop_reach,
    reachable,
    redirect_refusal,
    url_addresses,
    url_literal_kind,
)
from digest.sources.answers import (
    PERMANENT,
    REDIRECT,
    HttpStatusError,
    check_scheme,
    off_site,
    status_error,
    transport_error,
)
from digest.sources.bodies import MAX_BODY_BYTES, read_capped, size_text, too_large
from digest.sources.network import KINDS
from digest.sources.pacing import Deadline, HostPolicy
from digest.sources.site import Site
from digest.sources.transport import REACH, judges_addresses

# Re-exported: callers and tests import these from here, as before the split (file_path
# from the config, where `digest check` resolves a file: source's path by the same rule).
__all__ = [
    "MAX_BODY_BYTES",
    "Deadline",
    "Fetched",
    "Fetcher",
    "HostPolicy",
    "HttpStatusError",
    "Limits",
    "fetch",
    "file_path",
    "read_file",
]

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"
)
# Only what bodies._Decoder can undo with a bound on its output.
ACCEPT_ENCODING = "gzip, deflate"
# A redirect: its status, the absolute Location, and the kind of network of the address
# whose connection answered it, when the connection says (network.KINDS).
_Redirect = tuple[int, str, frozenset[str] | None]


@dataclass(frozen=True)
class Fetched:
    """The body of a source and the response headers that matter for parsing it."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    url: str = ""  # where the body came from, after redirects; relative links resolve here
    status: int = 200  # 304: not modified since the validators we sent; body is empty
    moved_to: str | None = None  # the final URL when every redirect hop was permanent
    # The kinds of network the source is on, as this fetch judged its hops by: the kind of
    # the address its own first request connected to, else what its configured address
    # resolves to; None when nothing said (a file, a proxy). Fetcher.get takes it back for
    # the source's next requests (a page source's articles).
    origin: frozenset[str] | None = None

    def header(self, name: str) -> str:
        """The response header ``name`` (lower case), whatever case the server wrote it in;
        "" when absent. (A file source's Fetched has none.)"""
        return next((v for k, v in self.headers.items() if k.lower() == name), "")


@dataclass
class Limits:
    """The caps every request obeys (from the config's [gather] table)."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_redirects: int = default(GatherConfig, "max_redirects")
    timeout_seconds: float = default(GatherConfig, "timeout_seconds")


class Fetcher:
    """The shared client with its limits: every request of a gather goes through ``get``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        limits: Limits | None = None,
        hosts: HostPolicy | None = None,
        concurrency: int = default(GatherConfig, "concurrency"),
        base_dir: Path | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.client = client
        self.clock = clock  # what a Retry-After date is counted from
        self.limits = limits or Limits()
        self.hosts = hosts or HostPolicy()
        self.base_dir = base_dir or Path.cwd()
        self._overall = asyncio.Semaphore(concurrency)

    async def get(
        self,
        name: str,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = FEED_ACCEPT,
        within: Site | None = None,
        deadline: Deadline | None = None,
        home: str | None = None,
        origin: frozenset[str] | None = None,
        again: bool = False,
    ) -> Fetched:
        """The document at ``url`` (a 304 when the validators still hold), or SourceError.

        ``within``: every hop, the first included, must be on that site; one that is not is
        refused before it is requested. ``deadline``: the source's, shared by its requests;
        without one, each request has gather.timeout_seconds of its own. ``home``: the
        source's configured address when ``url`` is where a permanent redirect led before:
        no hop, ``url`` included, may reach an internal network ``home`` is not on
        (``addresses.redirect_refusal``); without it, ``url`` is the home. ``origin``: the
        kinds of network the source is on, as an earlier fetch of it learnt them
        (``Fetched.origin``), so its host is not looked up again. ``again`` (implied by
        ``origin``): the source was requested before, so every request is a hop, ``home``
        itself included (a page source's article at its configured address; behind a
        proxy its listing learns no origin).

        Only the first request to the home itself may reach any kind of network (the
        admin's choice). Every other request is a hop, held to the kind of the address that
        request connected to: the source's own host too, whose name is looked up again for
        the hop (DNS rebinding) and may be on another port.
        """
        if url.startswith("file:"):
            return read_file(name, file_path(url, self.base_dir), self.limits.max_body_bytes)
        headers = {"Accept": accept, "Accept-Encoding": ACCEPT_ENCODING}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        permanent = True
        current = url
        home = home or url
        judged = judges_addresses(self.client)
        for hop in range(self.limits.max_redirects + 1):
            check_scheme(name, current, url)
            if within is not None and not within.holds(current):
                raise off_site(name, url, current, within)
            first = not hop and current == home and not again and origin is None
            reach = ANY
            if not first:
                # One budget for the hop's look-ups: the home's and (behind a proxy) the
                # target's, one after the other; each given all that was left took the
                # source twice its time.
                until = asyncio.get_running_loop().time() + _left(
                    deadline, self.limits.timeout_seconds
                )
                if origin is None:  # not learnt from the home's connection (a stored move,
                    # or behind a proxy): what this machine's DNS says of the home
                    origin = frozenset(await home_kinds(home, _until(until)))
                # An address written as one (or localhost), here and now, whoever connects.
                literal = url_literal_kind(current)
                _check_kinds(name, home, current, origin, {literal} if literal else set())
                # Judged where it connects (addresses.reachable), on the addresses it
                # connects to, whenever the connection is ours: asked of every hop, even
                # when judges_addresses cannot tell (httpx's private attributes changed).
                reach = hop_reach(origin)
                if not judged:  # behind a proxy, which resolves the name itself
                    await _check_reach(name, home, current, origin, _until(until))
            result = await self._one(name, current, headers, deadline, reach, home)
            if isinstance(result, Fetched):
                if first and result.origin:
                    origin = result.origin  # the kind of the address it connected to
                moved = current if hop and permanent and current != url else None
                return Fetched(result.body, result.headers, current, result.status, moved, origin)
            status, location, kinds = result
            if first and kinds:
                origin = kinds  # where the home was reached: no look-up of its own
            permanent = permanent and status in PERMANENT
            current = location
        raise SourceError(
            name,
            f"too many redirects from {url} (more than {self.limits.max_redirects}; "
            "a redirect loop?)",
            "use the final feed address, or raise gather.max_redirects",
        )

    async def _one(
        self,
        name: str,
        url: str,
        headers: dict[str, str],
        deadline: Deadline | None,
        reach: frozenset[str] = ANY,
        home: str = "",
    ) -> Fetched | _Redirect:
        """One request: the answer, or (status, absolute Location, kinds of network of the
        host that answered) for a redirect. Its connection may reach the kinds ``reach``."""
        host = urlsplit(url).hostname or ""
        own = deadline is None
        clock = deadline or Deadline(self.limits.timeout_seconds)
        try:
            # The deadline bounds the wait for a turn once the source's clock runs (not the
            # first request's wait: see Deadline), and the whole answer: httpx's timeouts
            # bound connecting and each read, so a server that trickles a byte at a time
            # would hold us for ever.
            async with asyncio.timeout_at(clock.at) as bound:
                async with self.hosts.turn(host), self._overall:
                    bound.reschedule(clock.start())
                    return await self._attempt(name, url, headers, host, reach, home)
        except TimeoutError as exc:
            clock.cut += 1
            if own:
                reason = f"timed out fetching {url} (no complete answer in {clock.seconds:g} s)"
            else:
                reason = (
                    f"timed out fetching {url}: the source took longer than "
                    f"gather.timeout_seconds = {clock.seconds:g} s, the time of one source "
                    "with its redirects and article pages"
                )
            raise SourceError(
                name,
                reason,
                "the server is slow or down; raise gather.timeout_seconds if it is always slow",
            ) from exc

    async def _attempt(
        self,
        name: str,
        url: str,
        headers: dict[str, str],
        host: str,
        reach: frozenset[str],
        home: str,
    ) -> Fetched | _Redirect:
        """The request, with httpx's errors said as SourceErrors naming the host and url."""
        try:
            return await self._request(name, url, headers, reach)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            refused = _refusal(exc)
            if refused is None:
                raise transport_error(name, url, host, exc) from exc
            raise _refused_error(name, home, url, host, refused, reach != ANY) from exc

    async def _request(
        self, name: str, url: str, headers: dict[str, str], reach: frozenset[str]
    ) -> Fetched | _Redirect:
        # client.send(stream=True) and aclose, as client.stream() does, without its
        # generator-based context manager (a gather makes hundreds of these).
        extensions = {REACH: reach} if reach != ANY else None
        request = self.client.build_request("GET", url, headers=headers, extensions=extensions)
        response = await self.client.send(request, stream=True, follow_redirects=False)
        try:
            status = response.status_code
            stream = response.extensions.get("network_stream")
            kinds = stream.get_extra_info(KINDS) if stream is not None else None
            if status in REDIRECT and "location" in response.headers:
                return status, urljoin(url, response.headers["location"].strip()), kinds
            if status == 304:
                # A 304 has no body; reading its end lets the connection be reused (httpcore
                # closes one whose answer was left unread).
                async for _ in response.aiter_raw():
                    pass
                return Fetched(b"", dict(response.headers), url, 304, origin=kinds)
            if status >= 400 or status in REDIRECT:
                raise status_error(name, response, self.clock.now())
            cap = self.limits.max_body_bytes
            announced = response.headers.get("content-length", "")
            encoding = response.headers.get("content-encoding", "")
            if not encoding and announced.isdigit() and int(announced) > cap:
                raise too_large(name, f"{url} announces {size_text(int(announced))}", cap)
            body = await read_capped(name, url, response, encoding, cap)
            return Fetched(body, dict(response.headers), url, status, origin=kinds)
        finally:
            await response.aclose()


def _left(deadline: Deadline | None, seconds: float) -> float:
    """What is left of the source's ``deadline`` once it runs (its look-ups of addresses
    count against it too), else ``seconds``."""
    return seconds if deadline is None else deadline.left()


def _until(at: float) -> float:
    """The seconds from now to the loop time ``at`` (a look-up is given at least 50 ms)."""
    return max(0.05, at - asyncio.get_running_loop().time())


async def _check_reach(
    name: str, first: str, url: str, origin: AbstractSet[str], timeout: float
) -> None:
    """SourceError unless a redirect from ``first`` (its host on the kinds ``origin``) to
    ``url`` stays on the public internet or on the source's own kind of network, by what
    this machine's DNS says of ``url``'s host (behind a proxy, which connects): every
    address it gives must be one a hop may reach (``addresses.reachable``), as the proxy
    may connect to any of them; a name that does not resolve here is left to the proxy."""
    host, found = await url_addresses(url, timeout)
    try:
        reachable(host, found, hop_reach(origin), every=True)
    except AddressRefused as refused:
        raise _refused_error(name, first, url, host, refused, True) from refused


def _check_kinds(
    name: str, first: str, url: str, origin: AbstractSet[str], target: set[str]
) -> None:
    """``_check_reach`` for a ``url`` whose host is on the kinds ``target``."""
    refused = redirect_refusal(origin, target)
    if refused is not None:
        raise _reach_error(name, first, url, refused)


def _reach_error(name: str, first: str, url: str, refused: str) -> SourceError:
    """The refusal of a hop from ``first`` to ``url``, on the network(s) ``refused`` says."""
    return SourceError(
        name,
        f"{first} led to {url[:200]}, an address on {refused}; refused: a feed may "
        "not send digest to internal services",
        REDIRECT_HINT,
    )


def _refused_error(
    name: str, first: str, url: str, host: str, refused: AddressRefused, hop: bool
) -> SourceError:
    """The SourceError for ``url``'s addresses refused (``addresses.reachable``): a hop
    from ``first`` to another host refused an internal network says so as the redirect
    rule's refusal; otherwise (the source's own host, or a name without a usable address)
    the connection's own words and hint."""
    if hop and refused.words:
        # What the connection was given: the admin's own look-up may be answered otherwise.
        said = f"{refused.words}: {refused.host} resolves to {refused.shown}"
        return _reach_error(name, first, url, said if refused.shown else refused.words)
    return SourceError(name, f"cannot connect to {host} for {url}: {refused}", refused.hint)


def _refusal(exc: BaseException) -> AddressRefused | None:
    """The AddressRefused behind httpx's ConnectError, if that is why it failed."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def read_file(name: str, path: Path, cap: int = MAX_BODY_BYTES) -> Fetched:
    """A local feed file, under the same size cap as a download."""
    try:
        size = path.stat().st_size
        if size > cap:
            raise too_large(name, f"{path} is {size_text(size)}", cap)
        return Fetched(path.read_bytes(), url=path.resolve().as_uri())
    except OSError as exc:
        raise SourceError(
            name,
            f"cannot read {path}: {exc.strerror}",
            "fix the source's file: path (a relative one starts at the config file's folder)",
        ) from exc


async def fetch(
    client: httpx.AsyncClient, name: str, url: str, base_dir: Path, within: Site | None = None
) -> Fetched:
    """One document fetched with the default limits and no politeness pause (a one-off)."""
    fetcher = Fetcher(client, hosts=HostPolicy(delay=0), base_dir=base_dir)
    return await fetcher.get(name, url, within=within)
