"""Story membership is stored: an article arriving in a later run joins the earlier story,
a stored story is kept as it is, and an earlier edition's story is recognised by its id."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, inspect, text

from digest.app import App
from digest.config import load_config
from digest.editions import build_edition, digest_slot, rank_window, sent_before
from digest.editions.stored import ranked_to_json, without_extra
from digest.records import ArticleRecord, FeedItem, RankedEdition, Story
from digest.store import Edition, Store, open_engine, upgrade, utcnow
from tests.store_queries import add_articles, add_edition

STORM = "Storm Isolde makes landfall, leaving 40,000 homes without power"
RATES = "Central bank holds interest rates at 4.25%"
SOURCES = ["Wire", "Gazette", "Post"]


@pytest.fixture
def app(write_config: Callable[..., Path], database_url: str) -> Iterator[App]:
    sources = [(name, f"file:{name.lower()}.xml") for name in SOURCES]
    config = write_config(sources, database_url=database_url)
    app = App.open(load_config(config))
    yield app
    app.close()


def publish(app: App, source: str, title: str, minutes_ago: int = 30) -> int:
    """Store one article from ``source``; return its id."""
    source_id = app.store.sync_sources([(n, f"file:{n.lower()}.xml") for n in SOURCES])[source]
    slug = f"{source}-{title}".replace(" ", "-")
    published = utcnow() - timedelta(minutes=minutes_ago)
    item = FeedItem(slug, f"https://{source.lower()}.test/{slug}", title, "", None, published)
    assert add_articles(app.store, source_id, [item]) == 1
    return stored_ids(app)[slug_url(source, slug)][0]


def slug_url(source: str, slug: str) -> str:
    return f"https://{source.lower()}.test/{slug}"


def stored_ids(app: App) -> dict[str, tuple[int, int | None]]:
    """url -> (article id, story id) of every stored article."""
    now = utcnow()
    rows = app.store.window_articles(now - timedelta(days=9), now + timedelta(days=1), SOURCES)
    return {a.url: (a.id, a.story_id) for a in rows}


def story_of(app: App, article_id: int) -> int | None:
    return next(s for a, s in stored_ids(app).values() if a == article_id)


def stories(ranked: RankedEdition) -> list[Story]:
    return [*ranked.breaking, *ranked.latest]


def test_an_article_of_a_later_run_joins_the_stored_story(app: App) -> None:
    digest = app.config.digest(None)
    storm = publish(app, "Wire", STORM, 90)
    rates = publish(app, "Post", RATES, 60)
    first = rank_window(app, digest, utcnow())
    assert story_of(app, storm) == storm and story_of(app, rates) == rates
    assert sorted(len(s.sources) for s in stories(first)) == [1, 1]

    later = publish(
        app, "Gazette", "Storm Isolde makes landfall leaving 40,000 homes without power"
    )
    second = rank_window(app, digest, utcnow())
    assert story_of(app, later) == storm  # joined the first run's story, by its id
    assert story_of(app, storm) == storm and story_of(app, rates) == rates
    storm_story = next(s for s in stories(second) if s.story_id == storm)
    assert set(storm_story.sources) == {"Wire", "Gazette"}


def test_stored_membership_is_kept_not_recomputed(app: App) -> None:
    # An editor's (or an earlier, better clusterer's) decision stands: two headlines that
    # share no word stay one story because the store says so.
    a = publish(app, "Wire", STORM, 90)
    b = publish(app, "Post", "Thousands without electricity on the coast", 60)
    assert app.store.save_story_ids({a: a, b: a}) == 2
    ranked = rank_window(app, app.config.digest(None), utcnow())
    assert [sorted(s.sources) for s in stories(ranked)] == [["Post", "Wire"]]
    assert story_of(app, b) == a


def test_a_sent_story_is_left_out_until_a_new_source_joins(app: App) -> None:
    digest = app.config.digest(None)
    storm = publish(app, "Wire", STORM, 60)
    publish(app, "Gazette", "Storm Isolde landfall leaves 40,000 homes without power", 50)
    now = utcnow()
    edition, created = build_edition(app, digest, now)
    assert created and edition.story_count == 1

    tomorrow = now + timedelta(days=1)  # the next slot of the daily digest
    ranked = rank_window(app, digest, tomorrow)
    [again] = ranked.repeated  # left out of the edition: its readers had it
    assert again.story_id == storm and again.repeat
    assert stories(ranked) == [] and ranked.repeats == 1
    publish(app, "Post", "Storm Isolde: 40,000 homes without power after landfall", 10)
    ranked = rank_window(app, digest, tomorrow)
    [grown] = stories(ranked)  # it grew: sent again, as an update
    assert grown.story_id == storm and not grown.repeat and grown.update


def test_migration_0007_upgrades_a_database_with_articles(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    upgrade(engine, "0006")
    store = Store(engine)
    source = store.sync_sources([("Wire", "https://wire.test/feed")])["Wire"]
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO articles (source_id, guid, url, title, summary, published_at, "
                "first_seen_at, breaking) VALUES (:s, 'g1', 'https://wire.test/1', 'Old news', "
                "'', :t, :t, false)"
            ),
            {"s": source, "t": utcnow().replace(tzinfo=None)},
        )
    upgrade(engine)
    assert "ix_articles_story_id" in {i["name"] for i in inspect(engine).get_indexes("articles")}
    now = utcnow()
    [old] = store.window_articles(now - timedelta(days=1), now + timedelta(days=1), ["Wire"])
    assert old.title == "Old news" and old.story_id is None
    store.save_story_ids({old.id: old.id})
    [old] = store.window_articles(now - timedelta(days=1), now + timedelta(days=1), ["Wire"])
    assert old.story_id == old.id


def test_a_local_time_digest_counts_only_the_same_hour_on_earlier_days(app: App) -> None:
    digest = app.config.digest(None).model_copy(update={"local_time": True})
    now = utcnow()
    slot = digest_slot(app, digest, now)

    def edition(when: timedelta, story: int) -> None:
        lead = ArticleRecord(story, "Wire", STORM, "https://wire.test/x", "", now, story_id=story)
        ranked = RankedEdition((Story(lead, (), 1.0, ()),), ())
        app.store.save_edition(
            Edition(
                digest_id=digest.id,
                slot=slot - when,
                created_at=now,
                subject="s",
                html="h",
                text="t",
                story_count=1,
                stories=ranked_to_json(ranked),
            )
        )

    edition(timedelta(hours=1), 7)  # went to another time zone an hour ago
    edition(timedelta(days=1), 8)  # this bucket's edition yesterday
    assert sent_before(app, digest, now).by_story == {8: frozenset({"Wire"})}


def test_a_run_writes_only_the_story_ids_that_changed(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[dict[int, int]] = []
    save = app.store.save_story_ids

    def spy(ids: dict[int, int]) -> int:
        writes.append(dict(ids))
        return save(ids)

    monkeypatch.setattr(app.store, "save_story_ids", spy)
    digest = app.config.digest(None)
    storm = publish(app, "Wire", STORM, 90)
    rates = publish(app, "Post", RATES, 60)
    rank_window(app, digest, utcnow())
    assert writes == [{storm: storm, rates: rates}]
    rank_window(app, digest, utcnow())
    assert len(writes) == 1  # nothing new, nothing moved: no write
    later = publish(app, "Gazette", "Storm Isolde landfall leaves 40,000 homes without power")
    rank_window(app, digest, utcnow())
    assert writes[1:] == [{later: storm}]


def test_a_sent_story_taken_up_after_a_quiet_day_is_a_left_out_follow_up(app: App) -> None:
    """Sent yesterday; 26 hours later Wire runs it again: a story of its own (past the
    12-hour gap) that follows yesterday's, so it is left out until a new source joins."""
    digest = app.config.digest(None)
    now = utcnow()
    storm = publish(app, "Wire", STORM, 26 * 60)
    publish(app, "Gazette", "Storm Isolde landfall leaves 40,000 homes without power", 25 * 60)
    edition, created = build_edition(app, digest, now - timedelta(hours=24))
    assert created and edition.story_count == 1
    again = publish(app, "Wire", "Storm Isolde makes landfall: 40,000 homes without power", 10)

    def item() -> Story:
        ranked = rank_window(app, digest, now)
        (found,) = [s for s in (*stories(ranked), *ranked.repeated) if again in _ids(s)]
        return found

    assert item().repeat
    assert story_of(app, again) not in (None, storm)  # its own story, after the gap
    publish(app, "Post", "Storm Isolde: 40,000 homes still without power", 5)
    assert not item().repeat


