"""Every translation digest ships, one module per language: English source text ->
translation, for the email and the reader's web pages alike (one table, one lookup in
``render.i18n.Localizer``). English is the source, so it has no module."""

from __future__ import annotations

from digest.render.translations import de, es, fr

STRINGS: dict[str, dict[str, str]] = {"fr": fr.STRINGS, "de": de.STRINGS, "es": es.STRINGS}
# The languages whose pages and emails are written in full: English and those above.
LANGUAGES: tuple[str, ...] = ("en", *STRINGS)
