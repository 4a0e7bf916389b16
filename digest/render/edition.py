"""Render an edition once: jinja2 for HTML and text, premailer to inline the CSS, once.

The output still holds personalisation tokens (see ``render.tokens``); ``render.message``
swaps them per recipient, so no template render or CSS inlining happens per recipient.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import premailer

from digest import sentences
from digest.config.models.base import default  # the submodules, not the package: (*)
from digest.config.models.digests import DigestConfig
from digest.records import RankedEdition, RenderedEdition, Story
from digest.render import plain, templates
from digest.render.fit import HTML_LIMIT as HTML_LIMIT  # re-exported: imported from here
from digest.render.fit import fitting
from digest.render.groups import group_heading, group_latest, group_source
from digest.render.i18n import DEFAULT_LOCALE, Localizer
from digest.render.tokens import GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL, Nonce

# (*) the config's models import render.i18n, so this module may load while the package
# digest.config.models is still half made; its submodules are whole.

# Subjects past about 60 characters are cut by most inboxes, phones first.
SUBJECT_LIMIT = 60
# An adult's silent reading of news prose; what "N min read" at the top is counted with.
WORDS_PER_MINUTE = 230
# The top's list of headlines: Breaking, topped up from Latest to at least the minimum.
CONTENTS_MAX, CONTENTS_MIN = 5, 3
# The pictures' boxes: (width, height when the source gives no shape, the tallest it may
# be: 4:3). See picture_size. A lead of unknown shape gets no height: it sizes itself.
# A thumbnail's CSS box is 128x72 whatever the picture (object-fit: cover): its own size.
LEAD_PICTURE: tuple[int, int | None, int] = (584, None, 438)
THUMBNAIL: tuple[int, int | None, int] = (128, 72, 96)
# Han, kana: a reader's word is about one character; everything else is split at spaces.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")
_NUMBER = re.compile(r"\d+")
# premailer copies a background colour into bgcolor=, an attribute no <img> has.
_IMG_BGCOLOR = re.compile(r'(<img\b[^>]*?) bgcolor="[^"]*"')


@dataclass(frozen=True)
class EditionInfo:
    """What the templates need besides the stories."""

    service_name: str
    title: str
    base_url: str
    postal_address: str
    timezone: str
    dated: datetime  # the edition's date: its slot's (printed at its top)
    web_url: str | None = None  # the edition's web view, linked when the email is trimmed
    locale: str = DEFAULT_LOCALE  # language of the fixed strings, dates and numbers
    latest_group_by: str = "topic"  # "Latest" grouped by "topic" or by "source"
    # The readers' choice of topics: a group is headed by the first of them its lead has.
    topics: frozenset[str] = frozenset()
    # The public sign-up page, offered to readers of a forwarded copy ("Forwarded this?").
    subscribe_url: str | None = None
    # A Latest item's summary at most this long (its lead sentence); 0: Latest shows
    # headlines only. Breaking keeps the stored summary (gather.summary_chars).
    latest_summary_chars: int = default(DigestConfig, "latest_summary_chars")


def subject_for(info: EditionInfo, ranked: RankedEdition) -> str:
    """``Morning Briefing: <lead headline>``, cut at a word to about ``SUBJECT_LIMIT``
    characters. No date: the inbox shows when the message came. The headline is the first
    new story's; an edition of updates alone names its first, marked as one, so no subject
    repeats the last edition's word for word."""
    return edition_subject(info.title, ranked, info.locale, SUBJECT_LIMIT)


def edition_subject(
    title: str, ranked: RankedEdition, locale: str, limit: int | None = None
) -> str:
    """``subject_for``'s words, cut to about ``limit`` characters, or whole without one:
    the archive page has room for the headline an inbox cuts."""
    shown = (*ranked.breaking, *ranked.latest)
    top = next((s for s in shown if not s.update), shown[0] if shown else None)
    if top is None:
        return title
    text = headline(top, Localizer(locale))
    if limit is None:
        return f"{title}: {text}"
    room = max(limit - len(title) - 2, 24)  # a long title still leaves a headline
    return f"{title}: {_cut(text, room)}"


