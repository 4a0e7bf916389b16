"""The web view of a stored edition: the email without what was personal to its recipient."""

from __future__ import annotations

import dataclasses
import re

import pytest

from digest.records import Recipient
from digest.render import render_edition, substitute, web_view
from digest.render.i18n import Localizer
from digest.render.webview import WEB_FOOTER
from tests.test_render_brief import EDITION, INFO

READER = Recipient(
    1, "a@example.org", "Alice", "https://u.test/x", "mailto:u@x.test", "https://p.test/y"
)


@pytest.mark.parametrize("locale", ["en", "fr", "de", "es"])
def test_the_web_view_drops_greeting_personal_links_and_its_own_link(locale: str) -> None:
    loc = Localizer(locale)
    info = dataclasses.replace(INFO, locale=locale)
    stored = render_edition(info, EDITION).html
    page = web_view(stored, info.web_url or "", locale)
    assert "DIGESTx" not in page
    assert 'class="greeting"' not in page
    assert page.count(loc.gettext(WEB_FOOTER)) == 1
    anchors = [a.strip() for a in re.findall(r"<a\b[^>]*>(.*?)</a>", page, re.S)]
    for label in ("Preferences", "Unsubscribe", "View in browser"):
        assert loc.gettext(label) not in anchors, anchors
    assert loc.gettext("Subscribe") in anchors  # "Forwarded this? Subscribe" stays
    # The email made from the same stored HTML keeps all of it.
    mailed = substitute(stored, READER, is_html=True, locale=locale)
    assert 'class="greeting"' in mailed and "https://u.test/x" in mailed
    assert loc.gettext(WEB_FOOTER) not in mailed
    assert f'href="{info.web_url}"' in mailed
