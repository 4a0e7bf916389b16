"""An item's link is the article's own address: FeedBurner's origLink, or the target a
known redirector names in full, in what is stored and in the email; a wrapper whose target
is no complete http(s) URL stays as the feed wrote it. And an install that stored the
FeedBurner links before knows those items again: none is new, none is mailed twice.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from xml.sax.saxutils import escape

import pytest

from digest.app import App
from digest.pipeline import gather_sources, run_digest
from digest.records import FeedItem
from digest.sources.jsonfeed import parse_json_feed
from digest.sources.redirects import article_url, unwrapped
from digest.store import utcnow
from digest.store.store import FetchOutcome
from tests.conftest import FeedServer, OpenApp, SmtpServer, ago
from tests.store_queries import every_article, source

FEEDBURNER = "http://rssnamespace.org/feedburner/ext/1.0"
FOLHA = "https://redir.folha.com.br/redir/online/poder/eleicoes-2018/rss091/*"
# A Jornal de Notícias item as its FeedBurner feed lists it: a ~r link and the origLink.
JN_LINK = "http://feeds.jn.test/~r/JN-ULTIMAS/~3/UBnb8Ra3Q1U/nova-presidente-9021600.html"
JN_OWN = "https://www.jn.test/nacional/interior/nova-presidente-9021600.html"


def rss_feed(items: list[dict[str, str]], doctype: str = "") -> str:
    """RSS 2.0 with FeedBurner's namespace; each item: title, link, and optional orig
    (its feedburner:origLink), guid, desc. Dated an hour ago."""
    body = "".join(
        f"<item><title>{escape(i['title'])}</title><link>{escape(i['link'])}</link>"
        + (f"<guid isPermaLink='false'>{escape(i['guid'])}</guid>" if "guid" in i else "")
        + f"<description>{escape(i.get('desc', i['title'] + ', in full.'))}</description>"
        + f"<pubDate>{ago(hours=1)}</pubDate>"
        + (f"<feedburner:origLink>{escape(i['orig'])}</feedburner:origLink>" if "orig" in i else "")
        + "</item>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{doctype}'
        f'<rss version="2.0" xmlns:feedburner="{FEEDBURNER}"><channel><title>Wire</title>'
        f"<link>https://wire.test/</link>{body}</channel></rss>"
    )


def atom_feed(entries: list[dict[str, str]]) -> str:
    """Atom 1.0 with FeedBurner's namespace; each entry: id, title, link, orig."""
    now = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
    body = "".join(
        f"<entry><id>{e['id']}</id><title>{escape(e['title'])}</title>"
        f"<link rel='alternate' href='{escape(e['link'])}'/><updated>{now}</updated>"
        f"<summary>{escape(e['title'])}, in full.</summary>"
        f"<feedburner:origLink>{escape(e['orig'])}</feedburner:origLink></entry>"
        for e in entries
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
        f'xmlns:feedburner="{FEEDBURNER}"><title>Blog</title><id>urn:blog</id>'
        f"<updated>{now}</updated>{body}</feed>"
    )


# --- the rule, case by case ------------------------------------------------------------------

