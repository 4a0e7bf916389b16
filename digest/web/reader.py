"""The reader's own pages, reached through signed links: preferences (topics, zone,
language, pause) and unsubscribe. Someone nothing is sent to gets a page that says so and
offers the way back, never a form that would answer "Saved." while they stay away.
"""

from __future__ import annotations

import base64
import hashlib
import zoneinfo
from email.utils import parseaddr
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest.config.models import zone_named
from digest.errors import DeliveryError
from digest.links import make_token
from digest.render.i18n import N_, Localizer, check_locale
from digest.states import LEFT, SubscriberStatus
from digest.store import Subscriber
from digest.subscribers import check_subscriber_timezone
from digest.web.context import LOCALES, WebContext, client_ip
from digest.web.security import SECURITY_HEADERS, csrf_ok, csrf_token, now_stamp
from digest.web.signup import SignUpViews
from digest.web.topic_choice import STRANDED, TopicChoice
from digest.web.zone_words import zone_refused


class ReaderViews:
    """``/preferences/{token}`` and ``/unsubscribe/{token}``."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx

    async def unsubscribe(self, request: Request) -> Response:
        """The page with the button (GET), or leaving at once (POST, RFC 8058 one-click)."""
        ctx = self.ctx
        subscriber = await ctx.subscriber_for("unsubscribe", request.path_params["token"])
        if subscriber is None or subscriber.id is None:
            return ctx.invalid_link(ctx.visitor(request), "unsubscribe")
        tr = ctx.reader(subscriber)
        # Only a POST unsubscribes: GET (and HEAD, which Starlette answers on GET routes)
        # is what link scanners send, so it shows the page with the button.
        preferences = f"/preferences/{make_token(ctx.secret, 'preferences', subscriber.public_id)}"
        # The way back is the preferences page's button (a link mailed, the reader's topics,
        # zone and language kept), not the blank sign-up form: one click leaves, so one
        # click by mistake is common.
        back = {
            "url": preferences,
            "label": tr.gettext(_WAY_BACK.get(subscriber.status, _WAY_BACK[""])),
        }
        if request.method != "POST":
            if subscriber.status in LEFT:  # (after a one-click unsubscribe, say): no question
                return ctx.message(
                    tr.gettext(_LEFT_TITLES[subscriber.status]),
                    _left_text(tr, subscriber.status, ctx.service.name, subscriber.email),
                    link=back,
                    tr=tr,
                )
            return ctx.page(
                "unsubscribe.html.j2",
                tr=tr,
                title=tr.gettext("Unsubscribe"),
                preferences_url=preferences,
                email=subscriber.email,
            )
        # RFC 8058 one-click (body List-Unsubscribe=One-Click) or the page's button: the
        # token is the proof, no cookie or session is needed; it takes effect at once.
        await run_in_threadpool(ctx.store.unsubscribe, public_id=subscriber.public_id)
        return ctx.message(
            tr.gettext("You are unsubscribed"),
            tr.gettext(
                "{service} will not be sent to {email} again.",
                service=ctx.service.name,
                email=subscriber.email,
            ),
            link=back,
            tr=tr,
        )

    async def preferences(self, request: Request) -> Response:
        """The reader's choices (GET), saved (POST) when the form's CSRF field is genuine."""
        ctx = self.ctx
        subscriber = await ctx.subscriber_for("preferences", request.path_params["token"])
        if subscriber is None or subscriber.id is None:
            return ctx.invalid_link(ctx.visitor(request), "preferences")
        tr = ctx.reader(subscriber)
        if subscriber.status in (*LEFT, SubscriberStatus.PENDING):
            return await self.not_receiving(request, subscriber)
        saved, error, field = False, "", ""
        entered = _stored_choices(subscriber)
        # Topics of theirs no source declares any more stay theirs until they untick them:
        # dropped, a reader of such topics alone would be widened to every topic, unasked.
        offered = [*ctx.topics, *TopicChoice.of(_chosen(subscriber), ctx.topics).withdrawn]
        if request.method == "POST":
            form = await request.form()
            if form.get("action") == "resubscribe":
                # The way back's button, pressed again once its link was confirmed (Back, a
                # second tab): that form has none of this page's fields, and saved it would
                # clear the reader's zone and language, and resume a pause. Nothing to do.
                return SignUpViews(ctx).already(subscriber)
            if not csrf_ok(
                ctx.secret,
                subscriber.public_id,
                str(form.get("csrf", "")),
                now_stamp(ctx.app.clock),
            ):
                error = tr.gettext("The form expired; please save again.")
                entered = _entered_choices(form)  # saving again saves what was chosen
            else:
                try:
                    changes = _preference_changes(form, offered, subscriber, tr)
                except Refused as exc:
                    error, field = str(exc), exc.field
                    entered = _entered_choices(form)  # kept as typed, to fix the one field
                else:
                    changed = await run_in_threadpool(
                        ctx.store.set_subscriber, subscriber.id, **changes
                    )
                    subscriber = changed or subscriber
                    entered = _stored_choices(subscriber)
                    saved = True
                    tr = ctx.reader(subscriber)  # "Saved." in the language just chosen
        choice = TopicChoice.of(_chosen(subscriber), ctx.topics)  # as saved
        leave = f"/unsubscribe/{make_token(ctx.secret, 'unsubscribe', subscriber.public_id)}"
        response = ctx.page(
            "preferences.html.j2",
            400 if error else 200,
            tr,
            title=tr.gettext("Preferences"),
            subscriber=subscriber,
            topics=ctx.topics,
            withdrawn=list(choice.withdrawn),
            # Only such topics: every edition skips them (the page says so, and why).
            stranded=choice.stranded,
            locales=LOCALES,
            entered=entered,
            zones=_ZONES,
            zone_script=_ZONE_SCRIPT,
            default_zone=_digests_zones(ctx),
            saved=saved,
            error=error,
            field=field,
            csrf=csrf_token(ctx.secret, subscriber.public_id, now_stamp(ctx.app.clock)),
            unsubscribe_url=leave,
        )
        # The one script of the site, allowed by its hash on this page alone.
        response.headers["Content-Security-Policy"] = SECURITY_HEADERS[
            "Content-Security-Policy"
        ].replace("default-src 'none';", f"default-src 'none'; script-src '{_ZONE_SCRIPT_HASH}';")
        return response

    async def not_receiving(self, request: Request, subscriber: Subscriber) -> Response:
        """The preferences page of someone nothing is sent to: it says so and offers the way
        back (a confirmation link, as signing up again sends), never a form that would
        answer "Saved." while they stay unsubscribed."""
        ctx = self.ctx
        tr = ctx.reader(subscriber)
        status, error = subscriber.status, ""
        can_return = status != SubscriberStatus.COMPLAINED  # a spam report is not undone by a click
        # Their topics as stored, those no longer offered included (see topic_choice.py).
        choice = TopicChoice.of(_chosen(subscriber), ctx.topics)
        if request.method == "POST":
            form = await request.form()
            choice = choice.sent(form)  # kept as ticked, should the page come back
            if not csrf_ok(
                ctx.secret,
                subscriber.public_id,
                str(form.get("csrf", "")),
                now_stamp(ctx.app.clock),
            ):
                error = tr.gettext("The form expired; please press the button again.")
            elif form.get("action") != "resubscribe" or not can_return:
                error = tr.gettext(
                    "Nothing was saved: nothing is sent to you, whatever the settings."
                )
            elif choice.stranded:
                error = tr.gettext(STRANDED)
            elif not ctx.limits.allow_signup(client_ip(request), subscriber.email):
                return ctx.too_many(tr)
            else:
                try:
                    link = await ctx.confirm_url(subscriber, choice.chosen)
                    await ctx.mailer.send(subscriber.email, link, tr)
                except DeliveryError as exc:
                    return ctx.mail_down(subscriber.email, exc, tr)
                return ctx.message(
                    tr.gettext("Check your inbox"),
                    tr.gettext(
                        "A confirmation link is on its way to {email}. Open it within two "
                        "days and press its button to receive {service} again.",
                        email=subscriber.email,
                        service=ctx.service.name,
                    ),
                    tr=tr,
                )
        return ctx.page(
            "preferences_left.html.j2",
            400 if error else 200,
            tr,
            title=tr.gettext(_LEFT_TITLES[status]),
            status_text=_left_text(tr, status, ctx.service.name, subscriber.email),
            way_back=tr.gettext(
                "To receive it again, write to {address} from this address.",
                address=parseaddr(ctx.service.reply_to or ctx.service.sender)[1],
            ),
            subscriber=subscriber,
            can_return=can_return,
            error=error,
            **choice.fields(),
            csrf=csrf_token(ctx.secret, subscriber.public_id, now_stamp(ctx.app.clock)),
        )


class Refused(ValueError):
    """A preferences field refused: which one (the page marks it), and why (the page says)."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(why)
        self.field = field


