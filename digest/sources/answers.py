"""What an HTTP answer means for a fetch: a redirect hop checked before it is followed, an
error status said as ``HttpStatusError`` with its Retry-After, a transport failure said as
a ``SourceError`` naming the host and url."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from digest.clock import utc_time
from digest.errors import SourceError
from digest.sources.site import Site

PERMANENT = (301, 308)
REDIRECT = (301, 302, 303, 307, 308)


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


def check_scheme(name: str, url: str, first: str) -> None:
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


def off_site(name: str, first: str, url: str, site: Site) -> SourceError:
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


def status_error(
    name: str, response: httpx.Response, now: datetime | None = None
) -> HttpStatusError:
    status = response.status_code
    message = f"HTTP {status} {response.reason_phrase} from {response.url}"
    retry_at = retry_after(response.headers.get("retry-after"), now)
    if status in (301, 302, 303, 307, 308):
        message += " (a redirect without a Location)"
    if retry_at is not None and status in (429, 503):
        message += f"; asked to come back after {utc_time(retry_at, seconds=True)}"
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


def transport_error(
    name: str, url: str, host: str, exc: httpx.HTTPError | httpx.InvalidURL
) -> SourceError:
    """httpx's error on fetching ``url`` from ``host``, said as a SourceError with a hint."""
    if isinstance(exc, httpx.TimeoutException):
        return SourceError(
            name,
            f"timed out fetching {url}",
            "the server is slow or down; raise gather.timeout_seconds if it is always slow",
        )
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
        return SourceError(
            name,
            f"the connection to {host} was reset or closed mid-answer while fetching "
            f"{url} ({type(exc).__name__})",
            "a network or server fault; digest will try again on the next run",
        )
    if isinstance(exc, httpx.ConnectError):
        return SourceError(
            name,
            f"cannot connect to {host} for {url}: {exc}",
            "check the address and the network; digest will try again on the next run",
        )
    if isinstance(exc, httpx.InvalidURL):
        # httpx reads a redirect's Location even when not following it; a
        # "javascript:..." there is not a URL it can hold.
        return SourceError(
            name,
            f"{url} answered with an address that is not a usable http(s) URL ({exc}); refused",
            "digest only follows http and https; use a feed address that stays on the web",
        )
    return SourceError(
        name,
        f"cannot fetch {url}: {type(exc).__name__}: {exc}",
        "check the address and network",
    )
