"""The reader's pages in the reader's language: a French reader who clicks "Se désabonner"
in their email lands on a French page, a visitor whose browser asks for German signs up
in German. In-process through httpx's ASGI transport, mailing through a real SMTP server.
"""

from __future__ import annotations

import io
import logging
import re
import string
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import jinja2
import pytest
from babel.messages.extract import extract_python
from jinja2.ext import extract_from_ast

import digest.web as web_package
from digest.app import App
from digest.clock import ManualClock
from digest.render import translations
from digest.render.i18n import Localizer, negotiate
from digest.resources import _find
from digest.store import Subscriber
from tests.conftest import FeedServer, SmtpServer, csrf, rss
from tests.reader_web import Client, mailed_confirm_path, signed_link, topics_config, web_client


def _config(write_config: Callable[..., Path], url: str, port: int, locale: str) -> Path:
    path = topics_config(write_config, url, port, ["world"])
    path.write_text(
        path.read_text().replace(
            'timezone = "UTC"\n', f'timezone = "UTC"\nlocale = "{locale}"\n', 1
        )
    )
    return path


@pytest.fixture
def feed(feed_server: FeedServer) -> str:
    return feed_server.add(
        "/f.xml", rss([{"title": "Strike ends", "guid": "1", "link": "https://w.test/1"}])
    )


@pytest.fixture
async def english(write_config, feed: str, smtp_server: SmtpServer) -> AsyncIterator[Client]:
    """A service whose locale is English (the default)."""
    async with web_client(_config(write_config, feed, smtp_server.port, "en")) as client:
        yield client


@pytest.fixture
async def spanish(write_config, feed: str, smtp_server: SmtpServer) -> AsyncIterator[Client]:
    """A service whose locale is Spanish."""
    async with web_client(_config(write_config, feed, smtp_server.port, "es")) as client:
        yield client


def _lang(page: httpx.Response) -> str:
    found = re.search(r'<html lang="([^"]*)">', page.text)
    assert found, page.text
    return found.group(1)


async def _pending(c: httpx.AsyncClient, app: App, email: str, locale: str | None) -> Subscriber:
    """A subscriber signed up through the form, with ``locale`` stored (as an import or the
    admin sets it), not yet confirmed."""
    page = await c.get("/", headers={"Accept-Language": "en"})
    await c.post("/subscribe", data={"email": email, "csrf": csrf(page)})
    row = app.store.subscriber_by_email(email)
    assert row is not None and row.id is not None
    changed = app.store.set_subscriber(row.id, locale=locale)
    assert changed is not None
    return changed


async def _reader(
    c: httpx.AsyncClient, app: App, smtp: SmtpServer, email: str, locale: str | None
) -> Subscriber:
    """A confirmed subscriber with ``locale`` stored."""
    await _pending(c, app, email, locale)
    await c.post(mailed_confirm_path(smtp, email))
    row = app.store.subscriber_by_email(email)
    assert row is not None and row.status == "active"
    return row


