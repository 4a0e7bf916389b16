"""Each subscriber reads the edition in their own time zone and language, rendered once per pair."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from babel.dates import format_datetime as format_dt

from digest.editions.stored import ranked_from_json, ranked_to_json
from digest.records import (
    ArticleRecord,
    RankedEdition,
    Signal,
    Story,
)
from digest.schedule import latest_slot
from tests.conftest import FeedServer, rss, run_cli
from tests.renders import mailed, plain_text, send_counting_renders


def test_stories_survive_their_round_trip_through_the_edition_row() -> None:
    when = datetime(2026, 11, 28, 6, 30, tzinfo=UTC)
    lead = ArticleRecord(
        1,
        "Wire",
        "Storm",
        "https://w.test/1",
        "S.",
        when,
        1.5,
        ("world",),
        True,
        "https://w.test/1.jpg",
        "Waves",
    )
    ranked = RankedEdition((Story(lead, (lead,), 2.5, (Signal("cue", 1.0, 0.5),)),), ())
    [story] = ranked_from_json(ranked_to_json(ranked)).breaking
    # The lead whole; of the other articles what a render or a repeat check reads (stored
    # compactly: test_history_retention has the whole of it).
    assert (story.lead, story.score, story.signals) == (lead, 2.5, (Signal("cue", 1.0, 0.5),))
    assert [(a.id, a.source) for a in story.others] == [(1, "Wire")]
    assert (story.sources, story.topics, story.also) == (("Wire",), frozenset({"world"}), ())


def _bodies(folder: Path) -> dict[str, str]:
    """Each reader's message: its Subject, then its text."""
    return {to: f"{m['Subject']}\n{plain_text(m)}" for to, m in mailed(folder).items()}


def test_subscribers_get_their_own_language_and_time_zone(
    write_config, feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The articles are forty minutes old whenever the test runs: the dates shown are the
    # day of the edition's slot, in each reader's zone, and the lead's time there.
    built = datetime.now(UTC)
    lead_at = (built - timedelta(minutes=40)).replace(second=0, microsecond=0)
    url = feed_server.add(
        "/f.xml",
        rss(
            [
                {
                    "title": "Harbour strike ends",
                    "guid": "1",
                    "link": "https://wire.test/1",
                    "date": format_datetime(lead_at, usegmt=True),
                },
                {
                    "title": "Harbour strike is over",
                    "guid": "2",
                    "link": "https://post.test/2",
                    "date": format_datetime(lead_at - timedelta(minutes=10), usegmt=True),
                },
            ]
        ),
    )

    # An edition is dated by its slot (the config's 07:00 UTC), not by when it is built:
    # between 23:00 and 24:00 UTC a Paris reader's day is already the next one.
    slot = latest_slot("0 7 * * *", "UTC", built)

    def shown(zone: str, locale: str) -> tuple[str, str]:
        """The dateline's day and the lead's time, as a reader in ``zone`` reads them."""
        tz = ZoneInfo(zone)
        day = format_date(slot.astimezone(tz), format="full", locale=locale)
        # A time of the edition's own day (printed at its top) goes without its weekday.
        same_day = lead_at.astimezone(tz).date() == slot.astimezone(tz).date()
        pattern = "HH:mm" if same_day else "EEE HH:mm"
        return day, format_dt(lead_at.astimezone(tz), pattern, locale=locale)

    config = write_config([("Wire", url)])
    renders, _ = send_counting_renders(
        config,
        monkeypatch,
        ["ana@example.org"],
        ["bea@example.org", "--locale", "fr", "--timezone", "Europe/Paris"],
        ["cat@example.org", "--locale", "fr", "--timezone", "Europe/Paris"],
        ["dan@example.org", "--locale", "de", "--timezone", "America/New_York"],
    )
    # One render for the edition itself, then one per other (time zone, language) pair.
    assert sorted(renders) == ["America/New_York/de", "Europe/Paris/fr", "UTC/en"]

    bodies = _bodies(tmp_path)
    assert len(bodies) == 4
    english = bodies["ana@example.org"]
    day, time = shown("UTC", "en")
    assert "Harbour strike" in english and day in english  # "Saturday, November 28, 2026"
    assert time in english and "Unsubscribe:" in english  # "Sat 06:30"
    french = bodies["bea@example.org"]
    paris_day, paris_time = shown("Europe/Paris", "fr")
    assert paris_day in french and paris_time in french  # "samedi 28 novembre 2026", "sam. 07:30"
    assert "Se désabonner\u202f:" in french and "Préférences\u202f:" in french
    assert "\nBonjour,\n" in french.replace("\r\n", "\n")
    assert paris_day in bodies["cat@example.org"]  # same segment, same render
    german = bodies["dan@example.org"]
    new_york_day, new_york_time = shown("America/New_York", "de")
    assert new_york_day in german and new_york_time in german  # "Samstag, 28. November 2026"
    assert "Abbestellen:" in german


def test_a_subscriber_with_topics_gets_only_those_stories(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    world = feed_server.add(
        "/world.xml",
        rss(
            [
                {
                    "title": "Ceasefire talks resume in Geneva",
                    "guid": "w1",
                    "link": "https://w.test/1",
                }
            ]
        ),
    )
    science = feed_server.add(
        "/science.xml",
        rss(
            [
                {
                    "title": "Comet visible tonight across Europe",
                    "guid": "s1",
                    "link": "https://s.test/1",
                }
            ]
        ),
    )
    config = write_config(
        [("World Desk", world), ("Science Desk", science)],
        topics={"World Desk": ["world"], "Science Desk": ["science"]},
    )
    assert run_cli("--config", str(config), "subscribers", "add", "all@example.org")[0] == 0
    assert (
        run_cli(
            "--config", str(config), "subscribers", "add", "sci@example.org", "--topic", "science"
        )[0]
        == 0
    )
    assert run_cli("--config", str(config), "send", "--gather")[0] == 0
    bodies = _bodies(tmp_path)
    assert "Ceasefire talks" in bodies["all@example.org"]
    assert "Comet visible" in bodies["all@example.org"]
    assert "Comet visible" in bodies["sci@example.org"]
    assert "Ceasefire talks" not in bodies["sci@example.org"]


def test_narrow_keeps_rank_order_and_sections() -> None:
    from digest.rank import narrow

    when = datetime(2026, 11, 28, 6, 30, tzinfo=UTC)

    def story(i: int, topic: str) -> Story:
        lead = ArticleRecord(i, "Wire", f"S{i}", f"https://w.test/{i}", "", when, 1.0, (topic,))
        return Story(lead, (), 1.0, ())

    ranked = RankedEdition(
        (story(1, "world"), story(2, "science")),
        (story(3, "science"), story(4, "sport"), story(5, "science")),
    )
    narrowed = narrow(ranked, {"science"})
    assert [s.lead.id for s in narrowed.breaking] == [2]
    assert [s.lead.id for s in narrowed.latest] == [3, 5]
