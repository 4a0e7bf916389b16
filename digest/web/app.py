"""The subscriber-facing web app (`digest serve`): sign up, confirm, preferences, leave in
one click, and the archive of past editions. No JavaScript; one cookie (the sign-up form's
nonce, see security.py); every personal page is reached through a signed token, and every
form carries a signed CSRF field. Store calls run in a worker thread: each one blocks, and
on the event loop it would stall every other request.

``create_app`` builds the one context the views share (context.py) and the routes over it:
sign-up and confirmation (signup.py), the reader's own pages (reader.py), the public pages
and webhooks (public.py), and the admin console (admin/).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from digest.app import App
from digest.web.admin import admin_routes
from digest.web.admin.auth import LoginGuard
from digest.web.context import Limits, WebContext
from digest.web.guard import BodyLimit, CatchAll
from digest.web.public import PublicViews
from digest.web.reader import ReaderViews
from digest.web.security import HSTS, SECURITY_HEADERS, RateLimit
from digest.web.signup import SignUpViews


class _Headers(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.scheme == "https":  # (through a trusted proxy's X-Forwarded-Proto)
            # A reader who typed the bare name is not left on http, where a network on the
            # way could change the sign-up form or read a preferences link, next time.
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response


def create_app(
    app: App,
    per_ip: RateLimit | None = None,
    per_address: RateLimit | None = None,
    fetch: Callable[[str], bytes] | None = None,
    admin_guard: LoginGuard | None = None,
) -> Starlette:
    """The ASGI app over one configured digest service (``per_ip``/``per_address`` replace
    the named sign-up limits, ``fetch`` the HTTPS client of the webhooks' certificates)."""
    limits = Limits.on(app.clock)
    limits.signup_per_ip = per_ip or limits.signup_per_ip
    limits.signup_per_address = per_address or limits.signup_per_address
    ctx = WebContext.build(app, limits)
    signup, reader, public = SignUpViews(ctx), ReaderViews(ctx), PublicViews(ctx, fetch)
    service = ctx.service

    routes = [
        Route("/", signup.home),
        Route("/subscribe", signup.subscribe, methods=["POST"]),
        Route("/confirm/{token}", signup.confirm, methods=["GET", "POST"]),
        Route("/unsubscribe/{token}", reader.unsubscribe, methods=["GET", "POST"]),
        Route("/preferences/{token}", reader.preferences, methods=["GET", "POST"]),
        Route("/editions/{digest_id}/{stamp}", public.edition),
        Route("/archive", public.archive),
        Route("/feed.atom", public.feed),
        Route("/healthz", public.healthz),
        Route("/webhooks/{provider}", public.webhook, methods=["POST"]),
        *admin_routes(app, ctx.templates, ctx.mailer, admin_guard),
    ]
    middleware = [
        # The client's own address from a trusted proxy's X-Forwarded-For (CIDRs allowed),
        # here rather than in `digest serve`, so the app is right whatever server runs it.
        Middleware(ProxyHeadersMiddleware, trusted_hosts=service.trusted_proxies),
        Middleware(_Headers),
        Middleware(CatchAll, failed=ctx.failed),
        Middleware(BodyLimit, limit=service.max_body_bytes, too_large=ctx.too_large),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={404: ctx.not_found},
        lifespan=ctx.lifespan,
    )