TARGET = "https://www1.folha.uol.com.br/poder/2018/09/match-eleitoral.shtml"


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        # Folha's click counter names its target after "*"; the target's query comes along.
        (FOLHA + TARGET, TARGET),
        (FOLHA + TARGET + "?page=2&utm_source=rss", TARGET + "?page=2"),
        # Google Alerts: /url?url=<target>, percent-encoded or not; Google's /url?q=<target>.
        (
            "https://www.google.com/url?rct=j&sa=t&url=https%3A%2F%2Fnews.test%2Fa%3Fid%3D5&ct=ga",
            "https://news.test/a?id=5",
        ),
        ("https://www.google.com/url?q=https://news.test/b&sa=D", "https://news.test/b"),
        ("https://l.facebook.com/l.php?u=https%3A%2F%2Fnews.test%2Fc&h=AT0", "https://news.test/c"),
        # Each other redirector, as its link is written; a port or user info in the link
        # leaves its host as it is.
        ("https://lm.facebook.com/l.php?u=https%3A%2F%2Fnews.test%2Fd", "https://news.test/d"),
        ("https://l.messenger.com/l.php?u=https%3A%2F%2Fnews.test%2Fe", "https://news.test/e"),
        ("https://m.youtube.com/redirect?q=https%3A%2F%2Fnews.test%2Ff", "https://news.test/f"),
        (
            "https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fnews.test%2Fg",
            "https://news.test/g",
        ),
        (
            "https://www.linkedin.com/redir/redirect?url=https%3A%2F%2Fnews.test%2Fh",
            "https://news.test/h",
        ),
        ("https://www.google.com:443/url?q=https://news.test/i", "https://news.test/i"),
        ("https://someone@www.google.com/url?q=https://news.test/j", "https://news.test/j"),
        ("https://www.google.com@news.test/url?q=https://news.test/k", None),  # news.test's
        ("https://www.google.com.news.test/url?q=https://news.test/k", None),
        # A redirector around a redirector: both come off.
        ("https://www.google.com/url?url=" + FOLHA.replace(":", "%3A") + TARGET, TARGET),
        # Not decodable offline, or no redirector: as written.
        ("https://news.google.com/rss/articles/CBMiK2h0dHBzOi8v?oc=5", None),
        ("http://feedproxy.google.com/~r/Wire/~3/abc/story.html", None),
        ("https://blog.test/notes/*https://elsewhere.test/x", None),  # not a known redirector
        ("https://www.google.com/search?q=https://news.test/b", None),  # search, not /url
        # A target that is no complete http(s) URL: the wrapper stays.
        (FOLHA + "javascript:alert(1)", None),
        (FOLHA + "*javascript:alert(1)", None),
        ("https://redir.folha.com.br/redir/online/x/*ftp://files.test/a", None),
        ("https://redir.folha.com.br/redir/online/x/*https://", None),
        ("https://redir.folha.com.br/redir/online/x/*https:/news.test/a", None),
        ("https://redir.folha.com.br/redir/online/x/*https%3A%2F%2Fnews.test%2Fa", None),
        ("https://www.google.com/url?url=javascript%3Aalert(1)", None),
        ("https://www.google.com/url?url=data%3Atext%2Fhtml%2Cx", None),
        ("https://www.google.com/url?url=%2Flocal%2Fpath", None),
        ("https://www.google.com/url?url=www.news.test%2Fa", None),
        ("https://www.google.com/url?url=https%3A%2F%2Flocalhost%2Fa", None),  # no real host
        ("https://www.google.com/url?url=https%3A%2F%2Fnews.test%2Fa%20b", None),
        ("https://www.google.com/url?sa=t", None),
    ],
)
def test_a_known_redirector_comes_off_only_around_a_complete_http_target(
    link: str, expected: str | None
) -> None:
    assert unwrapped(link) == (expected or link)


@pytest.mark.parametrize(
    ("orig", "expected"),
    [
        (JN_OWN, JN_OWN),
        ("  " + JN_OWN + "\n", JN_OWN),
        ("HTTPS://WWW.JN.TEST/a?utm_medium=rss", "https://www.jn.test/a"),
        (FOLHA + TARGET, TARGET),  # an origLink through a redirector is unwrapped as well
        ("javascript:alert(1)", JN_LINK),
        ("/nacional/interior/nova-presidente-9021600.html", JN_LINK),  # relative: no address
        ("www.jn.test/nacional/x.html", JN_LINK),
        ("ftp://www.jn.test/x", JN_LINK),
        ("", JN_LINK),
        (None, JN_LINK),
        (["https://www.jn.test/x"], JN_LINK),
    ],
)
def test_the_origlink_is_taken_only_when_it_is_an_http_url(orig: object, expected: str) -> None:
    assert article_url(JN_LINK, orig) == expected


# --- real feeds, gathered, stored and mailed -------------------------------------------------


def open_service(open_app: OpenApp, smtp_server: SmtpServer, sources: list[tuple[str, str]]) -> App:
    """The service over ``sources``, mailing through ``smtp_server`` to one reader (closed
    after the test, as ``open_app`` closes every app it opened)."""
    app = open_app(sources, transport="smtp", smtp_port=smtp_server.port)
    app.store.add_subscriber("ana@example.org", "Ana")
    return app


