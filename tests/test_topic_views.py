"""A reader who picked topics gets their choice's own edition, worked out at the build and
stored with the edition (``editions.views``): ``latest_per_source`` caps what each source
leads of their Latest, not of the edition's before their topics narrow it, and what the
choice was shown beyond the edition before is left out for it (unless it grew: an update),
matched as the edition's repeat rule matches. The send gives its readers exactly the
stored view, in any order, in any batch; a choice the build did not know gets the edition
narrowed; readers without topics get the edition as before.
"""

from __future__ import annotations

import asyncio
import html
import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from digest.app import App
from digest.clock import ManualClock
from digest.config import DigestConfig, RankConfig, load_config
from digest.editions import (
    SegmentTemplates,
    build_edition,
    digest_slot,
    next_edition_preview,
    web_view_url,
)
from digest.editions.stored import ranked_from_json, ranked_to_json, view_from_json, view_memory
from digest.editions.views import choice_memory, earlier_editions, earlier_memory
from digest.pipeline import gather_sources, run_digest
from digest.rank import (
    SentStories,
    Shown,
    choice_editions,
    fill_latest,
    rank,
    sent_from,
    shown_as,
)
from digest.records import ArticleRecord, RankedEdition, Story
from digest.render import MessageTemplate, fit
from digest.store import Edition, Subscriber, saved_id
from digest.store.tables import EDITION_VIEWS, EDITIONS
from digest.web import create_app
from tests.conftest import FeedServer, SmtpServer, config_text, rss, run_cli
from tests.test_daemon import clock_at

TOPICS = {"Tech": ["technology"], "World": ["world"]}  # _setup's sources' topics
MONDAY = datetime(2026, 11, 30, tzinfo=UTC)
NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
DIGEST = DigestConfig(id="d", title="D", latest_items=8, latest_per_source=3)


def _word(i: int) -> str:
    """A made-up word of its own for each ``i``: headlines that share none."""
    letters = "bcdfghjklmnpqrstvwz"
    return "".join(letters[int(d)] for d in f"{i:03d}") + "ax"


def _title(i: int) -> str:
    return f"{_word(i)} {_word(i + 300)} {_word(i + 600)}"


def _titles(text: str, ids: range | list[int]) -> list[int]:
    return [i for i in ids if _title(i) in text]


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


def _body(message: EmailMessage, kind: str = "plain") -> str:
    part = message.get_body((kind,))
    assert part is not None
    return str(part.get_content())


def _setup(
    write_config: Callable[..., Path],
    feed_server: FeedServer,
    smtp_server: SmtpServer,
    tech_count: int,
    readers: dict[str, list[str]] | None = None,
) -> tuple[App, datetime]:
    """Tech (``tech_count`` stories, ids 1 up) and World (twelve, 101 to 112), interleaved,
    the higher id the newer; latest_items 10, latest_per_source 3; a reader without
    topics and a technology reader (or ``readers``)."""
    start = MONDAY + timedelta(hours=1)
    tech = feed_server.add("/tech.xml", rss(_items("tech", 1, tech_count, start)))
    world = feed_server.add(
        "/world.xml", rss(_items("world", 101, 12, start + timedelta(minutes=1)))
    )
    config = write_config(
        [("Tech", tech), ("World", world)],
        transport="smtp",
        smtp_port=smtp_server.port,
        topics=TOPICS,
    )
    readers = readers or {"all@example.org": [], "tech@example.org": ["technology"]}
    return _open(config, readers), start


def _open(config: Path, readers: dict[str, list[str]]) -> App:
    """The App over ``config`` (Tech's and World's, with TOPICS) set to latest_items 10 and
    latest_per_source 3, with ``readers`` (address: topics) subscribed."""
    text = config.read_text()
    config.write_text(text.replace("latest_items = 20", "latest_items = 10\nlatest_per_source = 3"))
    app = App.open(load_config(config))
    for email, topics in readers.items():
        app.store.add_subscriber(email, topics=topics)
    return app


def _blank(text: str) -> str:
    """A message's text with its reader's own links (their token) blanked."""
    return re.sub(r"https://digest\.test/[^\s\"<>]+", "LINK", text)


def _at(day: int) -> datetime:
    return MONDAY.replace(hour=7, second=30) + timedelta(days=day)


def _gather_on(app: App, day: int) -> None:
    """The app's clock at ``_at(day)``, and its sources gathered then."""
    clock_at(app, _at(day))
    asyncio.run(gather_sources(app))


def _gather_news_on(app: App, feed_server: FeedServer, start: datetime, day: int) -> None:
    """Tech's feed on ``day``: its 30 stories from ``start`` and three new ones (ids
    40 + 3 * day up), three hours into the day; gathered at ``_at(day)``."""
    news = _items("tech", 40 + 3 * day, 3, start + timedelta(days=day, hours=3))
    feed_server.add("/tech.xml", rss(_items("tech", 1, 30, start) + news))
    _gather_on(app, day)


def _shown_ids(ranked: RankedEdition) -> list[int]:
    return [s.story_id for s in (*ranked.breaking, *ranked.latest)]


# The reviewer's three: a full Latest from the second edition on; editions rendered out of
# order; one edition in two batches.


