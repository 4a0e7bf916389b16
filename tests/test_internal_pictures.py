"""A picture a feed places on an internal address never reaches a reader.

An email's pictures are requested by every reader's mail client (and the web view's by
their browser): one at ``http://192.168.1.1/...`` or ``http://127.0.0.1:631/...`` has each
reader request their own router or machine for whoever wrote the feed. Such a picture is
left out at gathering, with a note naming it; the story stays, and pictures on the public
internet are kept.
"""

from __future__ import annotations

import asyncio
import json
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult

import pytest

from digest.records import FeedItem
from digest.sources import addresses
from digest.sources.addresses import picture_refusal
from tests.conftest import FeedServer, ago, run_cli

MEDIA = 'xmlns:media="http://search.yahoo.com/mrss/"'
PICTURES = {  # headline: picture
    "Harbour strike ends after nine days": "http://192.168.1.1/cgi-bin/reboot.jpg",
    "Council approves new tram line": "http://169.254.169.254/latest/meta-data/a.jpg",
    "Museum reopens its east wing": "http://127.0.0.1:631/admin/a.jpg",
    "Floods close mountain pass": "http://[::1]/a.jpg",
    "Orchestra names young conductor": "http://localhost/a.jpg",
    "Bakery wins national bread prize": "https://img.example.org/bread.jpg",
}
PUBLIC = "Bakery wins national bread prize"


def _feed() -> str:
    items = "".join(
        f"<item><title>{headline}</title>"
        f"<link>https://wire.example.org/{n}</link><guid>{n}</guid>"
        f"<pubDate>{ago(minutes=10 + n)}</pubDate>"
        f"<description>{headline}, the desk reports.</description>"
        f'<media:content url="{url}" medium="image" width="800" height="600"/></item>'
        for n, (headline, url) in enumerate(PICTURES.items())
    )
    inline = (
        "<item><title>Wiki editors meet in Lyon</title>"
        "<link>https://wire.example.org/inline</link><guid>inline</guid>"
        f"<pubDate>{ago(minutes=5)}</pubDate><description>"
        '&lt;img src="http://10.0.0.7/wiki/photo.jpg" width="800" height="600"&gt;'
        "Trains run late.</description></item>"
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0" {MEDIA}><channel><title>Wire</title>'
        f"{items}{inline}</channel></rss>"
    )


@pytest.fixture
def sent(feed_server: FeedServer, write_config: Any) -> tuple[dict[str, Any], str]:
    """One gather and send: the source's JSON report and the HTML of the email."""
    config: Path = write_config([("Wire", feed_server.add("/wire.xml", _feed()))])
    assert run_cli("--config", str(config), "subscribers", "add", "ann@example.org")[0] == 0
    code, out, err = run_cli("--config", str(config), "gather", "--json")
    assert code == 0, err
    [report] = json.loads(out)["sources"]
    code, _, err = run_cli("--config", str(config), "send")
    assert code == 0, err
    [mail] = list((config.parent / "mail" / "new").iterdir())
    message = message_from_bytes(mail.read_bytes(), policy=default)
    assert isinstance(message, EmailMessage)
    html = message.get_body(("html",))
    assert html is not None
    return report, html.get_content()


def test_internal_pictures_are_left_out_with_a_note_and_their_stories_kept(
    sent: tuple[dict[str, Any], str],
) -> None:
    report, html = sent
    assert (report["status"], report["new_items"]) == ("ok", len(PICTURES) + 1), report
    internal = [url for headline, url in PICTURES.items() if headline != PUBLIC]
    for url in [*internal, "http://10.0.0.7/wiki/photo.jpg"]:
        assert url not in html
        assert any(url in note and "left out" in note for note in report["notes"]), url
    assert PICTURES[PUBLIC] in html  # a picture on the public internet is shown
    for headline in [*PICTURES, "Wiki editors meet in Lyon"]:
        assert headline in html  # each story stays, without its picture


@pytest.mark.parametrize(
    ("url", "source", "shown"),
    [
        ("https://img.example.org/a.jpg", set(), True),
        ("http://192.168.1.1/a.jpg", {"public"}, False),
        ("http://192.168.1.1/a.jpg", {"private"}, True),  # an intranet's own digest
        ("http://127.0.0.1/a.jpg", {"loopback"}, False),  # a reader's own machine: never
        ("http://169.254.169.254/a.jpg", {"link-local"}, False),
        ("http://pictures.example.org:8080/a.jpg", set(), True),  # a name is not judged
        # IPv4 written as numbers, which a reader's browser and mail client read as one
        ("http://3232235777/cgi-bin/reboot.jpg", {"public"}, False),  # 192.168.1.1
        ("http://0xa9fea9fe/a.jpg", set(), False),  # 169.254.169.254
        ("http://127.1:631/a.jpg", set(), False),
        ("http://1.2.3.4.5/a.jpg", set(), True),  # no address: a name
    ],
)
def test_which_pictures_are_shown(url: str, source: set[str], shown: bool) -> None:
    assert (picture_refusal(url, source) is None) is shown


def test_a_gathers_pictures_at_names_cost_one_read_of_each_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every item of every source is asked: 500 feeds of 20 items are 10,000 pictures, and
    two parses of each address plus a failed IP parse of each name cost the gather ~15% of
    its CPU. Each picture's address is split once, and a name is never parsed as an IP."""
    splits: list[str] = []
    parsed: list[object] = []
    split, parse = addresses.urlsplit, addresses.ipaddress.ip_address

    def counted_split(url: str) -> SplitResult:
        splits.append(url)
        return split(url)

    def counted_parse(text: str) -> object:
        parsed.append(text)
        return parse(text)

    monkeypatch.setattr(addresses, "urlsplit", counted_split)
    monkeypatch.setattr(addresses.ipaddress, "ip_address", counted_parse)
    items = [
        FeedItem(
            guid=str(n),
            url=f"https://wire.example.org/{n}",
            title=f"Story {n}",
            summary="",
            author=None,
            published_at=None,
            image_url=f"https://img{n % 3}.example.org/{n}.jpg",
        )
        for n in range(20)
    ]
    kept, notes = asyncio.run(
        addresses.without_internal_pictures(items, "https://wire.example.org/feed", 1.0)
    )
    assert (kept, notes) == (items, [])
    assert len(splits) == len(items)
    assert parsed == []


def test_the_look_up_a_picture_asks_for_has_what_is_left_of_the_sources_time(
    feed_server: FeedServer, write_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A picture on a private network asks whether the source is on one too, by a look-up
    of its own address: that look-up is the source's time (gather.timeout_seconds, its
    requests included), not as much again."""
    given: list[float] = []
    host_kinds = addresses.host_kinds

    async def recorded(host: str, port: int, timeout: float) -> set[str]:
        given.append(timeout)
        return await host_kinds(host, port, timeout)

    monkeypatch.setattr(addresses, "host_kinds", recorded)
    url = feed_server.add("/wire.xml", _feed(), delay=0.6)  # the feed takes 0.6 s of 1.5
    config: Path = write_config([("Wire", url)], timeout=1.5)
    code, out, err = run_cli("--config", str(config), "gather", "--json")
    assert code == 0, err
    [report] = json.loads(out)["sources"]
    assert report["status"] == "ok", report
    assert len(given) == 1 and given[0] <= 0.95, given
