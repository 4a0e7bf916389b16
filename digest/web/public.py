"""The pages anyone may read: an edition's web view, the archive, its Atom feed, and the
health check; and the providers' webhooks (which carry their own signatures)."""

from __future__ import annotations

import logging
import re
import time
import zoneinfo
from collections.abc import Callable
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from digest.app import App
from digest.editions import edition_info, web_view_url
from digest.editions.stored import ranked_from_json, view_from_json
from digest.rank import topic_key
from digest.render import edition_subject, render_whole, shows_all, web_view
from digest.render.i18n import Localizer
from digest.store import Edition, saved_id
from digest.web.context import WebContext
from digest.web.receiver import WebhookReceiver, https_get
from digest.web.security import SECURITY_HEADERS

log = logging.getLogger("digest.web")

ARCHIVE_EDITIONS = 100  # the newest editions the archive page lists
FEED_EDITIONS = 50  # and the Atom feed
OUTAGE_LOG_SECONDS = 60.0  # an outage's /healthz warnings: the first, then one a minute


class _OutageLog:
    """The log of one database outage as /healthz sees it: anyone may ask it, as often as
    they like, so a warning per request would let them flood the log. The first failure
    is logged at once, then at most one every OUTAGE_LOG_SECONDS with how many checks
    failed unlogged since, and the database answering again once."""

    def __init__(self) -> None:
        self._logged_at: float | None = None  # the last warning's monotonic time
        self._unlogged = 0

    def failed(self, exc: Exception) -> None:
        """Log this failure, unless one was logged less than OUTAGE_LOG_SECONDS ago."""
        now = time.monotonic()
        if self._logged_at is not None and now - self._logged_at < OUTAGE_LOG_SECONDS:
            self._unlogged += 1
            return
        more = f" ({self._unlogged} more failed checks since the last warning)"
        log.warning(
            "/healthz: the database is unavailable: %s%s", exc, more if self._unlogged else ""
        )
        self._logged_at, self._unlogged = now, 0

    def answered(self) -> None:
        """The database answers: say so once, if an outage was logged."""
        if self._logged_at is None:
            return
        more = f" ({self._unlogged} more failed checks before)" if self._unlogged else ""
        log.warning("/healthz: the database answers again%s", more)
        self._logged_at, self._unlogged = None, 0


class PublicViews:
    """``/editions/...``, ``/archive``, ``/feed.atom``, ``/healthz`` and ``/webhooks/...``."""

    def __init__(self, ctx: WebContext, fetch: Callable[[str], bytes] | None = None) -> None:
        self.ctx = ctx
        self.hooks = WebhookReceiver(ctx.app, fetch or https_get)
        self._outage = _OutageLog()

    async def edition(self, request: Request) -> Response:
        """One edition as it was mailed, without what was personal to each recipient; with
        ``?topics=`` (a topic reader's email links there), that choice of topics' own
        edition as the build stored it, whole, else (a choice the build did not know) the
        edition as mailed."""
        ctx = self.ctx
        try:
            slot = datetime.strptime(request.path_params["stamp"], "%Y%m%dT%H%MZ")
        except ValueError:
            return self.no_such_edition(request)
        edition = await run_in_threadpool(
            ctx.store.edition, request.path_params["digest_id"], slot.replace(tzinfo=UTC)
        )
        if edition is None:
            return self.no_such_edition(request)
        topics = topic_key(request.query_params.get("topics", "").split(","))
        body = await run_in_threadpool(choice_html, ctx.app, edition, topics) if topics else None
        if body is None:
            topics, body = "", await run_in_threadpool(whole_html, ctx.app, edition)
        url = web_view_url(ctx.base, edition.digest_id, edition.slot, topics)
        response = HTMLResponse(web_view(body, url, ctx.service.locale))
        # The email's pictures as the inbox shows them, http ones too: a feed's http image
        # was an empty box here.
        response.headers["Content-Security-Policy"] = SECURITY_HEADERS[
            "Content-Security-Policy"
        ].replace("img-src https: data:;", "img-src https: http: data:;")
        return response

    def no_such_edition(self, request: Request) -> Response:
        """The page at an edition's address that names none."""
        tr = self.ctx.visitor(request)
        return self.ctx.message(
            tr.gettext("No such edition"), tr.gettext("Check the address."), 404, tr=tr
        )

    async def archive(self, request: Request) -> Response:
        """The newest editions, newest first, each with its whole subject (the email's is
        cut for inboxes) and its date and time in its digest's zone (as the email dated
        it) and the visitor's language; not a slot that mailed nobody (nothing new since
        the last one)."""
        ctx = self.ctx
        tr = ctx.visitor(request)
        editions = await run_in_threadpool(ctx.store.editions, ARCHIVE_EDITIONS, True)
        listed = await run_in_threadpool(archive_entries, ctx.app, editions, tr)
        return ctx.page("archive.html.j2", tr=tr, title=tr.gettext("Archive"), editions=listed)

    async def feed(self, request: Request) -> Response:
        """The archive as an Atom feed."""
        ctx, base = self.ctx, self.ctx.base
        editions = await run_in_threadpool(ctx.store.editions, FEED_EDITIONS, True)
        entries = "".join(
            f"<entry><title>{_xml(e.subject)}</title>"
            f'<link href="{_xml(web_view_url(base, e.digest_id, e.slot))}"/>'
            f"<id>{_xml(web_view_url(base, e.digest_id, e.slot))}</id>"
            f"<updated>{e.created_at.isoformat()}</updated></entry>"
            for e in editions
        )
        # The feed changed when its newest edition was made (RFC 4287 4.2.15), not per request.
        newest = max((e.created_at for e in editions), default=datetime(2000, 1, 1, tzinfo=UTC))
        name = _xml(ctx.service.name)
        body = (
            f'<?xml version="1.0" encoding="utf-8"?>'
            f'<feed xmlns="http://www.w3.org/2005/Atom"><title>{name}</title>'
            f"<author><name>{name}</name></author>"
            f"<id>{_xml(base)}/</id><updated>{newest.isoformat()}</updated>"
            f'<link rel="self" href="{_xml(base)}/feed.atom"/>{entries}</feed>'
        )
        return Response(body, media_type="application/atom+xml")

    async def healthz(self, request: Request) -> Response:
        """``ok``, or 503 saying the database is unavailable; the cause goes to the log.

        Anyone may ask: the driver's message names the database server's address, port,
        database and user ("connection to server at "10.0.0.5", port 5432 failed: FATAL:
        password authentication failed for user ..."), which is the admin's to read; the
        first of an outage and then one a minute (``_OutageLog``)."""
        try:
            await run_in_threadpool(self.ctx.store.editions, 1)
        except Exception as exc:  # the point of a health check: say that something is wrong
            self._outage.failed(exc)
            return JSONResponse({"status": "error", "database": "unavailable"}, 503)
        self._outage.answered()
        return JSONResponse({"status": "ok"})

    async def webhook(self, request: Request) -> Response:
        """A provider's bounce or complaint report."""
        return await self.hooks.receive(request.path_params["provider"], request)


