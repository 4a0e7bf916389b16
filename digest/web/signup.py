"""Signing up: the form, its post (which mails a confirmation link) and the confirm page.

The page a post answers is the same whatever the address's state, so it reveals nothing
about who is subscribed; only a POST confirms, since mail scanners fetch every link.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest.errors import DeliveryError
from digest.links import make_token, read_confirm_token
from digest.render.i18n import N_, Localizer
from digest.states import SubscriberStatus
from digest.store import Subscriber
from digest.subscribers import check_name, normalise_email
from digest.web.context import WebContext, client_ip
from digest.web.schedule_words import when_sent
from digest.web.security import (
    FORM_COOKIE,
    form_nonce,
    now_stamp,
    signup_csrf,
    signup_csrf_ok,
)
from digest.web.topic_choice import NOTHING_SENT, STRANDED, TopicChoice

FORM_COOKIE_SECONDS = 86400  # as long as the form's field is valid


@dataclass(frozen=True)
class Entered:
    """The sign-up form as the reader sent it, and the field refused ("" for none)."""

    email: str = ""
    name: str = ""
    topics: frozenset[str] = frozenset()
    field: str = ""


class SignUpViews:
    """``/``, ``POST /subscribe`` and ``/confirm/{token}``."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx

    def form(
        self,
        request: Request,
        status: int = 200,
        error: str = "",
        entered: Entered | None = None,
    ) -> Response:
        """The sign-up page, its field bound to the browser's nonce cookie (set or renewed);
        a refused one comes back as ``entered``, the field at fault marked for assistive
        technology and focused."""
        ctx = self.ctx
        tr = ctx.visitor(request)
        entered = entered or Entered()
        nonce = form_nonce(request.cookies.get(FORM_COOKIE))
        response = ctx.page(
            "subscribe.html.j2",
            status,
            tr,
            title=tr.gettext("Subscribe"),
            topics=ctx.topics,
            digests=[
                (d.title, when_sent(d, ctx.config.digest_timezone(d), tr))
                for d in ctx.config.digests
            ],
            error=error,
            entered=entered,
            csrf=signup_csrf(ctx.secret, nonce, now_stamp(ctx.app.clock)),
        )
        response.set_cookie(
            FORM_COOKIE,
            nonce,
            max_age=FORM_COOKIE_SECONDS,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    async def home(self, request: Request) -> Response:
        """The sign-up form."""
        return self.form(request)

    async def subscribe(self, request: Request) -> Response:
        """Record a pending subscriber and mail the confirmation link."""
        ctx = self.ctx
        tr = ctx.visitor(request)
        form = await request.form()
        raw_email, raw_name = str(form.get("email", "")), str(form.get("name", ""))
        chosen = [t for t in form.getlist("topics") if t in ctx.topics]

        def again(error: str, status: int, field: str = "") -> Response:
            entered = Entered(raw_email, raw_name, frozenset(chosen), field)
            return self.form(request, status, error, entered)

        if not signup_csrf_ok(
            ctx.secret,
            request.cookies.get(FORM_COOKIE),
            str(form.get("csrf", "")),
            now_stamp(ctx.app.clock),
        ):
            return again(
                tr.gettext(
                    "The form expired; please send it again. (The form needs its cookie: if "
                    "this repeats, allow cookies for this site.)"
                ),
                400,
            )
        try:
            email = normalise_email(raw_email)
        except ValueError:
            return again(_address_problem(tr, raw_email), 400, "email")
        try:
            name = check_name(raw_name)
        except ValueError:
            return again(
                tr.gettext("Please write your name on one line, without special characters."),
                400,
                "name",
            )
        if not ctx.limits.allow_signup(client_ip(request), email):
            return ctx.too_many(tr)
        subscriber = await run_in_threadpool(ctx.store.add_pending, email, name, chosen)
        # Only pending, unsubscribed or bounced addresses get a confirmation (one who
        # reported the mail as spam is not mailed unasked); the page is the same whatever
        # the address's state, so it reveals nothing about who is subscribed.
        if subscriber.status in (
            SubscriberStatus.PENDING,
            SubscriberStatus.UNSUBSCRIBED,
            SubscriberStatus.BOUNCED,
        ):
            # In the reader's language, else this page's: the link carries it, so the
            # confirm page speaks it too (a French page's visitor is not mailed English).
            came_in = ctx.page_language(tr)
            try:
                await ctx.mailer.send(
                    email,
                    await ctx.confirm_url(subscriber, chosen, came_in),
                    ctx.reader(subscriber, came_in),
                )
            except DeliveryError as exc:
                return ctx.mail_down(email, exc, tr)
        # The page names the address as typed (normalised): a typo ("gmial.com") is the
        # commonest reason a confirmation never comes, and it tells nothing the visitor
        # did not type.
        return ctx.page(
            "check_inbox.html.j2", tr=tr, title=tr.gettext("Check your inbox"), email=email
        )

    async def confirm(self, request: Request) -> Response:
        """The confirmation link: a page with a button, and the button's POST confirms."""
        ctx = self.ctx
        token = request.path_params["token"]
        link = read_confirm_token(ctx.keys, token, now=ctx.app.clock.now())
        if link is None:
            return await self.expired(request, token)
        # Opening the link shows a button; only the button (a POST) confirms. Mail
        # scanners fetch every link in a message, and a stranger may have typed the
        # address into the form: a fetch alone must not subscribe anyone.
        if request.method != "POST":
            # The page names the address (escaped by the template): a reader with several
            # addresses sees which one the button subscribes. Only the address's owner
            # received the link, so it tells a visitor nothing they did not have.
            pending = await run_in_threadpool(ctx.store.subscriber_by_public_id, link.public_id)
            if pending is None:
                return ctx.invalid_link(ctx.visitor(request))
            # The mail opened again, say: as an expired link of theirs answers.
            if pending.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
                return self.already(pending, ctx.came_in(request))
            tr = ctx.reader(pending, ctx.came_in(request))
            return ctx.page(
                "confirm.html.j2", tr=tr, title=tr.gettext("Confirm"), email=pending.email
            )
        subscriber = await run_in_threadpool(
            ctx.store.confirm_subscriber, link.public_id, link.requested_at, link.topics
        )
        if subscriber is None:
            return ctx.invalid_link(ctx.visitor(request))
        tr = ctx.reader(subscriber, ctx.came_in(request))
        token = make_token(ctx.secret, "preferences", subscriber.public_id)
        preferences = f"/preferences/{token}"
        # Each answer names the address it is about (the page template escapes it).
        name, email = ctx.service.name, subscriber.email
        if subscriber.status == SubscriberStatus.PAUSED:
            return ctx.message(
                tr.gettext("Your subscription is paused"),
                tr.gettext(_PAUSED, name=name, email=email),
                link={"url": preferences, "label": tr.gettext("Resume or change your topics")},
                tr=tr,
            )
        if subscriber.status != SubscriberStatus.ACTIVE:  # the link is older than their leaving
            return ctx.message(
                tr.gettext("This link has been used up"),
                tr.gettext(
                    "{email} left the newsletter after this link was sent. "
                    "To receive it again, subscribe again.",
                    email=email,
                ),
                link={"url": "/", "label": tr.gettext("Subscribe again")},
                tr=tr,
            )
        if TopicChoice.of(subscriber.topics.split(","), ctx.topics).stranded:
            # Topics withdrawn since the link was mailed: "from the next edition" would be
            # untrue, as every edition skips them.
            return ctx.message(
                tr.gettext("You are subscribed"),
                tr.gettext(NOTHING_SENT),
                link={"url": preferences, "label": tr.gettext("Your topics and settings")},
                tr=tr,
            )
        return ctx.message(
            tr.gettext("You are subscribed"),
            tr.gettext("{name} will reach {email} from the next edition.", name=name, email=email),
            link={"url": preferences, "label": tr.gettext("Your topics and settings")},
            tr=tr,
        )

    def already(self, subscriber: Subscriber, came_in: str = "") -> Response:
        """The answer to a confirmation link of someone already subscribed (or paused)."""
        token = make_token(self.ctx.secret, "preferences", subscriber.public_id)
        tr = self.ctx.reader(subscriber, came_in)
        name, email = self.ctx.service.name, subscriber.email
        if subscriber.status == SubscriberStatus.PAUSED:
            return self.ctx.message(
                tr.gettext("Your subscription is paused"),
                tr.gettext(_PAUSED, name=name, email=email),
                link={
                    "url": f"/preferences/{token}",
                    "label": tr.gettext("Resume or change your topics"),
                },
                tr=tr,
            )
        # "is sent to" would be untrue of one whose topics were all withdrawn since.
        stranded = TopicChoice.of(subscriber.topics.split(","), self.ctx.topics).stranded
        return self.ctx.message(
            tr.gettext("You are already subscribed"),
            tr.gettext(NOTHING_SENT)
            if stranded
            else tr.gettext(
                "{name} is sent to {email}; nothing to confirm.", name=name, email=email
            ),
            link={"url": f"/preferences/{token}", "label": tr.gettext("Your topics and settings")},
            tr=tr,
        )

    async def expired(self, request: Request, token: str) -> Response:
        """A genuine confirmation link past its two days: it says so and, on its button (a
        POST, as confirming is), mails a fresh link with the topics chosen (the old link's,
        as ticked on the page) to the same address, limited as a sign-up is. Nothing else: a
        link not ours stays invalid, and one who reported the mail as spam is not mailed
        unasked (as at sign-up)."""
        ctx = self.ctx
        old = read_confirm_token(ctx.keys, token, max_age=None)
        if old is None:
            return ctx.invalid_link(ctx.visitor(request))
        found = await run_in_threadpool(ctx.store.subscriber_by_public_id, old.public_id)
        if found is None or found.status == SubscriberStatus.COMPLAINED:
            return ctx.invalid_link(ctx.visitor(request))
        if found.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
            return self.already(found, ctx.came_in(request))
        came_in = ctx.came_in(request)
        tr = ctx.reader(found, came_in)
        # The old link's topics, or for a link made before links carried topics the row's;
        # those no source has any more included, shown as such (see topic_choice.py).
        topics = old.topics if old.topics is not None else tuple(found.topics.split(","))
        choice, error = TopicChoice.of(topics, ctx.topics), ""
        if request.method == "POST":
            choice = choice.sent(await request.form())
            error = tr.gettext(STRANDED) if choice.stranded else ""
        if request.method != "POST" or error:
            return ctx.page(
                "confirm_expired.html.j2",
                400 if error else 200,
                tr,
                title=tr.gettext("Link expired"),
                email=found.email,
                error=error,
                **choice.fields(),
            )
        if not ctx.limits.allow_signup(client_ip(request), found.email):
            return ctx.too_many(tr)
        try:
            link = await ctx.confirm_url(found, choice.chosen, came_in)
            await ctx.mailer.send(found.email, link, tr)
        except DeliveryError as exc:
            return ctx.mail_down(found.email, exc, tr)
        return ctx.page(
            "check_inbox.html.j2", tr=tr, title=tr.gettext("Check your inbox"), email=found.email
        )


_PAUSED = N_("{name} is paused for {email}; resume it on your preferences page.")


def _address_problem(tr: Localizer, raw: str) -> str:
    """What the reader is told of an address ``normalise_email`` refuses: one whose part
    before the @ has letters outside ASCII is an address, but not one digest can send to
    (it speaks plain SMTP, not SMTPUTF8), and "does not look like an address" would send
    the reader looking for a typo that is not there."""
    local, at, _ = raw.strip().rpartition("@")
    foreign = "".join(dict.fromkeys(c for c in local if not c.isascii() and c.isprintable()))
    if at and foreign:
        return tr.gettext(
            "We cannot send to an address with {letters} before the @: our mail "
            "server only handles plain Latin letters there. Please use another address.",
            letters=foreign[:5],
        )
    return tr.gettext("That does not look like an email address.")