def _ids(story: Story) -> set[int]:
    return {a.id for a in (story.lead, *story.others)}


def test_an_edition_that_becomes_owed_while_its_views_are_pruned_keeps_them_and_its_extra(
    app: App,
) -> None:
    """A prune finds an old edition's views prunable; before it deletes them, that edition
    gets rows to send again (as `digest retry` puts failed ones back): its views stay (a
    send renders them), and so does its ``extra``, where they find the stories they show
    beyond the edition."""
    now = utcnow().replace(microsecond=0)
    stories = '{"breaking":[],"latest":[],"extra":[{"kept":"for the view"}]}'
    view = '{"breaking":[],"latest":[[7,7,0]]}'

    def edition(days_ago: int) -> int:
        slot = now - timedelta(days=days_ago)
        return add_edition(app.store, slot, {"technology": view}, story_count=1, stories=stories)

    old, newest = edition(10), edition(0)
    app.store.add_subscriber("tech@example.org", topics=["technology"])
    requeued: list[int] = []

    def retry_meanwhile(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "DISTINCT edition_views.edition_id" in statement and not requeued:
            requeued.append(app.store.queue_deliveries(old))  # on a connection of its own

    event.listen(app.store.engine, "after_cursor_execute", retry_meanwhile)
    try:
        app.store.prune_edition_views("daily", now - timedelta(days=2), 1, (), without_extra)
    finally:
        event.remove(app.store.engine, "after_cursor_execute", retry_meanwhile)
    kept = app.store.edition_by_id(old)
    assert requeued == [1]
    assert app.store.edition_views(old) == {"technology": view}
    assert kept is not None and kept.stories == stories
    assert app.store.edition_views(newest) == {"technology": view}
