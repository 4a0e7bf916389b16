"""Fetching one source's bytes politely: httpx for http(s), the file system for ``file:``.

``Fetcher`` wraps the one shared httpx client. Every request it makes, feed or article page,
goes through the same rules: a bound on requests in flight overall and per host, a pause
between requests to one host, conditional GET, redirects followed by hand (at most N, http
and https only, each hop checked before it is requested, noting whether every hop was
permanent), a body cap counted while streaming, after decompression, so a gzip bomb is cut
off early, and a deadline: a request's own, or the one its source shares with all its
requests (``Deadline``).

Errors are ``SourceError``; an HTTP status the gatherer must act on (410, 429, 503) comes as
``HttpStatusError``, which carries the status and any Retry-After time.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from digest.config.models import GatherConfig, default
from digest.errors import SourceError
from digest.sources.site import Site

MAX_BODY_BYTES = int(default(GatherConfig, "max_body_mb") * 1024 * 1024)
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"
)
# Only what _Decoder below can undo with a bound on its output.
ACCEPT_ENCODING = "gzip, deflate"
_PERMANENT = (301, 308)
_REDIRECT = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Fetched:
    """The body of a source and the response headers that matter for parsing it."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    url: str = ""  # where the body came from, after redirects; relative links resolve here
    status: int = 200  # 304: not modified since the validators we sent; body is empty
    moved_to: str | None = None  # the final URL when every redirect hop was permanent


class HttpStatusError(SourceError):
    """The server answered an error status; ``retry_at`` is its Retry-After, if it gave one."""

    def __init__(
        self, source: str, status: int, message: str, hint: str, retry_at: datetime | None
    ) -> None:
        super().__init__(source, message, hint)
        self.status = status
        self.retry_at = retry_at

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.source, self.status, self.reason, self.hint, self.retry_at))


class HostPolicy:
    """Politeness per host: at most ``per_host`` requests in flight, ``delay`` s between starts."""

    def __init__(
        self,
        per_host: int = default(GatherConfig, "per_host_concurrency"),
        delay: float = default(GatherConfig, "per_host_delay_seconds"),
    ) -> None:
        self.per_host = per_host
        self.delay = delay
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}

    @asynccontextmanager
    async def turn(self, host: str) -> AsyncIterator[None]:
        """Wait for this host's turn, then hold one of its slots for the request."""
        slots = self._slots.setdefault(host, asyncio.Semaphore(self.per_host))
        async with slots:
            if self.delay > 0:
                # Claim the next start time before sleeping, so waiters queue up in order.
                now = time.monotonic()
                start = max(now, self._next_start.get(host, 0.0))
                self._next_start[host] = start + self.delay
                if start > now:
                    await asyncio.sleep(start - now)
                    # A busy loop wakes us late: count the pause from when we really start,
                    # so the host never sees two requests closer than ``delay``.
                    late = time.monotonic() - start
                    if late > 0:
                        self._next_start[host] += late
            yield


