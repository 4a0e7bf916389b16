"""A reader who picked topics gets a full Latest: ``latest_per_source`` caps what each
source leads of their Latest, not of the edition's before their topics narrow it. Their
Latest is filled by the same rule from their topics' stories, those the edition's cap
passed over included (kept with the edition: ``RankedEdition.extra``); what the readers
of a choice of topics were shown is kept per edition (``edition_views``), and a later
edition leaves it out for them unless it grew (then an update). Readers without topics,
and readers whose topics take every story, get the edition as before.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from digest.app import App
from digest.config import DigestConfig, RankConfig, load_config
from digest.editions import next_edition_preview
from digest.editions.stored import ranked_from_json, ranked_to_json, shown_from_json, shown_to_json
from digest.pipeline import run_digest
from digest.rank import (
    Shown,
    for_topics,
    passed_over,
    rank,
    sent_from,
    sent_sources,
    topic_extra,
)
from digest.records import ArticleRecord, RankedEdition, Story
from digest.store import Edition
from digest.store.tables import EDITION_VIEWS
from tests.conftest import FeedServer, SmtpServer, rss
from tests.pg import fresh_database
from tests.renders import count_renders
from tests.test_daemon import clock_at

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
DIGEST = DigestConfig(id="d", title="D", latest_items=8, latest_per_source=3)
SPORT = ["sport"]


def _word(i: int) -> str:
    """A made-up word of its own for each ``i``: headlines that share none."""
    letters = "bcdfghjklmnpqrstvwz"
    return "".join(letters[int(d)] for d in f"{i:03d}") + "ax"


def _title(i: int) -> str:
    return f"{_word(i)} {_word(i + 300)} {_word(i + 600)}"


def _article(i: int, source: str, minutes_ago: int, *topics: str) -> ArticleRecord:
    return ArticleRecord(
        i, source, _title(i), f"https://{source.lower()}.test/{i}", "",
        NOW - timedelta(minutes=minutes_ago), 1.0, topics,
    )  # fmt: skip


def _window(other_topics: tuple[str, ...] = ()) -> list[ArticleRecord]:
    """Twelve sport stories of Arena (ids 1 to 12), the newest (so the best: stories of one
    source tie but for recency), then three each of Post and Herald, older, in
    ``other_topics``."""
    arena = [_article(i, "Arena", i, "sport") for i in range(1, 13)]
    others = [
        _article(100 + i, ("Post", "Herald")[i % 2], 30 + 10 * i, *other_topics) for i in range(6)
    ]
    return arena + others


def _ids(stories: tuple[Story, ...] | list[Story]) -> list[int]:
    return [s.lead.id for s in stories]


def test_a_topic_one_source_serves_gets_a_full_latest_from_the_stories_passed_over() -> None:
    ranked = rank(_window(), NOW, DIGEST, RankConfig())
    # The edition, as a reader without topics gets it: Arena's three best, then the others.
    assert _ids(ranked.latest) == [1, 2, 3, 100, 101, 102, 103, 104]
    assert _ids(ranked.capped) == list(range(4, 13))
    # A reader of sport: Arena's eight best, not three (the cap raised, as the section
    # would otherwise be short: Arena is all there is of sport).
    sport = for_topics(ranked, ranked.capped, SPORT, 8, 3)
    assert _ids(sport.latest) == list(range(1, 9))
    assert sport.breaking == () and not any(s.update for s in sport.latest)


def test_the_topic_s_latest_follows_the_edition_s_rule_cap_first_then_raised_evenly() -> None:
    """Sport of two sources: Stadium's two within the cap come before Arena's fourth."""
    stadium = [_article(200, "Stadium", 40, "sport"), _article(201, "Stadium", 50, "sport")]
    ranked = rank(_window() + stadium, NOW, DIGEST, RankConfig())
    assert _ids(for_topics(ranked, ranked.capped, SPORT, 8, 3).latest) == [
        1, 2, 3, 200, 201, 4, 5, 6,
    ]  # fmt: skip
    one = DigestConfig(id="d", title="D", latest_items=8, latest_per_source=1)
    ranked = rank(_window() + stadium, NOW, one, RankConfig())
    # raised one story at a time for every source, best first
    assert _ids(for_topics(ranked, ranked.capped, SPORT, 8, 1).latest)[:4] == [1, 200, 2, 201]


def test_topics_that_take_every_story_get_the_edition_s_latest() -> None:
    ranked = rank(_window(("news",)), NOW, DIGEST, RankConfig())
    every = for_topics(ranked, ranked.capped, ["sport", "news"], 8, 3)
    assert _ids(every.latest) == _ids(ranked.latest)
    assert (every.breaking, every.repeats) == (ranked.breaking, ranked.repeats)


def test_stories_the_topic_had_are_left_out_and_a_grown_one_goes_as_an_update() -> None:
    first = rank(_window(), NOW, DIGEST, RankConfig())
    shown = for_topics(first, first.capped, SPORT, 8, 3)
    had = sent_from(Shown.of(s) for s in shown.latest)  # they had Arena's 1 to 8
    # Post carries Arena's fifth story now: a new source, so it grew.
    grown = [*_window(), replace(_article(60, "Post", -30, "sport"), title=_title(5))]
    later = rank(grown, NOW + timedelta(hours=1), DIGEST, RankConfig(breaking_min_score=100))
    [five] = [s for s in (*later.latest, *later.capped) if s.lead.title == _title(5)]
    assert set(five.sources) == {"Arena", "Post"} and not five.update
    again = for_topics(later, later.capped, SPORT, 8, 3, had)
    assert [(s.lead.title, s.update) for s in again.latest] == [
        (_title(5), True),  # theirs again, grown: an update
        *((_title(i), False) for i in range(9, 13)),  # never theirs before
    ]
    # For readers without topics it is no update: they never had it.
    assert not any(s.update for s in later.latest)
    # Nothing grown, nothing new: nothing for them.
    same = rank(_window(), NOW + timedelta(hours=1), DIGEST, RankConfig())
    everything = sent_from(Shown.of(s) for s in (*first.latest, *first.capped))
    assert for_topics(same, same.capped, SPORT, 8, 3, everything).count == 0


def test_a_topic_s_best_the_edition_never_reached_fill_its_latest_too() -> None:
    """Stadium's tennis ranks below the edition's eighth story: three of its stories are
    in the edition, the rest never reached (not passed over for the cap). A tennis
    reader's Latest takes them as it takes those the cap passed over."""
    stadium = [_article(200 + i, "Stadium", 40 + i, "tennis") for i in range(12)]
    ranked = rank(_window(("news",)) + stadium, NOW, DIGEST, RankConfig())
    assert _ids(ranked.latest) == [1, 2, 3, 100, 101, 200, 201, 202]
    assert 203 not in _ids(ranked.capped) and 203 in _ids(ranked.unreached)
    tennis = for_topics(ranked, passed_over(ranked), ["tennis"], 8, 3)
    assert _ids(tennis.latest) == list(range(200, 208))


