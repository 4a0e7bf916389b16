"""A reader who chose topics sees Latest headed by their topics.

Latest is grouped by its lead's first topic: a story of a source with topics
["technology", "science"] stood under "Technology" in the email of a reader who chose
Science and World, who then wondered whether their choice was saved. Their email heads
each group with the first of their own topics the lead has; everyone else's is as it was.
"""

from __future__ import annotations

from pathlib import Path

from digest.records import ArticleRecord, Story
from digest.render import group_latest
from tests.conftest import FeedServer, ago, rss, run_cli
from tests.renders import mailed, plain_text


def test_each_reader_sees_latest_headed_by_their_own_topics(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    tech = feed_server.add(
        "/tech.xml",
        rss(
            [
                {
                    "title": "Chipmaker unveils a smaller processor",
                    "guid": "t1",
                    "link": "https://tech.test/1",
                    "date": ago(hours=1),
                },
                {
                    "title": "Transit agencies open their timetables",
                    "guid": "t2",
                    "link": "https://tech.test/2",
                    "date": ago(hours=2),
                },
            ]
        ),
    )
    local = feed_server.add(
        "/local.xml",
        rss(
            [
                {
                    "title": "Central library reopens after restoration",
                    "guid": "l1",
                    "link": "https://local.test/1",
                    "date": ago(hours=1, minutes=30),
                },
                {
                    "title": "Runner sets a course record at the marathon",
                    "guid": "l2",
                    "link": "https://local.test/2",
                    "date": ago(hours=3),
                },
            ]
        ),
    )
    config = write_config(
        [("Ledger", tech), ("Gazette", local)],
        topics={"Ledger": ["technology", "science"], "Gazette": ["local", "world"]},
    )
    base = ("--config", str(config))
    assert run_cli(*base, "subscribers", "add", "all@example.org")[0] == 0
    assert (
        run_cli(
            *base,
            "subscribers",
            "add",
            "mine@example.org",
            "--topic",
            "science",
            "--topic",
            "world",
        )[0]
        == 0
    )
    # And one in another zone: a render of its own, not the edition's stored one.
    assert (
        run_cli(
            *base,
            "subscribers",
            "add",
            "far@example.org",
            "--topic",
            "world",
            "--topic",
            "science",
            "--timezone",
            "Asia/Karachi",
        )[0]
        == 0
    )
    code, out, err = run_cli(*base, "send", "--gather")
    assert code == 0, out + err

    texts = {to: plain_text(message) for to, message in mailed(tmp_path).items()}
    everyone = texts["all@example.org"]
    assert "\nTechnology · Ledger\n" in everyone and "\nLocal · Gazette\n" in everyone
    for reader in ("mine@example.org", "far@example.org"):
        mine = texts[reader]
        assert "\nScience · Ledger\n" in mine and "\nWorld · Gazette\n" in mine, mine
        assert "Technology" not in mine and "\nLocal" not in mine
        assert "Chipmaker unveils" in mine and "Runner sets a course" in mine


def test_groups_are_headed_by_the_first_chosen_topic_the_lead_has() -> None:
    from datetime import UTC, datetime

    def story(i: int, topics: tuple[str, ...]) -> Story:
        lead = ArticleRecord(
            i,
            "S",
            f"T{i}",
            f"https://s.test/{i}",
            "",
            datetime(2026, 1, 1, tzinfo=UTC),
            topics=topics,
        )
        return Story(lead, (), 1.0, ())

    stories = (story(1, ("technology", "science")), story(2, ("science",)), story(3, ()))
    assert [k for k, _ in group_latest(stories)] == ["Technology", "Science", "S"]
    grouped = group_latest(stories, prefer=frozenset({"science"}))
    assert [(k, [s.lead.id for s in v]) for k, v in grouped] == [("Science", [1, 2]), ("S", [3])]
