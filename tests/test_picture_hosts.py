"""A picture's host is judged as every reader's mail client reads it.

Browsers and mail clients parse an address by the WHATWG URL standard: they percent-decode
a host and map it by UTS #46, so ``http://%31%39%32.168.1.1/`` and ``http://１９２.168.1.1/``
are 192.168.1.1, the reader's own router. digest reads the host the same way where it makes
an address canonical (what it stores and mails), so the picture rule judges the address
the reader's client will request; a host that would still read otherwise is refused.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from digest.app import App
from digest.config import load_config
from digest.sources.normalise import canonical_url, refused_words
from digest.sources.parse import parse_feed
from tests.conftest import FeedServer, ago, run_cli
from tests.store_queries import every_article

MEDIA = 'xmlns:media="http://search.yahoo.com/mrss/"'
# Hosts a WHATWG parser reads as another: as written, and as browsers read them.
READ_AS = {
    "%31%39%32.168.1.1": "192.168.1.1",
    "１９２.168.1.1": "192.168.1.1",  # full-width digits
    "①②⑦.0.0.1": "127.0.0.1",  # circled digits
    "192。168.1.1": "192.168.1.1",  # an ideographic full stop
    "%31%32%37.0.0.1": "127.0.0.1",
    "ＥＸＡＭＰＬＥ.org": "example.org",
    "%65xample.org": "example.org",
}
# Hosts that read as no plain host once decoded: refused, not stored.
UNREADABLE = [
    "%2531%2539%2532.168.1.1",  # still "%" once decoded
    "192.168.1.1%2fevil.example",  # a decoded "/" would make another address
    "%ff.example.org",  # not UTF-8
    "١٩٢.168.1.1",  # Arabic-Indic digits, which some software reads as numbers
]


@pytest.mark.parametrize(("written", "read"), READ_AS.items())
def test_a_host_is_kept_as_browsers_read_it(written: str, read: str) -> None:
    assert canonical_url(f"http://{written}/pic.jpg") == f"http://{read}/pic.jpg"


@pytest.mark.parametrize("written", UNREADABLE)
def test_a_host_that_reads_as_no_plain_host_is_refused(written: str) -> None:
    assert canonical_url(f"http://{written}/pic.jpg") is None


def test_names_written_in_other_scripts_stay_as_they_are() -> None:
    """Only the mapping browsers apply: an IDN keeps its letters (its link shows them)."""
    assert canonical_url("https://MÜNCHEN.de/a") == "https://münchen.de/a"
    assert canonical_url("https://пример.рф/новости") == "https://пример.рф/новости"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_hosts_are_read_as_a_whatwg_parser_reads_them() -> None:
    """The same hosts through node's URL parser (WHATWG's, as browsers'): where it reads
    one, digest reads it alike; where it finds none, digest keeps none."""
    written = [*READ_AS, *UNREADABLE[:3], "127.0.0.1%2e"]
    script = (
        "const out = {}; for (const h of JSON.parse(process.argv[1])) {"
        " try { out[h] = new URL(`http://${h}/pic.jpg`).hostname } catch { out[h] = null } }"
        " console.log(JSON.stringify(out))"
    )
    done = subprocess.run(
        ["node", "-e", script, json.dumps(written)], capture_output=True, text=True, check=True
    )
    whatwg = json.loads(done.stdout)
    for host in written:
        ours = canonical_url(f"http://{host}/pic.jpg")
        theirs = whatwg[host]
        if theirs is None:
            assert ours is None, host
        else:  # a trailing dot is the same address, to the URL parser and to the resolver
            assert ours is not None and (urlsplit(ours).hostname or "").rstrip(".") == theirs


def _feed(pictures: dict[str, str]) -> str:
    items = "".join(
        f"<item><title>{headline}</title>"
        f"<link>https://wire.example.org/{n}</link><guid>{n}</guid>"
        f"<pubDate>{ago(minutes=10 + n)}</pubDate>"
        f"<description>{headline}, the desk reports.</description>"
        f'<media:content url="{url}" medium="image" width="800" height="600"/></item>'
        for n, (headline, url) in enumerate(pictures.items())
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0" {MEDIA}><channel><title>Wire</title>'
        f"{items}</channel></rss>"
    )


def test_a_picture_on_an_internal_address_however_written_is_left_out_with_a_note(
    feed_server: FeedServer, write_config: Any
) -> None:
    """Gathered from a real server: each internal picture, written as a browser decodes
    it, is left out with the network it is on named; one that reads as no plain host is
    left out with a note saying so; a public one is kept, and every story is stored."""
    pictures = {
        "Harbour strike ends": "http://%31%39%32.168.1.1/cgi-bin/reboot.jpg",
        "Tram line approved": "http://１９２.168.1.1/reboot.jpg",
        "Museum reopens": "http://①②⑦.0.0.1:631/admin.jpg",
        "Pass closes": "http://%2531%2539%2532.168.1.1/a.jpg",
        "Ferry delayed": "http://192.168.1.1\\cgi-bin\\reboot.jpg",
        "Bakery wins prize": "https://%69mg.example.org/bread.jpg",
    }
    config: Path = write_config([("Wire", feed_server.add("/wire.xml", _feed(pictures)))])
    code, out, err = run_cli("--config", str(config), "gather", "--json")
    assert code == 0, err
    [report] = json.loads(out)["sources"]
    app = App.open(load_config(config))
    try:
        stored = {article.title: article.image_url for article, _ in every_article(app)}
    finally:
        app.close()
    assert stored == {
        **dict.fromkeys(pictures),
        "Bakery wins prize": canonical_url("https://img.example.org/bread.jpg"),
    }

    def note(headline: str) -> str:
        [said] = [n for n in report["notes"] if headline in n]
        return said

    assert "http://192.168.1.1/cgi-bin/reboot.jpg is on a private network" in note(
        "Harbour strike ends"
    )
    assert "http://192.168.1.1/reboot.jpg is on a private network" in note("Tram line approved")
    assert "this machine (loopback)" in note("Museum reopens")
    said = note("Pass closes")
    assert "written with a host mail clients may read as another" in said, said
    assert said.endswith("left out"), said
    said = note("Ferry delayed")
    assert "written with a host mail clients may read as another" in said, said


# Addresses whose authority holds a backslash: a WHATWG parser ends the host there (it
# reads "\\" as "/" in an http(s) address), Python's urlsplit does not.
BACKSLASHED = [
    "http://192.168.1.1\\reboot.jpg",  # browsers: 192.168.1.1, /reboot.jpg
    "http://127.0.0.1\\.cdn.example.org/a.jpg",  # browsers: 127.0.0.1
    "http://192.168.1.1\\@cdn.example.org/a.jpg",  # Python: cdn.example.org
]


@pytest.mark.parametrize("written", BACKSLASHED)
def test_an_address_with_a_backslash_in_its_host_is_refused(written: str) -> None:
    """Stored as it was, the host Python reads is not the one a reader's client opens:
    http://192.168.1.1\\reboot.jpg passed the picture rule as a name, and every reader's
    browser requested http://192.168.1.1/reboot.jpg."""
    assert canonical_url(written) is None
    assert "host mail clients may read as another" in (refused_words(written) or "")


