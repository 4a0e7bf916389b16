"""Sources' habits kept across runs: each settled story tallied once, in the store, and a
source's rerun vote believed against its long run; a new install ranks as before."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from digest.app import App
from digest.clock import ManualClock
from digest.config import DigestConfig, RankConfig, load_config
from digest.editions import rank_window
from digest.pipeline import prune_stored
from digest.rank import SentStories, SourceHabits, rank_memory
from digest.rank.growth import SETTLED_HOURS, first_arrivals, settled_stories
from digest.records import ArticleRecord, FeedItem, Story
from digest.reports import explain_report
from digest.store import Store, open_engine, upgrade, utcnow
from digest.store.store import FetchOutcome
from tests.conftest import run_cli
from tests.store_queries import add_articles

NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
DIGEST = DigestConfig(id="d", title="D", schedule="0 7 * * *", latest_items=50)
COUNTING = {"recency_weight": 0, "velocity_weight": 0, "growth_weight": 0, "overlap_discount": 0}
PAPERS = ("Gazette", "Herald", "Courier", "Tribune")


def _article(i: int, source: str, seen: datetime, title: str) -> ArticleRecord:
    return ArticleRecord(
        i, source, title, f"https://{source}.test/{i}", "", seen, first_seen_at=seen
    )


def _history() -> list[ArticleRecord]:
    """Yesterday's 30 stories: the wire and four papers ran each once, the wire at its
    quietest (one article a story)."""
    memory = []
    for s in range(30):
        seen = NOW - timedelta(hours=30) + timedelta(minutes=s)
        words = " ".join(f"w{s}x{j}" for j in range(4))  # its own words: one story each
        memory.append(_article(1000 + s, "Wire", seen, words))
        for k, paper in enumerate(PAPERS):
            memory.append(_article(5000 + 10 * s + k, paper, seen, words))
    return memory


def _today() -> list[ArticleRecord]:
    """Two stories of three sources each; the wire's is the newer (first on a tie)."""
    quiet = [
        _article(1 + k, paper, NOW - timedelta(hours=3), "Senate passes budget bill")
        for k, paper in enumerate(PAPERS[:3])
    ]
    ago = NOW - timedelta(hours=1)
    wired = [_article(10 + k, "Wire", ago, "Volcano erupts on island") for k in range(3)]
    wired += [
        _article(20 + k, p, ago, "Volcano erupts on island") for k, p in enumerate(PAPERS[2:])
    ]
    return [*quiet, *wired]


def _ranked(habits: SourceHabits | None) -> list[Story]:
    def in_window(a: ArticleRecord) -> bool:
        return a.seen_at >= NOW - timedelta(hours=24)

    memory = [*_history(), *_today()]
    ranked = rank_memory(
        memory, in_window, NOW, DIGEST, RankConfig(**COUNTING), SentStories(), habits=habits
    )
    return [*ranked.edition.breaking, *ranked.edition.latest]


def _signal(story: Story, name: str) -> float:
    return next(s.value for s in story.signals if s.name == name)


def _tally(
    habits: SourceHabits, arrivals: list[tuple[int, str, datetime]], now: datetime
) -> SourceHabits:
    """``habits`` tallied at ``now`` over a 48-hour memory of these arrivals, as
    ``rank_memory`` tallies it (first arrivals worked out once)."""
    started = first_arrivals((story, seen) for story, _, seen in arrivals)
    carried = [(story, source) for story, source, _ in arrivals]
    return habits.tally(carried, started, now, now - timedelta(hours=48))


def test_a_settled_story_is_tallied_once() -> None:
    arrivals = [
        (1, "Wire", NOW - timedelta(hours=30)),
        (1, "Wire", NOW - timedelta(hours=29)),
        (1, "Gazette", NOW - timedelta(hours=28)),
        (2, "Gazette", NOW - timedelta(hours=20)),  # four hours short of settled
    ]
    habits = _tally(SourceHabits(), arrivals, NOW)
    assert habits.pairs() == {"Wire": (1, 2), "Gazette": (1, 1)}
    assert habits.until == NOW - timedelta(hours=24)
    assert _tally(habits, arrivals, NOW) == habits  # a second run adds nothing
    later = NOW + timedelta(hours=8)  # story 2 has settled; story 1 is not counted again
    again = _tally(habits, arrivals, later)
    assert again.pairs() == {"Wire": (1, 2), "Gazette": (2, 2)}