def mailed_html(smtp_server: SmtpServer) -> str:
    [received] = smtp_server.messages
    html = received.message().get_body(("html",))
    assert html is not None
    return str(html.get_content())


WRAPPED_LEFT = [
    FOLHA.replace("/rss091/*", "/rss091/x/*") + "javascript:alert(1)",
    "https://redir.folha.com.br/redir/online/x/*https://",
]


def test_the_stored_and_mailed_link_is_the_articles_own(
    open_app: OpenApp, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    jn = [
        {"title": "Mãe de utente é a nova presidente", "link": JN_LINK, "orig": JN_OWN},
        {
            "title": "Reações dos partidos ao veto",
            "link": "http://feeds.jn.test/~r/JN-ULTIMAS/~3/GfXqkJnHUcM/reacoes-9021587.html",
            "orig": "https://www.jn.test/nacional/interior/reacoes-9021587.html",
        },
        {
            "title": "Tempestade atinge a Europa",  # an origLink that is no address: the link
            "link": "https://www.jn.test/mundo/interior/tempestade-9021583.html",
            "orig": "javascript:alert(1)",
        },
    ]
    uol = [
        {"title": "Match Eleitoral soma 500 mil testes", "link": FOLHA + TARGET},
        {"title": "Wrapped around a script", "link": WRAPPED_LEFT[0]},
        {"title": "Wrapped around nothing", "link": WRAPPED_LEFT[1]},
    ]
    blog = [
        {
            "id": "tag:blog.test,2026:1",
            "title": "Release notes for the spring",
            "link": "http://feedproxy.google.com/~r/Blog/~3/xyz/spring.html",
            "orig": "https://blog.test/2026/spring.html",
        }
    ]
    # The same JN items once more behind a DOCTYPE with an entity: the feedparser path.
    doctype = '<!DOCTYPE rss [<!ENTITY nbsp "&#160;">]>'
    ported = [{**i, "title": i["title"] + " (Porto)"} for i in jn[:1]]
    sources = [
        ("JN", feed_server.add("/jn.xml", rss_feed(jn))),
        ("UOL", feed_server.add("/uol.xml", rss_feed(uol))),
        ("Blog", feed_server.add("/blog.atom", atom_feed(blog))),
        ("JN Porto", feed_server.add("/porto.xml", rss_feed(ported, doctype))),
    ]
    app = open_service(open_app, smtp_server, sources)
    reports = asyncio.run(gather_sources(app))
    assert all(r.status == "ok" for r in reports), reports
    stored = {(name, a.title): a.url for a, name in every_article(app)}
    assert stored == {
        ("JN", "Mãe de utente é a nova presidente"): JN_OWN,
        ("JN", "Reações dos partidos ao veto"): (
            "https://www.jn.test/nacional/interior/reacoes-9021587.html"
        ),
        ("JN", "Tempestade atinge a Europa"): (
            "https://www.jn.test/mundo/interior/tempestade-9021583.html"
        ),
        ("UOL", "Match Eleitoral soma 500 mil testes"): TARGET,
        ("UOL", "Wrapped around a script"): WRAPPED_LEFT[0],
        ("UOL", "Wrapped around nothing"): WRAPPED_LEFT[1],
        ("Blog", "Release notes for the spring"): "https://blog.test/2026/spring.html",
        ("JN Porto", "Mãe de utente é a nova presidente (Porto)"): JN_OWN,
    }

    report = asyncio.run(run_digest(app, gather_first=False))
    assert report.delivery is not None and report.delivery.counts == {"sent": 1}
    html = mailed_html(smtp_server)
    for own in (JN_OWN, TARGET, "https://blog.test/2026/spring.html"):
        assert f'href="{own}"' in html
    for hop in ("feeds.jn.test", "feedproxy.google.com", "rss091/*https"):
        assert hop not in html


# --- an install that stored the FeedBurner links before --------------------------------------


def test_items_stored_with_their_feedburner_link_are_known_again_and_not_mailed_twice(
    open_app: OpenApp, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    corrected = "http://feeds.jn.test/~r/JN-ULTIMAS/~3/GfXqkJnHUcM/reacoes-9021587.html"
    items = [
        {"title": "Mãe de utente é a nova presidente", "link": JN_LINK, "orig": JN_OWN},
        {
            # Its headline was corrected while the install upgraded: no content to match by.
            "title": "Reações dos partidos ao veto de Marcelo",
            "link": corrected,
            "orig": "https://www.jn.test/nacional/interior/reacoes-9021587.html",
        },
    ]
    url = feed_server.add("/jn.xml", rss_feed(items), headers={"ETag": '"v1"'})
    app = open_service(open_app, smtp_server, [("JN", url)])
    # What the version that did not read origLinks stored: the ~r link as guid and url.
    ids = app.store.sync_sources([("JN", url)])
    old = [
        FeedItem(JN_LINK, JN_LINK, items[0]["title"], items[0]["title"] + ", in full.", None, None),
        FeedItem(corrected, corrected, "Reações dos partidos", "Reações dos partidos.", None, None),
    ]
    [saved] = app.store.save_fetches([FetchOutcome(ids["JN"], old)])
    assert saved.new == 2
    first = asyncio.run(run_digest(app, gather_first=False))
    assert first.delivery is not None and first.delivery.counts == {"sent": 1}
    assert JN_LINK in mailed_html(smtp_server)  # the old version mailed the ~r link
    before = {a.id for a, _ in every_article(app)}

    [report] = asyncio.run(gather_sources(app))  # the upgraded reader, origLink and all

    assert (report.status, report.new_items) == ("ok", 0), report
    after = {a.id: (a.url, a.title) for a, _ in every_article(app)}
    assert set(after) == before  # the same rows, links updated in place
    assert sorted(after.values()) == [
        (JN_OWN, "Mãe de utente é a nova presidente"),
        (
            "https://www.jn.test/nacional/interior/reacoes-9021587.html",
            "Reações dos partidos ao veto de Marcelo",
        ),
    ]
    # A 304 next: what the last full read listed is the same articles.
    [unchanged] = asyncio.run(gather_sources(app))
    assert unchanged.new_items == 0
    row = source(app.store, ids["JN"])
    assert row is not None and set(map(int, (row.listing or "").split(","))) == before

    tomorrow = asyncio.run(run_digest(app, now=utcnow() + timedelta(days=1), gather_first=False))
    assert tomorrow.delivery is None, tomorrow  # nothing new: no second mail
    assert len(smtp_server.messages) == 1


def test_an_item_whose_feed_makes_up_guids_is_known_by_its_old_feedburner_link(
    open_app: OpenApp, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    item = {"title": "Mãe de utente é a nova presidente", "link": JN_LINK, "orig": JN_OWN}
    url = feed_server.add("/jn.xml", rss_feed([{**item, "guid": "fetch-2"}]))
    app = open_service(open_app, smtp_server, [("JN", url)])
    ids = app.store.sync_sources([("JN", url)])
    # Stored by the old version under the guid of an earlier fetch, with the ~r link.
    old = FeedItem("fetch-1", JN_LINK, item["title"], item["title"] + ", in full.", None, None)
    app.store.save_fetches([FetchOutcome(ids["JN"], [old])])

    [report] = asyncio.run(gather_sources(app))

    assert (report.status, report.new_items) == ("ok", 0), report
    assert len(every_article(app)) == 1


def test_a_json_feed_items_redirector_link_is_unwrapped_and_keeps_its_identity() -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "UOL",
            "items": [
                {"title": "Match Eleitoral", "url": FOLHA + TARGET},
                {"id": "42", "title": "Around a script", "url": WRAPPED_LEFT[0]},
            ],
        }
    ).encode()
    match, script = parse_json_feed("UOL", body, None)[0]
    # No id: the link as the feed wrote it stays the identity; the target is the link shown.
    assert (match.url, match.guid, match.feed_link) == (TARGET, FOLHA + TARGET, FOLHA + TARGET)
    assert (script.url, script.guid, script.feed_link) == (WRAPPED_LEFT[0], "42", None)
