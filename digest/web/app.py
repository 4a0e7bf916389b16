"""The subscriber-facing web app (`digest serve`): sign up, confirm, preferences, leave in
one click, and the archive of past editions. No JavaScript; one cookie (the sign-up form's
nonce, see security.py); every personal page is reached through a signed token, and every
form carries a signed CSRF field. Store calls run in a worker thread: each one blocks, and
on the event loop it would stall every other request.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any
from xml.sax.saxutils import escape

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from digest.app import App
from digest.editions import web_view_url
from digest.errors import DeliveryError
from digest.links import make_confirm_token, make_token, read_confirm_token, read_token
from digest.records import Recipient
from digest.render import substitute
from digest.render.i18n import check_locale
from digest.resources import _find
from digest.store import Subscriber
from digest.store.subscribers import LEFT
from digest.subscribers import check_name, check_timezone, normalise_email
from digest.web.admin import admin_routes
from digest.web.admin.auth import LoginGuard
from digest.web.guard import BodyLimit, CatchAll
from digest.web.mailer import send_confirmation
from digest.web.receiver import WebhookReceiver, https_get
from digest.web.security import (
    FORM_COOKIE,
    SECURITY_HEADERS,
    RateLimit,
    csrf_ok,
    csrf_token,
    form_nonce,
    rate_key,
    signup_csrf,
    signup_csrf_ok,
)

log = logging.getLogger("digest.web")
LOCALES = (("en", "English"), ("fr", "Français"), ("de", "Deutsch"), ("es", "Español"))


class _Headers(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def create_app(
    app: App,
    per_ip: RateLimit | None = None,
    per_address: RateLimit | None = None,
    fetch: Callable[[str], bytes] | None = None,
    admin_guard: LoginGuard | None = None,
) -> Starlette:
    """The ASGI app over one configured digest service."""
    config = app.config
    secret = config.secret()
    keys = config.secrets()  # links mailed before a secret was rotated still work
    service = config.service
    base = service.base_url
    topics = sorted({t for s in config.sources for t in s.topics})
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_find("templates", "web"))),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    per_ip = per_ip or RateLimit(10, 3600)
    per_address = per_address or RateLimit(3, 3600)

    def page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(template).render(service=service, **context)
        return HTMLResponse(html, status_code=status)

    def message(
        title: str, text: str, status: int = 200, link: dict[str, str] | None = None
    ) -> HTMLResponse:
        return page("message.html.j2", status, title=title, text=text, link=link)

    def invalid_link() -> HTMLResponse:
        return message(
            "This link is not valid",
            "It may be incomplete or out of date. Copy the whole link from the "
            "email, or subscribe again.",
            404,
            {"url": "/", "label": "Subscribe"},
        )

    async def subscriber_for(purpose: str, token: str) -> Subscriber | None:
        public_id = read_token(keys, purpose, token)  # type: ignore[arg-type]
        if not public_id:
            return None
        return await run_in_threadpool(app.store.subscriber_by_public_id, public_id)

    def client_ip(request: Request) -> str:
        # The proxy's X-Forwarded-For is already applied (service.trusted_proxies).
        return request.client.host if request.client else "unknown"

    def signup_form(
        request: Request, status: int = 200, error: str = "", email: str = "", name: str = ""
    ) -> Response:
        """The sign-up page, its field bound to the browser's nonce cookie (set or renewed)."""
        nonce = form_nonce(request.cookies.get(FORM_COOKIE))
        response = page(
            "subscribe.html.j2",
            status,
            title="Subscribe",
            topics=topics,
            error=error,
            email=email,
            name=name,
            csrf=signup_csrf(secret, nonce),
        )
        response.set_cookie(
            FORM_COOKIE,
            nonce,
            max_age=86400,  # as long as the field is valid
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    def mail_down(email: str, exc: DeliveryError) -> Response:
        """The confirmation did not go: the reader is asked to send the form again (the row
        stays pending, and a new try sends a new link)."""
        log.warning(
            "sign-up of %s: the confirmation was not sent (%s); the reader was asked to try "
            "again. %s",
            email,
            exc,
            exc.hint,
        )
        response = message(
            "Your confirmation could not be sent yet",
            "Our mail server is not answering just now. Please try again in a few minutes; "
            "nothing you sent was lost.",
            503,
            {"url": "/", "label": "Back to the form"},
        )
        response.headers["Retry-After"] = "300"
        return response

    async def home(request: Request) -> Response:
        return signup_form(request)

    async def subscribe(request: Request) -> Response:
        form = await request.form()
        ip = client_ip(request)
        raw_email, raw_name = str(form.get("email", "")), str(form.get("name", ""))

        def again(error: str, status: int) -> Response:
            return signup_form(request, status, error, raw_email, raw_name)

        if not signup_csrf_ok(secret, request.cookies.get(FORM_COOKIE), str(form.get("csrf", ""))):
            return again(
                "The form expired; please send it again. (The form needs its cookie: if "
                "this repeats, allow cookies for this site.)",
                400,
            )
        try:
            email = normalise_email(raw_email)
        except ValueError:
            return again("That does not look like an email address.", 400)
        try:
            name = check_name(raw_name)
        except ValueError:
            return again("Please write your name on one line, without special characters.", 400)
        if not per_ip.allow(rate_key(ip)) or not per_address.allow(email):
            return message("Too many requests", "Please try again in an hour.", 429)
        chosen = [t for t in form.getlist("topics") if t in topics]
        subscriber = await run_in_threadpool(app.store.add_pending, email, name, chosen)
        # Only pending, unsubscribed or bounced addresses get a confirmation (one who
        # reported the mail as spam is not mailed unasked); the page is the same whatever
        # the address's state, so it reveals nothing about who is subscribed.
        if subscriber.status in ("pending", "unsubscribed", "bounced"):
            token = make_confirm_token(secret, subscriber.public_id, chosen)
            try:
                await send_confirmation(app, email, f"{base}/confirm/{token}")
            except DeliveryError as exc:
                return mail_down(email, exc)
        return message(
            "Check your inbox",
            "If the address can receive mail, a confirmation link is on its way. "
            "Open it within two days to start receiving the newsletter.",
        )

    async def confirm(request: Request) -> Response:
        link = read_confirm_token(keys, request.path_params["token"])
        if link is None:
            return invalid_link()
        # Opening the link shows a button; only the button (a POST) confirms. Mail
        # scanners fetch every link in a message, and a stranger may have typed the
        # address into the form: a fetch alone must not subscribe anyone.
        if request.method != "POST":
            return page("confirm.html.j2", title="Confirm")
        subscriber = await run_in_threadpool(
            app.store.confirm_subscriber, link.public_id, link.requested_at, link.topics
        )
        if subscriber is None:
            return invalid_link()
        preferences = f"/preferences/{make_token(secret, 'preferences', subscriber.public_id)}"
        if subscriber.status == "paused":
            return message(
                "Your subscription is paused",
                f"{service.name} is paused for you; resume it on your preferences page.",
                link={"url": preferences, "label": "Resume or change your topics"},
            )
        if subscriber.status != "active":  # the link is older than their leaving
            return message(
                "This link has been used up",
                "You left the newsletter after this link was sent. "
                "To receive it again, subscribe again.",
                link={"url": "/", "label": "Subscribe again"},
            )
        return message(
            "You are subscribed",
            f"{service.name} will reach you from the next edition.",
            link={"url": preferences, "label": "Choose your topics"},
        )

    async def unsubscribe(request: Request) -> Response:
        token = request.path_params["token"]
        subscriber = await subscriber_for("unsubscribe", token)
        if subscriber is None or subscriber.id is None:
            return invalid_link()
        # Only a POST unsubscribes: GET (and HEAD, which Starlette answers on GET routes)
        # is what link scanners send, so it shows the page with the button.
        if request.method != "POST":
            if subscriber.status in LEFT:  # (after a one-click unsubscribe, say): no question
                return message(
                    _LEFT_TITLES[subscriber.status],
                    _left_text(subscriber.status, service.name, subscriber.email),
                    link={"url": "/", "label": "Subscribe again"},
                )
            preferences = f"/preferences/{make_token(secret, 'preferences', subscriber.public_id)}"
            return page(
                "unsubscribe.html.j2",
                title="Unsubscribe",
                preferences_url=preferences,
                email=subscriber.email,
            )
        # RFC 8058 one-click (body List-Unsubscribe=One-Click) or the page's button: the
        # token is the proof, no cookie or session is needed; it takes effect at once.
        await run_in_threadpool(app.store.unsubscribe, public_id=subscriber.public_id)
        return message(
            "You are unsubscribed",
            f"{service.name} will not be sent to you again.",
            link={"url": "/", "label": "Subscribe again"},
        )

    async def preferences(request: Request) -> Response:
        token = request.path_params["token"]
        subscriber = await subscriber_for("preferences", token)
        if subscriber is None or subscriber.id is None:
            return invalid_link()
        if subscriber.status in (*LEFT, "pending"):
            return await not_receiving(request, subscriber)
        saved, error = False, ""
        entered = _stored_choices(subscriber)
        if request.method == "POST":
            form = await request.form()
            if not csrf_ok(secret, subscriber.public_id, str(form.get("csrf", ""))):
                error = "The form expired; please save again."
            else:
                try:
                    changes = _preference_changes(form, topics, subscriber)
                except ValueError as exc:
                    error = str(exc)
                    entered = _entered_choices(form)  # kept as typed, to fix the one field
                else:
                    changed = await run_in_threadpool(
                        app.store.set_subscriber, subscriber.id, **changes
                    )
                    subscriber = changed or subscriber
                    entered = _stored_choices(subscriber)
                    saved = True
        leave = f"/unsubscribe/{make_token(secret, 'unsubscribe', subscriber.public_id)}"
        response = page(
            "preferences.html.j2",
            400 if error else 200,
            title="Preferences",
            subscriber=subscriber,
            topics=topics,
            locales=LOCALES,
            entered=entered,
            zones=_ZONES,
            zone_script=_ZONE_SCRIPT,
            default_zone=service.timezone,
            saved=saved,
            error=error,
            csrf=csrf_token(secret, subscriber.public_id),
            unsubscribe_url=leave,
        )
        # The one script of the site, allowed by its hash on this page alone.
        response.headers["Content-Security-Policy"] = SECURITY_HEADERS[
            "Content-Security-Policy"
        ].replace("default-src 'none';", f"default-src 'none'; script-src '{_ZONE_SCRIPT_HASH}';")
        return response

    async def not_receiving(request: Request, subscriber: Subscriber) -> Response:
        """The preferences page of someone nothing is sent to: it says so and offers the way
        back (a confirmation link, as signing up again sends), never a form that would
        answer "Saved." while they stay unsubscribed."""
        status, error = subscriber.status, ""
        can_return = status != "complained"  # a spam report is not undone by a click
        if request.method == "POST":
            form = await request.form()
            if not csrf_ok(secret, subscriber.public_id, str(form.get("csrf", ""))):
                error = "The form expired; please press the button again."
            elif form.get("action") != "resubscribe" or not can_return:
                error = "Nothing was saved: nothing is sent to you, whatever the settings."
            elif not per_ip.allow(rate_key(client_ip(request))) or not per_address.allow(
                subscriber.email
            ):
                return message("Too many requests", "Please try again in an hour.", 429)
            else:
                kept = [t for t in subscriber.topics.split(",") if t in topics]
                token = make_confirm_token(secret, subscriber.public_id, kept)
                try:
                    await send_confirmation(app, subscriber.email, f"{base}/confirm/{token}")
                except DeliveryError as exc:
                    return mail_down(subscriber.email, exc)
                return message(
                    "Check your inbox",
                    f"A confirmation link is on its way to {subscriber.email}. Open it "
                    f"within two days and press its button to receive {service.name} again.",
                )
        return page(
            "preferences_left.html.j2",
            400 if error else 200,
            title=_LEFT_TITLES[status],
            status_text=_left_text(status, service.name, subscriber.email),
            way_back="To receive it again, write to "
            f"{parseaddr(service.reply_to or service.sender)[1]} from this address.",
            subscriber=subscriber,
            can_return=can_return,
            error=error,
            csrf=csrf_token(secret, subscriber.public_id),
        )

    def reader() -> Recipient:
        return Recipient(0, "", None, f"{base}/", "", f"{base}/")

    async def edition_view(request: Request) -> Response:
        try:
            slot = datetime.strptime(request.path_params["stamp"], "%Y%m%dT%H%MZ")
        except ValueError:
            return message("No such edition", "Check the address.", 404)
        edition = await run_in_threadpool(
            app.store.edition, request.path_params["digest_id"], slot.replace(tzinfo=UTC)
        )
        if edition is None:
            return message("No such edition", "Check the address.", 404)
        return HTMLResponse(substitute(edition.html, reader(), is_html=True))

    async def archive(request: Request) -> Response:
        zone = zoneinfo.ZoneInfo(service.timezone)  # editions of one day told apart by time
        editions = [
            {
                "subject": e.subject,
                "url": web_view_url(base, e.digest_id, e.slot),
                "iso": e.slot.isoformat(),
                "when": f"{e.slot.astimezone(zone):%Y-%m-%d %H:%M} {service.timezone}",
            }
            for e in await run_in_threadpool(app.store.editions, 100)
        ]
        return page("archive.html.j2", title="Archive", editions=editions)

    async def feed(request: Request) -> Response:
        editions = await run_in_threadpool(app.store.editions, 50)
        entries = "".join(
            f"<entry><title>{_xml(e.subject)}</title>"
            f'<link href="{_xml(web_view_url(base, e.digest_id, e.slot))}"/>'
            f"<id>{_xml(web_view_url(base, e.digest_id, e.slot))}</id>"
            f"<updated>{e.created_at.isoformat()}</updated></entry>"
            for e in editions
        )
        # The feed changed when its newest edition was made (RFC 4287 4.2.15), not per request.
        newest = max((e.created_at for e in editions), default=datetime(2000, 1, 1, tzinfo=UTC))
        body = (
            f'<?xml version="1.0" encoding="utf-8"?>'
            f'<feed xmlns="http://www.w3.org/2005/Atom"><title>{_xml(service.name)}</title>'
            f"<author><name>{_xml(service.name)}</name></author>"
            f"<id>{_xml(base)}/</id><updated>{newest.isoformat()}</updated>"
            f'<link rel="self" href="{_xml(base)}/feed.atom"/>{entries}</feed>'
        )
        return Response(body, media_type="application/atom+xml")

    async def healthz(request: Request) -> Response:
        try:
            await run_in_threadpool(app.store.editions, 1)
        except Exception as exc:  # the point of a health check: say what is wrong
            return JSONResponse({"status": "error", "database": str(exc)}, 503)
        return JSONResponse({"status": "ok"})

    hooks = WebhookReceiver(app, fetch or https_get)

    async def webhook(request: Request) -> Response:
        return await hooks.receive(request.path_params["provider"], request)

    async def not_found(request: Request, exc: Exception) -> Response:
        return message("Not found", "There is nothing at this address.", 404)

    def too_large() -> Response:
        return message(
            "Too large",
            f"This site reads at most {service.max_body_bytes} bytes in one request.",
            413,
        )

    def failed() -> Response:
        return message(
            "Something went wrong",
            "The error was logged for the site's admin. Please try again in a few minutes.",
            500,
        )

    routes = [
        Route("/", home),
        Route("/subscribe", subscribe, methods=["POST"]),
        Route("/confirm/{token}", confirm, methods=["GET", "POST"]),
        Route("/unsubscribe/{token}", unsubscribe, methods=["GET", "POST"]),
        Route("/preferences/{token}", preferences, methods=["GET", "POST"]),
        Route("/editions/{digest_id}/{stamp}", edition_view),
        Route("/archive", archive),
        Route("/feed.atom", feed),
        Route("/healthz", healthz),
        Route("/webhooks/{provider}", webhook, methods=["POST"]),
        *admin_routes(app, env, admin_guard),
    ]
    middleware = [
        # The client's own address from a trusted proxy's X-Forwarded-For (CIDRs allowed),
        # here rather than in `digest serve`, so the app is right whatever server runs it.
        Middleware(ProxyHeadersMiddleware, trusted_hosts=service.trusted_proxies),
        Middleware(_Headers),
        Middleware(CatchAll, failed=failed),
        Middleware(BodyLimit, limit=service.max_body_bytes, too_large=too_large),
    ]
    return Starlette(routes=routes, middleware=middleware, exception_handlers={404: not_found})


def _preference_changes(form: Any, topics: list[str], subscriber: Subscriber) -> dict[str, object]:
    """What a preferences form changes; ValueError names a bad field."""
    changes: dict[str, object] = {
        "topics": ",".join(t for t in form.getlist("topics") if t in topics)
    }
    changes["timezone"] = check_timezone(str(form.get("timezone", "")).strip() or None)
    locale = str(form.get("locale", "")).strip()
    changes["locale"] = check_locale(locale) if locale else None
    paused = form.get("paused") == "yes"
    if subscriber.status in ("active", "paused"):
        changes["status"] = "paused" if paused else "active"
    return changes


def _stored_choices(subscriber: Subscriber) -> dict[str, Any]:
    """The preferences form's fields as the subscriber's row has them."""
    return {
        "topics": set(subscriber.topics.split(",")),
        "timezone": subscriber.timezone or "",
        "locale": subscriber.locale or "",
        "paused": subscriber.status == "paused",
    }


def _entered_choices(form: Any) -> dict[str, Any]:
    """The preferences form's fields as the reader sent them (a form refused for one field
    comes back with the others as they were chosen, not as stored)."""
    return {
        "topics": set(form.getlist("topics")),
        "timezone": str(form.get("timezone", "")).strip(),
        "locale": str(form.get("locale", "")).strip(),
        "paused": form.get("paused") == "yes",
    }


# The zones the preferences form offers (a <datalist>: typing narrows it; any IANA name is
# accepted): the Area/City names, without the old aliases (US/Eastern, Etc/GMT+5...).
_ZONES = sorted(
    z
    for z in zoneinfo.available_timezones()
    if "/" in z
    and not z.startswith(("Etc/", "SystemV/", "US/", "Brazil/", "Canada/", "Chile/", "Mexico/"))
)
# With scripts on, an empty zone field starts at the browser's own zone; without, the list
# and the typed name work the same.
_ZONE_SCRIPT = (
    'var z=document.getElementById("timezone");'
    'if(z&&!z.value){try{z.value=Intl.DateTimeFormat().resolvedOptions().timeZone||"";}'
    "catch(e){}}"
)
_ZONE_SCRIPT_HASH = (
    "sha256-" + base64.b64encode(hashlib.sha256(_ZONE_SCRIPT.encode()).digest()).decode()
)


_LEFT_TITLES = {
    "unsubscribed": "You are unsubscribed",
    "bounced": "Mail to you bounced",
    "complained": "You reported our email as spam",
    "pending": "Your subscription is not confirmed",
}


def _left_text(status: str, name: str, email: str) -> str:
    """Why nothing is sent to this address, in the reader's terms."""
    return {
        "unsubscribed": f"You left {name}: nothing is sent to {email}.",
        "bounced": f"Mail to {email} was refused by its mail server, so {name} is no longer "
        "sent to it.",
        "complained": f"An email from {name} to {email} was reported as spam, so nothing is "
        "sent to it.",
        "pending": f"{email} has not confirmed its subscription to {name} yet, so nothing is "
        "sent to it.",
    }[status]


# Characters XML 1.0 does not allow (C0 controls but tab, CR, LF; surrogates; U+FFFE/FFFF):
# one in a headline would make the whole feed unreadable to every feed reader.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    """Text for an Atom element or attribute: escaped, and without what XML forbids."""
    return escape(_NOT_XML.sub("", text), {'"': "&quot;"})
