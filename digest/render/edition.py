"""Render an edition once: jinja2 for HTML and text, premailer to inline the CSS, once.

The output still holds personalisation tokens (see ``render.tokens``); ``render.message``
swaps them per recipient, so no template render or CSS inlining happens per recipient.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import premailer

from digest.records import RankedEdition, RenderedEdition, Story
from digest.render import qp, templates
from digest.render.i18n import DEFAULT_LOCALE, Localizer
from digest.render.tokens import GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL, Nonce

# Gmail clips HTML over about 102 KB as sent (quoted-printable: "=" is "=3D", "é" is
# "=C3=A9"); keep room for the personal links and the part's headers.
HTML_LIMIT = 100_000

log = logging.getLogger("digest.render")


@dataclass(frozen=True)
class EditionInfo:
    """What the templates need besides the stories."""

    service_name: str
    title: str
    base_url: str
    postal_address: str
    timezone: str
    built_at: datetime
    web_url: str | None = None  # the edition's web view, linked when the email is trimmed
    locale: str = DEFAULT_LOCALE  # language of the fixed strings, dates and numbers
    latest_group_by: str = "topic"  # "Latest" grouped by "topic" or by "source"


def subject_for(info: EditionInfo, ranked: RankedEdition) -> str:
    """``Morning Briefing, Sat 28 Nov: <top headline>``: the date and the lead story."""
    local = info.built_at.astimezone(ZoneInfo(info.timezone))
    subject = f"{info.title}, {Localizer(info.locale).short_date(local)}"
    top = (ranked.breaking or ranked.latest or (None,))[0]
    if top is not None:
        headline = top.lead.title
        subject += f": {headline if len(headline) <= 90 else headline[:89] + '…'}"
    return subject


def render_edition(
    info: EditionInfo, ranked: RankedEdition, override_dir: Path | None = None
) -> RenderedEdition:
    """Subject, inlined HTML and text of the edition, with the personalisation tokens in place.

    Size guard: Gmail clips a message whose HTML is over about 102 KB, hiding the footer and
    its unsubscribe link. The HTML part is measured as it goes on the wire, encoded by the
    same ``qp.encode`` the message is built with (quoted-printable makes a French edition
    about 1.5 times its decoded size, a Chinese one about 2.3 times). When the part would
    pass ``HTML_LIMIT``, the lowest stories are dropped (Latest from the end, then Breaking)
    and a "more on the web" line takes their place; the web view keeps the whole edition.
    """
    env = templates.environment(override_dir)
    html_template = templates.load(env, "digest.html.j2")
    text_template = templates.load(env, "digest.txt.j2")
    nonce = Nonce()  # only the templates know it: feed text cannot spell a token

    def attempt(keep: int) -> RenderedEdition:
        trimmed = _first(ranked, keep)
        context = _context(info, trimmed, ranked.count - trimmed.count, nonce.tokens())
        return RenderedEdition(
            subject=nonce.settle(context["subject"]),
            html=nonce.settle(inline_css(templates.render(html_template, **context))),
            text=nonce.settle(templates.render(text_template, **context)),
        )

    full = attempt(ranked.count)
    if _size(full) <= HTML_LIMIT:
        return full
    low, high = 0, ranked.count - 1  # the largest count that fits lies in [low, high]
    best = attempt(0)
    while low <= high:
        middle = (low + high) // 2
        candidate = attempt(middle)
        if _size(candidate) <= HTML_LIMIT:
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    log.warning(
        "edition %r trimmed to fit %d bytes: %d of %d stories kept",
        info.title,
        HTML_LIMIT,
        best.html.count('class="story"'),
        ranked.count,
    )
    return best


def _size(rendered: RenderedEdition) -> int:
    """Bytes of the HTML part as sent: quoted-printable, as ``render.message`` encodes it."""
    return len(qp.encode(rendered.html))


def _first(ranked: RankedEdition, keep: int) -> RankedEdition:
    """The ``keep`` most important stories: Breaking first, then Latest in order."""
    breaking = ranked.breaking[:keep]
    return RankedEdition(breaking, ranked.latest[: max(0, keep - len(breaking))])


def _context(
    info: EditionInfo, ranked: RankedEdition, omitted: int, tokens: dict[str, str]
) -> dict[str, Any]:
    tz = ZoneInfo(info.timezone)
    loc = Localizer(info.locale)
    return {
        **loc.jinja_globals(),
        "loc": loc,
        "edition": info,
        "subject": subject_for(info, ranked),
        "breaking": ranked.breaking,
        "latest": ranked.latest,
        "latest_groups": group_latest(ranked.latest, info.latest_group_by),
        "omitted": omitted,
        "preheader": _preheader(ranked),
        "local_date": info.built_at.astimezone(tz),
        "when": lambda story: loc.day_time(_newest(story).astimezone(tz)),
        "unsubscribe_url": tokens[UNSUBSCRIBE_URL],
        "preferences_url": tokens[PREFERENCES_URL],
        "greeting": tokens[GREETING],
    }


def inline_css(html: str) -> str:
    """premailer, without the network: no remote CSS is ever fetched."""
    inliner = premailer.Premailer(
        html,
        allow_network=False,
        allow_loading_external_files=False,
        keep_style_tags=False,
        # The @media rules left in <style> must beat the inlined styles: keep their !important.
        strip_important=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
    )
    return str(inliner.transform(pretty_print=False))


def _preheader(ranked: RankedEdition) -> str:
    top = (ranked.breaking or ranked.latest)[:3]
    return " · ".join(s.lead.title for s in top)


def group_latest(stories: tuple[Story, ...], by: str = "topic") -> list[tuple[str, list[Story]]]:
    """Latest stories grouped by their lead's first topic (else its source), or with
    ``by="source"`` by the lead's source, in rank order.

    Groups appear in the order of their first story; one group means no sub-headings.
    """
    groups: dict[str, list[Story]] = {}
    for story in stories:
        lead = story.lead
        key = lead.topics[0].capitalize() if by == "topic" and lead.topics else lead.source
        groups.setdefault(key, []).append(story)
    return list(groups.items())


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
