"""A source's ``language`` in the config: the admin's word for what a source writes in.

Many feeds declare no language (heise, UOL) and many a wrong one (a site's default "en-US"
over Portuguese articles). Set, the source's language wins over what it declares, for
every kind of source: its headlines are stemmed in it when stories are grouped, and the
email marks its stories with it, so a screen reader reads them in the right voice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from digest.app import App
from digest.config import load_config, parse_config
from digest.errors import ConfigError
from digest.pipeline import gather_sources, run_digest
from digest.sources import parse_feed
from digest.sources.sitemap import parse_sitemap
from tests.conftest import FeedServer, SmtpServer, ago, config_text, rss
from tests.store_queries import every_article
from tests.test_page import read, serve

# A Spanish standfirst: "Sr." and "Sra." end no sentence in Spanish, but do in English,
# which is what a summary is cut by when the feed declares no language.
DOCTYPE = '<!DOCTYPE rss [<!ENTITY nbsp "&#160;">]>'  # read by feedparser, not the fast reader
SPANISH = "El Sr. García dijo que la Sra. López vendrá mañana a la reunión del consejo."


def _feed(titles: list[str], path: str, declared: str | None = None) -> str:
    feed = rss(
        [
            {"title": t, "link": f"https://news.test{path}/{i}", "date": ago(hours=1)}
            for i, t in enumerate(titles)
        ]
    )
    if declared:
        feed = feed.replace("<channel>", f"<channel><language>{declared}</language>")
    return feed


def _source(name: str, url: str, language: str | None = None) -> str:
    line = f'language = "{language}"\n' if language else ""
    return f'\n[[sources]]\nname = "{name}"\nurl = "{url}"\n{line}'


def test_a_language_is_written_as_bcp_47_and_a_name_is_refused_with_how_to_write_it(
    tmp_path: Path,
) -> None:
    file = tmp_path / "digest.toml"
    config = parse_config(config_text([], extra=_source("UOL", "https://u.test/f", "pt_BR")), file)
    assert config.sources[0].language == "pt-BR"  # as some feeds write it; HTML wants "-"
    plain = parse_config(config_text([("Wire", "https://w.test/f")]), file)
    assert plain.sources[0].language is None

    with pytest.raises(ConfigError) as caught:
        parse_config(config_text([], extra=_source("UOL", "https://u.test/f", "Portuguese")), file)
    message = caught.value.message
    assert "language" in message and "'Portuguese'" in message
    assert "BCP 47" in message and "'pt-BR'" in message


def test_the_configured_language_wins_over_none_or_a_wrong_one_and_reaches_the_email(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    undeclared = feed_server.add(
        "/uol.xml", _feed(["Bolsonaro estaciona na liderança das pesquisas"], "/uol")
    )
    wrong = feed_server.add(
        "/blog.xml", _feed(["Reforma da previdência avança no Senado"], "/blog", "en-US")
    )
    declared = feed_server.add(
        "/heise.xml", _feed(["Neue Sicherheitslücke in Browsern entdeckt"], "/heise", "de")
    )
    extra = (
        _source("UOL", undeclared, "pt-BR")
        + _source("Blog", wrong, "pt-BR")
        + _source("heise", declared)
    )
    path = write_config([], transport="smtp", smtp_port=smtp_server.port, extra=extra)
    app = App.open(load_config(path))
    try:
        app.store.add_subscriber("ana@example.org", "Ana")
        reports = asyncio.run(gather_sources(app))
        assert all(r.status == "ok" for r in reports), reports
        stored = {name: a.language for a, name in every_article(app)}
        # Unset, the feed's own declaration stays.
        assert stored == {"UOL": "pt-BR", "Blog": "pt-BR", "heise": "de"}

        report = asyncio.run(run_digest(app, gather_first=False))
        assert report.delivery is not None and report.delivery.counts == {"sent": 1}
        [received] = smtp_server.messages
        body = received.message().get_body(("html",))
        assert body is not None
        html = str(body.get_content())
        # An English edition marks each story in another language with its own.
        assert html.count('lang="pt-BR"') >= 2 and 'lang="de"' in html
        assert 'lang="en-US"' not in html
    finally:
        app.close()


def _spanish_feeds() -> dict[str, bytes]:
    """One Spanish item that declares no language, as RSS (the fast reader), RSS behind a
    DOCTYPE (feedparser) and JSON Feed."""
    item = {"title": "Reunión del consejo", "link": "https://es.test/a", "desc": SPANISH}
    plain = rss([item])
    json_feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Diario",
        "items": [
            {"id": "1", "url": "https://es.test/a", "title": item["title"], "summary": SPANISH}
        ],
    }
    return {
        "rss": plain.encode(),
        "feedparser": plain.replace("<rss", f"{DOCTYPE}<rss", 1).encode(),
        "json": json.dumps(json_feed).encode(),
    }


@pytest.mark.parametrize("kind", ["rss", "feedparser", "json"])
def test_a_summary_is_cut_by_the_configured_languages_rules(kind: str) -> None:
    body = _spanish_feeds()[kind]
    [declared_none], _ = parse_feed("Diario", body, summary_chars=60)
    [configured], _ = parse_feed("Diario", body, summary_chars=60, language="es")
    # Cut by English rules, "Sra." ends the first sentence; by Spanish ones it does not.
    assert declared_none.summary.endswith("la Sra.") and declared_none.language is None
    assert configured.language == "es"
    assert configured.summary.startswith("El Sr. García dijo que la Sra. López")


def test_a_sitemap_takes_the_configured_language_over_its_own() -> None:
    sitemap = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url>'
        "<loc>https://es.test/a</loc><news:news><news:publication><news:name>Diario"
        "</news:name><news:language>en</news:language></news:publication>"
        "<news:publication_date>2026-12-07T08:00:00Z</news:publication_date>"
        "<news:title>Reunión del consejo</news:title></news:news></url></urlset>"
    ).encode()
    [declared], _ = parse_sitemap("Diario", sitemap, "https://es.test/")
    [configured], _ = parse_sitemap("Diario", sitemap, "https://es.test/", "es")
    assert (declared.language, configured.language) == ("en", "es")


def test_a_page_sources_articles_take_the_configured_language(feed_server: FeedServer) -> None:
    listing = serve(feed_server)
    declared, _ = asyncio.run(read(feed_server, listing))
    configured, _ = asyncio.run(read(feed_server, listing, language="pt-BR"))
    assert {item.language for item in declared.values()} >= {"en", "en-GB"}
    assert {item.language for item in configured.values()} == {"pt-BR"}