def test_a_story_first_in_exactly_a_day_ago_is_settled_for_the_tally_as_for_the_ranking() -> None:
    """Settled is "first article ``SETTLED_HOURS`` ago or more": a story that first arrived
    at that very instant is tallied in this run (the run's rerun habits already count it
    settled), and not again in the next one, which starts after ``until``."""
    boundary = NOW - timedelta(hours=SETTLED_HOURS)
    arrivals = [
        (1, "Wire", boundary),
        (1, "Wire", boundary + timedelta(hours=1)),
        (2, "Gazette", boundary + timedelta(microseconds=1)),  # not settled yet
    ]
    started = first_arrivals((story, seen) for story, _, seen in arrivals)
    assert settled_stories(started, NOW) == {1}

    habits = _tally(SourceHabits(), arrivals, NOW)
    assert habits.pairs() == {"Wire": (1, 2)}
    assert habits.until == boundary
    later = _tally(habits, arrivals, NOW + timedelta(hours=1))
    assert later.pairs() == {"Wire": (1, 2), "Gazette": (1, 1)}  # story 1 not again


def test_a_source_known_to_rerun_says_less_on_a_quiet_day() -> None:
    # The memory's day shows the wire at one article a story; the store has seen it run
    # four a story for months. Its day is believed against that: its vote is smaller, and
    # the volcano (wire + two papers) falls below the budget bill (three papers).
    kept = SourceHabits.kept(
        {"Wire": (300, 1200), **{p: (300, 300) for p in PAPERS}}, NOW - timedelta(hours=32)
    )
    alone = _ranked(None)
    learned = _ranked(kept)
    assert alone[0].lead.title == "Volcano erupts on island"  # a tie, the newer first
    assert learned[0].lead.title == "Senate passes budget bill"
    volcano = next(s for s in learned if s.lead.title.startswith("Volcano"))
    assert _signal(volcano, "rerun") < -0.2  # shown by name in `digest explain`


def test_a_new_install_ranks_as_without_kept_habits() -> None:
    fresh = _ranked(SourceHabits())
    before = _ranked(None)
    assert [(s.lead.id, s.score, s.signals) for s in fresh] == [
        (s.lead.id, s.score, s.signals) for s in before
    ]


# The pipeline: rank runs keep the tally in the store.