@pytest.mark.asyncio
async def test_a_french_reader_s_confirm_unsubscribe_and_preferences_pages_are_french(
    english: Client, smtp_server: SmtpServer
) -> None:
    """The reader's language is their stored locale, whatever their browser says: the
    unsubscribe link of a French email opens a French page, even from an English browser
    at work."""
    c, app = english
    await _pending(c, app, "marie@example.org", "fr")
    confirm = await c.get(mailed_confirm_path(smtp_server, "marie@example.org"))
    assert _lang(confirm) == "fr"
    assert "Confirmez votre abonnement" in confirm.text and "Oui, je m’abonne" in confirm.text
    assert (
        "<strong>marie@example.org</strong>" in confirm.text
    )  # the value escaped, the markup kept
    done = await c.post(mailed_confirm_path(smtp_server, "marie@example.org"))
    assert _lang(done) == "fr" and "Vous êtes abonné·e" in done.text
    row = app.store.subscriber_by_email("marie@example.org")
    assert row is not None

    browser = {"Accept-Language": "en-US,en;q=0.9"}
    leave = await c.get(signed_link("unsubscribe", row), headers=browser)
    assert _lang(leave) == "fr"
    assert "<title>Se désabonner · Test Desk</title>" in leave.text
    assert "Ne plus recevoir Test Desk à l’adresse marie@example.org\u202f?" in leave.text
    assert ">Se désabonner</button>" in leave.text and ">Préférences</a>" in leave.text
    assert "Unsubscribe" not in leave.text

    prefs = await c.get(signed_link("preferences", row), headers=browser)
    assert _lang(prefs) == "fr"
    for words in (
        "Vos préférences",
        "Fuseau horaire des dates de l’e-mail",
        "Langue",
        ">Enregistrer</button>",
    ):
        assert words in prefs.text, words
    saved = await c.post(
        signed_link("preferences", row), data={"locale": "fr", "csrf": csrf(prefs)}
    )
    assert "<strong>Enregistré.</strong>" in saved.text
    typo = await c.post(
        signed_link("preferences", row), data={"timezone": "Karachii", "csrf": csrf(prefs)}
    )
    assert typo.status_code == 400
    meant = "vouliez-vous dire &#39;Asia/Karachi&#39;\u202f?"
    assert f"fuseau horaire inconnu &#39;Karachii&#39;\u202f; {meant}" in typo.text
    expired = await c.post(signed_link("preferences", row), data={"locale": "fr", "csrf": "x"})
    assert expired.status_code == 400
    assert "Rien n’a été enregistré\u202f: Le formulaire a expiré" in expired.text

    gone = await c.post(signed_link("unsubscribe", row))
    assert _lang(gone) == "fr"
    assert "Vous ne recevrez plus Test Desk à l’adresse marie@example.org." in gone.text
    assert ">Désabonné·e par erreur\u202f? Revenez</a>" in gone.text  # the way back
    back = await c.get(signed_link("preferences", row))
    assert "Vous vous êtes désabonné·e de Test Desk" in back.text
    assert ">M’envoyer un lien pour me réabonner</button>" in back.text
    # The way back: its confirmation email speaks French too, as the page it links to.
    await c.post(
        signed_link("preferences", row), data={"action": "resubscribe", "csrf": csrf(back)}
    )
    mail = smtp_server.messages[-1].message()
    assert mail["Subject"] == "Confirmez votre abonnement à Test Desk"
    assert "Pour confirmer, ouvrez ce lien dans les deux jours" in mail.get_content()


@pytest.mark.asyncio
async def test_an_expired_confirmation_link_speaks_the_reader_s_language(
    english: Client, smtp_server: SmtpServer
) -> None:
    """Two days later the link says so in the reader's language, and offers a new one."""
    c, app = english
    await _pending(c, app, "jonas@example.org", "de")
    path = mailed_confirm_path(smtp_server, "jonas@example.org")
    assert isinstance(app.clock, ManualClock)
    app.clock.advance(3 * 86400)
    page = await c.get(path)
    assert _lang(page) == "de" and "Dieser Bestätigungslink ist abgelaufen" in page.text
    assert ">Neuen Link per E-Mail senden</button>" in page.text


@pytest.mark.asyncio
async def test_a_german_browser_gets_the_sign_up_page_in_german(english: Client) -> None:
    """A visitor has no stored locale: their browser's Accept-Language chooses, among the
    languages digest has; the schedule's words too (Babel's day names, the time)."""
    c, _ = english
    page = await c.get("/", headers={"Accept-Language": "de-AT,de;q=0.9,en;q=0.5"})
    assert _lang(page) == "de"
    assert "<title>Abonnieren · Test Desk</title>" in page.text
    assert ">E-Mail-Adresse</label>" in page.text and ">Abonnieren</button>" in page.text
    assert "<strong>Daily Test</strong>: täglich um 07:00 (UTC)" in page.text
    assert "Accept-Language" in page.headers["vary"]  # a cache keeps one copy per language
    refused = await c.post(
        "/subscribe",
        data={"email": "not an address", "csrf": csrf(page)},
        headers={"Accept-Language": "de"},
    )
    assert (
        refused.status_code == 400
        and "Das sieht nicht wie eine E-Mail-Adresse aus." in refused.text
    )
    archive = await c.get("/archive", headers={"Accept-Language": "de"})
    assert _lang(archive) == "de" and "<h1>Archiv</h1>" in archive.text


@pytest.mark.asyncio
async def test_a_language_digest_has_not_gives_the_service_s(spanish: Client) -> None:
    """A browser asking only for Japanese gets the service's language, not English."""
    c, _ = spanish
    page = await c.get("/", headers={"Accept-Language": "ja-JP,ja;q=0.9"})
    assert _lang(page) == "es" and ">Suscríbete</button>" in page.text
    missing = await c.get("/nowhere", headers={"Accept-Language": "ja"})
    assert missing.status_code == 404 and "Página no encontrada" in missing.text


