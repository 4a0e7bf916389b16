"""How `digest serve` runs the app in uvicorn (the tests run it the same way)."""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp


def server_config(asgi: ASGIApp, host: str = "127.0.0.1", port: int = 8080) -> uvicorn.Config:
    """Uvicorn's settings for the web app.

    uvicorn's own proxy-header handling is off: the app applies ``service.trusted_proxies``
    itself, and both together would rewrite the client twice (uvicorn's trusting
    127.0.0.1 or $FORWARDED_ALLOW_IPS, which the config does not show).
    """
    return uvicorn.Config(asgi, host=host, port=port, log_level="warning", proxy_headers=False)
