"""A page source's site: which addresses count as the listing's own.

A listing's links are followed, and an article fetch's redirects hop, only within the site
the listing came from, so a page (or a redirect on it) cannot send the gatherer to other
hosts, to internal addresses, or to another service on the same machine. On the site
means the same scheme and port as the listing, and the listing's host or a sibling of it
under the same registrable domain (www.x.example, news.x.example, x.example). The one
change of scheme allowed is the upgrade every site makes: from http on port 80 to https
on port 443. An IP address has no siblings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from digest.domains import registrable_domain

_IP_HOST = re.compile(r"^[\d.]+$|:")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Site:
    """A listing's site: its scheme, host (lower case, without "www.") and port."""

    scheme: str
    host: str
    port: int | None

    @classmethod
    def of(cls, url: str) -> Site:
        """The site of ``url`` (a listing's address, after its redirects)."""
        scheme, host, port = _origin(url)
        return cls(scheme, host, port)

    def holds(self, url: str) -> bool:
        """Whether ``url`` is on this site (see the module's docstring).

        Siblings share the registrable domain the Public Suffix List gives: news.co.uk for
        www.news.co.uk, so www.rival.co.uk is another site, as alice.github.io is to bob's.
        """
        scheme, host, port = _origin(url)
        if port is None or (scheme, port) != (self.scheme, self.port):
            upgrade = (self.scheme, self.port, scheme, port) == ("http", 80, "https", 443)
            if not upgrade:
                return False
        if not host:
            return False
        if host == self.host:
            return True
        if _IP_HOST.match(self.host) or _IP_HOST.match(host):
            return False
        domain = registrable_domain(self.host)  # None for a bare suffix or one label
        return domain is not None and (host == domain or host.endswith("." + domain))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = _DEFAULT_PORTS.get(self.scheme)
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}"


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, site host and port (the scheme's default when none is written); the port
    is None when the address has none that can be used (a non-number, an unknown scheme)."""
    try:
        parts = urlsplit(url)
        written = parts.port
    except ValueError:  # a port that is not a number, unbalanced IPv6 brackets
        return "", "", None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().removeprefix("www.")
    return scheme, host, written if written is not None else _DEFAULT_PORTS.get(scheme)
