"""The next edition as one reader or one segment would get it, and "send this to me".

The render is `digest preview`'s (editions.next_edition_preview); the test message is built
as a send builds each message (build_template, then personalised, DKIM-signed when
configured) but its subject starts with "[Test]", it carries an ``X-Digest-Test`` header,
and no delivery row is written for it: it counts nowhere and never stops a reader's copy.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from digest.app import App
from digest.editions import next_edition_preview
from digest.errors import DeliveryError
from digest.links import personal_links
from digest.records import OutgoingMessage, RankedEdition, Recipient, RenderedEdition
from digest.render import build_template, substitute
from digest.render.headers import header
from digest.states import SendStatus
from digest.store import Subscriber
from digest.subscribers import check_subscriber_locale, check_subscriber_timezone, check_topics
from digest.web.mailer import Mailer

TEST_PREFIX = "[Test] "


@dataclass(frozen=True)
class Segment:
    """Who the preview is for: a subscriber, or a (zone, locale, topics) segment."""

    digest_id: str
    subscriber: Subscriber | None = None
    timezone: str | None = None
    locale: str | None = None
    topics: frozenset[str] = frozenset()

    def describe(self) -> str:
        """The segment in a few words, for the page and the log."""
        if self.subscriber is not None:
            return f"as {self.subscriber.email} gets it"
        topics = ", ".join(sorted(self.topics)) or "every topic"
        zone, locale = self.timezone or "the digest’s", self.locale or "the service’s"
        return f"time zone {zone}, language {locale}, {topics}"


def segment_of(
    app: App,
    digest_id: str,
    email: str = "",
    timezone: str = "",
    locale: str = "",
    topics: list[str] | None = None,
) -> Segment:
    """The segment a preview form asks for; ValueError naming a bad field."""
    digest = app.config.digest(digest_id or None)
    if email:
        row = app.store.subscriber_by_email(email.strip().lower())
        if row is None:
            raise ValueError(f"no subscriber has the address {email!r}")
        chosen = frozenset(t for t in row.topics.split(",") if t)
        return Segment(digest.id, row, row.timezone, row.locale, chosen)
    check_topics(sorted(set(topics or ())), app.config.topics())
    return Segment(
        digest.id,
        None,
        check_subscriber_timezone(timezone.strip() or None),
        check_subscriber_locale(locale.strip() or None),
        frozenset(topics or ()),
    )


def render_for(app: App, segment: Segment) -> tuple[RankedEdition, RenderedEdition]:
    """The next edition's stories and render for the segment (nothing stored)."""
    digest = app.config.digest(segment.digest_id)
    return next_edition_preview(
        app, digest, app.clock.now(), segment.timezone, segment.locale, segment.topics
    )


def sample_recipient(app: App, segment: Segment, email: str = "preview@example.org") -> Recipient:
    """Whose links fill the preview: the subscriber's own, or links that lead nowhere."""
    config, row = app.config, segment.subscriber
    if row is not None and row.id is not None:
        return personal_links(
            config.secret(),
            config.service.base_url,
            config.unsubscribe_mailto(),
            row.id,
            row.public_id,
            row.email,
            row.name,
        )
    base = config.service.base_url
    return Recipient(
        0,
        email,
        None,
        f"{base}/unsubscribe/PREVIEW",
        f"mailto:{config.unsubscribe_mailto()}",
        f"{base}/preferences/PREVIEW",
    )


def personal(app: App, segment: Segment, rendered: RenderedEdition) -> tuple[str, str]:
    """The preview's HTML and text with the recipient's tokens filled in."""
    recipient = sample_recipient(app, segment)
    locale = segment.locale or app.config.service.locale
    return (
        substitute(rendered.html, recipient, is_html=True, locale=locale),
        substitute(rendered.text, recipient, is_html=False, locale=locale),
    )


async def send_test(app: App, mailer: Mailer, segment: Segment, to: str) -> str:
    """Mail the segment's preview to ``to`` (the admin) marked as a test, through the web
    app's one ``mailer``; the transport's status. DeliveryError when the transport refused
    or deferred it."""
    from starlette.concurrency import run_in_threadpool

    config, service = app.config, app.config.service
    digest = config.digest(segment.digest_id)
    _, rendered = await run_in_threadpool(render_for, app, segment)
    rendered = dataclasses.replace(rendered, subject=TEST_PREFIX + rendered.subject)
    template = build_template(
        rendered,
        sender=service.sender,
        reply_to=service.reply_to,
        list_name=f"{digest.title} ({service.name})",
        list_id=f"{digest.id}.{urlsplit(service.base_url).hostname}",
        message_id_prefix="digest.test",
        locale=segment.locale or service.locale,
    )
    template = dataclasses.replace(
        template,
        common_headers=template.common_headers + header("X-Digest-Test", "yes"),
        # A Message-ID of its own for each test: a mailbox hides a message whose id it has
        # seen (Gmail does), so a second test of the same preview would never show.
        message_id_prefix=f"digest.test.{secrets.token_hex(8)}",
    )
    recipient = dataclasses.replace(sample_recipient(app, segment, to), email=to, name=None)
    if getattr(await mailer.sender(), "wants_fields", False):
        fields = template.fields(recipient)
        fields.headers["X-Digest-Test"] = "yes"
        message = OutgoingMessage(
            0, template.sender, to, template.message_id(recipient, 0), b"", fields
        )
    else:
        message_id, data = template.personalise(recipient, 0)
        message = OutgoingMessage(0, template.sender, to, message_id, data)
    result = await mailer.send_one(message)  # signed there when the bytes are ours
    if result is None or result.status != SendStatus.SENT:
        detail = result.detail if result else "no answer"
        raise DeliveryError(
            f"the test message to {to} was not sent: {detail}",
            "check the transport with “Test the connection” on the Delivery page",
        )
    return result.detail or "sent"