SOURCES = ["Wire", "Gazette", "Post"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(utcnow())


@pytest.fixture
def app(write_config: Callable[..., Path], clock: ManualClock) -> Iterator[App]:
    config = load_config(write_config([(n, f"file:{n.lower()}.xml") for n in SOURCES]))
    app = App.open(config, clock=clock)
    yield app
    app.close()


def _publish(app: App, source: str, title: str) -> None:
    source_id = app.store.sync_sources([(n, f"file:{n.lower()}.xml") for n in SOURCES])[source]
    slug = f"{source}-{title}".replace(" ", "-")
    published = app.clock.now() - timedelta(minutes=30)
    item = FeedItem(slug, f"https://{source.lower()}.test/{slug}", title, "", None, published)
    assert add_articles(app.store, source_id, [item]) == 1


def test_rank_runs_keep_each_settled_story_once_in_the_store(app: App, clock: ManualClock) -> None:
    digest = app.config.digest(None)
    assert app.store.source_habits(SOURCES) == ({}, None, {})  # a new install: nothing kept
    _publish(app, "Wire", "Storm Isolde makes landfall on the coast")
    _publish(app, "Wire", "Storm Isolde makes landfall: 40,000 homes without power")
    _publish(app, "Gazette", "Storm Isolde makes landfall on the coast tonight")
    _publish(app, "Post", "Central bank holds interest rates at 4.25%")
    rank_window(app, digest, clock.now())
    assert app.store.source_habits(SOURCES) == ({}, None, {})  # nothing has settled yet
    # A ranking as of a later time (explain's next slot) counts nothing before it happens.
    rank_window(app, digest, clock.now() + timedelta(hours=30))
    assert app.store.source_habits(SOURCES) == ({}, None, {})

    clock.advance(timedelta(hours=30))  # a day and more on, both stories have settled
    rank_window(app, digest, clock.now())
    kept, until, together = app.store.source_habits(SOURCES)
    assert kept == {"Wire": (1, 2), "Gazette": (1, 1), "Post": (1, 1)}
    assert until == clock.now() - timedelta(hours=24)
    # The storm: both carried it; each source's own stories on the diagonal.
    assert together == {("Gazette", "Wire"): 1, **{(n, n): 1 for n in SOURCES}}
    clock.advance(timedelta(hours=1))
    rank_window(app, digest, clock.now())  # another digest, an hour on
    # Not counted twice, and with nothing settled since, not written again either.
    assert app.store.source_habits(SOURCES) == (kept, until, together)

    report = explain_report(app, digest, clock.now())
    assert report.header()[3].startswith("learned: rerun habits of 3 sources, 3 stories")
    assert report.to_json()["learned"]["habit_sources"] == 3


def test_explain_shows_the_tally_its_own_ranking_saved_reading_it_once(
    app: App, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`digest explain` as the run that tallies: its header counts the stories its ranking
    just added, handed on by the ranking, not read from the store a second time."""
    digest = app.config.digest(None)
    _publish(app, "Wire", "Storm Isolde makes landfall on the coast")
    _publish(app, "Post", "Central bank holds interest rates at 4.25%")
    clock.advance(timedelta(hours=30))
    reads = []
    read = app.store.source_habits

    def counted(
        sources: Iterable[str],
    ) -> tuple[dict[str, tuple[int, int]], datetime | None, dict[Any, int]]:
        reads.append(1)
        return read(sources)

    monkeypatch.setattr(app.store, "source_habits", counted)
    report = explain_report(app, digest, clock.now())

    assert report.header()[3].startswith("learned: rerun habits of 2 sources, 2 stories")
    assert report.habits_until == clock.now() - timedelta(hours=SETTLED_HOURS)
    assert len(reads) == 1
    own = {("Wire", "Wire"): 1, ("Post", "Post"): 1}
    assert read(SOURCES) == ({"Wire": (1, 1), "Post": (1, 1)}, report.habits_until, own)


def test_a_tally_saved_by_another_run_is_not_overwritten(app: App) -> None:
    until = NOW - timedelta(hours=24)
    first = {("Wire", "Wire"): 2}
    assert app.store.save_source_habits({"Wire": (2, 5)}, until, was=None, pairs=first)
    # A run that read the store before that save would add the same stories again.
    assert not app.store.save_source_habits({"Wire": (2, 5)}, until, was=None, pairs=first)
    assert app.store.source_habits(SOURCES) == ({"Wire": (2, 5)}, until, first)
    later = until + timedelta(hours=8)
    changed = {("Post", "Wire"): 1, ("Wire", "Wire"): 3, ("Post", "Post"): 1}
    assert app.store.save_source_habits(
        {"Wire": (3, 6), "Post": (1, 1)}, later, was=until, pairs=changed
    )
    assert app.store.source_habits(SOURCES) == ({"Wire": (3, 6), "Post": (1, 1)}, later, changed)
    # Only the pairs given are written; the others are kept as they are.
    last = later + timedelta(hours=8)
    assert app.store.save_source_habits(
        {"Wire": (4, 7), "Post": (1, 1)}, last, was=later, pairs={("Wire", "Wire"): 4}
    )
    assert app.store.source_habits(SOURCES)[2] == {**changed, ("Wire", "Wire"): 4}
    # Another run's stale save leaves the pairs as they are too.
    stale = {("Wire", "Wire"): 9}
    assert not app.store.save_source_habits({"Wire": (9, 9)}, last, was=later, pairs=stale)
    assert app.store.source_habits(SOURCES)[2] == {**changed, ("Wire", "Wire"): 4}


def test_a_removed_sources_tally_is_kept_as_it_was_through_the_saves_without_it(
    app: App, clock: ManualClock
) -> None:
    """A source gone from the config keeps its rows, untouched, while the runs read and
    save the tally of the sources configured now (and its ``tallied_until`` moves on with
    theirs, so it is tallied from there on if it comes back)."""
    digest = app.config.digest(None)
    before = clock.now() - timedelta(hours=30)
    old = {"Wire": (5, 9), "Gone": (4, 4)}
    old_pairs = {("Gone", "Wire"): 3, ("Gone", "Gone"): 4, ("Wire", "Wire"): 5}
    assert app.store.save_source_habits(old, before, was=None, pairs=old_pairs)
    assert app.store.source_habits(SOURCES) == ({"Wire": (5, 9)}, before, {("Wire", "Wire"): 5})

    _publish(app, "Wire", "Storm Isolde makes landfall on the coast")
    _publish(app, "Gazette", "Storm Isolde makes landfall on the coast tonight")
    clock.advance(timedelta(hours=30))
    rank_window(app, digest, clock.now())
    kept, until, together = app.store.source_habits([*SOURCES, "Gone"])
    assert until == clock.now() - timedelta(hours=SETTLED_HOURS)
    assert kept == {"Wire": (6, 10), "Gazette": (1, 1), "Gone": (4, 4)}
    assert together == {
        **old_pairs,
        ("Wire", "Wire"): 6,
        ("Gazette", "Wire"): 1,
        ("Gazette", "Gazette"): 1,
    }

    clock.advance(timedelta(hours=1))
    rank_window(app, digest, clock.now())  # nothing settled since: nothing written
    assert app.store.source_habits([*SOURCES, "Gone"]) == (kept, until, together)


def test_a_tally_of_none_of_the_configured_sources_is_still_a_tally_kept(app: App) -> None:
    """Every source renamed since the last save: the read holds none of their rows, but
    says up to when the store tallied, so the next save goes on from there (a save as the
    first would be refused: the store is not empty)."""
    until = NOW - timedelta(hours=24)
    assert app.store.save_source_habits({"Gone": (2, 2)}, until, was=None, pairs={})
    assert app.store.source_habits(SOURCES) == ({}, until, {})
    assert not app.store.save_source_habits({"Wire": (1, 1)}, until, was=None, pairs={})
    later = until + timedelta(hours=8)
    assert app.store.save_source_habits(
        {"Wire": (1, 1)}, later, was=until, pairs={("Wire", "Wire"): 1}
    )
    kept = {"Wire": (1, 1), "Gone": (2, 2)}
    assert app.store.source_habits([*SOURCES, "Gone"]) == (kept, later, {("Wire", "Wire"): 1})


def test_a_source_gone_from_the_config_for_long_is_forgotten_one_back_sooner_is_not(
    app: App, clock: ManualClock
) -> None:
    """A removed or renamed source's rows are kept for when it comes back, but not
    forever: the prune every gather runs forgets the tally and pairs of a source not
    configured and not fetched for ``retention.source_habits_days`` (180); one fetched
    within that time keeps them, as does a configured source however long since its last
    fetch (paused, or failing), and the tally goes on from its ``until``."""

    def fetched(name: str, days_ago: float) -> None:
        source_id = app.store.sync_sources([(name, f"file:{name.lower()}.xml")])[name]
        app.store.clock = ManualClock(clock.now() - timedelta(days=days_ago))
        app.store.save_fetches([FetchOutcome(source_id, error="cannot read it")])
        app.store.clock = clock

    fetched("Wire", 300)
    fetched("Renamed", 200)
    fetched("Away", 100)
    until = clock.now() - timedelta(hours=24)
    habits = {"Wire": (5, 9), "Renamed": (4, 4), "Away": (3, 3)}
    pairs = {("Renamed", "Wire"): 2, ("Away", "Renamed"): 1, ("Away", "Wire"): 1}
    own = {("Wire", "Wire"): 5, ("Renamed", "Renamed"): 4, ("Away", "Away"): 3}
    assert app.store.save_source_habits(habits, until, was=None, pairs=pairs | own)
    every = [*SOURCES, "Renamed", "Away"]

    code, out, err = run_cli("--config", app.config.file, "db", "prune")  # as a gather does

    assert code == 0, err
    assert "the habits of 1 source not configured nor fetched for 180 days" in out
    assert app.store.source_habits(every) == (
        {"Wire": (5, 9), "Away": (3, 3)},
        until,
        {("Away", "Wire"): 1, ("Wire", "Wire"): 5, ("Away", "Away"): 3},
    )
    clock.advance(timedelta(days=100))  # Away's last fetch is 200 days old now
    assert prune_stored(app).habits == 1
    assert app.store.source_habits(every) == ({"Wire": (5, 9)}, until, {("Wire", "Wire"): 5})
    assert prune_stored(app).habits == 0


def test_explain_on_a_new_install_says_no_habit_is_kept(app: App) -> None:
    _publish(app, "Wire", "Storm Isolde makes landfall on the coast")
    report = explain_report(app, app.config.digest(None))
    assert report.header()[3].startswith("learned: no source habits kept yet")
    assert report.to_json()["learned"]["habits_until"] is None


TALLY = {"Wire": (2, 5), "Post": (1, 1)}
PAIRS = {("Post", "Wire"): 1, ("Post", "Post"): 1, ("Wire", "Wire"): 2}


@dataclass(frozen=True)
class _Paused:
    """Run B, on a thread of its own, stopped right after one of its statements."""

    results: list[object]
    go: threading.Event
    thread: threading.Thread

    def resume(self) -> list[object]:
        """Run A has committed: let B go on and wait for its end; what it returned (or the
        name of the error it raised)."""
        self.go.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self.results


@contextmanager
def _paused_after(
    engine: Engine, matches: Callable[[str], bool], run: Callable[[Store], object]
) -> Iterator[_Paused]:
    """Run B (``run`` on a store of ``engine``) on its own thread, paused right after its
    first statement that ``matches`` until the body calls ``resume``: the interleaving
    that loses a race is forced (run A's save goes in there), not waited for. On leaving,
    B is let go and joined whatever happened: a failed assertion must not leave it waiting."""
    reached, go = threading.Event(), threading.Event()

    def pause(connection: Any, cursor: Any, statement: str, *args: Any, **kwargs: Any) -> None:
        if matches(statement) and not reached.is_set():
            reached.set()
            assert go.wait(30), "run A did not save while run B waited"

    results: list[object] = []

    def run_b() -> None:
        try:
            results.append(run(Store(engine)))
        except Exception as error:
            results.append(type(error).__name__)

    event.listen(engine, "after_cursor_execute", pause)
    thread = threading.Thread(target=run_b)
    thread.start()
    try:
        assert reached.wait(30), "run B never ran the statement it pauses after"
        yield _Paused(results, go, thread)
    finally:
        go.set()
        thread.join(30)
        event.remove(engine, "after_cursor_execute", pause)


@pytest.fixture
def engines(postgres_database: str) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one fresh, migrated PostgreSQL database: run A's and run B's."""
    engine_a, engine_b = open_engine(postgres_database), open_engine(postgres_database)
    upgrade(engine_a)
    yield engine_a, engine_b
    engine_a.dispose()
    engine_b.dispose()


def test_two_first_saves_at_once_on_postgresql_keep_one_tally(
    engines: tuple[Engine, Engine],
) -> None:
    """Two rank runs on a new install (the daemon's, an admin's ``explain``) save at once:
    one tally stands and the other run goes on without error (a source is the key).

    The interleaving that lost the race is forced, not waited for: run B counts the kept
    rows (none), then pauses there until run A's save has committed. B must then fail on
    the key, not delete A's rows (committed since its count, so its DELETE sees them) and
    write its own: both runs would say they saved, and the tally would hold its stories
    as often as the runs that raced."""
    engine_a, engine_b = engines
    until = NOW - timedelta(hours=24)

    def the_count(statement: str) -> bool:
        """The save's count of the kept rows."""
        return statement.lstrip().lower().startswith("select count(*)") and (
            "source_habits" in statement
        )

    def save(store: Store) -> object:
        return store.save_source_habits(TALLY, until, was=None, pairs=PAIRS)

    with _paused_after(engine_b, the_count, save) as b:
        # B holds no lock yet (its UPDATE matched nothing): A saves and commits meanwhile.
        assert Store(engine_a).save_source_habits(TALLY, until, was=None, pairs=PAIRS)
        assert b.resume() == [False]
        assert Store(engine_a).source_habits(TALLY) == (TALLY, until, PAIRS)


def test_a_read_of_the_habits_is_one_moment_while_a_save_commits_on_postgresql(
    engines: tuple[Engine, Engine],
) -> None:
    """A run reads the kept tally while another run's save commits: it gets the tally as
    it was before that save, ``until``, counts and pairs alike, or as it is after, never
    an old ``until`` with new counts (its next tally would count the stories between the
    two again). The save is forced in right after the read's first statement."""
    engine_a, engine_b = engines
    first = NOW - timedelta(hours=48)
    second = first + timedelta(hours=24)
    later = {"Wire": (3, 7), "Post": (2, 2)}
    later_pairs = {("Post", "Wire"): 2}
    assert Store(engine_a).save_source_habits(TALLY, first, was=None, pairs=PAIRS)

    def reads_until(statement: str) -> bool:
        """The statement that reads ``until``."""
        return "max(source_habits.tallied_until)" in statement

    with _paused_after(engine_b, reads_until, lambda store: store.source_habits(TALLY)) as b:
        assert Store(engine_a).save_source_habits(later, second, was=first, pairs=later_pairs)
        assert b.resume() == [(TALLY, first, PAIRS)]
        assert Store(engine_a).source_habits(TALLY) == (later, second, PAIRS | later_pairs)