def headline(story: Story, loc: Localizer) -> str:
    """The story's headline as text, ``Update: `` before it for a story an earlier edition
    sent that has grown since (new sources, a new headline)."""
    if story.update:
        return f"{loc.label(loc.gettext('Update'))} {story.lead.title}"
    return story.lead.title


def _cut(text: str, limit: int) -> str:
    """``text`` cut at the last whole word within ``limit`` characters, with an ellipsis;
    text without spaces (Chinese, Japanese) is cut at a character."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return f"{cut.rstrip(',;:.-–— ')}…"


def reading_words(ranked: RankedEdition, latest_chars: int | None = None) -> int:
    """The words a reader reads in the edition: every headline and summary shown, Latest's
    summaries at ``latest_chars`` (a Han or kana character counts as a word)."""
    return sum(
        len(_WORD.findall(s.lead.title)) + len(_WORD.findall(shown_summary(s, limit)))
        for stories, limit in ((ranked.breaking, None), (ranked.latest, latest_chars))
        for s in stories
    )


def shown_summary(story: Story, limit: int | None = None) -> str:
    """The lead's summary as the email prints it: at most ``limit`` characters (its lead
    sentence, ``sentences.lead``; 0: none), else as stored. None when it only says the
    headline again (every content word, stemmed, and every number of it in the headline):
    a reader would read the same thing twice."""
    # Imported here: the config imports the render's locales, and the rank package the config.
    from digest.rank.terms import title_terms

    lead = story.lead
    summary = lead.summary
    if limit is not None and len(summary) > limit:
        summary = sentences.lead(summary, lead.language, limit) if limit > 0 else ""
    if not summary:
        return ""
    words = set(title_terms(summary, lead.language))
    numbers = set(_NUMBER.findall(summary))
    if words <= set(title_terms(lead.title, lead.language)) and numbers <= set(
        _NUMBER.findall(lead.title)
    ):
        return ""
    return summary


def reading_minutes(ranked: RankedEdition, latest_chars: int | None = None) -> int:
    """Minutes to read the edition at ``WORDS_PER_MINUTE``, rounded up; at least 1."""
    return max(1, math.ceil(reading_words(ranked, latest_chars) / WORDS_PER_MINUTE))


def render_edition(
    info: EditionInfo, ranked: RankedEdition, override_dir: Path | None = None
) -> RenderedEdition:
    """Subject, inlined HTML and text of the edition, with the personalisation tokens in place.

    Size guard: Gmail clips a message whose HTML is over about 102 KB, hiding the footer and
    its unsubscribe link. The HTML part is measured as it goes on the wire, encoded by the
    same ``qp.encode`` the message is built with (quoted-printable makes a French edition
    about 1.5 times its decoded size, a Chinese one about 2.3 times). When the part would
    pass ``HTML_LIMIT``, the lowest stories are dropped (Latest from the end, then Breaking)
    and a "more on the web" line takes their place; the web view keeps the whole edition
    (with the stories its choices of topics were shown beyond it: a topic reader's trimmed
    stories are there).
    """
    env = templates.environment(override_dir)
    html_template = templates.load(env, "digest.html.j2")
    text_template = templates.load(env, "digest.txt.j2")
    nonce = Nonce()  # only the templates know it: feed text cannot spell a token

    def context(keep: int) -> dict[str, Any]:
        trimmed = _first(ranked, keep)
        return _context(info, trimmed, ranked.count - trimmed.count, nonce.tokens())

    def html(keep: int) -> str:
        return templates.render(html_template, **context(keep))

    shown = _shown(ranked, info)
    keep, inlined = fitting(html, inline_css, ranked, shown)
    final = context(keep)
    return RenderedEdition(
        subject=nonce.settle(final["subject"]),
        html=nonce.settle(inlined),
        text=nonce.settle(templates.render(text_template, **final)),
        omitted=ranked.count - keep,
    )


def render_whole(info: EditionInfo, ranked: RankedEdition, override_dir: Path | None = None) -> str:
    """The HTML of every story of the edition, for its web view: no size limit there, so
    nothing trimmed and no "did not fit" line. The personal tokens are in place, as in the
    stored email (``render.web_view`` takes them out). The CSS stays in its ``<style>``: a
    browser reads it, and inlining a long edition would cost seconds on every request."""
    env = templates.environment(override_dir)
    nonce = Nonce()
    context = _context(info, ranked, 0, nonce.tokens())
    return nonce.settle(templates.render(templates.load(env, "digest.html.j2"), **context))


def _shown(ranked: RankedEdition, info: EditionInfo) -> list[Story]:
    """The stories as the email shows (and numbers) them: Breaking, then Latest group by
    group."""
    groups = group_latest(ranked.latest, info.latest_group_by, info.topics)
    return [*ranked.breaking, *(s for _, stories in groups for s in stories)]


def _first(ranked: RankedEdition, keep: int) -> RankedEdition:
    """The ``keep`` most important stories: Breaking first, then Latest in order."""
    breaking = ranked.breaking[:keep]
    return RankedEdition(breaking, ranked.latest[: max(0, keep - len(breaking))])


def _context(
    info: EditionInfo, ranked: RankedEdition, omitted: int, tokens: dict[str, str]
) -> dict[str, Any]:
    tz = ZoneInfo(info.timezone)
    loc = Localizer(info.locale)
    latest_groups = group_latest(ranked.latest, info.latest_group_by, info.topics)
    # Stories are numbered as they are shown: Breaking, then Latest group by group.
    shown = _shown(ranked, info)
    numbers = {id(story): n for n, story in enumerate(shown, 1)}
    top = min(max(len(ranked.breaking), CONTENTS_MIN), CONTENTS_MAX)
    minutes = reading_minutes(ranked, info.latest_summary_chars)
    # Breaking's summaries as stored; Latest's one lead sentence, shorter (computed once:
    # each template asks twice).
    summaries = {id(s): shown_summary(s) for s in ranked.breaking}
    summaries |= {id(s): shown_summary(s, info.latest_summary_chars) for s in ranked.latest}
    local_date = info.dated.astimezone(tz)

    def when(story: Story) -> str:
        return loc.day_time(_newest(story).astimezone(tz), today=local_date)

    def meta(story: Story, above: str = "") -> str:
        """The line under a headline: source (unless the heading ``above`` names it),
        time, and how many sources carry the story."""
        parts = [story.lead.source] if story.lead.source != above else []
        parts.append(when(story))
        if len(story.sources) > 1:
            parts.append(loc.gettext("{n} sources", n=len(story.sources)))
        return " · ".join(parts)

    return {
        **loc.jinja_globals(),
        **plain.jinja_globals(),
        "loc": loc,
        "edition": info,
        "subject": subject_for(info, ranked),
        "breaking": ranked.breaking,
        "latest": ranked.latest,
        "latest_groups": latest_groups,
        "story_count": len(shown),
        "number": lambda story: numbers[id(story)],
        "contents": shown[:top] if len(shown) > 1 else [],  # a list of one says nothing
        "omitted": omitted,
        "reading_minutes": minutes,
        "preheader": _preheader(ranked, loc, minutes),
        "local_date": local_date,
        "when": when,
        "meta": meta,
        "summary": lambda story: summaries[id(story)],
        "headline": lambda story: headline(story, loc),
        "group_source": group_source,
        "group_heading": group_heading,
        "lang": lambda story: _story_language(story, loc.language),
        "image_alt": _image_alt,
        "lead_size": lambda story: picture_size(story, LEAD_PICTURE),
        "thumb_size": lambda story: picture_size(story, THUMBNAIL),
        "unsubscribe_url": tokens[UNSUBSCRIBE_URL],
        "preferences_url": tokens[PREFERENCES_URL],
        "greeting": tokens[GREETING],
    }


def _story_language(story: Story, edition_language: str) -> str | None:
    """The story's language tag when its language is not the edition's (``pt-PT`` in an
    English edition), for its ``lang``: screen readers then read it with the right voice."""
    tag = (story.lead.language or "").replace("_", "-")
    language = tag.split("-")[0].lower()
    return tag if language and language != edition_language.lower() else None


def picture_size(story: Story, box: tuple[int, int | None, int]) -> tuple[int, int | None]:
    """The width and height attributes of the story's picture in ``box`` (``LEAD_PICTURE``,
    ``THUMBNAIL``). Outlook on Windows sizes a picture by these alone and stretches it to
    them, so they keep the shape the source gave (its stated width and height): the box's
    width, the height that follows, and a picture taller than the box allows narrower
    instead. Of a shape not known, no height (None) for the lead: a guessed 16:9 would
    stretch a 5:3 picture in Outlook and move the text below by ~22 px elsewhere when it
    loads; with the width alone each client keeps the picture's own shape."""
    width, usual_height, tallest = box
    source_width, source_height = story.lead.image_width, story.lead.image_height
    if not source_width or not source_height or source_width <= 0 or source_height <= 0:
        return width, usual_height
    height = max(1, round(width * source_height / source_width))
    if height <= tallest:
        return width, height
    return max(1, round(tallest * source_width / source_height)), tallest