def test_the_edition_keeps_what_its_topic_readers_latest_takes_beyond_its_own() -> None:
    """At most latest_items a choice of topics, less the edition's Latest; a union of the
    active subscribers' choices, best first; what a render of the stored edition gives a
    reader of topics is what the ranking gives them."""
    stadium = [_article(200 + i, "Stadium", 40 + i, "tennis") for i in range(12)]
    ranked = rank(_window(("news",)) + stadium, NOW, DIGEST, RankConfig())
    assert topic_extra(ranked, [], 8, 3) == ()
    assert _ids(topic_extra(ranked, ["sport"], 8, 3)) == [4, 5, 6, 7, 8]  # 8 less Latest's 3
    assert _ids(topic_extra(ranked, ["tennis"], 8, 3)) == [203, 204, 205, 206, 207]
    # Readers of news and sport: Arena's three and the others' five, within the cap.
    assert _ids(topic_extra(ranked, ["news,sport"], 8, 3)) == [102, 103, 104]
    choices = ["sport", "tennis", "sport,news", "tennis,sport"]
    both = topic_extra(ranked, choices, 8, 3)
    assert _ids(both) == [4, 5, 6, 7, 8, 203, 204, 205, 206, 207, 102, 103, 104]
    stored = ranked_from_json(ranked_to_json(replace(ranked, extra=both)))
    assert _ids(stored.extra) == _ids(both)
    for topics in (["sport"], ["tennis"], ["news", "sport"], ["sport", "tennis"]):
        assert _ids(for_topics(stored, stored.extra, topics, 8, 3).latest) == _ids(
            for_topics(ranked, passed_over(ranked), topics, 8, 3).latest
        ), topics