def whole_html(app: App, edition: Edition) -> str:
    """The edition's HTML with every story: the stored email's, unless that was trimmed to
    fit Gmail's clip (its "Read the whole edition on the web" line links here), then its
    stored stories rendered whole. Not what choices of topics were shown beyond it (its
    ``extra``): those are their readers' (see ``choice_html``), and a reader without
    topics may get one by email later. The stored email stands when its digest is no
    longer configured or its stories were not stored: there is nothing else to render it
    from."""
    if not edition.stories or shows_all(edition.html, edition.story_count):
        return edition.html
    digest = next((d for d in app.config.digests if d.id == edition.digest_id), None)
    if digest is None:
        return edition.html
    try:
        whole = ranked_from_json(edition.stories, extra=False)
    except (ValueError, KeyError, TypeError) as exc:  # stored by an old version
        log.warning(
            "edition %s of %s: its stories are unreadable, the web view shows the email: %s",
            edition.digest_id,
            edition.slot,
            exc,
        )
        return edition.html
    info = edition_info(app, digest, edition.slot)
    return render_whole(info, whole, app.config.templates_dir())


def archive_entries(app: App, editions: list[Edition], loc: Localizer) -> list[dict[str, str]]:
    """The archive page's lines: each edition's subject whole (its lead's headline as
    stored; the stored subject as mailed when it was not cut, or its digest is gone from
    the config), its link, and when, as a reader of ``loc``'s language reads a date.

    An edition is dated by its slot in its digest's zone (``Config.digest_timezone``), as
    its email was: the service's zone would date a 07:00 edition in Auckland the day
    before. The service's for an edition whose digest is gone from the config."""
    config = app.config
    service = config.service
    digests = {d.id: d for d in config.digests}
    lines = []
    for e in editions:
        subject = e.subject
        digest = digests.get(e.digest_id)
        # With the time: editions of one day are told apart by it.
        zone = zoneinfo.ZoneInfo(config.digest_timezone(digest) if digest else service.timezone)
        if subject.endswith("…") and digest is not None and e.stories:
            try:
                ranked = ranked_from_json(e.stories, extra=False)
            except (ValueError, KeyError, TypeError) as exc:  # stored by hand, or damaged
                log.warning("edition %s: its stories are unreadable (%s)", e.id, exc)
            else:
                subject = edition_subject(digest.title, ranked, service.locale)
        lines.append(
            {
                "subject": subject,
                "url": web_view_url(app.config.service.base_url, e.digest_id, e.slot),
                "iso": e.slot.isoformat(),
                "when": loc.date_time(e.slot.astimezone(zone)),
            }
        )
    return lines


def choice_html(app: App, edition: Edition, topics: str) -> str | None:
    """The HTML of choice of topics ``topics``' own edition as the build stored it (its
    Breaking and Latest, nothing trimmed): where its readers' email links. None when
    there is none to show (a choice the build did not know, an edition stored before
    views were kept, its digest no longer configured): the edition as mailed serves."""
    digest = next((d for d in app.config.digests if d.id == edition.digest_id), None)
    if digest is None or not edition.stories or edition.id is None:
        return None
    view = app.store.edition_views(saved_id(edition), [topics]).get(topics)
    if view is None:
        return None
    try:
        mine = view_from_json(view, ranked_from_json(edition.stories))
    except (ValueError, KeyError, TypeError) as exc:  # stored by hand, or damaged
        log.warning(
            "edition %s of %s: the view of topics %s is unreadable, the web view shows "
            "the edition: %s",
            edition.digest_id,
            edition.slot,
            topics,
            exc,
        )
        return None
    info = edition_info(app, digest, edition.slot, topics=topics)
    return render_whole(info, mine, app.config.templates_dir())


# Characters XML 1.0 does not allow (C0 controls but tab, CR, LF; surrogates; U+FFFE/FFFF):
# one in a headline would make the whole feed unreadable to every feed reader.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    """Text for an Atom element or attribute: escaped, and without what XML forbids."""
    return escape(_NOT_XML.sub("", text), {'"': "&quot;"})
