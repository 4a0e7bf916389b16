"""The console's screens. Each reads a report (reports.py, the store) in a worker thread
and renders it; each change goes through the same function the CLI command calls."""

from __future__ import annotations

import html
import logging
import os
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from digest.app import run
from digest.config import Config
from digest.deliver.base import build_sender
from digest.errors import DigestError
from digest.pipeline import deliver_stored
from digest.rank import SIGNALS
from digest.sending import requeue_edition
from digest.sources.gather import gather
from digest.store.subscribers import LEFT
from digest.store.tables import DELIVERY_STATES, Admin
from digest.subscribers import STATUSES, CsvHeaderError, csv_columns, import_subscribers, parse_csv
from digest.web.admin import preview as previews
from digest.web.admin import reports
from digest.web.admin.console import Console
from digest.web.security import SECURITY_HEADERS

log = logging.getLogger("digest.web.admin")
LOCALES = ("en", "fr", "de", "es")


class Screens:
    """The screens over one Console."""

    def __init__(self, console: Console) -> None:
        self.c, self.app = console, console.app
        self.topics = sorted({t for s in self.app.config.sources for t in s.topics})

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

    # --- preview ---------------------------------------------------------------------------

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
            "topics": self.topics,
            "locales": LOCALES,
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
            status = await previews.send_test(self.app, segment, admin.email)
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

    # --- subscribers -----------------------------------------------------------------------

    async def subscribers(self, request: Request, admin: Admin) -> Response:
        q = request.query_params
        text, status, topic = q.get("q", "").strip(), q.get("status", ""), q.get("topic", "")
        rows = await run_in_threadpool(
            self.app.store.search_subscribers,
            text,
            status if status in STATUSES else "",
            topic if topic in self.topics else "",
        )
        counts = await run_in_threadpool(self.app.store.subscriber_counts)
        return self.c.page(
            "subscribers.html.j2",
            request,
            admin,
            title="Subscribers",
            rows=rows,
            counts=counts,
            q=text,
            chosen_status=status,
            topic=topic,
            statuses=STATUSES,
            topics=self.topics,
        )

    async def subscriber(self, request: Request, admin: Admin) -> Response:
        subscriber_id = int(request.path_params["subscriber_id"])
        row = await run_in_threadpool(self.app.store.subscriber_by_id, subscriber_id)
        if row is None:
            return self.c.message(
                request, admin, "Not found", "No subscriber has this number.", 404
            )
        done, error = "", ""
        if request.method == "POST":
            form = await request.form()
            done, error = await run_in_threadpool(
                self._change_status,
                row.email,
                subscriber_id,
                str(form.get("action", "")),
                row.status,
            )
            row = await run_in_threadpool(self.app.store.subscriber_by_id, subscriber_id) or row
        deliveries = await run_in_threadpool(self.app.store.subscriber_deliveries, subscriber_id)
        return self.c.page(
            "subscriber.html.j2",
            request,
            admin,
            400 if error else 200,
            title=row.email,
            person=row,
            deliveries=deliveries,
            left=row.status in LEFT,
            done=done,
            error=error,
        )

    def _change_status(
        self, email: str, subscriber_id: int, action: str, status: str
    ) -> tuple[str, str]:
        """The CLI's rules: anyone not gone can be unsubscribed (`subscribers remove`); an
        active reader can be paused and a paused one resumed, as on their own preferences
        page; nobody who left is brought back from here: only they can, by signing up."""
        store = self.app.store
        if action == "unsubscribe":
            if store.unsubscribe(email=email):
                return f"{email} is unsubscribed.", ""
            return "", f"{email} is already {status}: nothing to do."
        if action == "pause" and status == "active":
            store.set_subscriber(subscriber_id, status="paused")
            return f"{email} is paused.", ""
        if action == "resume" and status == "paused":
            store.set_subscriber(subscriber_id, status="active")
            return f"{email} is active again.", ""
        if status in LEFT:
            return "", (
                f"{email} is {status}: only they can come back, by signing up again "
                "(or by asking you: `digest subscribers add` at their request)."
            )
        return "", f"{email} is {status}: that change does not apply."

    async def import_page(self, request: Request, admin: Admin) -> Response:
        """GET: the form. POST preview: how the file will be read. POST import: write it."""
        context: dict[str, Any] = {
            "title": "Import subscribers",
            "text": "",
            "plan": None,
            "error": "",
            "result": None,
        }
        if request.method == "POST":
            form = await request.form()
            upload = form.get("file")
            text = str(form.get("text", ""))
            if isinstance(upload, UploadFile) and upload.filename:
                try:
                    text = (await upload.read()).decode("utf-8-sig")
                except UnicodeDecodeError:
                    context["error"] = (
                        "The file is not UTF-8 text: save it as “CSV UTF-8” and try again."
                    )
            context["text"] = text
            if text and not context["error"]:
                try:
                    plan = await run_in_threadpool(self._plan, text)
                except CsvHeaderError as exc:
                    context["error"] = f"Line {exc.line}: {exc}"
                else:
                    if form.get("action") == "import":
                        context["result"] = await run_in_threadpool(
                            import_subscribers, self.app.store, plan["good"]
                        )
                    else:
                        context["plan"] = plan
        status = 400 if context["error"] else 200
        return self.c.page("import.html.j2", request, admin, status, **context)

    def _plan(self, text: str) -> dict[str, Any]:
        """What an import of ``text`` would do, row by row, writing nothing."""
        header, columns = csv_columns(text)
        good, problems = parse_csv(text, self.topics)
        known = {s.email: s.status for s in self.app.store.subscribers()}
        rows = []
        for s in good:
            before = known.get(s.email)
            fate = (
                "new"
                if before is None
                else (
                    "already subscribed"
                    if before == "active"
                    else f"not re-added: {before} earlier"
                )
            )
            rows.append((s, fate))
        return {
            "header": header,
            "columns": columns,
            "good": good,
            "rows": rows,
            "problems": problems,
        }

    # --- editions --------------------------------------------------------------------------

    async def editions(self, request: Request, admin: Admin) -> Response:
        def lines() -> list[reports.EditionLine]:
            return [reports.edition_line(self.app, e) for e in self.app.store.editions(limit=50)]

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
        line = await run_in_threadpool(reports.edition_line, self.app, edition)
        rows = await run_in_threadpool(self.app.store.deliveries, edition_id)
        if state:
            rows = [(d, s) for d, s in rows if d.status == state]
        return self.c.page(
            "edition.html.j2",
            request,
            admin,
            title=f"Edition {edition_id}",
            line=line,
            rows=rows[:500],
            more=max(0, len(rows) - 500),
            state=state,
            states=DELIVERY_STATES,
            done=request.query_params.get("done", ""),
        )

    async def retry(self, request: Request, admin: Admin) -> Response:
        """`digest retry EDITION`: re-queue, then send what waits (in a thread of its own)."""
        edition_id = int(request.path_params["edition_id"])
        if await run_in_threadpool(self.app.store.edition_by_id, edition_id) is None:
            return self.c.message(request, admin, "Not found", "No edition has this number.", 404)
        requeued, resumed, deferred = await run_in_threadpool(requeue_edition, self.app, edition_id)
        counts = await run_in_threadpool(self.app.store.delivery_counts, edition_id)
        sent = ""
        if counts.get("pending") or counts.get("sending"):
            report = await run_in_threadpool(run, deliver_stored(self.app, edition_id))
            if report.delivery is not None:
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
                self.app.store.update_source(states[name].id, next_attempt_at=None, status="active")
            async with self.app.http() as client:
                report = (await gather(one, self.app.store, client))[0]
            if report.status == "ok":
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
