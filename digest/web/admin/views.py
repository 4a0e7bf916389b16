"""The console's dashboard, editions, sources and delivery screens (the preview and the
subscriber screens have modules of their own). Each reads a report (reports.py, the store)
in a worker thread and renders it; each change goes through the same function the CLI
command calls."""

from __future__ import annotations

import logging
import os
from urllib.parse import quote

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.app import run
from digest.config import Config
from digest.deliver.base import build_sender
from digest.errors import DigestError
from digest.jobs import hand_retry
from digest.sources.gather import gather
from digest.states import FetchStatus, SourceStatus
from digest.store.tables import DELIVERY_STATES, Admin
from digest.web.admin import reports
from digest.web.admin.console import Console

log = logging.getLogger("digest.web.admin")

# Delivery rows an edition's page lists at once, in the order the readers joined; "Next"
# goes on after the last reader shown.
DELIVERIES_PAGE = 500

# The largest id an integer column holds (PostgreSQL's integer).
MAX_ID = 2**31 - 1


def page_after(request: Request) -> int:
    """The reader (subscriber id) an edition's list goes on after (``?after=``); 0, the
    start, when absent or not a number (a hand-edited address shows the first page, not
    an error)."""
    value = request.query_params.get("after", "")
    # isascii: isdigit() admits digits int() refuses ("²"); the bound: an id's column holds
    # no more (PostgreSQL refuses a larger number in the query).
    number = int(value) if value.isascii() and value.isdigit() else 0
    return number if number <= MAX_ID else 0


class Screens:
    """The dashboard, editions, sources and delivery screens over one Console."""

    def __init__(self, console: Console) -> None:
        self.c, self.app = console, console.app

    # --- dashboard -------------------------------------------------------------------------

    async def dashboard(self, request: Request, admin: Admin) -> Response:
        report = await run_in_threadpool(reports.dashboard, self.app)
        return self.c.page(
            "dashboard.html.j2",
            request,
            admin,
            title="Dashboard",
            report=report,
            states=DELIVERY_STATES,
        )

    # --- editions --------------------------------------------------------------------------

    async def editions(self, request: Request, admin: Admin) -> Response:
        def lines() -> list[reports.EditionLine]:
            return reports.edition_lines(self.app, self.app.store.editions(limit=50))

        return self.c.page(
            "editions.html.j2",
            request,
            admin,
            title="Editions",
            lines=await run_in_threadpool(lines),
        )

    async def edition(self, request: Request, admin: Admin) -> Response:
        edition_id = int(request.path_params["edition_id"])
        edition = await run_in_threadpool(self.app.store.edition_by_id, edition_id)
        if edition is None:
            return self.c.message(request, admin, "Not found", "No edition has this number.", 404)
        state = request.query_params.get("state", "")
        state = state if state in DELIVERY_STATES else ""
        after = page_after(request)
        line = await run_in_threadpool(reports.edition_line, self.app, edition)
        # One row past the page says whether there is a next one.
        rows = await run_in_threadpool(
            self.app.store.edition_deliveries, edition_id, state, after, DELIVERIES_PAGE + 1
        )
        page = rows[:DELIVERIES_PAGE]
        return self.c.page(
            "edition.html.j2",
            request,
            admin,
            title=f"Edition {edition_id}",
            line=line,
            rows=page,
            after=after,
            next_after=page[-1][0].subscriber_id if len(rows) > DELIVERIES_PAGE else None,
            page_size=DELIVERIES_PAGE,
            total=line.counts.get(state, 0) if state else sum(line.counts.values()),
            retryable=await run_in_threadpool(self.app.store.retryable, edition_id),
            state=state,
            states=DELIVERY_STATES,
            done=request.query_params.get("done", ""),
        )

    async def retry(self, request: Request, admin: Admin) -> Response:
        """`digest retry EDITION`: re-queue, then send what waits (in a thread of its own);
        recorded as its run by hand is."""
        edition_id = int(request.path_params["edition_id"])
        if await run_in_threadpool(self.app.store.edition_by_id, edition_id) is None:
            return self.c.message(request, admin, "Not found", "No edition has this number.", 404)
        retried = await run_in_threadpool(hand_retry, self.app, edition_id)
        requeued, resumed, deferred = retried.requeued, retried.resumed, retried.deferred
        sent = ""
        if (report := retried.run) is not None and report.delivery is not None:
            sent = "; then " + (
                ", ".join(f"{n} {k}" for k, n in sorted(report.delivery.counts.items()))
                or "nothing sent"
            )
            if report.delivery.stopped:
                sent += f" (stopped: {report.delivery.stopped})"
        done = (
            f"{requeued} failed re-queued, {resumed} paused resumed, "
            f"{deferred} deferred due now{sent}"
        )
        log.info("admin %s retried edition %d: %s", admin.email, edition_id, done)
        return RedirectResponse(f"/admin/editions/{edition_id}?done={quote(done)}", 303)

    # --- sources ---------------------------------------------------------------------------

    async def sources(self, request: Request, admin: Admin) -> Response:
        lines = await run_in_threadpool(reports.source_lines, self.app)
        return self.c.page(
            "sources.html.j2",
            request,
            admin,
            title="Sources",
            lines=lines,
            done=request.query_params.get("done", ""),
        )

    async def fetch_now(self, request: Request, admin: Admin) -> Response:
        """Fetch one source now, its backoff or 'gone' mark lifted as `gather --force` does."""
        name = str((await request.form()).get("source", ""))
        config = self.app.config
        chosen = [s for s in config.sources if s.name == name and s.enabled]
        if not chosen:
            return self.c.message(
                request, admin, "Not found", f"No enabled source is named {name!r}.", 404
            )
        one = config.model_copy(update={"sources": chosen})

        async def fetch() -> str:
            states = {r.name: r for r in self.app.store.source_states().values()}
            if name in states:
                self.app.store.update_source(
                    states[name].id, next_attempt_at=None, status=SourceStatus.ACTIVE
                )
            async with self.app.http() as client:
                report = (await gather(one, self.app.store, client))[0]
            if report.status == FetchStatus.OK:
                return f"{name}: {report.counts()}"
            return f"{name}: {report.error}" + (f" ({report.hint})" if report.hint else "")

        done = await run_in_threadpool(run, fetch())
        return RedirectResponse(f"/admin/sources?done={quote(done)}", 303)

    # --- delivery --------------------------------------------------------------------------

    async def delivery(self, request: Request, admin: Admin) -> Response:
        result, error = "", ""
        if request.method == "POST":
            try:
                result = await run_in_threadpool(check_transport, self.app.config)
            except DigestError as exc:
                error = f"{exc.message} Hint: {exc.hint}" if exc.hint else exc.message
        return self.c.page(
            "delivery.html.j2",
            request,
            admin,
            502 if error else 200,
            title="Delivery",
            delivery=self.app.config.delivery,
            result=result,
            error=error,
        )

    async def not_found(self, request: Request, admin: Admin) -> Response:
        return self.c.message(
            request, admin, "Not found", "The console has no page at this address.", 404
        )