def test_an_edition_stored_before_reads_back_without_extra_stories() -> None:
    ranked = rank(_window(), NOW, DIGEST, RankConfig())
    doc = json.loads(ranked_to_json(RankedEdition(ranked.breaking, ranked.latest)))
    assert "extra" not in doc  # the old shape: no key
    old = ranked_from_json(json.dumps(doc))
    assert old.extra == () and _ids(old.latest) == _ids(ranked.latest)
    # Narrowing it gives what narrowing gave before: the edition's stories of the topic.
    assert _ids(for_topics(old, old.extra, SPORT, 8, 3).latest) == [1, 2, 3]
    # The repeat rule reads Breaking and Latest alone: extra stories stay candidates.
    kept = RankedEdition(ranked.breaking, ranked.latest, extra=ranked.capped)
    assert sent_sources([ranked_from_json(ranked_to_json(kept))]) == sent_sources([old])


def test_what_a_choice_of_topics_was_shown_reads_back_as_the_repeat_rule_reads_it() -> None:
    ranked = rank(_window(), NOW, DIGEST, RankConfig())
    stories = (*ranked.latest, *ranked.capped)
    assert sent_from(shown_from_json(shown_to_json(stories))) == sent_sources(
        [RankedEdition((), stories)]
    )


# The store: one record per edition and choice of topics, the first one standing.


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """SQLite beside the config, or a fresh database on the test PostgreSQL server."""
    if request.param == "sqlite":
        yield "sqlite:///digest.db"
        return
    with fresh_database() as url:
        yield url


@pytest.fixture
def app(write_config: Callable[..., Path], database_url: str) -> Iterator[App]:
    config = write_config([("Arena", "file:arena.xml")])
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("sqlite:///digest.db", database_url), encoding="utf-8")
    app = App.open(load_config(config))
    yield app
    app.close()


def _edition(app: App, slot: datetime) -> int:
    saved = app.store.save_edition(
        Edition(digest_id="daily", slot=slot, created_at=slot, subject="S", html="", text="",
                story_count=1, stories='{"breaking":[],"latest":[]}')
    )  # fmt: skip
    assert saved.id is not None
    return saved.id


def _view_rows(app: App) -> int:
    with app.store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(EDITION_VIEWS)).scalar_one())


def test_a_view_is_kept_once_whoever_writes_it_again(app: App) -> None:
    edition = _edition(app, NOW)
    first, second = shown_to_json(rank(_window(), NOW, DIGEST, RankConfig()).latest[:2]), "[]"
    assert app.store.save_edition_view(edition, "sport", first) is True
    assert app.store.save_edition_view(edition, "sport", second) is False
    assert _view_rows(app) == 1
    assert app.store.save_edition_view(edition, "news,sport", second) is True
    later = NOW + timedelta(days=1)
    assert app.store.edition_views("sport", "daily", later, 3) == [first]
    assert app.store.edition_views("sport", "daily", NOW, 3) == []  # not before itself
    assert app.store.edition_views("sport", "daily", later, 0) == []


def test_two_workers_writing_the_same_view_at_once_leave_one_row(app: App) -> None:
    """Workers on PostgreSQL may render the same segment at once: one row, no error."""
    edition = _edition(app, NOW)
    barrier = threading.Barrier(4)
    results: list[bool] = []

    def write(n: int) -> None:
        barrier.wait()
        results.append(app.store.save_edition_view(edition, "sport", f'["{n}"]'))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert _view_rows(app) == 1


def test_a_pruned_edition_takes_its_views_with_it(app: App) -> None:
    old, new = _edition(app, NOW - timedelta(days=400)), _edition(app, NOW)
    app.store.save_edition_view(old, "sport", "[]")
    app.store.save_edition_view(new, "sport", "[]")
    pruned = app.store.prune_history(NOW - timedelta(days=365), NOW - timedelta(days=90))
    assert pruned.editions == 1 and _view_rows(app) == 1


# Through the send: a local feed server, the real pipeline, a real SMTP server.

MONDAY = datetime(2026, 11, 30, tzinfo=UTC)


def _items(site: str, first: int, count: int, start: datetime) -> list[dict[str, str]]:
    """``count`` items of ``site`` two minutes apart from ``start``, the newest last, each
    a headline of its own (``_title(first + n)``)."""
    return [
        {
            "title": _title(first + n),
            "guid": f"{site}-{first + n}",
            "link": f"https://{site}.test/{first + n}",
            "date": f"{start + timedelta(minutes=2 * n):%a, %d %b %Y %H:%M:%S} GMT",
        }
        for n in range(count)
    ]


def _titles(text: str, ids: range | list[int]) -> list[int]:
    return [i for i in ids if _title(i) in text]