@pytest.mark.asyncio
async def test_an_english_reader_of_a_spanish_service_reads_english(
    spanish: Client, smtp_server: SmtpServer
) -> None:
    """A reader who chose English keeps English pages where the service speaks Spanish; one
    who chose nothing reads the service's language, as their email does."""
    c, app = spanish
    chose = await _reader(c, app, smtp_server, "ann@example.org", "en")
    page = await c.get(signed_link("unsubscribe", chose), headers={"Accept-Language": "es"})
    assert _lang(page) == "en"
    assert "<h1>Unsubscribe</h1>" in page.text
    assert "Stop receiving Test Desk at ann@example.org?" in page.text
    default = await _reader(c, app, smtp_server, "pepe@example.org", None)
    page = await c.get(signed_link("unsubscribe", default), headers={"Accept-Language": "en"})
    assert _lang(page) == "es" and "¿Dejar de recibir Test Desk en pepe@example.org?" in page.text


@pytest.mark.parametrize(
    ("header", "default", "chosen"),
    [
        ("fr-CH, fr;q=0.9, en;q=0.8", "en", "fr"),
        ("en;q=0.5, es", "fr", "es"),  # by q-value, not by order
        ("de;q=0, es;q=0.1", "fr", "es"),  # q=0 is "not this one"
        ("pt-BR, ja", "de_AT", "de_AT"),
        ("", "es", "es"),
        ("*", "fr", "fr"),
        ("garbage;q=x", "fr", "fr"),
        ("ja", "pt_BR", "en"),  # a service language digest has no words for: English
        ("FR", "en", "fr"),  # tags are case-insensitive: digest's own code comes back
        ("DE-de, en;q=0.1", "en", "de"),
    ],
)
def test_accept_language_picks_among_the_languages_digest_has(
    header: str, default: str, chosen: str
) -> None:
    assert negotiate(header, default) == chosen


# --- every string of the reader's pages is translated ------------------------------------


def _page_strings() -> set[str]:
    """The English source text of every translated string on the reader's pages: the
    ``_("...")`` of templates/web (the admin's pages are English only) and the
    ``gettext``/``N_`` of the web modules that build the reader's pages."""
    used: set[str] = set()
    env = jinja2.Environment()
    for path in sorted(_find("templates", "web").glob("*.j2")):
        for _, _, strings in extract_from_ast(
            env.parse(path.read_text()), ("_",), babel_style=False
        ):
            found = strings if isinstance(strings, tuple) else (strings,)
            used.update(s for s in found if isinstance(s, str) and s)
    web = Path(web_package.__file__).parent
    modules = (
        "context",
        "reader",
        "signup",
        "public",
        "schedule_words",
        "zone_words",
        "mailer",
        "topic_choice",
    )
    for name in modules:
        source = (web / f"{name}.py").read_bytes()
        for _, _, messages, _ in extract_python(
            io.BytesIO(source), {"gettext": None, "N_": None}, [], {}
        ):
            first = messages if isinstance(messages, str) else (messages or (None,))[0]
            if first:
                used.add(first)
    return used


def test_every_string_of_the_reader_s_pages_has_a_translation_in_every_language() -> None:
    """A new English string without its translations would show English on a French
    page: each shipped language has every one, with the same placeholders."""
    used = _page_strings()
    # The extraction finds the pages' strings (a test that read nothing would pass).
    assert {"Your preferences", "Email address", "You are unsubscribed", "every weekday"} <= used
    assert len(used) > 80
    fields = string.Formatter()
    for language in translations.LANGUAGES[1:]:
        table = translations.STRINGS[language]
        assert not used - set(table), (language, sorted(used - set(table)))
        for source in used:
            names = sorted(f[1] for f in fields.parse(source) if f[1])
            assert names == sorted(f[1] for f in fields.parse(table[source]) if f[1]), (
                language,
                source,
            )


def test_no_words_of_the_reader_s_pages_are_left_outside_the_translations() -> None:
    """A word typed into a template as bare text would stay English on every page: the
    reader's templates hold words only inside ``_()`` (the admin's are English only)."""
    env = jinja2.Environment()
    for path in sorted(_find("templates", "web").glob("*.j2")):
        ast = env.parse(path.read_text())
        text = "".join(node.data for node in ast.find_all(jinja2.nodes.TemplateData))
        text = re.sub(r"<style>.*?</style>", "", text, flags=re.S)
        text = re.sub(r"<[^>]*>|[a-z-]+=\"[^\"]*\"|\bautofocus\b", " ", text)
        assert not re.findall(r"[^\W\d_]{2,}", text), (path.name, text)


