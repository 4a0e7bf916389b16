"""The console's frame: who is logged in, the login and logout pages, the CSRF check of
every form, and the page renderer the screens (views.py, preview_screen.py,
subscriber_screens.py) share.

Every route under /admin but the login page goes through ``guarded``: without a valid
session a GET is sent to the login page and anything else is answered 401, before the
screen's code runs; a POST whose CSRF field is not this session's is answered 403.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from math import ceil
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from digest.app import App
from digest.store.tables import Admin
from digest.subscribers import stored_form
from digest.web.admin.auth import (
    SESSION_COOKIE,
    LoginGuard,
    Sessions,
    check_password,
    prepare,
)
from digest.web.context import client_ip
from digest.web.mailer import Mailer
from digest.web.security import FORM_COOKIE, csrf_ok, csrf_token, form_nonce, now_stamp

log = logging.getLogger("digest.web.admin")

View = Callable[[Request, Admin], Awaitable[Response]]


class Console:
    """What every screen needs: the app, the templates, the web app's one mailer, sessions
    and the login guard."""

    def __init__(
        self,
        app: App,
        env: jinja2.Environment,
        mailer: Mailer,
        guard: LoginGuard | None = None,
    ):
        settings = app.config.admin
        self.app, self.env, self.mailer = app, env, mailer
        self.secret = app.config.secret()
        self.sessions = Sessions(self.secret, settings.session_hours * 3600, app.clock)
        self.guard = guard or LoginGuard(
            settings.max_failed_logins, settings.lockout_minutes * 60, app.clock.monotonic
        )
        prepare()

    @property
    def topics(self) -> list[str]:
        """The sources' topics, from the config as loaded now (the Config screen reloads it)."""
        return self.app.config.topics()

    # --- rendering -------------------------------------------------------------------------

    def page(
        self,
        template: str,
        request: Request,
        admin: Admin | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """A console page; ``csrf`` for the session's forms, ``nav`` for the menu."""
        html = self.env.get_template(f"admin/{template}").render(
            service=self.app.config.service,
            admin=admin,
            csrf=self.csrf(admin) if admin else context.pop("csrf", ""),
            path=request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def csrf(self, admin: Admin) -> str:
        """The CSRF field of this admin's current session generation."""
        return csrf_token(self.secret, f"admin:{admin.id}:{admin.generation}", self._now())

    def _now(self) -> float:
        """The app's clock's time, for the CSRF fields (``now_stamp``)."""
        return now_stamp(self.app.clock)

    # --- sessions --------------------------------------------------------------------------

    async def current(self, request: Request) -> Admin | None:
        """The admin whose genuine, unexpired, current-generation cookie came with the request."""
        claim = self.sessions.read(request.cookies.get(SESSION_COOKIE))
        if claim is None:
            return None
        admin = await run_in_threadpool(self.app.store.admin_by_id, claim.admin_id)
        if admin is None or admin.generation != claim.generation:
            return None
        return admin

    def guarded(self, view: View) -> Callable[[Request], Awaitable[Response]]:
        """The view, reached only with a session, and for a POST only with its CSRF field."""

        async def endpoint(request: Request) -> Response:
            admin = await self.current(request)
            if admin is None:
                if request.method in ("GET", "HEAD"):
                    target = quote(
                        request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    )
                    return RedirectResponse(f"/admin/login?next={target}", 303)
                return self.message(
                    request, None, "Log in first", "This needs an admin session.", 401
                )
            if request.method == "POST":
                form = await request.form()
                if not csrf_ok(
                    self.secret,
                    f"admin:{admin.id}:{admin.generation}",
                    str(form.get("csrf", "")),
                    self._now(),
                ):
                    return self.message(
                        request,
                        admin,
                        "The form expired",
                        "Nothing was changed. Open the page again and send the form from it.",
                        403,
                    )
            return await view(request, admin)

        return endpoint

    def message(
        self, request: Request, admin: Admin | None, title: str, text: str, status: int = 200
    ) -> HTMLResponse:
        """A page that only says something."""
        return self.page("message.html.j2", request, admin, status, title=title, text=text)

    # --- login and logout ------------------------------------------------------------------

    def login_form(
        self,
        request: Request,
        status: int = 200,
        error: str = "",
        email: str = "",
        next_url: str = "",
    ) -> Response:
        """The login page, its CSRF field bound to the browser's nonce cookie (as sign-up's)."""
        nonce = form_nonce(request.cookies.get(FORM_COOKIE))
        response = self.page(
            "login.html.j2",
            request,
            None,
            status,
            title="Log in",
            error=error,
            email=email,
            next_url=next_url or request.query_params.get("next", ""),
            logged_out=request.query_params.get("out") == "1" and not error,
            csrf=csrf_token(self.secret, f"admin-login:{nonce}", self._now()),
        )
        response.set_cookie(
            FORM_COOKIE,
            nonce,
            max_age=86400,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    async def login(self, request: Request) -> Response:
        """GET: the form. POST: check the password, with the guard's limits first."""
        if request.method != "POST":
            if await self.current(request) is not None:
                return RedirectResponse("/admin/", 303)
            return self.login_form(request)
        form = await request.form()
        email = stored_form(str(form.get("email", "")))  # as `digest admins add` stored it
        password = str(form.get("password", ""))
        next_url = _local(str(form.get("next", "")))
        client = client_ip(request)
        refused = self._refused(request, str(form.get("csrf", "")), client, email, next_url)
        if refused is not None:
            return refused
        admin = await run_in_threadpool(self.app.store.admin_by_email, email)
        ok, rehashed = await run_in_threadpool(
            check_password, admin.password_hash if admin else None, password
        )
        if not ok or admin is None or admin.id is None:
            self.guard.failed(email)
            log.warning("admin console: a wrong password for %r from %s", email, client)
            wait = self.guard.locked(email)
            error = _locked(wait) if wait else "Wrong address or password."
            return self.login_form(request, 429 if wait else 401, error, email, next_url)
        self.guard.succeeded(email)
        await run_in_threadpool(self.app.store.admin_logged_in, admin.id, rehashed)
        response = RedirectResponse(next_url or "/admin/", 303)
        response.set_cookie(
            SESSION_COOKIE,
            self.sessions.issue(admin.id, admin.generation),
            max_age=int(self.sessions.max_age),
            path="/admin",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    def _refused(
        self, request: Request, csrf: str, client: str, email: str, next_url: str
    ) -> Response | None:
        """The login form again when the attempt is not even checked: an expired form, too
        many attempts from the client, or a locked address; None to check the password."""
        nonce = request.cookies.get(FORM_COOKIE) or ""
        if not nonce or not csrf_ok(self.secret, f"admin-login:{nonce}", csrf, self._now()):
            return self.login_form(
                request, 400, "The form expired; please log in again.", email, next_url
            )
        if not self.guard.client_allowed(client):
            return self.login_form(
                request,
                429,
                "Too many attempts from your address; try again later.",
                email,
                next_url,
            )
        wait = self.guard.locked(email)
        if wait:
            return self.login_form(request, 429, _locked(wait), email, next_url)
        return None

    async def logout(self, request: Request, admin: Admin) -> Response:
        """This browser's session ends; with everywhere=yes, every session of the account."""
        form = await request.form()
        if form.get("everywhere") == "yes" and admin.id is not None:
            await run_in_threadpool(self.app.store.end_admin_sessions, admin.id)
        response = RedirectResponse("/admin/login?out=1", 303)
        response.delete_cookie(SESSION_COOKIE, path="/admin")
        return response


def _locked(seconds: float) -> str:
    """The lockout's words: the same whether or not the account exists."""
    minutes = max(1, ceil(seconds / 60))
    return (
        "Too many wrong passwords for this address: it is locked for "
        f"{minutes} minute{'' if minutes == 1 else 's'}. Try again after that."
    )


def _local(target: str) -> str:
    """A page of the console to go to after logging in; anything else is dropped."""
    if target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return ""
