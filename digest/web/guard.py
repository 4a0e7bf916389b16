"""What stands between the network and the pages: a cap on request bodies, and one answer
(the site's own page, and a log line with the cause) for any error nothing else caught.

Both are plain ASGI middleware, so they see the body as it streams in and can answer
before a handler has started a response.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("digest.web")


class BodyTooLarge(Exception):
    """A request body went over the cap while it was being read."""


class _Watched:
    """The server's ``send``, noting whether a response has started: after that, no page of
    ours can be answered instead, and the server must drop the connection."""

    def __init__(self, send: Send) -> None:
        self.send, self.started = send, False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)


class BodyLimit:
    """Answer ``too_large()`` (a 413) to a body over ``limit`` bytes, without reading it.

    A Content-Length over the cap is refused before the app runs; a body without one
    (chunked) is counted as it arrives, and the read that crosses the cap raises, so
    no more than the cap plus one chunk is ever held in memory.
    """

    def __init__(self, app: ASGIApp, limit: int, too_large: Callable[[], Response]) -> None:
        self.app, self.limit, self.too_large = app, limit, too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > self.limit:
            self._log(scope, f"Content-Length {declared}")
            await self.too_large()(scope, receive, send)
            return
        seen, watched = 0, _Watched(send)

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(f"over {self.limit} bytes")
            return message

        try:
            await self.app(scope, limited, watched)
        except BodyTooLarge:
            if watched.started:  # too late for a page: the server drops the connection
                raise
            self._log(scope, f"more than {self.limit} bytes sent")
            await self.too_large()(scope, receive, send)

    def _log(self, scope: Scope, what: str) -> None:
        log.warning(
            "%s %s: body refused (%s; service.max_body_bytes is %d)",
            scope.get("method"),
            scope.get("path"),
            what,
            self.limit,
        )


class CatchAll:
    """The site's 500 page for any error a handler let through (``failed``, given the
    request: the page is in the visitor's language), and the cause in the log."""

    def __init__(self, app: ASGIApp, failed: Callable[[Request], Response]) -> None:
        self.app, self.failed = app, failed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = _Watched(send)
        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if watched.started:  # half a response is out: let the server drop the connection
                raise
            try:
                page = self.failed(Request(scope))
            except Exception:  # the page's own template is what fails
                log.exception("the error page cannot be rendered either")
                page = PlainTextResponse("Something went wrong; the error was logged.", 500)
            await page(scope, receive, send)