def test_the_pages_translations_cannot_change_an_email() -> None:
    """The web's strings are a table of their own beside the email's: none redefines an
    email string, so a page's wording never changes an email."""
    for module in (translations.fr, translations.de, translations.es):
        assert not set(module.WEB) & set(module.EMAIL)


def test_a_translation_holds_markup_but_the_values_are_escaped() -> None:
    page = Localizer("fr").markup(
        "Start receiving {service} at <strong>{email}</strong>?", service="A&B", email="<x>"
    )
    assert page == "Commencer à recevoir A&amp;B à l’adresse <strong>&lt;x&gt;</strong>\u202f?"


@pytest.mark.asyncio
async def test_a_visitor_who_signs_up_on_the_french_page_is_mailed_and_confirms_in_french(
    english: Client, smtp_server: SmtpServer
) -> None:
    """The confirmation of a sign-up on the French page (an English service, a visitor of
    no stored language) is French, and so are the pages its link opens: not a French form
    answered by an English email. Their stored language is not set by it (their digest
    stays the service's until they choose); a visitor of the service's language is mailed
    the link as before."""
    c, app = english
    fr = {"Accept-Language": "fr-FR,fr;q=0.9"}
    page = await c.get("/", headers=fr)
    inbox = await c.post(
        "/subscribe", data={"email": "lea@example.org", "csrf": csrf(page)}, headers=fr
    )
    assert _lang(inbox) == "fr"
    mail = smtp_server.messages[-1].message()
    assert mail["Subject"] == "Confirmez votre abonnement à Test Desk"
    assert "Pour confirmer, ouvrez ce lien dans les deux jours" in mail.get_content()
    path = mailed_confirm_path(smtp_server, "lea@example.org")
    english_browser = {"Accept-Language": "en"}  # opened elsewhere: the link decides
    confirm = await c.get(path, headers=english_browser)
    assert _lang(confirm) == "fr" and ">Oui, je m’abonne</button>" in confirm.text
    done = await c.post(path, headers=english_browser)
    assert _lang(done) == "fr" and "Vous êtes abonné·e" in done.text
    again = await c.get(path, headers=english_browser)  # opened again: already subscribed
    assert _lang(again) == "fr" and "Vous êtes déjà abonné·e" in again.text
    row = app.store.subscriber_by_email("lea@example.org")
    assert row is not None and row.locale is None

    en = {"Accept-Language": "en"}
    page = await c.get("/", headers=en)
    await c.post("/subscribe", data={"email": "tom@example.org", "csrf": csrf(page)}, headers=en)
    mail = smtp_server.messages[-1].message()
    assert mail["Subject"] == "Confirm your subscription to Test Desk"
    assert "?" not in mailed_confirm_path(smtp_server, "tom@example.org")


@pytest.mark.asyncio
async def test_the_500_page_speaks_the_browser_s_language_and_english_when_that_fails(
    english: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The last-resort page was English whatever the visitor's language; it is in the
    browser's, as every public page, and in English when the translation itself fails
    (the page must not fail for its words)."""
    c, app = english
    # A real fault: the archive's table is gone from under the running app.
    with app.store.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE editions RENAME TO editions_gone")
    page = await c.get("/archive", headers={"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.8"})
    assert page.status_code == 500 and _lang(page) == "fr"
    assert "Une erreur s’est produite" in page.text and "Something went wrong" not in page.text
    assert "editions_gone" not in page.text and "Traceback" not in page.text
    german = await c.get("/archive", headers={"Accept-Language": "de"})
    assert german.status_code == 500 and "Etwas ist schiefgelaufen" in german.text

    # A French translation with a placeholder the page does not fill: English, still 500.
    monkeypatch.setitem(translations.fr.STRINGS, "Something went wrong", "Erreur {oops}")
    with caplog.at_level(logging.ERROR, logger="digest.web"):
        broken = await c.get("/archive", headers={"Accept-Language": "fr"})
    assert broken.status_code == 500 and _lang(broken) == "en"
    assert "Something went wrong" in broken.text and "<html" in broken.text
    assert any("in English" in r.getMessage() for r in caplog.records), caplog.text
