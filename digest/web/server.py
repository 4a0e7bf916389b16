"""How `digest serve` runs the app in uvicorn (the tests run it the same way)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import uvicorn
from starlette.types import ASGIApp


def server_config(asgi: ASGIApp, host: str = "127.0.0.1", port: int = 8080) -> uvicorn.Config:
    """Uvicorn's settings for the web app.

    uvicorn's own proxy-header handling is off: the app applies ``service.trusted_proxies``
    itself, and both together would rewrite the client twice (uvicorn's trusting
    127.0.0.1 or $FORWARDED_ALLOW_IPS, which the config does not show).
    """
    return uvicorn.Config(asgi, host=host, port=port, log_level="warning", proxy_headers=False)


# Names reserved for examples and tests (RFC 2606, RFC 6761): no reader can reach them.
_PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org")
_PLACEHOLDER_TLDS = ("example", "test", "invalid")


def base_url_warning(base_url: str, host: str) -> str:
    """`digest serve`'s warning when ``service.base_url`` cannot be where readers reach this
    server, or "": every link mailed (confirmation, preferences, unsubscribe) starts with
    it, so the demo's digest.example.org sends a sign-up's confirmation nowhere; so does
    localhost while serving other machines (``host``: the address listened on), where a
    reader's click opens their own machine."""
    name = (urlsplit(base_url).hostname or "").lower().rstrip(".")
    placeholder = name.endswith(tuple(f".{d}" for d in _PLACEHOLDER_DOMAINS)) or (
        name in _PLACEHOLDER_DOMAINS or name.rpartition(".")[2] in _PLACEHOLDER_TLDS
    )
    if placeholder:
        what = "an example domain, which no reader can reach"
    elif _loopback(name) and not _loopback(host):
        what = f"this machine's own name, while serving other machines on {host}"
    else:
        return ""
    return (
        f"service.base_url is {base_url}, {what}: the confirmation, preferences and "
        "unsubscribe links mailed start with it; set [service] base_url to the https "
        "address readers reach this server at"
    )


def _loopback(name: str) -> bool:
    """``localhost`` (and its subdomains) or a loopback address (127.0.0.1, ::1)."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False