def test_second_edition_topic_reader_latest_is_full(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """Tech has 30 stories; the tech reader gets 10 on Monday; on Tuesday plenty of Tech
    stories they never had remain (1..20): their Latest is full (10), none had again,
    and `digest preview` for them shows what the send gives them."""
    app, start = _setup(write_config, feed_server, smtp_server, 30)
    try:
        clock_at(app, _at(0))
        asyncio.run(run_digest(app, "daily"))
        first = {m.recipients[0]: _body(m.message()) for m in smtp_server.messages}
        tuesday = _items("tech", 31, 2, start + timedelta(days=1, hours=4))
        feed_server.add("/tech.xml", rss(_items("tech", 1, 30, start) + tuesday))
        _gather_on(app, 1)
        preview, _ = next_edition_preview(
            app, app.config.digests[0], app.clock.now(), topics=frozenset({"technology"})
        )
        asyncio.run(run_digest(app, "daily", gather_first=False))
        second = {m.recipients[0]: _body(m.message()) for m in smtp_server.messages[2:]}
    finally:
        app.close()
    had = set(_titles(first["tech@example.org"], range(1, 33)))
    assert sorted(had) == list(range(21, 31))
    got = _titles(second["tech@example.org"], range(1, 33))
    prev = sorted(_titles(s.lead.title, range(1, 33))[0] for s in preview.latest)
    assert not had & set(got)
    assert prev == got, "preview differs from the send"
    assert got == [13, 14, 15, 16, 17, 18, 19, 20, 31, 32]
    # Readers without topics: what the edition gives, nothing they had.
    everyone = set(_titles(first["all@example.org"], range(1, 113)))
    assert not everyone & set(_titles(second["all@example.org"], range(1, 113)))


def _two_editions(app: App) -> tuple[Edition, Edition]:
    digest = app.config.digests[0]
    _gather_on(app, 0)
    ed1, _ = build_edition(app, digest, app.clock.now())
    clock_at(app, _at(1))
    ed2, _ = build_edition(app, digest, app.clock.now())
    return ed1, ed2


def _tech_reader(app: App) -> Subscriber:
    return next(s for s in app.store.subscribers() if s.email == "tech@example.org")


def test_later_edition_rendered_first_repeats_nothing(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """Ed1's tech rows not yet rendered (held by a limit, workers busy, a stopped run)
    when ed2's are: ed2's view was worked out at its build, against ed1's stored at
    ed1's build, so nothing reaches them in both."""
    app, _ = _setup(write_config, feed_server, smtp_server, 30)
    try:
        digest = app.config.digests[0]
        ed1, ed2 = _two_editions(app)
        reader = _tech_reader(app)
        t2 = SegmentTemplates(app, digest, ed2)
        t2(reader)
        t1 = SegmentTemplates(app, digest, ed1)
        t1(reader)
        got2, got1 = _shown_ids(t2._topics["technology"]), _shown_ids(t1._topics["technology"])
    finally:
        app.close()
    assert len(got1) == 10 and len(got2) == 10
    assert not set(got1) & set(got2)


def test_one_edition_two_batches_same_content(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """ed2's first batch renders the tech key, ed1's is rendered, ed2's resumed batch (a
    new SegmentTemplates) gives the same Latest, which is what the build stored."""
    app, _ = _setup(write_config, feed_server, smtp_server, 30)
    try:
        digest = app.config.digests[0]
        ed1, ed2 = _two_editions(app)
        reader = _tech_reader(app)
        a = SegmentTemplates(app, digest, ed2)
        first_message = a(reader)
        SegmentTemplates(app, digest, ed1)(reader)
        b = SegmentTemplates(app, digest, ed2)
        later_message = b(reader)
        first = [s.story_id for s in a._topics["technology"].latest]
        later = [s.story_id for s in b._topics["technology"].latest]
        assert ed2.id is not None
        view = app.store.edition_views(ed2.id)["technology"]
        whole = ranked_from_json(ed2.stories)
        own = {s.story_id for s in (*whole.latest,)}
    finally:
        app.close()
    assert first == later == [story_id for story_id, _, _ in json.loads(view)["latest"]]
    # Remembered for later builds: only what it showed beyond the edition's own.
    assert sorted(h.story_id for h in view_memory(view, whole)) == sorted(set(first) - own)
    assert len(set(first) - own) >= 5
    assert first_message is not None and later_message is not None
    assert first_message.html == later_message.html


def _as_stored_before(view: str, whole: RankedEdition) -> str:
    """A view as the version before stored it: with its own copy of what it showed beyond
    the edition's own ("had": each story's id, article ids, sources and headlines)."""
    doc = json.loads(view)
    own = {shown_as(s) for s in (*whole.breaking, *whole.latest)}
    mine = view_from_json(view, whole)
    had = [Shown.of(s) for s in (*mine.breaking, *mine.latest) if shown_as(s) not in own]
    doc["had"] = [
        {
            "id": h.story_id,
            "articles": list(h.articles),
            "sources": sorted(h.sources),
            "headlines": sorted(h.headlines),
        }
        for h in had
    ]
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def test_a_view_stores_ids_and_its_memory_is_the_edition_s_extra_as_before(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """A choice's stored view is its stories' ids alone: what it showed beyond the
    edition's own is in the edition's ``extra``, stored once, where Tuesday's build reads
    it. Views stored before, each with its own copy ("had"), give the same memory, even
    with the edition's ``extra`` gone: an upgraded install reads them as they are."""
    app, _ = _setup(write_config, feed_server, smtp_server, 30)
    try:
        digest = app.config.digests[0]
        app.store.add_subscriber("both@example.org", topics=["technology", "world"])
        _gather_on(app, 0)
        monday, _ = build_edition(app, digest, app.clock.now())
        assert monday.id is not None
        rows = app.store.edition_views(monday.id)
        whole = ranked_from_json(monday.stories)
        now = _at(1)
        earlier = earlier_editions(app, digest, digest_slot(app, digest, now), now)
        keys = sorted(rows)
        new = earlier_memory(app, digest, earlier, keys)
        fallback = choice_memory(app, digest, earlier, keys)
        with app.store.engine.begin() as connection:
            for key, view in rows.items():
                connection.execute(
                    EDITION_VIEWS.update()
                    .where(
                        EDITION_VIEWS.c.edition_id == monday.id, EDITION_VIEWS.c.topic_key == key
                    )
                    .values(view=_as_stored_before(view, whole))
                )
        old = earlier_memory(app, digest, earlier, keys)
        doc = json.loads(monday.stories)
        del doc["extra"]
        with app.store.engine.begin() as connection:
            connection.execute(
                EDITIONS.update().where(EDITIONS.c.id == monday.id).values(stories=json.dumps(doc))
            )
        alone = earlier_memory(app, digest, earlier, keys)
    finally:
        app.close()
    assert keys == ["technology", "technology,world"]
    assert all(set(json.loads(view)) == {"breaking", "latest"} for view in rows.values())
    own = {shown_as(s) for s in (*whole.breaking, *whole.latest)}
    tech = view_from_json(rows["technology"], whole)
    beyond = [s for s in (*tech.breaking, *tech.latest) if shown_as(s) not in own]
    assert len(beyond) >= 5 and {shown_as(s) for s in beyond} <= {shown_as(s) for s in whole.extra}
    assert new.choices["technology"] == sent_from([Shown.of(s) for s in beyond])
    assert new.choices == fallback == old.choices == alone.choices
    assert (
        new.sent
        == old.sent
        == alone.sent
        == sent_from(Shown.of(s) for s in (*whole.breaking, *whole.latest))
    )


def test_a_view_stored_before_is_read_from_its_own_copy() -> None:
    """A view as the version before stored it carries what it showed beyond its edition."""
    row = (
        '{"breaking":[],"latest":[[5,5,0],[7,7,1]],"had":[{"id":7,"articles":[7,9],'
        '"sources":["Arena","Post"],"headlines":["Arena wins","Post: Arena wins"]}]}'
    )
    shown = Shown(
        7, (7, 9), frozenset({"Arena", "Post"}), frozenset({"Arena wins", "Post: Arena wins"})
    )
    assert view_memory(row, None) == [shown]
    assert view_memory('{"breaking":[],"latest":[]}', None) == []
    with pytest.raises(KeyError, match=r"story 7 \(lead 7\)"):
        view_memory('{"breaking":[],"latest":[[7,7,0]]}', RankedEdition((), ()))


# What a choice was shown beyond the edition: matched as the edition's rule matches.


def _article(i: int, source: str, minutes_ago: int, *topics: str, title: str = "") -> ArticleRecord:
    return ArticleRecord(
        i, source, title or _title(i), f"https://{source.lower()}.test/{i}", "",
        NOW - timedelta(minutes=minutes_ago), 1.0, topics,
    )  # fmt: skip


def _window() -> list[ArticleRecord]:
    """Twelve sport stories of Arena (ids 1 to 12), the newest first, then three each of
    Post and Herald, older, of no topic."""
    arena = [_article(i, "Arena", i, "sport") for i in range(1, 13)]
    others = [_article(100 + i, ("Post", "Herald")[i % 2], 30 + 10 * i) for i in range(6)]
    return arena + others


def _ids(stories: tuple[Story, ...]) -> list[int]:
    return [s.lead.id for s in stories]


def test_a_choice_s_edition_is_filled_by_the_edition_s_rule_from_every_candidate() -> None:
    ranked = rank(_window(), NOW, DIGEST, RankConfig(), choices={"sport": SentStories()})
    assert _ids(ranked.latest) == [1, 2, 3, 100, 101, 102, 103, 104]
    sport = ranked.views["sport"]
    assert _ids(sport.latest) == list(range(1, 9))  # the cap raised: Arena is all there is
    assert _ids(ranked.extra) == list(range(4, 9))  # what the send must render beyond
    assert not any(s.update for s in sport.latest)
    # Without choices, the edition as before.
    plain = rank(_window(), NOW, DIGEST, RankConfig())
    assert (plain.breaking, plain.latest, plain.extra, dict(plain.views)) == (
        ranked.breaking, ranked.latest, (), {},
    )  # fmt: skip


def test_a_follow_up_of_an_extra_story_under_a_new_id_is_not_new_to_that_choice() -> None:
    """Arena's 5th story went to sport readers as extra; after a quiet spell a follow-up
    (another story id, ``follows``) carries it: for sport readers it is no news, unless it
    grew (then an update); for everyone else it is new."""
    first = rank(_window(), NOW, DIGEST, RankConfig(), choices={"sport": SentStories()})
    five = next(s for s in first.views["sport"].latest if s.lead.id == 5)
    had = sent_from([Shown.of(five)])
    later = NOW + timedelta(hours=30)
    follow = _article(500, "Arena", -30 * 60 + 5, "sport", title=_title(5))
    window = [*(replace_time(a, hours=30) for a in _window() if a.id != 5), follow]
    # story ids as the pipeline stores them: each its own, the follow-up taking up 5
    stored = [_with_story(a) for a in window]
    follows = {500: 5}
    ranked = rank(stored, later, DIGEST, RankConfig(), follows=follows, choices={"sport": had})
    ids = {s.story_id for s in (*ranked.views["sport"].breaking, *ranked.views["sport"].latest)}
    assert 500 not in ids and 5 not in ids
    assert 500 in {s.story_id for s in (*ranked.latest, *ranked.capped)}  # new to everyone
    # Grown: Post carries the follow-up too: theirs again, as an update.
    post = _with_story(_article(501, "Post", -30 * 60 + 3, "sport", title=_title(5)), 500)
    grown = rank([*stored, post], later, DIGEST, RankConfig(), follows=follows,
                 choices={"sport": had})  # fmt: skip
    view = grown.views["sport"]
    [again] = [s for s in (*view.breaking, *view.latest) if s.story_id == 500]
    assert again.update
    edition = (*grown.breaking, *grown.latest, *grown.capped)
    assert not next(s for s in edition if s.story_id == 500).update


def replace_time(a: ArticleRecord, hours: float) -> ArticleRecord:
    from dataclasses import replace

    return replace(a, published_at=a.published_at + timedelta(hours=hours))


def replace_lead(story: Story, source: str) -> Story:
    """The story as an update led by another source's article (news since it was had)."""
    from dataclasses import replace

    lead = replace(story.lead, id=story.lead.id + 500, source=source, story_id=story.story_id)
    return replace(story, lead=lead, others=(story.lead,), update=True)


def _with_story(a: ArticleRecord, story: int | None = None) -> ArticleRecord:
    from dataclasses import replace

    return replace(a, story_id=story or a.id)


def test_an_edition_stored_before_reads_back_without_extra_stories() -> None:
    ranked = rank(_window(), NOW, DIGEST, RankConfig(), choices={"sport": SentStories()})
    doc = json.loads(ranked_to_json(ranked))
    assert len(doc["extra"]) == 5
    del doc["extra"]
    old = ranked_from_json(json.dumps(doc))
    assert old.extra == () and _ids(old.latest) == _ids(ranked.latest)
    assert ranked_from_json(ranked_to_json(ranked), extra=False).extra == ()


# Readers without topics: the edition as before, whoever else reads it.


def test_readers_without_topics_get_the_same_editions_over_three_days(
    tmp_path: Path, secret: str, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """Two installs read the same feeds for three days, one with topic readers beside its
    reader without topics, one without: that reader's messages are the same, byte for
    byte, and so are the editions' stories (what a choice is shown beyond the edition is
    no part of what everyone was sent); the technology reader gets full Latests."""
    start = MONDAY + timedelta(hours=1)
    tech, world = feed_server.url("/tech.xml"), feed_server.url("/world.xml")

    def feeds(day: int) -> None:
        items = _items("tech", 1, 30, start)
        for d in range(1, day + 1):
            items += _items("tech", 30 + 3 * d - 2, 3, start + timedelta(days=d, hours=3))
        feed_server.add("/tech.xml", rss(items))
        feed_server.add("/world.xml", rss(_items("world", 101, 12, start + timedelta(minutes=1))))

    def install(name: str, readers: dict[str, list[str]]) -> App:
        folder = tmp_path / name
        folder.mkdir()
        sources = [("Tech", tech), ("World", world)]
        text = config_text(sources, transport="smtp", smtp_port=smtp_server.port, topics=TOPICS)
        (folder / "digest.toml").write_text(text)
        return _open(folder / "digest.toml", readers)

    with_topics = install(
        "a", {"all@example.org": [], "tech@example.org": ["technology"], "w@example.org": ["world"]}
    )
    without = install("b", {"all@example.org": []})
    bodies: dict[str, list[dict[str, str]]] = {"a": [], "b": []}
    stories: dict[str, list[object]] = {"a": [], "b": []}
    try:
        for day in range(3):
            feeds(day)
            for name, app in (("a", with_topics), ("b", without)):
                sent = len(smtp_server.messages)
                clock_at(app, _at(day))
                asyncio.run(run_digest(app, "daily"))
                got = {m.recipients[0]: m.message() for m in smtp_server.messages[sent:]}
                bodies[name].append({r: _blank(_body(m) + _body(m, "html"))
                                     for r, m in got.items()})  # fmt: skip
                edition = app.store.newest_edition("daily")
                assert edition is not None
                ranked = ranked_from_json(edition.stories, extra=False)
                # by headline: the two installs number their articles as the gather
                # happens to store them
                stories[name].append(
                    [
                        [(s.lead.title, s.update) for s in part]
                        for part in (ranked.breaking, ranked.latest)
                    ]
                )
    finally:
        with_topics.close()
        without.close()
    for day in range(3):
        assert bodies["a"][day]["all@example.org"] == bodies["b"][day]["all@example.org"]
        assert stories["a"][day] == stories["b"][day]
    reader = [_titles(bodies["a"][day]["tech@example.org"], range(1, 40)) for day in range(3)]
    # Monday's 30 fall out of the 48-hour window on Wednesday: only the new ones are left.
    assert [len(t) for t in reader] == [10, 10, 3] and reader[2] == [34, 35, 36]
    assert len(set(reader[0] + reader[1] + reader[2])) == 23  # none twice


def _view_rows(app: App) -> int:
    with app.store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(EDITION_VIEWS)).scalar_one())


def test_a_choice_first_seen_after_the_build_gets_the_edition_narrowed(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """The build stored the choices of its subscribers' topics only; a reader who picks
    world after it gets the edition narrowed to world (as before views), and nothing is written;
    the technology reader gets the stored view."""
    app, _ = _setup(write_config, feed_server, smtp_server, 30)
    try:
        digest = app.config.digests[0]
        app.store.add_subscriber("left@example.org", topics=["world", "technology"])
        assert app.store.unsubscribe(email="left@example.org")
        _gather_on(app, 0)
        edition, _ = build_edition(app, digest, app.clock.now())
        assert edition.id is not None
        # Every subscriber's choice, one who left too (they may come back before the send).
        assert sorted(app.store.edition_views(edition.id)) == ["technology", "technology,world"]
        app.store.add_subscriber("world@example.org", topics=["world"])
        rows = _view_rows(app)
        world = next(s for s in app.store.subscribers() if s.email == "world@example.org")
        templates = SegmentTemplates(app, digest, edition)
        assert templates(world) is not None and templates(_tech_reader(app)) is not None
        whole = ranked_from_json(edition.stories)
        assert _shown_ids(templates._topics["world"]) == [
            s.story_id for s in (*whole.breaking, *whole.latest) if "world" in s.topics
        ]
        assert len(templates._topics["technology"].latest) == 10
        assert _view_rows(app) == rows
    finally:
        app.close()


def test_views_no_later_build_reads_are_pruned(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """The daily digest reads its last 3 editions and every one of the last 48 hours: a
    view older than both is dropped at a later build, unless its edition is still being
    sent, or an edition still being sent (or the one just built, whose send comes next)
    reads it for its fallback (a choice first seen after its build); pruning an edition
    (history) takes its views with it."""
    app, start = _setup(write_config, feed_server, smtp_server, 30)
    try:
        digest = app.config.digests[0]
        ids = []
        for day in range(7):
            _gather_news_on(app, feed_server, start, day)
            edition, built = build_edition(app, digest, app.clock.now())
            assert built and edition.id is not None and edition.story_count
            ids.append(edition.id)
            if day == 1:
                assert app.store.queue_deliveries(edition.id) == 2  # Tuesday's: being sent
            assert "technology" in app.store.edition_views(edition.id)
        kept = [i for i in ids if app.store.edition_views(i)]
        pruned = app.store.prune_history(_at(3) + timedelta(hours=1), _at(0))
        rows = _view_rows(app)
    finally:
        app.close()
    # Sunday's build: Wednesday's views go; Tuesday's edition has rows still to send, and
    # its fallback reads Monday's; Friday's to Sunday's are its last 3 (and 48 hours), and
    # Sunday's own send reads Thursday's. (Saturday's build kept Wednesday's: its send's.)
    assert kept == [ids[0], ids[1], ids[3], ids[4], ids[5], ids[6]]
    # Pruning the editions to Thursday's (not Tuesday's: rows to send) takes Thursday's view.
    assert pruned.editions == 3 and rows == 4


def test_the_edition_just_built_keeps_the_views_its_own_send_reads(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """Thursday's build prunes what no later build reads; its own send comes next, and a
    choice first seen after the build (a reader who changed topics meanwhile) gets the
    edition narrowed less what that choice was shown in Monday's to Wednesday's editions:
    Monday's view, and the extra stories it showed, are still there for it, so that send
    reads the same memory the build read."""
    app, start = _setup(write_config, feed_server, smtp_server, 30)
    try:
        digest = app.config.digests[0]
        built = []
        for day in range(4):
            _gather_news_on(app, feed_server, start, day)
            now = app.clock.now()
            read = earlier_editions(app, digest, digest_slot(app, digest, now), now)
            before = choice_memory(app, digest, read, ["technology"])
            edition, _ = build_edition(app, digest, now)
            built.append(edition)
        thursday = built[3]
        after = choice_memory(
            app,
            digest,
            earlier_editions(app, digest, thursday.slot, thursday.created_at),
            ["technology"],
        )
        monday = app.store.edition_by_id(saved_id(built[0]))
        views = app.store.edition_views(saved_id(built[0]))
    finally:
        app.close()
    assert monday is not None and "extra" in json.loads(monday.stories)
    assert "technology" in views
    assert after == before
    assert before["technology"].by_story  # Monday's to Wednesday's views showed something


def test_an_edition_s_extra_stories_go_with_its_last_view(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """The digest reads its last edition and 48 hours back: Wednesday's build prunes
    Monday's views, and Monday's ``extra`` (what only its views showed) goes with them:
    nothing reads it without a view (a technology reader's web link then shows the edition
    as mailed). Its own stories stay as stored; Tuesday's, whose views are kept, keeps
    its extra."""

    def with_rank(*args: object, **kwargs: object) -> Path:
        path = write_config(*args, **kwargs)
        path.write_text(path.read_text() + "\n[rank]\nsent_lookback_editions = 1\n")
        return path

    app, _ = _setup(with_rank, feed_server, smtp_server, 30)
    try:
        digest = app.config.digests[0]
        built = []
        for day in range(3):
            _gather_on(app, day)
            edition, _ = build_edition(app, digest, app.clock.now())
            assert edition.id is not None
            built.append(edition)
        monday, tuesday = (app.store.edition_by_id(saved_id(e)) for e in built[:2])
        views = [app.store.edition_views(saved_id(e)) for e in built[:2]]
    finally:
        app.close()
    assert monday is not None and tuesday is not None
    before = [json.loads(e.stories) for e in built[:2]]
    assert before[0]["extra"] and before[1]["extra"]
    assert views[0] == {} and "technology" in views[1]
    assert json.loads(monday.stories) == {k: v for k, v in before[0].items() if k != "extra"}
    assert json.loads(tuesday.stories) == before[1]


def test_an_edition_saved_with_views_keeps_them_once(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """The views go in with the edition; a second save of the slot (another process) gets
    the first's edition and views; a rebuild of an edition with no story replaces them."""
    app, _ = _setup(write_config, feed_server, smtp_server, 1)
    try:

        def edition(count: int) -> Edition:
            stories = '{"breaking":[],"latest":[]}'
            return Edition(digest_id="daily", slot=NOW, created_at=NOW, subject="S", html="",
                           text="", story_count=count, stories=stories)  # fmt: skip

        first = app.store.save_edition(edition(0), {"a": "1", "b": "2"})
        assert first.id is not None
        again = app.store.save_edition(edition(0), {"a": "3"})
        assert again.id == first.id and app.store.edition_views(first.id) == {"a": "1", "b": "2"}
        # The web view reads the one it is asked for; an unknown key reads none.
        assert app.store.edition_views(first.id, ["b"]) == {"b": "2"}
        assert app.store.edition_views(first.id, ["science"]) == {}
        _, rebuilt = app.store.rebuild_edition(first.id, edition(2), {"c": "4"})
        assert rebuilt and app.store.edition_views(first.id) == {"c": "4"}
        _, rebuilt = app.store.rebuild_edition(first.id, edition(3), {"d": "5"})
        assert not rebuilt and app.store.edition_views(first.id) == {"c": "4"}
    finally:
        app.close()


def test_a_choice_s_latest_holds_every_story_of_the_edition_s_latest_about_its_topics() -> None:
    """What the edition sent everyone is in the repeat rule's memory, so a story of its
    Latest about a choice's topics that the choice's own Latest left out would never reach
    its readers: over many random editions (lead sources, carriers, sizes, caps, stories
    the choice had), the choice's Latest holds every one it did not have."""
    rng = random.Random(7)
    topics = {"A": ("sport",), "B": ("news",), "C": ("news",), "D": ("sport",), "E": ("x",)}

    def article(i: int, source: str) -> ArticleRecord:
        return ArticleRecord(i, source, f"t{i}", f"u{i}", "", NOW, 1.0, topics[source], story_id=i)

    for _ in range(3000):
        stories = []
        for k in range(rng.randint(3, 10)):
            lead = rng.choice("ABCDE")
            carriers = [s for s in rng.sample("ABCDE", rng.randint(0, 2)) if s != lead]
            others = tuple(article(1000 * k + j, s) for j, s in enumerate(carriers))
            stories.append(Story(article(k, lead), others, float(100 - k), ()))
        limit, cap = rng.randint(1, 6), rng.randint(1, 3)
        latest, _ = fill_latest(stories, limit, cap)
        edition = RankedEdition((), tuple(latest))
        had = {s.lead.id for s in stories if rng.random() < 0.3}

        def mine(story: Story, had: set[int] = had) -> Story | None:
            return None if story.lead.id in had else story

        view = choice_editions(edition, stories, {"sport": mine}, limit, cap)["sport"]
        owed = {s.lead.id for s in latest if "sport" in s.topics} - had
        assert owed <= {s.lead.id for s in view.latest}


def test_digest_preview_topics_writes_what_their_readers_are_sent(
    write_config: Callable[..., Path],
    feed_server: FeedServer,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """`digest preview --topics technology` renders the technology choice's own edition:
    the one the send then gives a technology reader; a topic no source has is refused."""
    app, _ = _setup(write_config, feed_server, smtp_server, 30)
    config = str(tmp_path / "digest.toml")
    try:
        _gather_on(app, 0)
        at = ManualClock(_at(0))
        code, out, err = run_cli(
            "--config", config, "preview", "--topics", "technology", "--out", str(tmp_path / "p"),
            clock=at,
        )  # fmt: skip
        assert code == 0, err
        assert out.startswith("10 stories")
        previewed = _titles((tmp_path / "p" / "daily.txt").read_text(), range(1, 113))
        code, _, err = run_cli("--config", config, "preview", "--topics", "tech", "--out",
                               str(tmp_path / "q"), clock=at)  # fmt: skip
        assert code == 2 and "'tech'" in err
        asyncio.run(run_digest(app, "daily", gather_first=False))
        sent = {m.recipients[0]: _body(m.message()) for m in smtp_server.messages}
    finally:
        app.close()
    assert previewed == _titles(sent["tech@example.org"], range(1, 113)) == list(range(21, 31))


def test_two_digests_of_one_slot_share_a_choice_s_memory(
    write_config: Callable[..., Path],
    feed_server: FeedServer,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> None:
    """Every reader gets every digest: a second digest of the same slot, built after the
    first, leaves out for the technology choice what the first showed it beyond its own
    edition, as it leaves out the first's edition for everyone."""
    app, _ = _setup(write_config, feed_server, smtp_server, 30)
    app.close()
    path = tmp_path / "digest.toml"
    second = (
        '\n[[digests]]\nid = "second"\ntitle = "Second"\nschedule = "0 7 * * *"\n'
        "latest_items = 10\nlatest_per_source = 3\nlookback_hours = 48\n"
    )
    text = path.read_text()
    at = text.index("\n[delivery]")
    path.write_text(text[:at] + second + text[at:])
    app = App.open(load_config(path))
    try:
        _gather_on(app, 0)
        daily, _ = build_edition(app, app.config.digest("daily"), app.clock.now())
        other, _ = build_edition(app, app.config.digest("second"), app.clock.now())
        reader = _tech_reader(app)
        shown = {}
        for name, edition in (("daily", daily), ("second", other)):
            templates = SegmentTemplates(app, app.config.digest(name), edition)
            templates(reader)
            shown[name] = _shown_ids(templates._topics["technology"])
    finally:
        app.close()
    assert len(shown["daily"]) == 10 and len(shown["second"]) == 10
    assert not set(shown["daily"]) & set(shown["second"])


def test_an_extra_story_the_choice_had_goes_to_it_again_as_an_update_when_it_grew(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """Monday the technology reader had Tech's 22 beyond the edition; Tuesday World runs it
    too: a new source, so it goes to them again marked an update, while for readers
    without topics (who never had it) it is no update."""
    app, start = _setup(write_config, feed_server, smtp_server, 30)
    try:
        clock_at(app, _at(0))
        asyncio.run(run_digest(app, "daily"))
        monday = {m.recipients[0]: _body(m.message()) for m in smtp_server.messages}
        world = _items("world", 101, 12, start + timedelta(minutes=1))
        carried = {
            "title": _title(22),
            "guid": "world-22",
            "link": "https://world.test/22",
            "date": f"{start + timedelta(hours=2):%a, %d %b %Y %H:%M:%S} GMT",
        }
        feed_server.add("/world.xml", rss([*world, carried]))
        clock_at(app, _at(1))
        asyncio.run(run_digest(app, "daily"))
        tuesday = {m.recipients[0]: _body(m.message()) for m in smtp_server.messages[2:]}
    finally:
        app.close()
    assert 22 in _titles(monday["tech@example.org"], range(1, 31))
    assert 22 not in _titles(monday["all@example.org"], range(1, 31))
    assert f"Update: {_title(22)}" in tuesday["tech@example.org"]
    assert f"Update: {_title(22)}" not in tuesday["all@example.org"]


def test_a_view_that_differs_from_the_edition_only_in_an_update_flag_has_its_own_render(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """The same stories, one marked an update for this choice: not the edition's render."""
    app, _ = _setup(
        write_config, feed_server, smtp_server, 3,
        {"all@example.org": [], "both@example.org": ["technology", "world"]},
    )  # fmt: skip
    try:
        digest = app.config.digests[0]
        _gather_on(app, 0)
        edition, _ = build_edition(app, digest, app.clock.now())
        assert edition.id is not None
        view = json.loads(app.store.edition_views(edition.id)["technology,world"])
        whole = ranked_from_json(edition.stories)
        assert [s for s, _, _ in view["latest"]] == [s.story_id for s in whole.latest]
        view["latest"][0][2] = 1
        with app.store.engine.begin() as connection:
            connection.execute(
                EDITION_VIEWS.update()
                .where(EDITION_VIEWS.c.edition_id == edition.id)
                .values(view=json.dumps(view))
            )
        readers = {s.email: s for s in app.store.subscribers()}
        templates = SegmentTemplates(app, digest, edition)
        mine, everyone = (
            templates(readers["both@example.org"]),
            templates(readers["all@example.org"]),
        )
    finally:
        app.close()
    assert mine is not None and everyone is not None and mine is not everyone
    assert f"Update: {whole.latest[0].lead.title}" in mine.text
    assert "Update:" not in everyone.text


def test_a_story_of_the_edition_s_latest_the_choice_gets_under_another_lead_stays_in() -> None:
    """The edition took Arena's story within the cap; the choice gets it as an update led
    by news from Bugle, whose cap the choice's Latest has filled already: it still holds
    it (everyone was sent it: left out here, it would never reach them), under Arena's
    lead as the edition counted it (an update still), and its own lowest story gives way."""

    def story(i: int, source: str, score: float) -> Story:
        lead = ArticleRecord(i, source, f"t{i}", f"u{i}", "", NOW, 1.0, ("sport",), story_id=i)
        return Story(lead, (), score, ())

    bugle, arena, wire = story(1, "Bugle", 10), story(2, "Arena", 9), story(3, "Wire", 8)
    news = replace_lead(arena, "Bugle")

    def mine(s: Story) -> Story | None:
        return news if s is arena else s

    edition = RankedEdition((), (arena,))
    view = choice_editions(edition, [bugle, arena, wire], {"sport": mine}, 2, 1)["sport"]
    assert [(s.story_id, s.lead.source, s.update) for s in view.latest] == [
        (1, "Bugle", False), (2, "Arena", True),
    ]  # fmt: skip


def _tech_titles_over_two_days(
    app: App, smtp_server: SmtpServer, between: Callable[[Subscriber], None]
) -> list[list[int]]:
    """The Tech stories the technology reader got on Monday and on Tuesday, ``between``
    run around Tuesday's build (before it, then the reader set back as they were)."""
    got: list[list[int]] = []
    tech = _tech_reader(app)
    for day in range(2):
        _gather_on(app, day)
        if day == 1:
            between(tech)
        sent = len(smtp_server.messages)
        asyncio.run(run_digest(app, "daily"))
        mine = [
            m.message()
            for m in smtp_server.messages[sent:]
            if m.recipients[0] == "tech@example.org"
        ]
        got.append(_titles(_body(mine[0]), range(1, 31)) if mine else [])
    return got


def test_a_reader_paused_over_the_build_gets_no_story_twice(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """The technology reader (the only one of that choice) pauses on Tuesday before the
    build and resumes before the send: their choice still has its view (every choice of
    every subscriber gets one), and Monday's Tech stories do not come again."""
    app, _ = _setup(write_config, feed_server, smtp_server, 30)

    def pause_over_build(tech: Subscriber) -> None:
        assert tech.id is not None
        app.store.set_subscriber(tech.id, status="paused")
        build_edition(app, app.config.digests[0], app.clock.now())
        app.store.set_subscriber(tech.id, status="active")

    try:
        got = _tech_titles_over_two_days(app, smtp_server, pause_over_build)
    finally:
        app.close()
    assert got[0] and got[1], got
    assert not set(got[0]) & set(got[1]), got


def test_a_topic_change_after_the_build_repeats_nothing_the_choice_was_shown(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """The technology reader picks world before Tuesday's build and technology again
    after it: Tuesday's edition has no view of technology, so they get it narrowed, less
    what Monday's view of technology showed beyond Monday's edition."""
    app, _ = _setup(write_config, feed_server, smtp_server, 30)

    def change_over_build(tech: Subscriber) -> None:
        assert tech.id is not None
        app.store.set_subscriber(tech.id, topics="world")
        edition, _ = build_edition(app, app.config.digests[0], app.clock.now())
        assert edition.id is not None and "technology" not in app.store.edition_views(edition.id)
        app.store.set_subscriber(tech.id, topics="technology")

    try:
        got = _tech_titles_over_two_days(app, smtp_server, change_over_build)
    finally:
        app.close()
    assert len(got[0]) == 10, got
    assert not set(got[0]) & set(got[1]), got


def test_a_choice_s_latest_keeps_the_cap_when_owed_stories_come_under_another_lead() -> None:
    """Edition (limit 3, cap 1): Bugle, Arena, Court. The choice had Arena's and Court's
    stories and both grew with Bugle's news: the edition counted them under Arena and
    Court, and so does the choice's Latest: Bugle leads no more than its cap allows."""

    def story(i: int, source: str, score: float) -> Story:
        lead = ArticleRecord(i, source, f"t{i}", f"u{i}", "", NOW, 1.0, ("sport",), story_id=i)
        return Story(lead, (), score, ())

    bugle, arena, court = story(1, "Bugle", 10), story(2, "Arena", 9), story(3, "Court", 8)
    wire = story(4, "Wire", 7)
    news = {id(arena): replace_lead(arena, "Bugle"), id(court): replace_lead(court, "Bugle")}
    edition = RankedEdition((), (bugle, arena, court))
    view = choice_editions(
        edition, [bugle, arena, court, wire], {"sport": lambda s: news.get(id(s), s)}, 3, 1
    )["sport"]
    # Every story of the edition's Latest is owed to them; no source leads more than the
    # cap, counted under the source the edition counted each under.
    assert sorted(s.story_id for s in view.latest) == [1, 2, 3]
    assert sorted(s.lead.source for s in view.latest) == ["Arena", "Bugle", "Court"]
    assert [s.update for s in view.latest] == [False, True, True]


@pytest.mark.parametrize("trimmed", [False, True])
def test_a_topic_reader_s_web_link_shows_their_edition_and_the_plain_one_the_mailed(
    write_config: Callable[..., Path],
    feed_server: FeedServer,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    trimmed: bool,
) -> None:
    """Monday's technology view holds ten Tech stories, more than the edition's Latest:
    the tech reader's email (trimmed to fit or not) links to a web view of exactly their
    stories (those beyond the edition too); the edition's own web view (the link of a
    reader without topics, whose email is as before) is the edition as mailed (whole),
    none of the choice's extra stories."""
    if trimmed:
        monkeypatch.setattr(fit, "HTML_LIMIT", 9_000)
    app, _ = _setup(write_config, feed_server, smtp_server, 30)
    try:
        clock_at(app, _at(0))
        asyncio.run(run_digest(app, "daily"))
        edition = app.store.editions(1)[0]
        whole = ranked_from_json(edition.stories)
        assert edition.id is not None
        view = view_from_json(app.store.edition_views(edition.id)["technology"], whole)
        mails = {m.recipients[0]: _body(m.message()) for m in smtp_server.messages}
        fits = ["did not fit in this email" in " ".join(t.split()) for t in mails.values()]
        assert fits == [trimmed, trimmed], fits
        plain = web_view_url("https://digest.test", "daily", edition.slot)
        links = {
            who: re.findall(r"https://digest\.test/editions/[^\s\"<>]+", text)
            for who, text in mails.items()
        }

        async def get(url: str) -> httpx.Response:
            transport = httpx.ASGITransport(app=create_app(app))
            async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as c:
                return await c.get(url)

        assert set(links["all@example.org"]) == {plain}
        assert set(links["tech@example.org"]) == {f"{plain}?topics=technology"}
        mine = asyncio.run(get(links["tech@example.org"][0]))
        everyone = asyncio.run(get(plain))
        unknown = asyncio.run(get(f"{plain}?topics=science"))  # no view of it: as mailed
    finally:
        app.close()
    extra = [s.lead.title for s in whole.extra]
    own = [s.lead.title for s in (*whole.breaking, *whole.latest)]
    theirs = [s.lead.title for s in (*view.breaking, *view.latest)]
    assert extra and set(extra) <= set(theirs) and not set(extra) & set(own)
    assert mine.status_code == everyone.status_code == 200
    text = html.unescape(mine.text)
    assert sorted(_titles(text, range(1, 113))) == sorted(_titles(" ".join(theirs), range(1, 113)))
    assert text.count('class="story"') == len(theirs)
    text = html.unescape(everyone.text)
    assert sorted(_titles(text, range(1, 113))) == sorted(_titles(" ".join(own), range(1, 113)))
    assert text.count('class="story"') == len(own)
    assert unknown.text == everyone.text


def _sport(i: int, source: str, score: float, topic: str = "sport") -> Story:
    lead = ArticleRecord(i, source, f"t{i}", f"u{i}", "", NOW, 1.0, (topic,), story_id=i)
    return Story(lead, (), score, ())


def test_an_owed_story_that_keeps_its_lead_counts_before_a_news_led_one() -> None:
    """Limit 3, cap 1. Edition Latest: X (Bugle), A (Arena), C (Court); B (Bugle) left out
    by the cap. The choice had X, which grew with Arena's news. A (owed, Arena's whatever
    happens) counts first: X is shown under Bugle, as the edition counted it."""
    x, a = _sport(1, "Bugle", 11), _sport(2, "Arena", 10)
    b, c = _sport(3, "Bugle", 9), _sport(4, "Court", 8)
    edition = RankedEdition((), tuple(fill_latest([x, a, b, c], 3, 1)[0]))
    assert edition.latest == (x, a, c)
    news = {id(x): replace_lead(x, "Arena")}
    view = choice_editions(edition, [x, a, b, c], {"sport": lambda s: news.get(id(s), s)}, 3, 1)
    assert [(s.story_id, s.lead.source, s.update) for s in view["sport"].latest] == [
        (1, "Bugle", True), (2, "Arena", False), (4, "Court", False),
    ]  # fmt: skip


def test_the_choice_s_own_news_led_updates_make_room_within_the_cap() -> None:
    """Limit 4, cap 2. Edition Latest: C1 C2 (Court, world), A1 A2 (Arena, sport). The
    choice (sport) had Z1, Z2 (Court), which grew with Arena's news: its own fill is Z1'
    Z2' (Arena) W1 W2 (Wire). A1 and A2 are owed (Arena: two); the room left goes to
    Wire's, not to two more led by Arena."""
    c1, c2 = _sport(7, "Court", 13, "world"), _sport(8, "Court", 12.5, "world")
    z1, z2 = _sport(1, "Court", 12), _sport(2, "Court", 11.5)
    a1, a2 = _sport(3, "Arena", 10), _sport(4, "Arena", 9.5)
    w1, w2 = _sport(5, "Wire", 9), _sport(6, "Wire", 8)
    ranking = [c1, c2, z1, z2, a1, a2, w1, w2]
    edition = RankedEdition((), tuple(fill_latest(ranking, 4, 2)[0]))
    assert [s.story_id for s in edition.latest] == [7, 8, 3, 4]
    news = {id(z1): replace_lead(z1, "Arena"), id(z2): replace_lead(z2, "Arena")}
    view = choice_editions(edition, ranking, {"sport": lambda s: news.get(id(s), s)}, 4, 2)
    assert [(s.story_id, s.lead.source) for s in view["sport"].latest] == [
        (3, "Arena"), (4, "Arena"), (5, "Wire"), (6, "Wire"),
    ]  # fmt: skip


def test_a_send_s_fallback_reads_the_same_after_later_builds_prune(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """Tuesday's edition is built while the tech reader had other topics (no technology
    view) and is still being sent when they pick technology again: its fallback leaves out
    what Monday's technology view showed. Wednesday's build (memory: one edition, 24
    hours) would prune Monday's view; Tuesday's fallback reads it, so it stays and the
    rest of Tuesday's send gives what its first batch gave."""

    def with_rank(*args: object, **kwargs: object) -> Path:
        path = write_config(*args, **kwargs)
        path.write_text(
            path.read_text() + "\n[rank]\nsent_lookback_editions = 1\nstory_memory_hours = 24\n"
        )
        return path

    app, start = _setup(with_rank, feed_server, smtp_server, 30)
    try:
        digest = app.config.digests[0]
        tech = _tech_reader(app)
        assert tech.id is not None
        _gather_on(app, 0)
        monday, _ = build_edition(app, digest, app.clock.now())
        assert monday.id is not None
        whole = ranked_from_json(monday.stories)
        own = {s.story_id for s in (*whole.breaking, *whole.latest)}
        view = view_from_json(app.store.edition_views(monday.id)["technology"], whole)
        shown = set(_shown_ids(view)) - own
        tuesday_news = _items("tech", 31, 2, start + timedelta(days=1, hours=4))
        feed_server.add("/tech.xml", rss(_items("tech", 1, 30, start) + tuesday_news))
        _gather_on(app, 1)
        app.store.set_subscriber(tech.id, topics="world")
        tuesday, _ = build_edition(app, digest, app.clock.now())
        assert tuesday.id is not None and "technology" not in app.store.edition_views(tuesday.id)
        tuesday_whole = ranked_from_json(tuesday.stories)
        assert app.store.queue_deliveries(tuesday.id) == 2
        app.store.set_subscriber(tech.id, topics="technology")
        tech = _tech_reader(app)
        first = SegmentTemplates(app, digest, tuesday)
        first(tech)
        clock_at(app, _at(2))
        build_edition(app, digest, app.clock.now())
        later = SegmentTemplates(app, digest, tuesday)
        later(tech)
        kept = app.store.edition_views(monday.id)
    finally:
        app.close()
    got = _shown_ids(first._topics["technology"])
    edition = {s.story_id for s in (*tuesday_whole.breaking, *tuesday_whole.latest)}
    assert shown and got and not set(got) & shown and edition & shown
    assert _shown_ids(later._topics["technology"]) == got
    assert "technology" in kept


def test_a_pending_sign_up_s_choice_gets_no_view_a_reader_who_left_keeps_theirs(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """A sign-up not confirmed (pending) with world gets no view of world (if they confirm
    after the build, the send narrows the edition for them); the technology reader, who
    unsubscribed, keeps theirs (they may come back before the send)."""
    app, _ = _setup(write_config, feed_server, smtp_server, 30)
    try:
        tech = _tech_reader(app)
        assert tech.id is not None
        app.store.set_subscriber(tech.id, status="unsubscribed")
        app.store.add_pending("new@example.org", None, ["world"])
        _gather_on(app, 0)
        edition, _ = build_edition(app, app.config.digests[0], app.clock.now())
        assert edition.id is not None
        views = app.store.edition_views(edition.id)
    finally:
        app.close()
    assert sorted(views) == ["technology"]


def _rendered_for(app: App, *emails: str) -> list[MessageTemplate | None]:
    """Monday's news gathered and its edition built, then rendered for the readers
    ``emails`` in turn, as one send renders them (one ``SegmentTemplates``)."""
    by = {s.email: s for s in app.store.subscribers()}
    _gather_on(app, 0)
    edition, _ = build_edition(app, app.config.digests[0], app.clock.now())
    templates = SegmentTemplates(app, app.config.digests[0], edition)
    return [templates(by[email]) for email in emails]


def test_a_reader_without_topics_shares_no_topic_web_link(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """Both readers in Paris: the one who picked every topic gets every story of the
    edition (their choice's view is the edition), rendered first; the reader without topics
    gets that same render, whose web link is the edition's own, not a choice's."""
    readers = {"both@example.org": ["technology", "world"], "all@example.org": []}
    app, _ = _setup(write_config, feed_server, smtp_server, 30, readers)
    try:
        for s in app.store.subscribers():
            assert s.id is not None
            app.store.set_subscriber(s.id, timezone="Europe/Paris")
        both, everyone = _rendered_for(app, "both@example.org", "all@example.org")
    finally:
        app.close()
    assert both is not None and everyone is not None
    assert "/editions/" in everyone.html and "?topics=" not in everyone.html


def test_readers_of_two_choices_shown_the_same_stories_each_get_their_own_web_link(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """Choices that show the same stories once shared a render, and its web link carried the
    key of whichever reader was rendered first: one reader's email named another's topics."""
    readers = {"ts@example.org": ["science", "technology"], "tech@example.org": ["technology"]}
    app, _ = _setup(write_config, feed_server, smtp_server, 30, readers)
    try:
        both, tech = _rendered_for(app, "ts@example.org", "tech@example.org")
    finally:
        app.close()
    assert both is not None and tech is not None
    links = {
        name: set(re.findall(r"/editions/[^\s\"<>]+", template.html))
        for name, template in (("both", both), ("tech", tech))
    }
    assert all("topics=" in link for link in links["tech"]), links
    assert not any("science" in link for link in links["tech"]), links
