"""A listing page's breaking-news links are articles too, whether the admin names them with
the `breaking` selector beside `links` or leaves both to automatic detection.

The listing is in the shape config.example.toml documents: a "Latest" section of headlines
(``section.latest a.headline``) and "Breaking News" blocks (``.breaking-news a``), one of
them a banner in the site header. Its article pages are those of tests/test_page.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import FeedServer, run_cli
from tests.test_page import (
    ELECTION,
    EMBASSY,
    ENVOY,
    HTML,
    PROBE,
    SALARIES,
    article_requests,
    read,
    serve,
)

LISTING = """<!doctype html><html><body>
<header class="site-header">
  <div class="breaking-news"><span>Breaking</span>
    <a href="/live/election-count-results-as-they-come-in">Election count</a></div>
  <nav><a href="/world">World</a></nav>
</header>
<main>
  <section class="breaking-news">
    <h2>Breaking News</h2>
    <a href="/world/embassy-says-it-is-closely-following-developments">Embassy watching</a>
    <a href="/business/province-pays-salaries-early-before-holiday-48213">Province to pay
      public salaries early before the holiday</a>
    <a href="https://other.example/2026/11/27/a-rival-story-on-the-same-events">Rival</a>
  </section>
  <section class="latest">
    <h2>Latest</h2>
    <a class="headline" href="/world/2026/11/27/envoy-visit-eases-trade-tensions">Envoy's
      visit sets out to ease trade tensions between the two capitals</a>
    <a class="headline" href="/business/province-pays-salaries-early-before-holiday-48213"
      >Province to pay public salaries early before the holiday</a>
    <a class="headline" href="/science/2026/11/28/probe-returns-samples-from-asteroid">Probe
      returns samples from a distant asteroid after six years</a>
  </section>
</main></body></html>"""


def serve_listing(server: FeedServer, extra: str = "") -> str:
    """The article pages, and this listing at /front."""
    serve(server)
    return server.add("/front", LISTING.replace("</main>", f"{extra}</main>"), headers=HTML)


async def test_the_breaking_selector_adds_its_links_to_the_links_selectors(
    feed_server: FeedServer,
) -> None:
    items, notes = await read(
        feed_server,
        serve_listing(feed_server),
        links="section.latest a.headline",
        breaking=".breaking-news a",
    )
    assert set(items) == {ENVOY, SALARIES, PROBE, ELECTION, EMBASSY}
    assert {path for path, item in items.items() if item.breaking} == {
        ELECTION,
        EMBASSY,
        SALARIES,  # in both blocks: one item, flagged
    }
    # Each article page once, the other site's never.
    assert sorted(article_requests(feed_server)) == sorted(items)
    assert not any("other.example" in path for path, _ in feed_server.requests)
    assert notes == ["1 breaking link left out: on another site"]


async def test_automatic_detection_keeps_a_breaking_blocks_links(
    feed_server: FeedServer,
) -> None:
    # A short ticker label and a banner in the site header fail the headline and the chrome
    # rules that keep menus out; being in a breaking block makes them articles all the same.
    more = '<div class="breaking-news"><a href="/breaking">More breaking news</a></div>'
    items, notes = await read(feed_server, serve_listing(feed_server, more))
    assert set(items) == {ENVOY, SALARIES, PROBE, ELECTION, EMBASSY}
    assert {ELECTION, EMBASSY, SALARIES} <= {p for p, i in items.items() if i.breaking}
    assert not items[ENVOY].breaking
    assert sorted(notes) == [
        "1 breaking link left out: not an article address (a section, tag or account page)",
        "1 breaking link left out: on another site",
    ]
    assert "/breaking" not in [path for path, _ in feed_server.requests]


def test_left_out_breaking_links_are_a_verbose_log_line(
    feed_server: FeedServer, write_config: Callable[..., Path]
) -> None:
    listing = serve_listing(feed_server)
    config = write_config(
        [], extra=f'\n[[sources]]\nname = "Front"\nkind = "page"\nurl = "{listing}"\n'
    )
    code, _, err = run_cli("-v", "--config", str(config), "gather")
    assert code == 0, err
    assert "source 'Front': 1 breaking link left out: on another site" in err


async def test_a_links_selector_alone_keeps_breaking_detection_on(
    feed_server: FeedServer,
) -> None:
    """Setting only `links` (the Latest column) keeps finding the page's breaking blocks
    (issue 20, point 3): it used to switch detection off for every link it did not select."""
    items, notes = await read(
        feed_server, serve_listing(feed_server), links="section.latest a.headline"
    )
    assert set(items) == {ENVOY, SALARIES, PROBE, ELECTION, EMBASSY}
    assert {p for p, i in items.items() if i.breaking} == {ELECTION, EMBASSY, SALARIES}
    assert notes == ["1 breaking link left out: on another site"]
