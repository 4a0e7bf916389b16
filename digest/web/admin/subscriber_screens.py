"""The Subscribers screens: the list and search, one person (with the CLI's status
changes), and the CSV import with its preview of how each row will be read."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from digest.states import LEFT, SubscriberStatus
from digest.store.tables import Admin
from digest.subscribers import (
    STATUSES,
    CsvHeaderError,
    csv_columns,
    import_subscribers,
    parse_csv,
    to_csv,
)
from digest.subscribers.record import come_back, subscriber_record
from digest.web.admin.console import Console

log = logging.getLogger("digest.web.admin")

# Subscribers an export reads from the database at once (and writes as one part).
EXPORT_PART = 5000

# Accepted rows an import's preview lists (the refused ones are all listed, first): a
# 15,000-row file's preview was a 2.5 MB page with its refused rows at the bottom.
PREVIEW_ROWS = 100

# Subscribers the list shows at once, by address; "Next" goes on from the last one shown.
SUBSCRIBERS_PAGE = 200


def attachment(filename: str) -> str:
    """The Content-Disposition of a download named ``filename``: its name in ASCII for
    every browser, and as it is, in UTF-8, for those that read RFC 6266's ``filename*``
    (all current ones). A topic in the name may be in any script; a header holds Latin-1."""
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


class SubscriberScreens:
    """/admin/subscribers, /admin/subscribers/{id} and /admin/import."""

    def __init__(self, console: Console) -> None:
        self.c, self.app = console, console.app

    async def subscribers(self, request: Request, admin: Admin) -> Response:
        q = request.query_params
        text, status, topic = q.get("q", "").strip(), q.get("status", ""), q.get("topic", "")
        status = status if status in STATUSES else ""
        topic = topic if topic in self.c.topics else ""
        after = q.get("after", "")
        # One row past the page says whether there is a next one.
        rows = await run_in_threadpool(
            self.app.store.search_subscribers, text, status, topic, SUBSCRIBERS_PAGE + 1, after
        )
        page = rows[:SUBSCRIBERS_PAGE]
        counts = await run_in_threadpool(self.app.store.subscriber_counts)
        narrowed = {"q": text, "status": status, "topic": topic}
        next_page = (
            "/admin/subscribers?"
            + urlencode({**{k: v for k, v in narrowed.items() if v}, "after": page[-1].email})
            if len(rows) > SUBSCRIBERS_PAGE
            else ""
        )
        first_page = (
            "/admin/subscribers?" + urlencode({k: v for k, v in narrowed.items() if v})
            if after
            else ""
        )
        return self.c.page(
            "subscribers.html.j2",
            request,
            admin,
            title="Subscribers",
            rows=page,
            counts=counts,
            # How many the status filter holds (a search or a topic narrows past it)
            total=None if text or topic else counts.get(status) if status else sum(counts.values()),
            next_page=next_page,
            first_page=first_page,
            export_query=urlencode({k: v for k, v in narrowed.items() if v}),
            after=after,
            q=text,
            chosen_status=status,
            topic=topic,
            statuses=STATUSES,
            topics=self.c.topics,
        )

    async def export(self, request: Request, admin: Admin) -> Response:
        """Everyone the list's search and filters find (not one page), as the CSV `digest
        subscribers export` writes and the import reads; written a part at a time, so
        100,000 readers are never all in memory."""
        q = request.query_params
        text, status, topic = q.get("q", "").strip(), q.get("status", ""), q.get("topic", "")
        status = status if status in STATUSES else ""
        topic = topic if topic in self.c.topics else ""
        store = self.app.store
        log.info("admin %s exported the subscribers (%s)", admin.email, q)

        def parts() -> Iterator[str]:
            after, header = "", True
            while True:
                rows = store.search_subscribers(text, status, topic, EXPORT_PART, after)
                if not rows and not header:
                    return
                cells = [(r.email, r.name, r.topics, r.timezone, r.locale, r.status) for r in rows]
                yield to_csv(cells, header=header)
                if len(rows) < EXPORT_PART:
                    return
                after, header = rows[-1].email, False

        named = "-".join(x for x in ("subscribers", status, topic) if x)
        return StreamingResponse(
            parts(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": attachment(f"{named}.csv")},
        )

    async def subscriber(self, request: Request, admin: Admin) -> Response:
        subscriber_id = int(request.path_params["subscriber_id"])
        row = await run_in_threadpool(self.app.store.subscriber_by_id, subscriber_id)
        if row is None:
            return self.c.message(
                request, admin, "Not found", "No subscriber has this number.", 404
            )
        done, error, confirm = "", "", False
        if request.method == "GET" and request.query_params.get("added"):
            done = f"{row.email} is added ({row.status})."
        form = await request.form() if request.method == "POST" else None
        action = str(form.get("action", "")) if form else ""
        if form and action == "unsubscribe" and form.get("confirm") != "yes":
            # Unsubscribing is final for the admin (only the reader can come back): the
            # button asks first, on the page again, as the console has no JavaScript.
            confirm = row.status not in LEFT
        if form and not confirm:
            done, error = await run_in_threadpool(
                self._change_status, admin, row.email, subscriber_id, action, row.status
            )
            row = await run_in_threadpool(self.app.store.subscriber_by_id, subscriber_id) or row
        # The record `digest subscribers show` prints: deliveries, history, and the recent
        # editions that never queued them, with why.
        record = await run_in_threadpool(subscriber_record, self.app.store, row)
        return self.c.page(
            "subscriber.html.j2",
            request,
            admin,
            400 if error else 200,
            title=row.email,
            person=row,
            deliveries=record.deliveries,
            history=record.history,
            unqueued=record.unqueued,
            left=row.status in LEFT,
            come_back=come_back(row.email, row.status),
            done=done,
            error=error,
            confirm=confirm,
        )

    def _change_status(
        self, admin: Admin, email: str, subscriber_id: int, action: str, status: str
    ) -> tuple[str, str]:
        """The CLI's rules: anyone not gone can be unsubscribed (`subscribers remove`); an
        active reader can be paused and a paused one resumed, as on their own preferences
        page; nobody who left is brought back from here: only they can, by signing up."""
        store, by = self.app.store, f"admin {admin.email} in the console"
        if action == "unsubscribe":
            if store.unsubscribe(email=email, by=by):
                return f"{email} is unsubscribed.", ""
            return "", f"{email} is already {status}: nothing to do."
        if action == "pause" and status == SubscriberStatus.ACTIVE:
            store.set_subscriber(subscriber_id, by=by, status=SubscriberStatus.PAUSED)
            return f"{email} is paused.", ""
        if action == "resume" and status == SubscriberStatus.PAUSED:
            store.set_subscriber(subscriber_id, by=by, status=SubscriberStatus.ACTIVE)
            return f"{email} is active again.", ""
        if status in LEFT:
            return "", f"{email} is {status}. {come_back(email, status)}"
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
                            import_subscribers,
                            self.app.store,
                            plan["good"],
                            by=f"an import by admin {admin.email} in the console",
                        )
                    else:
                        context["plan"] = plan
        status = 400 if context["error"] else 200
        return self.c.page("import.html.j2", request, admin, status, shown=PREVIEW_ROWS, **context)

    def _plan(self, text: str) -> dict[str, Any]:
        """What an import of ``text`` would do, row by row, writing nothing."""
        header, columns = csv_columns(text)
        good, problems = parse_csv(text, self.c.topics)
        known = self.app.store.statuses_of([s.email for s in good])
        rows = []
        for s in good:
            before = known.get(s.email)
            fate = (
                "new"
                if before is None
                else (
                    "already subscribed"
                    if before == SubscriberStatus.ACTIVE
                    else f"not re-added: {before} earlier"
                )
            )
            rows.append((s, fate))
        return {
            "header": header,
            "columns": columns,
            "good": good,
            "rows": rows,
            "fates": Counter(fate for _, fate in rows).most_common(),
            "problems": problems,
        }