def check_transport(config: Config) -> str:
    """Connect and log in to the configured transport, sending nothing; what it said."""
    transport = config.delivery.transport
    if transport == "smtp":
        from digest.deliver.smtp import SmtpSender

        return SmtpSender(config.delivery.smtp, config.smtp_password()).check_connection()
    if transport == "maildir":
        folder = config.resolve_path(config.delivery.maildir.path)
        if folder.exists():
            if os.access(folder, os.W_OK):
                return f"the Maildir {folder} is there and writable"
            raise DigestError(
                f"the Maildir {folder} is not writable by digest",
                "give the user digest runs as write access to it",
            )
        return f"the Maildir {folder} will be made at the first send"
    return _check_api(config)


def _check_api(config: Config) -> str:
    """An HTTP API provider: its keys are set (the sender builds, as a send's would), and
    its address answers over the network. Nothing is sent; a key the provider refuses is
    told by the first send (each provider checks keys on a different call)."""
    transport = config.delivery.transport
    run(build_sender(config).aclose())  # DeliveryError naming a key's unset variable
    settings = getattr(config.delivery, transport)
    url = settings.base_url or f"https://email.{settings.region}.amazonaws.com"
    try:
        answer = httpx.get(url, timeout=settings.timeout_seconds)
    except httpx.HTTPError as exc:
        raise DigestError(
            f"cannot reach the {transport} API at {url}: {exc}",
            f"check delivery.{transport}.base_url and that this server may make https "
            "requests to it (a firewall, a proxy)",
        ) from exc
    return (
        f"the {transport} API at {url} answered (HTTP {answer.status_code}) and its key is "
        "set; the provider checks the key itself at the first send"
    )
