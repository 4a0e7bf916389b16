"""The fixed strings of the email as each language writes them."""

from __future__ import annotations

import pytest

from digest.render.i18n import Localizer


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("fr", "Préférences\u202f:"), ("fr_CA", "Préférences\u202f:"), ("de", "Einstellungen:")],
)
def test_a_label_ends_with_the_colon_its_language_writes(locale: str, expected: str) -> None:
    """French typography puts a narrow no-break space before the colon; it never wraps alone."""
    loc = Localizer(locale)
    assert loc.label(loc.gettext("Preferences")) == expected
    assert loc.jinja_globals()["label"]("x") == expected.replace(loc.gettext("Preferences"), "x")
