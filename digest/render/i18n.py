"""The fixed strings of the email and of the reader's web pages, per language, and
locale-aware dates (Babel).

English is the source text (the translations are in ``render.translations``); a language
missing a string falls back to English, so a partial translation never breaks an email
or a page. Dates and times are formatted by Babel from
the CLDR data for the subscriber's locale (``fr``, ``de_AT``, ``pt_BR``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from babel import Locale, UnknownLocaleError, negotiate_locale
from babel.dates import format_date, format_datetime
from markupsafe import Markup

from digest.render.translations import LANGUAGES
from digest.render.translations import STRINGS as _STRINGS

DEFAULT_LOCALE = "en"


def N_(text: str) -> str:
    """Mark ``text`` as a string to translate where it is defined (a table of messages);
    it is translated where it is shown, in the reader's language."""
    return text


def zone_name(when: datetime) -> str:
    """The zone of an aware ``when`` as readers know it: ``CET``, ``GMT``, ``EST``, ``UTC``;
    ``UTC+5:30`` where the tz database has no letters for it (``-03``, ``+0530``).

    The tz database's abbreviation, not Babel's ``z``: CLDR has short names for few zones
    and locales (``Eastern Standard Time`` in en_GB, ``-0500`` in French).
    """
    name = when.tzname() or ""
    if name[:1].isalpha():
        return name
    offset = when.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    if not minutes:
        return "UTC"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{'-' if minutes < 0 else '+'}{hours}" + (f":{rest:02d}" if rest else "")


def first_name(name: str) -> str:
    """What a greeting calls a reader: the first word of the name they gave ("Alice" for
    "Alice Moreau"), or the first word after the comma of "Moreau, Alice" (a list export).

    Deliberately simple: where the family name comes first ("Yamada Taro") the first word
    is the family name, which is how those readers are addressed anyway; a name written
    without spaces ("山田太郎") stays whole.
    """
    family, comma, given = name.partition(",")
    words = (given if comma and given.strip() else family).split()
    return words[0] if words else ""


def check_locale(value: str) -> str:
    """Accept a locale Babel knows (``en``, ``fr_CA``, ``pt-BR``); ValueError otherwise."""
    try:
        return str(Locale.parse(value.replace("-", "_")))
    except (UnknownLocaleError, ValueError) as exc:
        raise ValueError(
            f"unknown locale {value!r}; use a code such as 'en', 'fr' or 'pt_BR'"
        ) from exc


@dataclass(frozen=True)
class Localizer:
    """Strings, plurals and dates for one locale, handed to the templates."""

    locale: str

    @property
    def language(self) -> str:
        """The language part, used for ``<html lang>``: ``pt_BR`` -> ``pt``."""
        return self.locale.split("_")[0]

    def translate(self, text: str) -> str:
        """The translation of ``text``, English when there is none: the one lookup."""
        return _STRINGS.get(self.language, {}).get(text, text)

    def gettext(self, text: str, **values: object) -> str:
        """The translation of ``text`` (English when there is none), with values filled in."""
        return self.translate(text).format(**values)

    def markup(self, text: str, **values: object) -> Markup:
        """``gettext`` for an HTML page: the translation may hold markup (``<strong>``),
        the values are escaped as they are filled in."""
        return Markup(self.translate(text)).format(**values)

    def ngettext(self, singular: str, plural: str, n: int, **values: object) -> str:
        """Singular or plural by ``n``, translated."""
        return self.gettext(singular if n == 1 else plural, n=n, **values)

    def long_date(self, when: datetime) -> str:
        """``Saturday, November 28, 2026`` / ``samedi 28 novembre 2026``."""
        return format_date(when, format="full", locale=self.locale)

    def short_date(self, when: datetime) -> str:
        """``Sat, Nov 28`` / ``sam. 28 nov.``: for the subject line."""
        return format_date(when, format="EEE d MMM", locale=self.locale)

    def date_time(self, when: datetime) -> str:
        """``Monday, December 7, 2026, 07:00 GMT`` / ``lundi 7 décembre 2026, 07:00 CET``:
        the date as the email's top prints it, and the time as its stories' (several
        editions of a day are told apart by it), joined as the language joins them."""
        time = f"{format_datetime(when, 'HH:mm', locale=self.locale)} {zone_name(when)}"
        # CLDR's pattern quotes its literal words ("{1} 'at' {0}"); '' is an apostrophe.
        joined = str(Locale.parse(self.locale).datetime_formats["full"])
        joined = joined.replace("''", "\0").replace("'", "").replace("\0", "'")
        return joined.format(time, self.long_date(when))

    def day_time(self, when: datetime, today: datetime | None = None) -> str:
        """``Sat 07:05 CET`` / ``sam. 07:05 CET``: when a story was last updated, with the
        zone, so a forwarded copy or a reader away from home knows which 07:05 it is.
        ``07:05 CET`` on the day of ``today`` (the edition's date, printed at its top)."""
        pattern = "HH:mm" if today is not None and when.date() == today.date() else "EEE HH:mm"
        return f"{format_datetime(when, pattern, locale=self.locale)} {zone_name(when)}"

    def label(self, text: str) -> str:
        """``text`` followed by a colon as the language writes it: French puts a narrow
        no-break space before it (``Préférences :``), so the colon never wraps alone."""
        return text + ("\u202f:" if self.language == "fr" else ":")

    def jinja_globals(self) -> dict[str, Callable[..., str]]:
        """``_``, ``ngettext`` and ``label`` (a label and its colon) for the templates."""
        return {"_": self.gettext, "ngettext": self.ngettext, "label": self.label}


def page_locale(locale: str) -> str:
    """The locale a web page is written in for a reader of ``locale``: theirs when digest
    has their language, else English (a page is not half one language, half another)."""
    return locale if locale.split("_")[0] in LANGUAGES else DEFAULT_LOCALE


def negotiate(accept_language: str, default: str) -> str:
    """The locale a visitor's ``Accept-Language`` header asks for among the languages
    digest has, best first by its q-values; ``default`` (the service's) when it asks for
    none of them or is malformed."""
    ranked: list[tuple[float, int, str]] = []
    for order, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag.strip() and tag.strip() != "*" and q > 0:
            # Tags are case-insensitive (RFC 4647): "FR" is French, and the match must be
            # digest's own code ("fr"), else the page is English words in French dates.
            ranked.append((-q, order, tag.strip().replace("-", "_").lower()))
    wanted = [tag for _, _, tag in sorted(ranked)]
    found = negotiate_locale(wanted, list(LANGUAGES), sep="_")
    return found or page_locale(default)
