"""An edition's messages per segment of readers (time zone, locale, topics), each
rendered once, and the one log line of a trim.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlsplit

from digest.app import App
from digest.config import DigestConfig
from digest.editions.slots import digest_timezone, edition_info
from digest.editions.stored import ranked_from_json, view_from_json
from digest.editions.views import choice_memory, earlier_editions
from digest.rank import narrow, shown_as, topic_key
from digest.records import RankedEdition, Reader, RenderedEdition
from digest.render import (
    HTML_LIMIT,
    MessageTemplate,
    build_template,
    group_latest,
    render_edition,
)
from digest.store import Edition, saved_id

log = logging.getLogger("digest.pipeline")


# Editions whose trim was logged, newest last: once per edition however many of its
# segments are trimmed (the daemon builds and sends in one process). Bounded, not a cache.


_TRIMS_LOGGED: OrderedDict[tuple[str, datetime], None] = OrderedDict()


_TRIMS_REMEMBERED = 64


def log_trim(digest_id: str, slot: datetime, count: int, omitted: int, segment: str = "") -> None:
    """The one line that says an edition's email was trimmed to fit Gmail's clip: for the
    first render of it that is, the edition's own or a segment's."""
    if (digest_id, slot) in _TRIMS_LOGGED:
        return
    _TRIMS_LOGGED[(digest_id, slot)] = None
    while len(_TRIMS_LOGGED) > _TRIMS_REMEMBERED:
        _TRIMS_LOGGED.popitem(last=False)
    log.warning(
        "edition %s of %s trimmed to fit %d bytes%s: %d of %d stories kept, the rest on "
        "its web view (logged once an edition; other segments may keep fewer)",
        digest_id,
        slot,
        HTML_LIMIT,
        f" for {segment}" if segment else "",
        count - omitted,
        count,
    )


# What a reader is shown: Breaking's and Latest's stories, each as (story id, lead id) and
# whether an update: the same key, the same render.
_Shown = tuple[tuple[tuple[tuple[int, int], bool], ...], ...]


def _shown(ranked: RankedEdition) -> _Shown:
    """What a reader of ``ranked`` is shown, as a key."""
    return tuple(
        tuple((shown_as(s), s.update) for s in part) for part in (ranked.breaking, ranked.latest)
    )


class SegmentTemplates:
    """One MessageTemplate per (time zone, locale, topics) among the recipients, built once.

    The edition's stored render serves the digest's own time zone, the service's locale and
    every topic; anyone else gets the same stories rendered in their zone and language.
    A reader who picked topics gets their choice's own edition as the build stored it
    (``views``): exactly that, whoever renders it when, and nothing is written here; a
    choice the build did not know (a reader who picked it since) gets the edition
    narrowed to their topics. Choices of topics that show the same stories share one
    render (most do: a story has several topics), and a trim to fit is logged once per
    edition.
    """

    def __init__(self, app: App, digest: DigestConfig, edition: Edition) -> None:
        self.app, self.digest, self.edition = app, digest, edition
        self.default = (digest_timezone(app, digest), app.config.service.locale, "")
        self._cache: dict[tuple[str, str, str], MessageTemplate | None] = {}
        # (time zone, locale, the stories shown) -> its template: what a render depends on.
        self._renders: dict[tuple[str, str, _Shown, str], MessageTemplate] = {}
        self._ranked: RankedEdition | None = None
        self._views: dict[str, str] | None = None  # topic key -> its stored own edition
        self._topics: dict[str, RankedEdition] = {}  # topic key -> what its readers get

    def __call__(self, subscriber: Reader) -> MessageTemplate | None:
        """Their message; None when none of the edition's stories is in their topics (and
        the digest does not send empty editions): nothing to send them this time."""
        topics = topic_key(subscriber.topics.split(","))
        key = (
            subscriber.timezone or self.default[0],
            subscriber.locale or self.default[1],
            topics,
        )
        if key not in self._cache:
            self._cache[key] = self._build(key)
        return self._cache[key]

    def _build(self, key: tuple[str, str, str]) -> MessageTemplate | None:
        e = self.edition
        timezone, locale, topics = key
        if key == self.default or not e.stories:
            return self._template(RenderedEdition(e.subject, e.html, e.text), locale)
        whole = self._whole()
        ranked = self._topic_edition(topics) if topics else whole
        if topics and ranked.count == 0 and e.story_count and not self.digest.send_empty:
            return None
        shown = _shown(ranked)
        # Every story of the edition, as it, under the same headings (a topic reader's
        # Latest is headed by their own topics: a story of "technology" and "science"
        # stands under Science for a reader of Science).
        every = shown == _shown(whole) and self._headed(ranked, topics) == self._headed(ranked)
        if every and (timezone, locale) == self.default[:2]:
            # They get every story of the edition, as it: the edition's own render serves them.
            if self.default not in self._cache:
                self._cache[self.default] = self._build(self.default)
            return self._cache[self.default]
        # A topic reader's web link leads to their choice's own edition, untrimmed; not when
        # it shows every story of the edition: that render serves readers without topics.
        # Their key is part of the render's, so no reader's link names another's choice.
        own = "" if every else topics
        render_key = (timezone, locale, shown, own)
        if render_key not in self._renders:
            self._renders[render_key] = self._render(key, ranked, own)
        return self._renders[render_key]

    def _headed(self, ranked: RankedEdition, topics: str = "") -> list[tuple[str, list[int]]]:
        """Latest's groups as a reader of ``topics`` is shown them: headings (none for one
        group: the email shows none then) and stories."""
        chosen = topics.split(",") if topics else ()
        groups = group_latest(ranked.latest, self.digest.latest_group_by, chosen)
        headed = len(groups) > 1
        return [(h if headed else "", [s.story_id for s in stories]) for h, stories in groups]

    def _topic_edition(self, key: str) -> RankedEdition:
        """What the readers of topic ``key`` get: their choice's own edition as the build
        stored it, else (a choice first seen since, or an edition built before views
        were kept) the edition narrowed to their topics. Read once per key."""
        if key not in self._topics:
            if self._views is None:
                self._views = self.app.store.edition_views(saved_id(self.edition))
            view = self._views.get(key)
            mine = None
            if view is not None:
                try:
                    mine = view_from_json(view, self._whole())
                except (ValueError, KeyError, TypeError) as exc:  # stored by hand, or damaged
                    log.warning(
                        "edition %s: the view of topics %s is unreadable (%s); its readers "
                        "get the edition narrowed",
                        self.edition.id,
                        key,
                        exc,
                    )
            if mine is None:
                mine = self._narrowed(key)
            self._topics[key] = mine
        return self._topics[key]

    def _narrowed(self, key: str) -> RankedEdition:
        """The edition narrowed to topics ``key``, less what that choice was shown beyond
        the earlier editions this one's build read (their stored views: its memory, read
        only, the same for every worker), unless it grew since (then an update). Matched
        by story and article ids and by sources, from what is stored: not the build's
        rescoring (a follow-up under a new id, or news under a new headline, is not seen),
        so in this rare case (a choice picked after the build) a follow-up may repeat."""
        e = self.edition
        earlier = earlier_editions(self.app, self.digest, e.slot, e.created_at)
        had = choice_memory(self.app, self.digest, earlier, [key])[key]
        return narrow(self._whole(), set(key.split(",")), had)

    def _whole(self) -> RankedEdition:
        """The edition's stories as ranked, read from the stored edition once."""
        if self._ranked is None:
            self._ranked = ranked_from_json(self.edition.stories)
        return self._ranked

    def _render(
        self, key: tuple[str, str, str], ranked: RankedEdition, own: str
    ) -> MessageTemplate:
        """A segment's own render: its stories, in its zone and language, its web link to
        the choice ``own`` ("": the edition as mailed); a trim logged."""
        e = self.edition
        timezone, locale, topics = key
        info = edition_info(self.app, self.digest, e.slot, timezone, locale, own)
        info = replace(info, topics=frozenset(topics.split(",")) if topics else frozenset())
        rendered = render_edition(info, ranked, self.app.config.templates_dir())
        log.debug(
            "edition %s rendered for %s / %s / topics %s", e.id, timezone, locale, topics or "all"
        )
        if rendered.omitted:
            segment = f"{timezone} / {locale} / topics {topics or 'all'}"
            log_trim(self.digest.id, e.slot, ranked.count, rendered.omitted, segment)
        return self._template(rendered, locale)

    def _template(self, rendered: RenderedEdition, locale: str) -> MessageTemplate:
        e, service = self.edition, self.app.config.service
        return build_template(
            rendered,
            sender=service.sender,
            reply_to=service.reply_to,
            list_name=f"{self.digest.title} ({service.name})",
            list_id=f"{self.digest.id}.{urlsplit(service.base_url).hostname}",
            message_id_prefix=f"digest.{e.id}",
            locale=locale,
            message_key=e.message_key or "",
        )