def _preference_changes(
    form: Any, topics: list[str], subscriber: Subscriber, tr: Localizer
) -> dict[str, object]:
    """What a preferences form changes; ``Refused`` names a bad field."""
    changes: dict[str, object] = {
        "topics": ",".join(t for t in form.getlist("topics") if t in topics)
    }
    try:
        # The help says to type a city: one that names a single zone is that zone.
        zone = str(form.get("timezone", "")).strip()
        changes["timezone"] = check_subscriber_timezone(zone_named(zone) or zone or None)
    except ValueError as exc:
        raise Refused("timezone", zone_refused(tr, zone)) from exc
    locale = str(form.get("locale", "")).strip()
    try:
        changes["locale"] = check_locale(locale) if locale else None
    except ValueError as exc:
        why = tr.gettext("unknown language {code}; choose one from the list", code=repr(locale))
        raise Refused("locale", why) from exc
    paused = form.get("paused") == "yes"
    if subscriber.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
        changes["status"] = SubscriberStatus.PAUSED if paused else SubscriberStatus.ACTIVE
    return changes


def _chosen(subscriber: Subscriber) -> list[str]:
    """The topics the subscriber chose, as stored ([] for none: every topic)."""
    return [t for t in subscriber.topics.split(",") if t]


def _stored_choices(subscriber: Subscriber) -> dict[str, Any]:
    """The preferences form's fields as the subscriber's row has them."""
    return {
        "topics": set(subscriber.topics.split(",")),
        "timezone": subscriber.timezone or "",
        "locale": subscriber.locale or "",
        "paused": subscriber.status == SubscriberStatus.PAUSED,
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


# The way back's words by why the reader left: "by mistake" is said to one who clicked,
# not to one whose mail bounced or who reported it as spam (whose way back is a letter).
_WAY_BACK: dict[str, str] = {
    "": N_("Unsubscribed by mistake? Come back"),
    SubscriberStatus.BOUNCED: N_("Your mailbox works again? Receive it again"),
    SubscriberStatus.COMPLAINED: N_("How to receive it again"),
}

_LEFT_TITLES: dict[str, str] = {
    SubscriberStatus.UNSUBSCRIBED: N_("You are unsubscribed"),
    SubscriberStatus.BOUNCED: N_("Mail to you bounced"),
    SubscriberStatus.COMPLAINED: N_("You reported our email as spam"),
    SubscriberStatus.PENDING: N_("Your subscription is not confirmed"),
}

_LEFT_TEXTS: dict[str, str] = {
    SubscriberStatus.UNSUBSCRIBED: N_("You left {name}: nothing is sent to {email}."),
    SubscriberStatus.BOUNCED: N_(
        "Mail to {email} was refused by its mail server, so {name} is no longer sent to it."
    ),
    SubscriberStatus.COMPLAINED: N_(
        "An email from {name} to {email} was reported as spam, so nothing is sent to it."
    ),
    SubscriberStatus.PENDING: N_(
        "{email} has not confirmed its subscription to {name} yet, so nothing is sent to it."
    ),
}


def _left_text(tr: Localizer, status: str, name: str, email: str) -> str:
    """Why nothing is sent to this address, in the reader's terms and language."""
    return tr.gettext(_LEFT_TEXTS[status], name=name, email=email)


def _digests_zones(ctx: WebContext) -> str:
    """The zone(s) a reader who sets none is dated in: each digest's own, else the
    service's (``Config.digest_timezone``, the rule the editions and the sign-up page's
    schedule words read), each named once; the service's when there is no digest."""
    config = ctx.config
    zones = dict.fromkeys(config.digest_timezone(d) for d in config.digests)
    return ", ".join(zones) or config.service.timezone
