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
        path = file_path(url, base_dir)
        try:
            return Fetched(path.read_bytes()[:MAX_BODY_BYTES])
        except OSError as exc:
            raise SourceError(
                name, f"cannot read {path}: {exc.strerror}", "check the path"
            ) from None
    try:
        async with client.stream("GET", url, headers={"Accept": FEED_ACCEPT}) as response:
            if response.status_code >= 400:
                raise SourceError(
                    name, _status_message(response), _status_hint(response.status_code)
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise SourceError(
                        name,
                        f"the response is over {MAX_BODY_BYTES // (1024 * 1024)} MB; cut off",
                        "check that url points at a feed, not a large file",
                    )
                chunks.append(chunk)
            return Fetched(b"".join(chunks), dict(response.headers))
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
    except httpx.HTTPError as exc:
        raise SourceError(
            name,
            f"cannot fetch {url}: {type(exc).__name__}: {exc}",
            "check the address and network",
        ) from None


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
