"""Fetching one source's bytes: httpx for http(s), the file system for ``file:`` sources."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from digest.errors import SourceError

MAX_BODY_BYTES = 10 * 1024 * 1024
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"
)


@dataclass(frozen=True)
class Fetched:
    """The body of a source and the response headers that matter for parsing it."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    url: str = ""  # where the body came from, after redirects; relative links resolve here


def file_path(url: str, base_dir: Path) -> Path:
    """The local path a ``file:`` source names; relative paths start at the config's folder."""
    parts = urlsplit(url)
    raw = unquote(
        parts.path if parts.netloc in ("", "localhost") else f"//{parts.netloc}{parts.path}"
    )
    path = Path(raw)
    return path if path.is_absolute() else base_dir / path


async def fetch(client: httpx.AsyncClient, name: str, url: str, base_dir: Path) -> Fetched:
    """The source's document, or SourceError naming the source, the cause and the fix."""
    if url.startswith("file:"):
        return _read_file(name, file_path(url, base_dir))
    try:
        async with client.stream("GET", url, headers={"Accept": FEED_ACCEPT}) as response:
            if response.status_code >= 400:
                raise SourceError(
                    name, _status_message(response), _status_hint(response.status_code)
                )
            # The announced length saves downloading what would be cut off anyway; the
            # running count below also holds for chunked and compressed bodies.
            announced = response.headers.get("content-length", "")
            if announced.isdigit() and int(announced) > MAX_BODY_BYTES:
                raise _too_large(name, f"{url} announces {_size(int(announced))}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _too_large(
                        name, f"the response from {url} went past the limit and was cut off"
                    )
                chunks.append(chunk)
            return Fetched(b"".join(chunks), dict(response.headers), str(response.url))
    except httpx.TimeoutException:
        raise SourceError(
            name,
            f"timed out fetching {url}",
            "the server is slow or down; raise gather.timeout_seconds if it is always slow",
        ) from None
    except httpx.TooManyRedirects:
        raise SourceError(
            name, f"too many redirects from {url}", "use the final feed address"
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise SourceError(
            name,
            f"cannot fetch {url}: {type(exc).__name__}: {exc}",
            "check the address and network",
        ) from None


def _read_file(name: str, path: Path) -> Fetched:
    """A local feed file, under the same size cap as a download."""
    try:
        size = path.stat().st_size
        if size > MAX_BODY_BYTES:
            raise _too_large(name, f"{path} is {_size(size)}")
        return Fetched(path.read_bytes(), url=path.resolve().as_uri())
    except OSError as exc:
        raise SourceError(name, f"cannot read {path}: {exc.strerror}", "check the path") from None


def _too_large(name: str, what: str) -> SourceError:
    return SourceError(
        name,
        f"{what}; a feed may be {_size(MAX_BODY_BYTES)} at most",
        "check that url points at a feed, not a large file",
    )


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n} bytes"


def _status_message(response: httpx.Response) -> str:
    return f"HTTP {response.status_code} {response.reason_phrase} from {response.url}"


def _status_hint(status: int) -> str:
    if status in (404, 410):
        return "the feed is gone; find its new address or remove the source"
    if status in (401, 403):
        return "the server refuses us; the feed may need a login or block robots"
    if status == 429:
        return "the server asks us to slow down; raise gather.interval_minutes"
    return "the server failed; digest will try again on the next run"
