"""What a gather stores, over real HTTP and real SQLite: which items are new, which are
updates of stored ones, which a second source carries too, which outlive pruning; and a
database failure on any path is that source's error, never the gather's.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import OperationalError

from digest.app import App
from digest.clock import ManualClock
from digest.editions import rank_window
from digest.pipeline import gather_sources
from digest.rank import assign_stories
from digest.records import FeedItem
from digest.sources.gather import SourceReport
from digest.store import Store, open_engine, upgrade, utcnow
from digest.store.store import FetchOutcome
from tests.conftest import FeedServer, OpenApp, ago, rss
from tests.store_queries import articles_between, every_article


def by_name(reports: list[SourceReport]) -> dict[str, SourceReport]:
    return {r.name: r for r in reports}


def source(name: str, url: str, kind: str = "feed", topics: str = "") -> str:
    extra = f"topics = [{topics}]\n" if topics else ""
    return f'\n[[sources]]\nname = "{name}"\nkind = "{kind}"\nurl = "{url}"\n{extra}'


async def gather_long_ago(app: App) -> datetime:
    """Gather (and prune) as if 40 days ago, past retention_days (30); returns that time."""
    then = utcnow() - timedelta(days=40)
    clock, app.store.clock = app.store.clock, ManualClock(then)
    try:
        await gather_sources(app)
    finally:
        app.store.clock = clock
    return then


def council_site(feed_server: FeedServer) -> tuple[str, str]:
    """A site with one article page and a listing linking it: (article path, listing URL)."""
    path = "/2024/05/council-votes-on-new-budget"
    article = (
        "<html><head><title>Council votes on the new budget plan</title></head>"
        "<body><article><h1>Council votes on the new budget plan</h1></article></body></html>"
    )
    feed_server.add(path, article, headers={"Content-Type": "text/html"})
    listing = (
        f"<html><body><main><a href='{path}'>Council votes on the new budget plan</a>"
        "</main></body></html>"
    )
    listing_url = feed_server.add("/latest", listing, headers={"Content-Type": "text/html"})
    return path, listing_url


# --- an updated entry ------------------------------------------------------------------------


async def test_an_updated_entry_takes_its_new_title_and_keeps_its_id_and_story(
    feed_server: FeedServer, open_app: OpenApp, caplog: pytest.LogCaptureFixture
) -> None:
    date = ago(hours=1)
    first = {"title": "Bridge closed", "link": "https://w.test/bridge", "guid": "b1", "date": date}
    url = feed_server.add("/w.xml", rss([first]))
    app = open_app([("Wire", url)])
    await gather_sources(app)
    rank_window(app, app.config.digest(None), utcnow())  # places it in a story
    [(before, _)] = every_article(app)
    assert before.story_id == before.id

    corrected = {**first, "title": "Bridge reopened after inspection", "desc": "Engineers agree."}
    feed_server.add("/w.xml", rss([corrected]))
    with caplog.at_level(logging.INFO, logger="digest.sources"):
        [report] = await gather_sources(app)
    [(after, _)] = every_article(app)
    assert report.new_items == 0 and report.status == "ok"
    assert (after.title, after.summary) == ("Bridge reopened after inspection", "Engineers agree.")
    assert (after.id, after.story_id, after.published_at) == (
        before.id,
        before.story_id,
        before.published_at,
    )
    assert after.modified_at is not None  # the feed gave no date of its own: when it was seen
    assert any(
        "'Wire'" in r.getMessage() and "Bridge reopened after inspection" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO
    ), caplog.text
    assert any("updated" in note for note in report.notes), report.notes


# --- the same URL from two sources -----------------------------------------------------------


async def test_a_story_linked_by_two_sources_counts_both_and_reaches_both_topics(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    item = [
        {
            "title": "Central bank raises rates by half a point",
            "link": "https://agency.test/rates",
            "date": ago(minutes=30),
        }
    ]
    extra = (
        source("Agency", feed_server.add("/a.xml", rss(item)), topics='"world"')
        + source("Business", feed_server.add("/b.xml", rss(item)), topics='"business"')
        + '\n[[digests]]\nid = "biz"\ntitle = "Biz"\ntopics = ["business"]\nlookback_hours = 48\n'
    )
    app = open_app([], extra=extra)
    reports = by_name(await gather_sources(app))
    assert {n: r.new_items for n, r in reports.items()} == {"Agency": 1, "Business": 1}
    now = utcnow()
    records = app.store.window_articles(now - timedelta(days=1), now, ["Agency", "Business"])
    assert len({assign_stories(records, app.config.rank).story_of[a.id] for a in records}) == 1
    daily = rank_window(app, app.config.digest("daily"), now)
    [story] = daily.breaking + daily.latest
    assert set(story.sources) == {"Agency", "Business"}
    assert rank_window(app, app.config.digest("biz"), now).count == 1


async def test_a_page_source_reads_an_article_another_source_stored(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    path, listing_url = council_site(feed_server)
    feed = feed_server.add(
        "/f.xml",
        rss([{"title": "Council votes", "link": feed_server.url(path), "date": ago(hours=1)}]),
    )
    await gather_sources(open_app([("Feed", feed)]))
    app = open_app([("Feed", feed)], extra=source("Site", listing_url, "page"))
    reports = by_name(await gather_sources(app))
    assert reports["Site"].new_items == 1, reports["Site"]
    assert sorted(name for _, name in every_article(app)) == ["Feed", "Site"]


# --- the content hash ------------------------------------------------------------------------


async def test_a_new_edition_of_a_recurring_headline_is_stored(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    def briefing(day: str, hours: float) -> dict[str, str]:
        link = f"https://w.test/briefing/2024-05-{day}"
        return {
            "title": "Morning briefing",
            "link": link,
            "guid": f"brief-05{day}",
            "date": ago(hours=hours),
        }

    url = feed_server.add("/w.xml", rss([briefing("01", 25)]))
    app = open_app([("Wire", url)])
    await gather_sources(app)
    feed_server.add("/w.xml", rss([briefing("02", 1), briefing("01", 25)]))
    [report] = await gather_sources(app)
    assert report.new_items == 1, (report, report.notes)
    assert len(every_article(app)) == 2


async def test_an_item_without_a_guid_whose_link_changes_is_still_known_by_its_content(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    def item(session: str) -> dict[str, str]:
        link = f"https://w.test/story?session={session}"  # not a known tracking parameter
        return {
            "title": "Storm warning",
            "desc": "Gales expected.",
            "link": link,
            "date": ago(hours=1),
        }

    url = feed_server.add("/w.xml", rss([item("1")]))
    app = open_app([("Wire", url)])
    await gather_sources(app)
    feed_server.add("/w.xml", rss([item("2")]))
    [report] = await gather_sources(app)
    assert report.new_items == 0 and len(every_article(app)) == 1


# --- pruning ---------------------------------------------------------------------------------


async def test_a_pruned_item_still_in_the_feed_does_not_come_back_as_new(
    feed_server: FeedServer, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    evergreen = {"title": "About us: the evergreen page", "link": "https://w.test/about"}
    dropped = {"title": "Last month's news", "link": "https://w.test/old-news"}
    url = feed_server.add("/w.xml", rss([evergreen, dropped]))
    app = open_app([("Wire", url)])
    forty_days_ago = await gather_long_ago(app)
    feed_server.add("/w.xml", rss([evergreen]))
    await gather_sources(app)  # the feed still lists the evergreen page; then the prune
    [report] = await gather_sources(app)
    assert report.new_items == 0
    [(article, _)] = every_article(app)
    assert article.title == evergreen["title"]
    assert article.published_at == forty_days_ago  # not re-dated as fresh news


async def test_an_item_of_a_feed_unchanged_for_longer_than_retention_is_kept(
    feed_server: FeedServer, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed answering 304 still lists what it listed: its undated item must not be pruned
    and come back as today's news when the feed next changes."""
    evergreen = {"title": "About us: the evergreen page", "link": "https://w.test/about"}
    url = feed_server.add("/w.xml", rss([evergreen]), headers={"ETag": '"v1"'})
    app = open_app([("Wire", url)])
    forty_days_ago = await gather_long_ago(app)
    [unchanged] = await gather_sources(app)  # a 304; then the prune
    assert "HTTP 304" in " ".join(unchanged.notes)
    news = {"title": "Harbour strike ends", "link": "https://w.test/strike"}
    feed_server.add("/w.xml", rss([news, evergreen]), headers={"ETag": '"v2"'})
    [changed] = await gather_sources(app)
    assert changed.new_items == 1  # the news, not the evergreen page again
    evergreen_row = next(a for a, _ in every_article(app) if a.title == evergreen["title"])
    assert evergreen_row.published_at == forty_days_ago


