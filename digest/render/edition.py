"""Render an edition once: jinja2 for HTML and text, premailer to inline the CSS, once.

The output still holds personalisation tokens (see ``TOKENS``); ``render.message`` swaps
them per recipient, so no template render or CSS inlining happens per recipient.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import premailer

from digest.records import RankedEdition, RenderedEdition, Story
from digest.render import templates

# Placeholders the templates print where per-recipient values go. Plain ASCII letters only,
# so neither premailer nor autoescaping changes them.
UNSUBSCRIBE_URL = "DIGESTxUNSUBSCRIBExURL"
PREFERENCES_URL = "DIGESTxPREFERENCESxURL"
RECIPIENT_NAME = "DIGESTxRECIPIENTxNAME"
TOKENS = (UNSUBSCRIBE_URL, PREFERENCES_URL, RECIPIENT_NAME)


@dataclass(frozen=True)
class EditionInfo:
    """What the templates need besides the stories."""

    service_name: str
    title: str
    base_url: str
    postal_address: str
    timezone: str
    built_at: datetime


def subject_for(info: EditionInfo, ranked: RankedEdition) -> str:
    """``Morning Briefing, Sat 28 Nov: <top headline>``: the date and the lead story."""
    local = info.built_at.astimezone(ZoneInfo(info.timezone))
    subject = f"{info.title}, {local:%a} {local.day} {local:%b}"
    top = (ranked.breaking or ranked.latest or (None,))[0]
    if top is not None:
        headline = top.lead.title
        subject += f": {headline if len(headline) <= 90 else headline[:89] + '…'}"
    return subject


def render_edition(
    info: EditionInfo, ranked: RankedEdition, override_dir: Path | None = None
) -> RenderedEdition:
    """Subject, inlined HTML and text of the edition, with the personalisation tokens in place."""
    env = templates.environment(override_dir)
    tz = ZoneInfo(info.timezone)
    subject = subject_for(info, ranked)
    context = {
        "edition": info,
        "subject": subject,
        "breaking": ranked.breaking,
        "latest": ranked.latest,
        "preheader": _preheader(ranked),
        "local_date": info.built_at.astimezone(tz),
        "when": lambda story: _local_time(story, tz),
        "unsubscribe_url": UNSUBSCRIBE_URL,
        "preferences_url": PREFERENCES_URL,
        "recipient_name": RECIPIENT_NAME,
    }
    html = templates.render(templates.load(env, "digest.html.j2"), **context)
    text = templates.render(templates.load(env, "digest.txt.j2"), **context)
    return RenderedEdition(subject=subject, html=inline_css(html), text=text)


def inline_css(html: str) -> str:
    """premailer, without the network: no remote CSS is ever fetched."""
    inliner = premailer.Premailer(
        html,
        allow_network=False,
        allow_loading_external_files=False,
        keep_style_tags=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
    )
    return str(inliner.transform(pretty_print=False))


def _preheader(ranked: RankedEdition) -> str:
    top = (ranked.breaking or ranked.latest)[:3]
    return " · ".join(s.lead.title for s in top)


def _local_time(story: Story, tz: ZoneInfo) -> str:
    when = max(a.published_at for a in (story.lead, *story.others)).astimezone(tz)
    return f"{when:%a} {when:%H:%M}"
