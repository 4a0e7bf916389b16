"""The Preview screen: the next edition as a reader or a segment would get it, its HTML in
a frame of its own, and "send this to me" (the rendering and the test send: preview.py)."""

from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from digest.errors import DigestError
from digest.rank import SIGNALS
from digest.store.tables import Admin
from digest.web.admin import preview as previews
from digest.web.admin import reports
from digest.web.admin.console import Console
from digest.web.context import LOCALES
from digest.web.security import SECURITY_HEADERS

log = logging.getLogger("digest.web.admin")


class PreviewScreen:
    """GET /admin/preview, its frame /admin/preview/email.html, POST /admin/preview/send."""

    def __init__(self, console: Console) -> None:
        self.c, self.app = console, console.app

    def _segment(self, params: Any) -> previews.Segment:
        return previews.segment_of(
            self.app,
            str(params.get("digest", "")),
            str(params.get("email", "")),
            str(params.get("timezone", "")),
            str(params.get("locale", "")),
            [str(t) for t in params.getlist("topics")],
        )

    async def preview(self, request: Request, admin: Admin) -> Response:
        params = request.query_params
        context: dict[str, Any] = {
            "digests": self.app.config.digests,
            "topics": self.c.topics,
            "locales": [code for code, _ in LOCALES],
            "form": params,
            "chosen": set(params.getlist("topics")),
            "signals": SIGNALS,
        }
        try:
            segment = await run_in_threadpool(self._segment, params)
            ranked, rendered = await run_in_threadpool(previews.render_for, self.app, segment)
        except (ValueError, DigestError) as exc:
            return self.c.page(
                "preview.html.j2", request, admin, 400, title="Preview", error=str(exc), **context
            )
        _, text = previews.personal(self.app, segment, rendered)
        response = self.c.page(
            "preview.html.j2",
            request,
            admin,
            title="Preview",
            segment=segment,
            subject=rendered.subject,
            stories=reports.explained(ranked),
            repeats=ranked.repeats,
            text=text,
            query=request.url.query,
            sent=params.get("sent", ""),
            error="",
            **context,
        )
        # The email's HTML is shown in a frame of this site (its own page, preview_html).
        csp = SECURITY_HEADERS["Content-Security-Policy"]
        response.headers["Content-Security-Policy"] = f"{csp}; frame-src 'self'"
        return response

    async def preview_html(self, request: Request, admin: Admin) -> Response:
        """The email's HTML alone, for the preview page's frame (same origin only)."""
        try:
            segment = await run_in_threadpool(self._segment, request.query_params)
            _, rendered = await run_in_threadpool(previews.render_for, self.app, segment)
        except (ValueError, DigestError) as exc:
            return HTMLResponse(f"<p>{html.escape(str(exc))}</p>", 400)
        body, _ = previews.personal(self.app, segment, rendered)
        return HTMLResponse(
            body,
            headers={
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                "img-src https: data:; frame-ancestors 'self'; base-uri 'none'",
                "X-Frame-Options": "SAMEORIGIN",
            },
        )

    async def preview_send(self, request: Request, admin: Admin) -> Response:
        form = await request.form()
        try:
            segment = await run_in_threadpool(self._segment, form)
            status = await previews.send_test(self.app, self.c.mailer, segment, admin.email)
        except (ValueError, DigestError) as exc:
            hint = getattr(exc, "hint", "")
            return self.c.message(
                request, admin, "The test was not sent", f"{exc} {hint}".strip(), 502
            )
        log.info(
            "admin %s sent themselves a test of %s (%s)", admin.email, segment.digest_id, status
        )
        back = [(k, v) for k, v in parse_qsl(str(form.get("back", ""))) if k != "sent"]
        return RedirectResponse(f"/admin/preview?{urlencode([*back, ('sent', admin.email)])}", 303)
