"""A new admin's first sends: `digest send` before any gather builds an empty edition, and
a later run of the same slot that has stories rebuilds it (same id) and sends it, instead
of finding it "already built: 0 stories". An edition that went out stays as it was."""

from __future__ import annotations

import asyncio
from pathlib import Path

from digest.app import App
from digest.config import load_config
from digest.editions import build_edition
from digest.pipeline import gather_sources
from digest.store import Edition, utcnow
from tests.conftest import FeedServer, OpenApp, rss, run_cli
from tests.test_local_time import _received as _inbox

STORIES = [
    {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"},
    {"title": "Bridge reopens after repairs", "guid": "2", "link": "https://wire.test/2"},
    {"title": "Library extends its hours", "guid": "3", "link": "https://wire.test/3"},
]


def _walkthrough(write_config, feed_server: FeedServer, digest_lines: str = "") -> Path:
    """`digest init`'s next steps: a config with one source, one subscriber, no gather."""
    url = feed_server.add("/wire.xml", rss(STORIES))
    config = write_config([("Wire", url)])
    text = config.read_text()
    config.write_text(text.replace("lookback_hours = 48", f"lookback_hours = 48\n{digest_lines}"))
    assert run_cli("--config", str(config), "subscribers", "add", "ann@example.org")[0] == 0
    return config


def _editions(config: Path) -> list[tuple[int | None, int]]:
    app = App.open(load_config(config))
    try:
        return [(e.id, e.story_count) for e in app.store.editions()]
    finally:
        app.close()


def test_send_before_the_first_gather_says_so(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    config = _walkthrough(write_config, feed_server)

    code, out, _ = run_cli("--config", str(config), "send")

    assert code == 0
    assert "nothing sent: edition 1 has no stories: no source has been gathered yet" in out
    assert "run `digest gather` or `digest send --gather`" in out
    assert "in the last 48 hours" not in out
    assert _inbox(tmp_path) == {}


def test_the_gathering_send_rebuilds_the_empty_edition_in_place_and_delivers_it(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    config = _walkthrough(write_config, feed_server)
    assert "built: 0 stories" in run_cli("--config", str(config), "send")[1]

    code, out, _ = run_cli("--config", str(config), "send", "--gather")

    assert code == 0, out
    assert "3 new" in out
    assert "edition 1 (daily" in out and "built: 3 stories" in out
    assert "already built" not in out
    assert "1 sent" in out
    assert list(_inbox(tmp_path)) == ["ann@example.org"]
    assert _editions(config) == [(1, 3)]  # rebuilt in place: the slot has one edition


def test_a_gathered_source_without_news_is_blamed_on_the_look_back_window(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.add("/quiet.xml", rss([]))
    config = write_config([("Quiet", url)])
    assert run_cli("--config", str(config), "subscribers", "add", "ann@example.org")[0] == 0

    out = run_cli("--config", str(config), "send", "--gather")[1]
    again = run_cli("--config", str(config), "send")[1]

    for text in (out, again):
        assert "none of the digest's sources had an article in the last 48 hours" in text
        assert "no source has been gathered yet" not in text
    assert "already built: 0 stories" in again  # still nothing to say: no rebuild
    assert _editions(config) == [(1, 0)]
    assert _inbox(tmp_path) == {}


def test_an_empty_edition_that_went_out_is_not_rebuilt(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    """With send_empty the 'nothing new' email went to Ann: news gathered later waits for
    the next slot, so nobody gets two editions of one slot."""
    config = _walkthrough(write_config, feed_server, "send_empty = true")

    assert "1 sent" in run_cli("--config", str(config), "send")[1]
    code, out, _ = run_cli("--config", str(config), "send", "--gather")

    assert code == 0
    assert "3 new" in out and "already built: 0 stories" in out
    assert [len(subjects) for subjects in _inbox(tmp_path).values()] == [1]
    assert _editions(config) == [(1, 0)]


def test_an_empty_edition_claimed_by_a_sender_meanwhile_is_not_replaced(
    write_config, feed_server: FeedServer, open_app: OpenApp
) -> None:
    """The rebuild is one conditional UPDATE: if another run began sending the empty
    edition after this one looked, the edition its readers get stays the one stored."""
    url = feed_server.add("/wire.xml", rss(STORIES))
    app = open_app([("Wire", url)])
    digest = app.config.digests[0]
    empty, _ = build_edition(app, digest, utcnow())
    assert empty.id is not None and empty.story_count == 0
    app.store.add_subscriber("ann@example.org")
    app.store.queue_deliveries(empty.id)
    assert app.store.claim_deliveries(empty.id, 10)  # another sender has it in flight
    asyncio.run(gather_sources(app))

    edition, built = build_edition(app, digest, utcnow())

    assert not built and edition.id == empty.id and edition.story_count == 0
    three = Edition(
        digest_id=digest.id, slot=empty.slot, subject="three", html="", text="", story_count=3
    )
    stored, rebuilt = app.store.rebuild_edition(empty.id, three)
    assert not rebuilt and (stored.story_count, stored.subject) == (0, empty.subject)
