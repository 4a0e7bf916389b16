"""A source waiting out its failures' backoff, as the admin fixing it meets it: a corrected
setting is tried on the next `digest gather`, `--force` tries every source now, and the
command's exit status says when no source could be read at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FeedServer, rss, run_cli
from tests.test_page import ARTICLES, serve

FEED = rss([{"title": "Bridge closed", "link": "https://wire.test/bridge", "guid": "w1"}])


def page_source(url: str, **settings: object) -> str:
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    return f'\n[[sources]]\nname = "Lantern"\nkind = "page"\nurl = "{url}"\n{lines}'


def gather(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """One `digest gather --json`: its exit status and its report per source."""
    code, out, _ = run_cli("--config", str(config), "gather", "--json", *args)
    return code, {s["name"]: s for s in json.loads(out)["sources"]}


@pytest.mark.parametrize(
    ("fixed", "new_items"),
    [
        # the selector corrected: the three it picks, and the two links of the page's
        # breaking block, which detection keeps beside a `links` selector (issue 20)
        ({"links": "ul.latest-list a"}, 5),
        ({}, len(ARTICLES)),  # or dropped for automatic detection
    ],
)
def test_a_corrected_source_is_tried_on_the_next_gather(
    feed_server: FeedServer,
    write_config: Callable[..., Path],
    fixed: dict[str, object],
    new_items: int,
) -> None:
    listing = serve(feed_server)
    broken = write_config([], extra=page_source(listing, links="ul.no-such-list a"))
    for _ in range(2):
        assert gather(broken)[1]["Lantern"]["status"] == "error"
    waiting = gather(broken)[1]["Lantern"]
    assert waiting["status"] == "skipped" and "2 failures in a row" in waiting["error"]

    corrected = write_config([], extra=page_source(listing, **fixed))
    code, reports = gather(corrected)
    assert (reports["Lantern"]["status"], reports["Lantern"]["new_items"]) == ("ok", new_items)
    assert code == 0


def test_a_changed_reading_setting_ends_the_wait_and_a_ranking_one_does_not(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    down = feed_server.add("/down.xml", "down", status=500)
    source = f'\n[[sources]]\nname = "Wire"\nurl = "{down}"\n'
    config = write_config([], extra=source)
    gather(config), gather(config)
    assert gather(config)[1]["Wire"]["status"] == "skipped"
    asked = len(feed_server.requests)
    # Weight and topics are how it ranks, not how it is read: the wait stands.
    config = write_config([], extra=source + 'weight = 2\ntopics = ["world"]\n')
    assert gather(config)[1]["Wire"]["status"] == "skipped"
    assert len(feed_server.requests) == asked
    config = write_config([], extra=source + 'kind = "page"\n')
    assert gather(config)[1]["Wire"]["status"] == "error"  # tried again at once
    assert len(feed_server.requests) == asked + 1
    # Its failures count afresh under the new settings: retried once, then it waits again.
    assert [gather(config)[1]["Wire"]["status"] for _ in range(2)] == ["error", "skipped"]


def test_force_tries_every_waiting_source_now(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    down = feed_server.add("/down.xml", "down", status=500)
    gone = feed_server.add("/gone.xml", "gone", status=410)
    config = write_config([("Down", down), ("Gone", gone)])
    gather(config), gather(config)
    _, reports = gather(config)
    assert (reports["Down"]["status"], reports["Gone"]["status"]) == ("skipped", "gone")

    feed_server.add("/down.xml", FEED)
    feed_server.add("/gone.xml", FEED)
    code, reports = gather(config, "--force")
    assert code == 0
    assert (reports["Down"]["status"], reports["Gone"]["status"]) == ("ok", "ok")


def test_gather_exits_1_when_no_source_was_read(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    down = feed_server.add("/down.xml", "down", status=500)
    config = write_config([("Down", down), ("Missing", feed_server.url("/missing.xml"))])
    code, out, _ = run_cli("--config", str(config), "gather")
    assert code == 1 and "FAIL  Down" in out and "FAIL  Missing" in out
    run_cli("--config", str(config), "gather")
    code, reports = gather(config)  # both waiting out their backoff now
    assert code == 1 and {r["status"] for r in reports.values()} == {"skipped"}

    wire = feed_server.add("/wire.xml", FEED)
    config = write_config([("Down", down), ("Wire", wire)])
    assert gather(config)[0] == 0  # one source read is a run that worked

    code, out, _ = run_cli("--config", str(config), "gather", "--help")
    assert "1 when none was" in " ".join(out.split())