def test_an_item_whose_link_host_reads_as_no_plain_host_is_skipped_with_a_note() -> None:
    """Links go through the same reading: one a reader's client would open elsewhere is
    not mailed; its item is skipped, and the note says why."""
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
        b"<item><title>Elsewhere</title><link>https://%2577ire.example.org/1</link></item>"
        b"<item><title>Tram line opens</title>"
        b"<link>https://%77ire.example.org/tram</link></item></channel></rss>"
    )
    items, notes = parse_feed("Wire", body, {"Content-Type": "application/rss+xml"})
    assert [item.url for item in items] == ["https://wire.example.org/tram"]
    [note] = notes
    assert "'Elsewhere'" in note and "written with a host mail clients may read as" in note
    assert note.endswith("skipped"), note


# Names whose script needs a zero-width joiner or non-joiner where IDNA 2008 allows one
# (after a virama; between joining letters): the joiner is kept, written percent-encoded as
# every invisible character of an address is, which browsers read as the same name.
JOINED = {
    "ශ්\u200dරී.lk": "ශ්%E2%80%8Dරී.lk",  # Sinhala "Sri"
    "می\u200cخواهم.ir": "می%E2%80%8Cخواهم.ir",  # Persian, a non-joiner between letters
}


@pytest.mark.parametrize(("written", "kept"), JOINED.items())
def test_a_name_whose_script_needs_a_joiner_is_kept(written: str, kept: str) -> None:
    """Refused as "invisible" before, each of the site's items was skipped."""
    url = canonical_url(f"https://{written}/news/1")
    assert url == f"https://{kept}/news/1"
    assert canonical_url(url) == url


@pytest.mark.parametrize("written", ["exa\u200dmple.org", "ශ\u200dරී.lk", "\u200cwire.example"])
def test_a_joiner_where_no_script_needs_one_is_refused(written: str) -> None:
    """Between Latin letters, or after a letter that is no virama, a joiner only hides:
    the host is refused, with a note, as any other invisible character."""
    url = f"https://{written}/news/1"
    assert canonical_url(url) is None
    assert "host mail clients may read as another" in (refused_words(url) or "")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_a_kept_joiner_is_read_by_a_whatwg_parser_as_the_name_written() -> None:
    script = (
        "const [a, b] = JSON.parse(process.argv[1]);"
        " console.log(JSON.stringify([new URL(a).hostname, new URL(b).hostname]))"
    )
    for written in JOINED:
        pair = [f"https://{written}/", canonical_url(f"https://{written}/")]
        done = subprocess.run(
            ["node", "-e", script, json.dumps(pair)], capture_output=True, text=True, check=True
        )
        as_written, as_kept = json.loads(done.stdout)
        assert as_written == as_kept and as_kept.startswith("xn--"), (as_written, as_kept)


@pytest.mark.parametrize("host", ["news.example.org^x", "news example.org", "n<b>.org", "a|b.org"])
def test_a_host_with_a_character_no_host_holds_is_refused(host: str) -> None:
    """A WHATWG parser finds no address in these (the link opens nothing in any reader's
    client); they were stored and mailed as written, with no note."""
    url = f"https://{host}/news/1"
    assert canonical_url(url) is None
    assert "host mail clients may read as another" in (refused_words(url) or "")
