"""The few fixed strings of the email, per language, and locale-aware dates (Babel).

English is the source text; a language missing a string falls back to English, so a
partial translation never breaks an email. Dates and times are formatted by Babel from
the CLDR data for the subscriber's locale (``fr``, ``de_AT``, ``pt_BR``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime

DEFAULT_LOCALE = "en"

# English source text -> translation. Plural forms are separate keys ("{n} sources").
_STRINGS: dict[str, dict[str, str]] = {
    "fr": {
        "Hello {name},": "Bonjour {name},",
        "Hello,": "Bonjour,",
        "Breaking": "À la une",
        "Latest": "Dernières nouvelles",
        "Also": "Aussi",
        "Update": "Mise à jour",
        "{n} sources": "{n} sources",
        "{n} more story did not fit in this email.": "{n} autre article n’a pas tenu dans cet e-mail.",
        "{n} more stories did not fit in this email.": "{n} autres articles n’ont pas tenu dans cet e-mail.",
        "Read the whole edition on the web": "Lire l’édition complète sur le web",
        "The whole edition": "L’édition complète",
        "No new stories since the last edition.": "Rien de nouveau depuis la dernière édition.",
        "You receive {title} because you subscribed to {service}.": "Vous recevez {title} car vous êtes abonné·e à {service}.",
        "Preferences": "Préférences",
        "Unsubscribe": "Se désabonner",
        "To change your settings or unsubscribe, use the links in the email you received.": "Pour modifier vos préférences ou vous désabonner, utilisez les liens de l’e-mail que vous avez reçu.",
        "View in browser": "Voir dans le navigateur",
        "Forwarded this?": "On vous a transféré cet e-mail\u202f?",
        "Subscribe": "S’abonner",
        "In this edition": "Dans cette édition",
        "{n} min read": "{n}\u00a0min de lecture",
        "{n} story": "{n} article",
        "{n} stories": "{n} articles",
        "And {n} more story below.": "Et {n} autre article plus bas.",
        "And {n} more stories below.": "Et {n} autres articles plus bas.",
    },
    "de": {
        "Hello {name},": "Hallo {name},",
        "Hello,": "Hallo,",
        "Breaking": "Eilmeldungen",
        "Latest": "Neueste Meldungen",
        "Also": "Auch",
        "Update": "Aktualisiert",
        "{n} sources": "{n} Quellen",
        "{n} more story did not fit in this email.": "{n} weitere Meldung passte nicht in diese E-Mail.",
        "{n} more stories did not fit in this email.": "{n} weitere Meldungen passten nicht in diese E-Mail.",
        "Read the whole edition on the web": "Die ganze Ausgabe im Web lesen",
        "The whole edition": "Die ganze Ausgabe",
        "No new stories since the last edition.": "Seit der letzten Ausgabe gibt es nichts Neues.",
        "You receive {title} because you subscribed to {service}.": "Sie erhalten {title}, weil Sie {service} abonniert haben.",
        "Preferences": "Einstellungen",
        "Unsubscribe": "Abbestellen",
        "To change your settings or unsubscribe, use the links in the email you received.": "Um Ihre Einstellungen zu ändern oder abzubestellen, nutzen Sie die Links in der erhaltenen E-Mail.",
        "View in browser": "Im Browser ansehen",
        "Forwarded this?": "Weitergeleitet bekommen?",
        "Subscribe": "Abonnieren",
        "In this edition": "In dieser Ausgabe",
        "{n} min read": "{n}\u00a0Min. Lesezeit",
        "{n} story": "{n} Meldung",
        "{n} stories": "{n} Meldungen",
        "And {n} more story below.": "Und {n} weitere Meldung weiter unten.",
        "And {n} more stories below.": "Und {n} weitere Meldungen weiter unten.",
    },
    "es": {
        "Hello {name},": "Hola, {name}:",
        "Hello,": "Hola:",
        "Breaking": "Última hora",
        "Latest": "Lo más reciente",
        "Also": "También",
        "Update": "Actualización",
        "{n} sources": "{n} fuentes",
        "{n} more story did not fit in this email.": "{n} noticia más no cupo en este correo.",
        "{n} more stories did not fit in this email.": "{n} noticias más no cupieron en este correo.",
        "Read the whole edition on the web": "Leer la edición completa en la web",
        "The whole edition": "La edición completa",
        "No new stories since the last edition.": "No hay noticias nuevas desde la última edición.",
        "You receive {title} because you subscribed to {service}.": "Recibes {title} porque te suscribiste a {service}.",
        "Preferences": "Preferencias",
        "Unsubscribe": "Darse de baja",
        "To change your settings or unsubscribe, use the links in the email you received.": "Para cambiar tus preferencias o darte de baja, usa los enlaces del correo que recibiste.",
        "View in browser": "Ver en el navegador",
        "Forwarded this?": "¿Te lo reenviaron?",
        "Subscribe": "Suscríbete",
        "In this edition": "En esta edición",
        "{n} min read": "{n}\u00a0min de lectura",
        "{n} story": "{n} noticia",
        "{n} stories": "{n} noticias",
        "And {n} more story below.": "Y {n} noticia más abajo.",
        "And {n} more stories below.": "Y {n} noticias más abajo.",
    },
}


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

    def gettext(self, text: str, **values: object) -> str:
        """The translation of ``text`` (English when there is none), with values filled in."""
        return _STRINGS.get(self.language, {}).get(text, text).format(**values)

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
