"""What every subscriber view works over, built once by ``create_app``: the config, the
store, the signing keys, the templates, the one mailer and the named rate limits, plus the
few page helpers all views share (a page, a message, "this link is not valid")."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import parseaddr
from typing import Any

import jinja2
from babel import Locale
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from digest.app import App
from digest.clock import Clock
from digest.config import Config
from digest.config.models import ServiceConfig
from digest.errors import DeliveryError
from digest.links import Purpose, make_confirm_token, read_token
from digest.render.i18n import DEFAULT_LOCALE, Localizer, negotiate, page_locale
from digest.render.translations import LANGUAGES
from digest.resources import _find
from digest.store import Store, Subscriber
from digest.web.mailer import Mailer
from digest.web.security import RateLimit, mailbox_key, rate_key

log = logging.getLogger("digest.web")

# Sign-up and "send me a new link" share these: a form that mails a stranger's address is
# the one thing here an abuser could repeat to flood a mailbox (or our sending reputation).
SIGNUP_PER_IP_PER_HOUR = 10
SIGNUP_PER_ADDRESS_PER_HOUR = 3
MAIL_DOWN_RETRY_AFTER_SECONDS = 300  # Retry-After when the confirmation could not be sent
# The longest a new confirmation link waits to be dated after its reader's leaving.
CONFIRM_WAIT_MAX_SECONDS = 1.0
# The query parameter of a confirmation link that names the sign-up page's language.
LINK_LANGUAGE = "lang"
# The languages a reader may choose (the preferences page) and the console previews: those
# digest has words for (render/translations/), each named in its own language ("Français").
LOCALES = tuple(
    (code, (Locale.parse(code).get_display_name(code) or code).capitalize()) for code in LANGUAGES
)


@dataclass
class Limits:
    """The web app's named rate limits, one counter each for the app's lifetime."""

    signup_per_ip: RateLimit
    signup_per_address: RateLimit

    @classmethod
    def on(cls, clock: Clock) -> Limits:
        """The named limits at their sizes, their windows on ``clock`` (the app's)."""
        return cls(
            RateLimit(SIGNUP_PER_IP_PER_HOUR, 3600, clock.monotonic),
            RateLimit(SIGNUP_PER_ADDRESS_PER_HOUR, 3600, clock.monotonic),
        )

    def allow_signup(self, ip: str, email: str) -> bool:
        """One more confirmation mail for this client and the mailbox of ``email`` (counted
        when allowed)."""
        return self.signup_per_ip.allow(rate_key(ip)) and self.signup_per_address.allow(
            mailbox_key(email)
        )


@dataclass
class WebContext:
    """The one object the views share; nothing in it changes per request but the counters."""

    app: App
    templates: jinja2.Environment
    mailer: Mailer
    limits: Limits
    secret: str = field(init=False)
    keys: tuple[str, ...] = field(init=False)  # links mailed before a secret was rotated still work
    topics: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.secret = self.config.secret()
        self.keys = self.config.secrets()
        self.topics = self.config.topics()

    @classmethod
    def build(cls, app: App, limits: Limits) -> WebContext:
        """The context of one app; a missing secret stops it here, before it serves."""
        templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(_find("templates", "web"))),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        # The admin's pages share base.html.j2 and stay English; a reader's page overrides
        # these per request (``page``).
        templates.globals.update(_=Localizer("en").markup, lang="en")
        return cls(app, templates, Mailer(app), limits)

    @property
    def config(self) -> Config:
        return self.app.config

    @property
    def service(self) -> ServiceConfig:
        return self.app.config.service

    @property
    def store(self) -> Store:
        return self.app.store

    @property
    def base(self) -> str:
        return self.service.base_url

    @asynccontextmanager
    async def lifespan(self, _asgi: Starlette) -> AsyncIterator[None]:
        """Close the mailer's sender when the server stops."""
        try:
            yield
        finally:
            await self.mailer.aclose()

    def reader(self, subscriber: Subscriber, came_in: str = "") -> Localizer:
        """The language of a page reached by ``subscriber``'s signed link, and of the
        confirmation email leading there: their locale, else ``came_in`` (the language of
        the sign-up page they came from, which their confirmation link carries: a French
        visitor who signed up on the French page reads a French confirmation), else the
        service's; English where digest has not that language."""
        chosen = subscriber.locale or (came_in if came_in in LANGUAGES else "")
        return Localizer(page_locale(chosen or self.service.locale))

    def came_in(self, request: Request) -> str:
        """The sign-up page's language a confirmation link carries (``?lang=``), when one
        of digest's languages, else "". Not signed: it chooses only the page's words."""
        lang = request.query_params.get(LINK_LANGUAGE, "")
        return lang if lang in LANGUAGES else ""

    def page_language(self, tr: Localizer) -> str:
        """What a confirmation link mailed from a page in ``tr``'s language carries: that
        language, or "" when it is the service's (the link is as before)."""
        service = Localizer(page_locale(self.service.locale)).language
        return "" if tr.language == service else tr.language

    def visitor(self, request: Request) -> Localizer:
        """The language of a public page: the best of the browser's Accept-Language that
        digest has, else the service's."""
        accept = request.headers.get("accept-language", "")
        return Localizer(negotiate(accept, self.service.locale))

    def page(
        self, template: str, status: int = 200, tr: Localizer | None = None, **context: Any
    ) -> HTMLResponse:
        """A page of the site, rendered from templates/web in ``tr``'s language (by default
        the service's)."""
        tr = tr or Localizer(page_locale(self.service.locale))
        html = self.templates.get_template(template).render(
            service=self.service, _=tr.markup, lang=tr.language, **context
        )
        # A public page's language follows the request's Accept-Language: caches keep one
        # copy per language.
        return HTMLResponse(html, status, headers={"Vary": "Accept-Language"})

    def message(
        self,
        title: str,
        text: str,
        status: int = 200,
        link: dict[str, str] | None = None,
        tr: Localizer | None = None,
    ) -> HTMLResponse:
        """A page that says one thing (``title`` and ``text`` already in ``tr``'s
        language), with at most one link onwards."""
        return self.page("message.html.j2", status, tr, title=title, text=text, link=link)

    def invalid_link(self, tr: Localizer, purpose: str = "") -> HTMLResponse:
        """The answer to a token that is not ours, is cut short or out of date. For an
        unsubscribe link, the way out without it (never "subscribe again": the reader wants
        to leave, and the spam button is the next thing they see)."""
        if purpose == "unsubscribe":
            address = parseaddr(self.service.reply_to or self.service.sender)[1]
            return self.message(
                tr.gettext("This unsubscribe link is not valid"),
                tr.gettext(
                    "It may be cut short or out of date. Use the Unsubscribe link of a more "
                    "recent email, or write to {address} from the address you receive it "
                    "at, asking to leave.",
                    address=address,
                ),
                404,
                tr=tr,
            )
        if purpose == "preferences":
            return self.message(
                tr.gettext("This preferences link is not valid"),
                tr.gettext(
                    "It may be cut short or out of date. Use the Preferences link at the "
                    "foot of a more recent email."
                ),
                404,
                tr=tr,
            )
        return self.message(
            tr.gettext("This link is not valid"),
            tr.gettext(
                "It may be incomplete or out of date. Copy the whole link from the "
                "email, or subscribe again."
            ),
            404,
            {"url": "/", "label": tr.gettext("Subscribe")},
            tr,
        )

    def too_many(self, tr: Localizer) -> HTMLResponse:
        """The answer when a named limit refuses."""
        return self.message(
            tr.gettext("Too many requests"), tr.gettext("Please try again in an hour."), 429, tr=tr
        )

    async def not_found(self, request: Request, exc: Exception) -> Response:
        """Any address with no route."""
        tr = self.visitor(request)
        return self.message(
            tr.gettext("Not found"), tr.gettext("There is nothing at this address."), 404, tr=tr
        )

    def too_large(self) -> Response:
        """A request body over ``service.max_body_bytes`` (in the service's language: the
        limit answers before any view reads the request)."""
        tr = Localizer(page_locale(self.service.locale))
        return self.message(
            tr.gettext("Too large"),
            tr.gettext(
                "This site reads at most {size} bytes in one request.",
                size=self.service.max_body_bytes,
            ),
            413,
            tr=tr,
        )

    def failed(self, request: Request) -> Response:
        """An error no view expected (logged by CatchAll), in the visitor's language as
        every public page; in English when that fails (a translation with a broken
        placeholder, say): the last-resort page must not fail for its words."""
        try:
            return self._failed(self.visitor(request))
        except Exception:  # the page in English, and why not in theirs in the log
            log.exception("the error page in the visitor's language failed; it is in English")
            return self._failed(Localizer(DEFAULT_LOCALE))

    def _failed(self, tr: Localizer) -> Response:
        return self.message(
            tr.gettext("Something went wrong"),
            tr.gettext(
                "The error was logged for the site's admin. Please try again in a few minutes."
            ),
            500,
            tr=tr,
        )

    def mail_down(self, email: str, exc: DeliveryError, tr: Localizer) -> Response:
        """The confirmation did not go: the reader is asked to send the form again (the row
        stays pending, and a new try sends a new link)."""
        log.warning(
            "sign-up of %s: the confirmation was not sent (%s); the reader was asked to try "
            "again. %s",
            email,
            exc,
            exc.hint,
        )
        response = self.message(
            tr.gettext("Your confirmation could not be sent yet"),
            tr.gettext(
                "Our mail server is not answering just now. Please try again in a few "
                "minutes; nothing you sent was lost."
            ),
            503,
            {"url": "/", "label": tr.gettext("Back to the form")},
            tr,
        )
        response.headers["Retry-After"] = str(MAIL_DOWN_RETRY_AFTER_SECONDS)
        return response

    async def confirm_url(
        self, subscriber: Subscriber, topics: Sequence[str], came_in: str = ""
    ) -> str:
        """A new confirmation link for ``subscriber`` with ``topics``, dated when it is
        made, but never in the second they left: links are dated to the second, and one of
        the second of leaving counts as older than it (so no old link undoes leaving). A
        reader coming back at once ("Unsubscribed by mistake?") waits for the next second,
        at most one, instead of being mailed a link that says "used up"."""
        clock = self.app.clock
        if subscriber.unsubscribed_at is not None:
            after = subscriber.unsubscribed_at.replace(microsecond=0) + timedelta(seconds=1)
            if clock.now() < after:
                # At most the second promised: a leaving stamped ahead of this clock (by a
                # process on a machine whose clock is fast, or before this one was set
                # back) must not hold the request, and a worker's connection, for as long.
                wait = min((after - clock.now()).total_seconds(), CONFIRM_WAIT_MAX_SECONDS)
                await clock.sleep(wait)
        token = make_confirm_token(self.secret, subscriber.public_id, topics, clock.now())
        language = f"?{LINK_LANGUAGE}={came_in}" if came_in else ""
        return f"{self.base}/confirm/{token}{language}"

    async def subscriber_for(self, purpose: Purpose, token: str) -> Subscriber | None:
        """The subscriber a signed link names, or None for a link that is not valid."""
        public_id = read_token(self.keys, purpose, token)
        if not public_id:
            return None
        return await run_in_threadpool(self.store.subscriber_by_public_id, public_id)


def client_ip(request: Request) -> str:
    """The client's address (the trusted proxy's X-Forwarded-For is already applied)."""
    return request.client.host if request.client else "unknown"
