"""The render stage: templates rendered and CSS inlined once per edition, personalised cheaply."""

from digest.render.edition import (
    HTML_LIMIT,
    EditionInfo,
    check_templates,
    edition_subject,
    inline_css,
    render_edition,
    render_whole,
    subject_for,
)
from digest.render.fit import shows_all
from digest.render.groups import group_latest
from digest.render.message import MessageTemplate, build_template, substitute
from digest.render.preview import write_preview
from digest.render.tokens import TOKENS
from digest.render.webview import web_view

__all__ = [
    "HTML_LIMIT",
    "TOKENS",
    "EditionInfo",
    "MessageTemplate",
    "build_template",
    "check_templates",
    "edition_subject",
    "group_latest",
    "inline_css",
    "render_edition",
    "render_whole",
    "shows_all",
    "subject_for",
    "substitute",
    "web_view",
    "write_preview",
]