def test_a_technology_reader_gets_a_full_latest_and_nothing_they_had(
    write_config,
    feed_server: FeedServer,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Tech's twelve (ids 1 to 12) and World's twelve (101 to 112), interleaved in time,
    # the higher id the newer.
    start = MONDAY + timedelta(hours=1)
    tech = feed_server.add("/tech.xml", rss(_items("tech", 1, 12, start)))
    world = feed_server.add(
        "/world.xml", rss(_items("world", 101, 12, start + timedelta(minutes=1)))
    )
    config = write_config([("Tech", tech), ("World", world)], transport="smtp",
                          smtp_port=smtp_server.port)  # fmt: skip
    text = config.read_text()
    text = text.replace("latest_items = 20", "latest_items = 10\nlatest_per_source = 3")
    text = text.replace(f'url = "{tech}"', f'url = "{tech}"\ntopics = ["technology"]')
    text = text.replace(f'url = "{world}"', f'url = "{world}"\ntopics = ["world"]')
    config.write_text(text)
    app = App.open(load_config(config))
    try:
        app.store.add_subscriber("all@example.org")
        app.store.add_subscriber("tech@example.org", topics=["technology"])
        app.store.add_subscriber("both@example.org", topics=["world", "technology"])
        renders = count_renders(monkeypatch)
        clock_at(app, MONDAY.replace(hour=7, second=30))
        asyncio.run(run_digest(app, "daily"))
        first = {m.recipients[0]: m.message() for m in smtp_server.messages}
        # The edition's render, and the technology reader's: a reader of both topics
        # (every story of the edition) gets the edition's own, as before.
        assert renders == ["UTC/en", "UTC/en"]
        assert app.store.topic_choices() == ["technology", "world,technology"]
        # `digest preview` of the next edition for the technology reader: what they would
        # get now, Tech's two they never had (nothing new yet).
        ranked, _ = next_edition_preview(
            app, app.config.digests[0], app.clock.now(), topics=frozenset({"technology"})
        )
        assert sorted(_titles(s.lead.title, range(1, 113))[0] for s in ranked.latest) == [1, 2]
        # Tuesday: Tech has two new stories (13, 14).
        tuesday = _items("tech", 13, 2, start + timedelta(days=1, hours=4))
        feed_server.add("/tech.xml", rss(_items("tech", 1, 12, start) + tuesday))
        clock_at(app, MONDAY.replace(hour=7, second=30) + timedelta(days=1))
        asyncio.run(run_digest(app, "daily"))
        second = {m.recipients[0]: m.message() for m in smtp_server.messages[3:]}
        views = app.store.edition_views("technology", "daily", MONDAY + timedelta(days=2), 3)
    finally:
        app.close()

    def body(message) -> str:
        return message.get_body(("plain",)).get_content()

    everyone, reader = body(first["all@example.org"]), body(first["tech@example.org"])
    # The edition, as before: five of each (three each, then the cap raised twice).
    assert _titles(everyone, range(1, 13)) == [8, 9, 10, 11, 12]
    assert _titles(everyone, range(101, 113)) == [108, 109, 110, 111, 112]
    # The technology reader: a full Latest of Tech, not Tech's five of the edition.
    assert _titles(reader, range(1, 13)) == list(range(3, 13))
    assert _titles(reader, range(101, 113)) == []
    both = body(first["both@example.org"])
    assert _titles(both, range(1, 113)) == _titles(everyone, range(1, 113))

    everyone2, reader2 = body(second["all@example.org"]), body(second["tech@example.org"])
    had_everyone = set(_titles(everyone, range(1, 113)))
    had_reader = set(_titles(reader, range(1, 113)))
    # Readers without topics: nothing they had; Tech's stories the technology reader had
    # from those passed over are new to them.
    assert not had_everyone & set(_titles(everyone2, range(1, 115)))
    assert _titles(everyone2, range(1, 15)) == [5, 6, 7, 13, 14]
    # The technology reader: the two new ones, and Tech's two they never had; none again.
    assert _titles(reader2, range(1, 115)) == [1, 2, 13, 14]
    assert not had_reader & set(_titles(reader2, range(1, 115)))
    both2 = body(second["both@example.org"])
    assert _titles(both2, range(1, 115)) == _titles(everyone2, range(1, 115))
    # What the technology reader was shown, kept per edition, newest first.
    headlines = [" ".join(h for s in shown_from_json(v) for h in s.headlines) for v in views]
    assert [_titles(h, range(1, 115)) for h in headlines] == [
        [1, 2, 13, 14],
        list(range(3, 13)),
    ]
