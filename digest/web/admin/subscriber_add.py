"""The console's "Add a subscriber": one address, checked by the rules every door uses
(``digest.subscribers.checks``), added active as `digest subscribers add` adds one. Unlike
the command, it never re-subscribes someone who left: only they can come back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.store.tables import Admin
from digest.subscribers import (
    check_name,
    check_subscriber_locale,
    check_subscriber_timezone,
    check_topics,
    normalise_email,
)
from digest.web.admin.console import Console

log = logging.getLogger("digest.web.admin")


class AddSubscriber:
    """/admin/subscribers/add: the form, and the new reader's page once added."""

    def __init__(self, console: Console) -> None:
        self.c, self.app = console, console.app

    async def add(self, request: Request, admin: Admin) -> Response:
        """GET: the form. POST: every field checked at once; each problem said beside the
        field it is about, the form kept as typed; a new reader's page when all is well."""
        fields: dict[str, Any] = {"email": "", "name": "", "timezone": "", "locale": ""}
        chosen: list[str] = []
        problems: dict[str, str] = {}
        existing = None
        if request.method == "POST":
            form = await request.form()
            fields = {key: str(form.get(key, "")).strip() for key in fields}
            chosen = [str(t) for t in form.getlist("topics")]
            values = self._checked(fields, chosen, problems)
            if not problems:
                existing = await run_in_threadpool(
                    self.app.store.subscriber_by_email, values["email"]
                )
            if not problems and existing is None:
                row, _ = await run_in_threadpool(
                    lambda: self.app.store.add_subscriber(
                        values["email"],
                        values["name"],
                        chosen,
                        values["timezone"],
                        values["locale"],
                        by=f"admin {admin.email} in the console",
                    )
                )
                log.info("admin %s added subscriber %s", admin.email, row.email)
                return RedirectResponse(f"/admin/subscribers/{row.id}?added=1", 303)
        return self.c.page(
            "subscriber_add.html.j2",
            request,
            admin,
            400 if problems or existing else 200,
            title="Add a subscriber",
            fields=fields,
            chosen=chosen,
            topics=self.c.topics,
            problems=problems,
            existing=existing,
        )

    def _checked(
        self, fields: dict[str, str], chosen: list[str], problems: dict[str, str]
    ) -> dict[str, Any]:
        """Each field through its check; what is wrong goes into ``problems`` by field."""
        checks: dict[str, tuple[Callable[[str], Any], str]] = {
            "email": (normalise_email, ""),
            "name": (lambda v: check_name(v or None), ""),
            "timezone": (
                lambda v: check_subscriber_timezone(v or None),
                " (or leave it empty: the digest's own zone)",
            ),
            "locale": (
                lambda v: check_subscriber_locale(v or None),
                " (or leave it empty: the service's language)",
            ),
        }
        values: dict[str, Any] = {}
        for key, (check, hint) in checks.items():
            try:
                values[key] = check(fields[key])
            except ValueError as exc:
                problems[key] = f"{exc}{hint}"
        if not fields["email"]:
            problems["email"] = "an address is needed"
        try:
            check_topics(chosen, self.c.topics)
        except ValueError as exc:
            problems["topics"] = str(exc)
        return values