class Deadline:
    """The time one source may take (gather.timeout_seconds), shared by all its requests.

    It starts when the source's first request gets its turn: waiting behind other sources'
    requests for a slot is not the source's time. From then on, its redirect hops, its
    article pages and their waits for a turn all count, and whatever is still going at the
    deadline is cut off. ``cut`` counts the requests it cut off.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at: float | None = None  # the event loop's time it ends; None until started
        self.cut = 0

    def start(self) -> float:
        """Start the clock, if it has not started; the loop time it ends."""
        if self.at is None:
            self.at = asyncio.get_running_loop().time() + self.seconds
        return self.at


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
    ) -> None:
        self.client = client
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
    ) -> Fetched:
        """The document at ``url`` (a 304 when the validators still hold), or SourceError.

        ``within``: every hop, the first included, must be on that site; one that is not is
        refused before it is requested. ``deadline``: the source's, shared by its requests;
        without one, each request has gather.timeout_seconds of its own.
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
        for hop in range(self.limits.max_redirects + 1):
            _check_scheme(name, current, url)
            if within is not None and not within.holds(current):
                raise _off_site(name, url, current, within)
            result = await self._one(name, current, headers, deadline)
            if isinstance(result, Fetched):
                moved = current if hop and permanent and current != url else None
                return Fetched(result.body, result.headers, current, result.status, moved)
            status, location = result
            permanent = permanent and status in _PERMANENT
            current = location
        raise SourceError(
            name,
            f"too many redirects from {url} (more than {self.limits.max_redirects}; "
            "a redirect loop?)",
            "use the final feed address, or raise gather.max_redirects",
        )

    async def _one(
        self, name: str, url: str, headers: dict[str, str], deadline: Deadline | None
    ) -> Fetched | tuple[int, str]:
        """One request: the answer, or (status, absolute Location) for a redirect."""
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
                    return await self._attempt(name, url, headers, host)
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
        self, name: str, url: str, headers: dict[str, str], host: str
    ) -> Fetched | tuple[int, str]:
        """The request, with httpx's errors said as SourceErrors naming the host and url."""
        try:
            return await self._request(name, url, headers)
        except httpx.TimeoutException as exc:
            raise SourceError(
                name,
                f"timed out fetching {url}",
                "the server is slow or down; raise gather.timeout_seconds if it is always slow",
            ) from exc
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
            raise SourceError(
                name,
                f"the connection to {host} was reset or closed mid-answer while fetching "
                f"{url} ({type(exc).__name__})",
                "a network or server fault; digest will try again on the next run",
            ) from exc
        except httpx.ConnectError as exc:
            raise SourceError(
                name,
                f"cannot connect to {host} for {url}: {exc}",
                "check the address and the network; digest will try again on the next run",
            ) from exc
        except httpx.InvalidURL as exc:
            # httpx reads a redirect's Location even when not following it; a
            # "javascript:..." there is not a URL it can hold.
            raise SourceError(
                name,
                f"{url} answered with an address that is not a usable http(s) URL ({exc}); refused",
                "digest only follows http and https; use a feed address that stays on the web",
            ) from exc
        except httpx.HTTPError as exc:
            raise SourceError(
                name,
                f"cannot fetch {url}: {type(exc).__name__}: {exc}",
                "check the address and network",
            ) from exc

    async def _request(
        self, name: str, url: str, headers: dict[str, str]
    ) -> Fetched | tuple[int, str]:
        # client.send(stream=True) and aclose, as client.stream() does, without its
        # generator-based context manager (a gather makes hundreds of these).
        request = self.client.build_request("GET", url, headers=headers)
        response = await self.client.send(request, stream=True, follow_redirects=False)
        try:
            status = response.status_code
            if status in _REDIRECT and "location" in response.headers:
                return status, urljoin(url, response.headers["location"].strip())
            if status == 304:
                # A 304 has no body; reading its end lets the connection be reused (httpcore
                # closes one whose answer was left unread).
                async for _ in response.aiter_raw():
                    pass
                return Fetched(b"", dict(response.headers), url, 304)
            if status >= 400 or status in _REDIRECT:
                raise _status_error(name, response)
            cap = self.limits.max_body_bytes
            announced = response.headers.get("content-length", "")
            encoding = response.headers.get("content-encoding", "")
            if not encoding and announced.isdigit() and int(announced) > cap:
                raise too_large(name, f"{url} announces {_size(int(announced))}", cap)
            body = await _read_capped(name, url, response, encoding, cap)
            return Fetched(body, dict(response.headers), url, status)
        finally:
            await response.aclose()


async def _read_capped(
    name: str, url: str, response: httpx.Response, encoding: str, cap: int
) -> bytes:
    """The decoded body, counted as it is decompressed; SourceError past ``cap`` bytes."""
    decoder = _Decoder(name, url, encoding)
    chunks: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw():
        for piece in decoder.feed(raw, cap - size + 1):
            size += len(piece)
            if size > cap:
                raise too_large(name, f"the response from {url} went past the limit", cap)
            chunks.append(piece)
    tail = decoder.flush()
    if size + len(tail) > cap:
        raise too_large(name, f"the response from {url} went past the limit", cap)
    chunks.append(tail)
    return b"".join(chunks)


class _Decoder:
    """Content-Encoding undone with a bound on each step's output (zlib's max_length)."""

    def __init__(self, name: str, url: str, encoding: str) -> None:
        self.name, self.url = name, url
        coding = encoding.strip().lower()
        self.zlib: zlib._Decompress | None
        if coding in ("", "identity"):
            self.zlib = None
        elif coding in ("gzip", "x-gzip"):
            self.zlib = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif coding == "deflate":
            self.zlib = zlib.decompressobj(zlib.MAX_WBITS | 32)
        else:
            raise SourceError(
                name,
                f"{url} sent a body in an encoding we did not ask for ({encoding!r})",
                "the server ignores Accept-Encoding; report it to the site",
            )

    def feed(self, data: bytes, room: int) -> list[bytes]:
        """Decoded pieces of ``data``; stops once ``room`` bytes are out (the cap is hit)."""
        if self.zlib is None:
            return [data]
        out: list[bytes] = []
        try:
            while data and room > 0:
                piece = self.zlib.decompress(data, room)
                out.append(piece)
                room -= len(piece)
                data = self.zlib.unconsumed_tail
        except zlib.error as exc:
            raise self._broken(exc) from exc
        return out

    def flush(self) -> bytes:
        """What the decompressor still holds at the end of the body."""
        if self.zlib is None:
            return b""
        try:
            return self.zlib.flush()
        except zlib.error as exc:
            raise self._broken(exc) from exc

    def _broken(self, exc: zlib.error) -> SourceError:
        return SourceError(
            self.name,
            f"could not decompress the response from {self.url}: {exc}",
            "the server sends a broken compressed body; report it to the site",
        )