def _image_alt(story: Story) -> str:
    """The image's own description when the source gives one that says more than the
    headline printed beside it; else empty, as for a picture that only illustrates it."""
    alt = " ".join((story.lead.image_alt or "").split())
    return "" if alt.casefold() in story.lead.title.casefold() else alt


def inline_css(html: str) -> str:
    """premailer, without the network: no remote CSS is ever fetched.

    The templates' own ``width`` and ``height`` attributes stay as written: premailer would
    copy the CSS into them (``width="100%" height="auto"`` on an image), which Outlook,
    reading only the attributes, cannot size an image by.
    """
    inliner = premailer.Premailer(
        html,
        allow_network=False,
        allow_loading_external_files=False,
        keep_style_tags=False,
        # The @media rules left in <style> must beat the inlined styles: keep their !important.
        strip_important=False,
        disable_validation=True,
        disable_basic_attributes=["width", "height"],
        # No style of ours floats; premailer would parse every <img>'s style with cssutils,
        # uncached, to look for one (3 ms a picture: most of an edition's inlining).
        align_floating_images=False,
        cssutils_logging_level=logging.CRITICAL,
    )
    return _IMG_BGCOLOR.sub(r"\1", str(inliner.transform(pretty_print=False)))


def _preheader(ranked: RankedEdition, loc: Localizer, minutes: int) -> str:
    """The line an inbox shows after the subject: what else is inside, never the subject's
    headline again; how many stories and how long they take to read."""
    stories = [*ranked.breaking, *ranked.latest]
    if not stories:
        return loc.gettext("No new stories since the last edition.")
    size = f"{loc.ngettext('{n} story', '{n} stories', len(stories))}, " + loc.gettext(
        "{n} min read", n=minutes
    )
    others = " · ".join(s.lead.title for s in stories[1:3])
    if others:
        return f"{loc.label(loc.gettext('Also'))} {others} — {size}"
    summary = _cut(shown_summary(stories[0]), 120)
    return f"{summary} — {size}" if summary else size


def _newest(story: Story) -> datetime:
    return max(a.published_at for a in (story.lead, *story.others))


def check_templates(override_dir: Path | None) -> None:
    """Render a small sample edition through the templates; TemplateError names file and line.

    Run by `digest check`, so a broken admin template is found before any send.
    """
    from datetime import UTC

    from digest.records import ArticleRecord

    now = datetime.now(UTC)
    article = ArticleRecord(
        1,
        "Sample Source",
        "Sample headline",
        "https://example.org/a",
        "Sample summary.",
        now,
        image_url="https://example.org/a.jpg",
    )
    story = Story(article, (), 1.0, ())
    info = EditionInfo(
        "Sample",
        "Sample digest",
        "https://example.org",
        "Sample address",
        "UTC",
        now,
        web_url="https://example.org/editions/sample",
    )
    render_edition(info, RankedEdition((story,), (story,)), override_dir)
