"""An edition's web view: the stored email HTML, made for whoever opens its public address.

The web view reader is not one recipient, so it gets none of the personal parts: no
greeting, no Preferences or Unsubscribe link (with no recipient to point at they used to
land on the sign-up page), and no "View in browser" link to the page itself; one line says
where the personal links are. The edition is stored once, its personal parts still tokens,
so this works on those tokens (``render.tokens``: only the templates can write one) and the
emails, built from the same stored HTML, are not touched.
"""

from __future__ import annotations

import html
import re

from digest.render.i18n import DEFAULT_LOCALE, Localizer
from digest.render.tokens import GREETING, PATTERN, PREFERENCES_URL, UNSUBSCRIBE_URL

WEB_FOOTER = "To change your settings or unsubscribe, use the links in the email you received."
_VIEW_IN_BROWSER = "View in browser"

# What the templates put between two footer links: a middle dot, spelled any way.
_SEPARATOR = r"\s*(?:·|&middot;|&#183;|&#xb7;|\|)\s*"
_PERSONAL_LINK = rf'<a\b[^>]*\bhref="(?:{UNSUBSCRIBE_URL}|{PREFERENCES_URL})"[^>]*>.*?</a>'
# Personal links side by side ("Preferences · Unsubscribe"): one run, one footer line.
_PERSONAL_LINKS = re.compile(rf"{_PERSONAL_LINK}(?:{_SEPARATOR}{_PERSONAL_LINK})*", re.S)
# A paragraph that holds nothing but the greeting goes whole: no empty line where it stood.
_GREETING_LINE = re.compile(rf"<p\b[^>]*>\s*{GREETING}\s*</p>\n?")


def web_token_values() -> dict[str, str]:
    """What each token stands for in the web view: nothing (the links themselves go)."""
    return {UNSUBSCRIBE_URL: "", PREFERENCES_URL: "", GREETING: ""}


def web_view(body: str, web_url: str, locale: str = DEFAULT_LOCALE) -> str:
    """The stored HTML ``body`` of the edition at ``web_url``, as its web view shows it."""
    loc = Localizer(locale)
    footer = html.escape(loc.gettext(WEB_FOOTER))
    placed: list[bool] = []

    def footer_once(_: re.Match[str]) -> str:
        """The first run of personal links says where they are; a repeat says nothing."""
        placed.append(True)
        return footer if len(placed) == 1 else ""

    body = _GREETING_LINE.sub("", body)
    body = _PERSONAL_LINKS.sub(footer_once, body)
    label = re.escape(html.escape(loc.gettext(_VIEW_IN_BROWSER)))
    itself = re.compile(
        rf'<a\b[^>]*\bhref="{re.escape(html.escape(web_url))}"[^>]*>\s*{label}\s*</a>'
        rf"(?:{_SEPARATOR})?"
    )
    body = itself.sub("", body)
    values = web_token_values()  # any token a custom template put elsewhere
    return PATTERN.sub(lambda m: values[m.group(0)], body)