async def test_an_item_a_304_answering_feed_no_longer_lists_is_pruned_after_retention(
    feed_server: FeedServer, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 304 means "the list you read last time": the article the feed dropped before that
    read is not on it, and goes after retention_days, however often the feed answers 304."""
    evergreen = {"title": "About us: the evergreen page", "link": "https://w.test/about"}
    dropped = {"title": "Last month's news", "link": "https://w.test/old-news"}
    url = feed_server.add("/w.xml", rss([evergreen, dropped]), headers={"ETag": '"v1"'})
    app = open_app([("Wire", url)])
    await gather_long_ago(app)
    feed_server.add("/w.xml", rss([evergreen]), headers={"ETag": '"v2"'})
    await gather_long_ago(app)  # the feed dropped the news then
    for _ in range(2):
        [unchanged] = await gather_sources(app)  # a 304 each time; then the prune
        assert "HTTP 304" in " ".join(unchanged.notes)
    assert [a.title for a, _ in every_article(app)] == [evergreen["title"]]


async def test_a_page_article_still_linked_by_a_304_listing_is_kept(
    feed_server: FeedServer, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page source's listing answering 304 still links the articles it linked at its
    last full read, those read before it included."""
    path, _ = council_site(feed_server)
    listing = f"<html><body><main><a href='{path}'>Council votes on the new budget plan</a>"
    listing_url = feed_server.add(
        "/latest",
        listing + "</main></body></html>",
        headers={"Content-Type": "text/html", "ETag": '"v1"'},
    )
    app = open_app([], extra=source("Site", listing_url, "page"))
    await gather_long_ago(app)  # the article is read and stored
    feed_server.add(
        "/latest",
        listing + "<a href='/about'>About the council</a></main></body></html>",
        headers={"Content-Type": "text/html", "ETag": '"v2"'},
    )
    await gather_long_ago(app)  # a full read; the article is known by then
    [report] = await gather_sources(app)  # a 304; then the prune
    assert "HTTP 304" in " ".join(report.notes)
    assert any(a.url.endswith(path) for a, _ in every_article(app))


async def test_a_page_article_the_listing_still_links_is_not_pruned_and_restored_as_new(
    feed_server: FeedServer, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page source does not fetch an article it has again; the listing linking it is
    what keeps it from being pruned."""
    _, listing_url = council_site(feed_server)
    app = open_app([], extra=source("Site", listing_url, "page"))
    forty_days_ago = await gather_long_ago(app)
    await gather_sources(app)  # the listing still links the article; then the prune
    [report] = await gather_sources(app)
    assert report.new_items == 0, report
    [(stored_article, _)] = every_article(app)
    assert stored_article.published_at == forty_days_ago  # not re-dated as fresh news


def test_migration_0009_keeps_old_articles_and_prunes_them_by_first_seen(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    upgrade(engine, "0007")
    store = Store(engine)
    source_id = store.sync_sources([("Wire", "https://wire.test/feed")])["Wire"]
    old, recent = utcnow() - timedelta(days=40), utcnow()
    with engine.begin() as connection:
        for guid, when in (("old", old), ("recent", recent)):
            connection.execute(
                text(
                    "INSERT INTO articles (source_id, guid, url, title, summary, published_at, "
                    "first_seen_at, breaking) VALUES (:s, :g, :u, 'Old news', '', :t, :t, false)"
                ),
                {
                    "s": source_id,
                    "g": guid,
                    "u": f"https://w.test/{guid}",
                    "t": when.replace(tzinfo=None),
                },
            )
    upgrade(engine)
    assert "last_seen_at" in {c["name"] for c in inspect(engine).get_columns("articles")}
    assert store.prune_articles(utcnow() - timedelta(days=30)) == 1
    kept = articles_between(store, old - timedelta(days=1), utcnow(), ["Wire"])
    assert [a.guid for a, _ in kept] == ["recent"]
    engine.dispose()


# --- a redirect to a login page --------------------------------------------------------------


async def test_a_feed_redirected_to_a_login_page_names_where_it_went(
    feed_server: FeedServer, open_app: OpenApp
) -> None:
    login = "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>"
    feed_server.add("/login?next=/members.xml", login, headers={"Content-Type": "text/html"})
    url = feed_server.add(
        "/members.xml", "", status=302, headers={"Location": "/login?next=/members.xml"}
    )
    app = open_app([("Members", url)])
    [report] = await gather_sources(app)
    assert report.status == "error"
    assert feed_server.url("/login?next=/members.xml") in report.error, report.error
    assert "HTML page" in report.error and "redirects" in report.hint, report.hint
    assert "log in" in report.hint or "authentication" in report.hint, report.hint


# --- the database failing ---------------------------------------------------------------------


async def test_a_store_failure_on_any_path_is_that_sources_error_not_the_gathers(
    feed_server: FeedServer, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    same = feed_server.add(
        "/same.xml",
        rss([{"title": "Old", "link": "https://s.test/old"}]),
        headers={"Content-Type": "application/xml", "ETag": '"v1"'},
    )
    changing = feed_server.add("/new.xml", rss([{"title": "A", "link": "https://n.test/a"}]))
    broken = feed_server.add("/broken.xml", "oops", status=500)
    app = open_app([("Same", same), ("Changing", changing), ("Broken", broken)])
    await gather_sources(app)
    feed_server.add("/new.xml", rss([{"title": "B", "link": "https://n.test/b"}]))

    def locked(outcomes: Any) -> Any:
        raise OperationalError("UPDATE sources ...", {}, Exception("database is locked"))

    monkeypatch.setattr(app.store, "save_fetches", locked)
    reports = by_name(await gather_sources(app))
    assert set(reports) == {"Same", "Changing", "Broken"}
    for name in ("Same", "Changing"):
        assert reports[name].status == "error", reports[name]
        assert f"source {name!r}" in reports[name].error, reports[name].error
        assert "database is locked" in reports[name].error and reports[name].hint
    assert "HTTP 500" in reports["Broken"].error  # its own failure stays the error
    assert any("database is locked" in note for note in reports["Broken"].notes)


# --- the same on PostgreSQL (scripts/test starts one) -----------------------------------------


def test_identity_updates_and_pruning_on_postgresql(postgres_database: str) -> None:
    engine = open_engine(postgres_database)
    try:
        upgrade(engine, "0007")
        upgrade(engine)
        store = Store(engine)
        ids = store.sync_sources([("A", "https://a.test/feed"), ("B", "https://b.test/feed")])

        def item(guid: str, title: str) -> FeedItem:
            return FeedItem(guid, "https://x.test/story", title, "", None, None)

        first = store.save_fetches(
            [
                FetchOutcome(ids["A"], [item("g", "Bridge closed")]),
                FetchOutcome(ids["B"], [item("h", "Bridge closed")]),
            ]
        )
        assert [s.new for s in first] == [1, 1]
        [stored] = store.save_fetches([FetchOutcome(ids["A"], [item("g", "Bridge reopened")])])
        assert (stored.new, [u.title for u in stored.updated]) == (0, ["Bridge reopened"])
        assert store.prune_articles(utcnow() - timedelta(days=1)) == 0
        # A 304 refreshes what the last full read listed: A's article, not B's.
        with engine.begin() as connection:
            connection.execute(text("UPDATE articles SET last_seen_at = :t"), {"t": "2000-01-01"})
        store.save_fetches([FetchOutcome(ids["A"], unchanged=True)])
        store.save_fetches([FetchOutcome(ids["B"], [])])  # a full read listing nothing now
        store.save_fetches([FetchOutcome(ids["B"], unchanged=True)])
        assert store.prune_articles(utcnow() - timedelta(days=1)) == 1
        assert store.prune_articles(utcnow() + timedelta(seconds=1)) == 1
    finally:
        engine.dispose()
