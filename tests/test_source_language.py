"""A source's ``language`` in the config: the admin's word for what a source writes in.

Many feeds declare no language (heise, UOL) and many a wrong one (a site's default "en-US"
over Portuguese articles). Set, the source's language wins over what it declares, for
every kind of source: its headlines are stemmed in it when stories are grouped, and the
email marks its stories with it, so a screen reader reads them in the right voice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from digest.app import App
from digest.config import load_config, parse_config
from digest.errors import ConfigError
from digest.pipeline import gather_sources, run_digest
from tests.conftest import FeedServer, SmtpServer, ago, config_text, rss
from tests.store_queries import every_article


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