def _check_scheme(name: str, url: str, first: str) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return
    if url == first:
        raise SourceError(name, f"{url!r} is not an http(s) address", "use an http(s) URL")
    raise SourceError(
        name,
        f"{first} redirected to {url[:100]!r}, which is not an http(s) address; refused",
        "digest only follows http and https; use a feed address that stays on the web",
    )


def _off_site(name: str, first: str, url: str, site: Site) -> SourceError:
    if url == first:
        reason = f"{url[:200]} is not on the listing's site ({site}); not fetched"
    else:
        reason = f"{first} redirected to {url[:200]}, off the listing's site ({site}); not followed"
    return SourceError(
        name,
        reason,
        "a page source reads article pages on its listing's own site only (the same scheme, "
        "host and port); nothing to do unless the site moved, then set url to its new address",
    )


def retry_after(value: str | None, now: datetime | None = None) -> datetime | None:
    """The time a Retry-After header names (seconds or an HTTP date), in UTC; else None."""
    if not value:
        return None
    now = now or datetime.now(UTC)
    value = value.strip()
    if value.isdigit():
        return now + timedelta(seconds=min(int(value), 10**8))
    try:
        when = parsedate_to_datetime(value)
        return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    except (TypeError, ValueError, IndexError, OverflowError):  # year 9999 west of UTC
        return None


def _status_error(name: str, response: httpx.Response) -> HttpStatusError:
    status = response.status_code
    message = f"HTTP {status} {response.reason_phrase} from {response.url}"
    retry_at = retry_after(response.headers.get("retry-after"))
    if status in (301, 302, 303, 307, 308):
        message += " (a redirect without a Location)"
    if retry_at is not None and status in (429, 503):
        message += f"; asked to come back after {retry_at:%Y-%m-%d %H:%M:%S} UTC"
    return HttpStatusError(name, status, message, _status_hint(status), retry_at)


def _status_hint(status: int) -> str:
    if status == 410:
        return (
            "the server says the feed is gone for good; change the source's url to its new "
            "address, or remove the source"
        )
    if status == 404:
        return "the feed is not there; find its new address or remove the source"
    if status in (401, 403):
        return "the server refuses us; the feed may need a login or block robots"
    if status == 429:
        return "the server asks us to slow down; digest waits as asked before trying again"
    return "the server failed; digest will try again later"


def file_path(url: str, base_dir: Path) -> Path:
    """The local path a ``file:`` source names; relative paths start at the config's folder."""
    parts = urlsplit(url)
    raw = unquote(
        parts.path if parts.netloc in ("", "localhost") else f"//{parts.netloc}{parts.path}"
    )
    path = Path(raw)
    return path if path.is_absolute() else base_dir / path


def read_file(name: str, path: Path, cap: int = MAX_BODY_BYTES) -> Fetched:
    """A local feed file, under the same size cap as a download."""
    try:
        size = path.stat().st_size
        if size > cap:
            raise too_large(name, f"{path} is {_size(size)}", cap)
        return Fetched(path.read_bytes(), url=path.resolve().as_uri())
    except OSError as exc:
        raise SourceError(name, f"cannot read {path}: {exc.strerror}", "check the path") from exc


def too_large(name: str, what: str, cap: int) -> SourceError:
    """The error for a body past the cap: what was too big, and the cap."""
    return SourceError(
        name,
        f"{what}; cut off: a response may be {_size(cap)} at most",
        "check that url points at a feed, not a large file; or raise gather.max_body_mb",
    )


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n} bytes"


async def fetch(
    client: httpx.AsyncClient, name: str, url: str, base_dir: Path, within: Site | None = None
) -> Fetched:
    """One document fetched with the default limits and no politeness pause (a one-off)."""
    fetcher = Fetcher(client, hosts=HostPolicy(delay=0), base_dir=base_dir)
    return await fetcher.get(name, url, within=within)
