"""A corpus of hostile and broken sources, all served by one real local HTTP server at once.

Each case carries its own expectation: the status its source must be reported with, the
words its error must contain, how many items it may store, and any check of its own. One
gather runs every case beside a healthy source; then, for each case, the JSON document of
``digest gather --json`` and the stored health columns must say the same, the healthy
source's items must be stored, and no stored article may carry anything hostile.
"""

from __future__ import annotations

import json
import socket
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from digest.app import App
from digest.config import load_config
from digest.store import Article, Source
from tests.conftest import FeedServer, rss, run_cli
from tests.store_queries import every_article

MAX_BODY_MB = 4
CAP = MAX_BODY_MB * 1024 * 1024
NOW = datetime.now(UTC)
Serve = Callable[[FeedServer, str], str]  # registers the case's route(s) at a path; its URL
Check = Callable[[list[Article], dict[str, Any]], None]  # stored articles, JSON report


@dataclass(frozen=True)
class Case:
    """One hostile source and what digest must make of it."""

    name: str
    serve: Serve
    status: str = "ok"  # how the source is reported: ok | error | gone
    reason: str = ""  # words its error must contain (and its stored last_error)
    new: int | None = None  # how many items it stores, where that is fixed
    check: Check | None = None


# --- how cases are served ---------------------------------------------------------------------


def body(content: bytes | str, status: int = 200, **headers: str) -> Serve:
    """A plain answer: status, headers (Content-Type defaults to RSS), body."""
    head = {"Content-Type": "application/rss+xml", **headers}
    head = {k.replace("_", "-"): v for k, v in head.items()}

    def serve(server: FeedServer, path: str) -> str:
        return server.add(path, content, status=status, headers=head)

    return serve


def raw(answer: Callable[[BaseHTTPRequestHandler], None]) -> Serve:
    """An answer written by hand on the connection."""

    def serve(server: FeedServer, path: str) -> str:
        server.add(path, b"", raw=answer)
        return server.url(path)

    return serve


def redirect(location: str, status: int = 302) -> Serve:
    def serve(server: FeedServer, path: str) -> str:
        target = location.replace("{self}", path)
        return server.add(path, b"", status=status, headers={"Location": target})

    return serve


def status_line(h: BaseHTTPRequestHandler, head: str) -> None:
    h.wfile.write(f"HTTP/1.1 {head}\r\nConnection: close\r\n".encode("latin-1"))


def reset(h: BaseHTTPRequestHandler) -> None:
    """Close with a TCP reset (linger 0) before answering anything."""
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()


def truncated(h: BaseHTTPRequestHandler) -> None:
    """Announce 5,000 bytes, send 200 and hang up."""
    status_line(h, "200 OK")
    h.wfile.write(b"Content-Type: application/rss+xml\r\nContent-Length: 5000\r\n\r\n")
    h.wfile.write(FEED_HEAD.encode() + b" " * 100)


def drip(h: BaseHTTPRequestHandler) -> None:
    """One byte every 0.1 s: each read is in time, the whole answer never is."""
    data = rss(ITEMS).encode()
    status_line(h, "200 OK")
    h.wfile.write(b"Content-Type: application/rss+xml\r\nContent-Length: %d\r\n\r\n" % len(data))
    for byte in data[:60]:
        h.wfile.write(bytes([byte]))
        h.wfile.flush()
        time.sleep(0.1)


def fifty_mb(announce: bool) -> Callable[[BaseHTTPRequestHandler], None]:
    """50 MB of feed items streamed in 64 KB pieces, never held whole by the test."""
    size = 50 * 1024 * 1024
    piece = (b"<item><title>Filler</title><link>https://x.test/f</link></item>" * 1100)[:65536]

    def answer(h: BaseHTTPRequestHandler) -> None:
        status_line(h, "200 OK")
        length = f"Content-Length: {size}\r\n" if announce else ""
        h.wfile.write(f"Content-Type: application/rss+xml\r\n{length}\r\n".encode())
        h.wfile.write(FEED_HEAD.encode())
        for _ in range(size // len(piece)):
            h.wfile.write(piece)

    return answer


def gzip_bomb() -> bytes:
    """200 MB of spaces inside a feed, gzip-compressed to about 200 KB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [packer.compress(FEED_HEAD.encode())]
    block = b" " * (1024 * 1024)
    parts += [packer.compress(block) for _ in range(200)]
    parts.append(packer.compress(b"</channel></rss>") + packer.flush())
    return b"".join(parts)


# --- documents ---------------------------------------------------------------------------------

FEED_HEAD = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
ITEMS = [
    {"title": "First", "link": "https://x.test/1", "guid": "1", "date": format_datetime(NOW)},
    {"title": "Second", "link": "https://x.test/2", "guid": "2", "date": format_datetime(NOW)},
]
HEALTHY = [
    {"title": "Bridge closed", "link": "https://wire.test/bridge", "guid": "w1"},
    {"title": "Budget passed", "link": "https://wire.test/budget", "guid": "w2"},
]


def channel(items: str, head: str = FEED_HEAD) -> str:
    return f"{head}{items}</channel></rss>"


def item(title: str, link: str, extra: str = "") -> str:
    return f"<item><title>{title}</title><link>{link}</link>{extra}</item>"


def ten_thousand() -> str:
    return channel(
        "".join(
            item(f"Item {n}", f"https://x.test/many/{n}", f"<guid>{n}</guid>")
            for n in range(10_000)
        )
    )


def latin1(link: str) -> bytes:
    """A feed in Latin-1 whose XML declaration names no encoding."""
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Café</title>'
        f"<item><title>Café São Paulo à noite</title><link>{link}</link></item>"
        "</channel></rss>"
    ).encode("latin-1")


MEDIA = 'xmlns:media="http://search.yahoo.com/mrss/"'
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + n)} "{("&" + chr(97 + n) + ";") * 10}">' for n in range(8))
    + ']><rss version="2.0"><channel><title>&i;</title>'
    + item("Laugh &i;", "https://x.test/laugh")
    + "</channel></rss>"
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<rss version="2.0"><channel><title>X</title>'
    + item("Secret &x;", "https://x.test/xxe")
    + "</channel></rss>"
)


def json_feed_text(items: str) -> str:
    return f'{{"version": "https://jsonfeed.org/version/1.1", "items": {items}}}'


def titles(articles: list[Article]) -> list[str]:
    return sorted(a.title for a in articles)


def expect_titles(*wanted: str) -> Check:
    def check(articles: list[Article], report: dict[str, Any]) -> None:
        assert titles(articles) == sorted(wanted)

    return check


def expect_dates(*wanted: datetime) -> Check:
    def check(articles: list[Article], report: dict[str, Any]) -> None:
        assert sorted(a.published_at for a in articles) == sorted(wanted)

    return check


def expect_urls(*wanted: str) -> Check:
    """The links stored: a link's user and password are never shown (a host written as
    user info, "paypal.example:login@evil.test", would hide where it goes)."""

    def check(articles: list[Article], report: dict[str, Any]) -> None:
        assert sorted(a.url for a in articles) == sorted(wanted)

    return check


def first_seen_dates(articles: list[Article], report: dict[str, Any]) -> None:
    for a in articles:
        assert a.published_at == a.first_seen_at, a.title


def a_note(words: str) -> Check:
    def check(articles: list[Article], report: dict[str, Any]) -> None:
        assert any(words in note for note in report["notes"]), report["notes"]

    return check


def no_secret(articles: list[Article], report: dict[str, Any]) -> None:
    for a in articles:
        assert "root:" not in a.title and "root:" not in a.summary


def capped(articles: list[Article], report: dict[str, Any]) -> None:
    [a] = articles
    assert len(a.title) <= 300 and len(a.summary) <= 600


def no_image(articles: list[Article], report: dict[str, Any]) -> None:
    assert [a.image_url for a in articles] == [None] * len(articles)


CASES = [
    # transport: status codes, redirects, resets, sizes, time
    Case("not-found", body("nothing here", 404), "error", "HTTP 404"),
    Case("gone-410", body("gone", 410), "gone", "HTTP 410"),
    Case("server-error", body("oops", 500), "error", "HTTP 500"),
    Case("rate-limited", body("", 429, Retry_After="120"), "error", "HTTP 429"),
    Case(
        "unavailable-until",
        body("", 503, Retry_After=format_datetime(NOW + timedelta(hours=1), usegmt=True)),
        "error",
        "HTTP 503",
    ),
    Case("unavailable", body("", 503), "error", "HTTP 503"),
    Case("forbidden", body("", 403), "error", "HTTP 403"),
    Case("redirect-loop", redirect("{self}"), "error", "too many redirects"),
    Case("redirect-to-ftp", redirect("ftp://files.test/feed.xml"), "error", "refused"),
    Case("redirect-to-javascript", redirect("javascript:alert(1)"), "error", "refused"),
    Case("redirect-to-file", redirect("file:///etc/passwd", 301), "error", "refused"),
    Case("redirect-without-location", body("", 302), "error", "without a Location"),
    Case("connection-reset", raw(reset), "error", "reset or closed"),
    Case("truncated-body", raw(truncated), "error", "reset or closed"),
    Case("slow-drip", raw(drip), "error", "timed out"),
    Case("fifty-mb-announced", raw(fifty_mb(True)), "error", "announces 50.0 MB"),
    Case("fifty-mb-streamed", raw(fifty_mb(False)), "error", "cut off"),
    Case(
        "gzip-bomb",
        body(gzip_bomb(), Content_Encoding="gzip"),
        "error",
        f"cut off: a response may be {MAX_BODY_MB}.0 MB",
    ),
    Case("broken-gzip", body(rss(ITEMS), Content_Encoding="gzip"), "error", "could not decompress"),
    Case("unasked-encoding", body(rss(ITEMS), Content_Encoding="br"), "error", "did not ask for"),
    # documents that are not feeds
    Case("empty-body", body(""), "error", "empty"),
    Case(
        "html-as-feed",
        body("<!DOCTYPE html><html><body><p>Home</p></body></html>", Content_Type="text/html"),
        "error",
        "HTML page",
    ),
    Case(
        "html-with-feed-type",
        body("<html><head><title>Oops</title></head><body>Hi</body></html>"),
        "error",
        "HTML page",
    ),
    Case("binary-garbage", body(bytes(range(256)) * 40), "error", "not a feed"),
    Case(
        "png-image",
        body(b"\x89PNG\r\n\x1a\n" + b"\0" * 500, Content_Type="image/png"),
        "error",
        "not a feed",
    ),
    Case(
        "invalid-json",
        body("{ not json", Content_Type="application/feed+json"),
        "error",
        "invalid JSON",
    ),
    Case("json-not-a-feed", body('{"hello": "world"}'), "error", "JSON Feed"),
    Case(
        "json-nested-deep",
        body(json_feed_text("[" * 100_000 + "]" * 100_000), Content_Type="application/feed+json"),
        "error",
        "nested too deeply",
    ),
    Case(
        "json-items-not-a-list",
        body(json_feed_text('{"id": "1"}'), Content_Type="application/feed+json"),
        "error",
        "'items' is an object, not a list",
    ),
    # feeds that are broken but readable, and what digest keeps of them
    Case(
        "malformed-xml",
        body(FEED_HEAD + item("Unclosed & <b>bold", "https://x.test/m1") + "<item><title>Two"),
        new=None,
    ),
    Case(
        "malformed-no-items",
        body(FEED_HEAD + "<item><title>Cut off mid-"),
        "error",
        "not well-formed XML",
    ),
    Case(
        "no-usable-items",
        body(channel(item("No link", "") + item("Script link", "javascript:alert(1)"))),
        "error",
        "none of the feed's 2 items could be used",
    ),
    Case("empty-feed", body(channel("")), new=0),
    Case(
        "latin1-undeclared",
        body(latin1("https://x.test/cafe1"), Content_Type="application/xml"),
        new=1,
        check=expect_titles("Café São Paulo à noite"),
    ),
    Case(
        "charset-header-lies",
        body(latin1("https://x.test/cafe2"), Content_Type="application/rss+xml; charset=utf-8"),
        new=1,
        check=expect_titles("Café São Paulo à noite"),
    ),
    Case(
        "utf8-declared-latin1",
        body(
            rss([{"title": "Fußball", "link": "https://x.test/fb"}]),
            Content_Type="text/xml; charset=iso-8859-1",
        ),
        new=1,
    ),
    Case(
        "localised-dates",
        body(
            channel(
                item(
                    "Pt", "https://x.test/pt", "<pubDate>Seg, 24 Set 2018 19:42:40 -0300</pubDate>"
                )
                + item(
                    "Fr",
                    "https://x.test/fr",
                    "<pubDate>mar., 05 févr. 2019 08:00:00 +0100</pubDate>",
                )
                + item(
                    "De", "https://x.test/de", "<pubDate>Di, 12 Mrz 2019 10:15:00 +0100</pubDate>"
                )
            )
        ),
        new=3,
        check=expect_dates(
            datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC),
            datetime(2019, 2, 5, 7, 0, tzinfo=UTC),
            datetime(2019, 3, 12, 9, 15, tzinfo=UTC),
        ),
    ),
    Case(
        "items-without-links",
        body(channel("<item><title>No link</title></item>" + item("Linked", "https://x.test/l"))),
        new=1,
        check=a_note("has no link"),
    ),
    Case(
        "items-without-dates",
        body(channel(item("Undated", "https://x.test/u1") + item("Also", "https://x.test/u2"))),
        new=2,
        check=first_seen_dates,
    ),
    Case(
        "future-dates",
        body(
            channel(
                item(
                    "Tomorrow",
                    "https://x.test/fut",
                    f"<pubDate>{format_datetime(NOW + timedelta(days=400))}</pubDate>",
                )
            )
        ),
        new=1,
        check=first_seen_dates,
    ),
    Case(
        "duplicate-guids",
        body(
            channel(
                "".join(
                    item(f"Copy {n}", f"https://x.test/dup/{n}", "<guid>same</guid>")
                    for n in range(5)
                )
            )
        ),
        new=1,
    ),
    Case(
        "script-in-title",
        body(channel(item("&lt;script&gt;alert(1)&lt;/script&gt;Headline", "https://x.test/s1"))),
        new=1,
        check=expect_titles("Headline"),
    ),
    Case(
        "onerror-in-summary",
        body(
            channel(
                item(
                    "Img",
                    "https://x.test/s2",
                    "<description>&lt;img src=x onerror=alert(1)&gt;Text</description>",
                )
            )
        ),
        new=1,
    ),
    Case(
        "cdata-script",
        body(
            channel(
                item(
                    "<![CDATA[<script>steal()</script>Cdata <b>bold</b>]]>",
                    "https://x.test/s3",
                    "<description><![CDATA["
                    '<a href="javascript:alert(1)" onclick="x()">click</a>'
                    "]]></description>",
                )
            )
        ),
        new=1,
    ),
    Case(
        "double-escaped",
        body(
            channel(
                item(
                    "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;Twice",
                    "https://x.test/s4",
                )
            )
        ),
        new=1,
    ),
    Case(
        "javascript-links",
        body(
            channel(
                item("Evil", "javascript:alert(1)")
                + item("Data", "data:text/html,<b>x</b>")
                + item("Fine", "https://x.test/ok")
            )
        ),
        new=1,
        check=a_note("no http(s) link"),
    ),
    Case(
        "credentials-in-links",
        body(
            channel(
                item("Pay now", "https://paypal.example:login@evil.test/account")
                + item("Keys", "https://user:secret@x.test/keys")
            )
        ),
        new=2,
        check=expect_urls("https://evil.test/account", "https://x.test/keys"),
    ),
    Case(
        "hostile-images",
        body(
            channel(
                item(
                    "Pic",
                    "https://x.test/pic",
                    '<media:thumbnail url="javascript:alert(1)"/>'
                    '<enclosure url="data:image/png;base64,AAAA" type="image/png" length="1"/>',
                ),
                head=FEED_HEAD.replace('version="2.0"', f'version="2.0" {MEDIA}'),
            )
        ),
        new=1,
        check=no_image,
    ),
    Case(
        "hostile-json-feed",
        body(
            json.dumps(
                {
                    "version": "https://jsonfeed.org/version/1.1",
                    "title": "J",
                    "items": [
                        {
                            "id": "j1",
                            "url": "https://x.test/j1",
                            "title": "<img src=x onerror=alert(1)>J",
                            "content_html": "<script>alert(1)</script><p onclick='x()'>Body</p>",
                            "image": "javascript:alert(1)",
                        }
                    ],
                }
            ),
            Content_Type="application/feed+json",
        ),
        new=1,
        check=no_image,
    ),
    Case(
        "huge-title",
        body(channel(item("word " * 200_000, "https://x.test/huge"))),
        new=1,
        check=capped,
    ),
    Case(
        "control-characters",
        body(channel(item("Nul\x01 and bell\x07 here", "https://x.test/ctl"))),
        status="ok",
    ),
    Case(
        "invisible-characters",
        body(
            channel(
                item(
                    "\ufeffInvoice\u200b \u202efdp.exe\u202c",
                    "https://x.test/inv",
                    "<description>Pay\u2060 now\u00ad.</description>"
                    "<author>\u2066Mallory\u2069</author>",
                )
            )
        ),
        new=1,
        check=expect_titles("Invoice fdp.exe"),
    ),
    Case(
        "no-headlines",
        body(
            channel(
                item("(untitled)", "https://x.test/nt1", "<description>Ferries run.</description>")
                + item("&l7;", "https://x.test/nt2", "<description>Trams too.</description>")
                + item("\u202e\u200b", "https://x.test/nt3")
            )
        ),
        new=2,
        check=expect_titles("Ferries run.", "Trams too."),
    ),
    Case(
        "json-wrong-types",
        body(
            json.dumps(
                {
                    "version": "https://jsonfeed.org/version/1.1",
                    "items": [
                        {
                            "id": {"x": 1},
                            "url": ["https://x.test/jw1"],
                            "external_url": "https://x.test/jw2",
                            "title": {"text": "Object"},
                            "summary": ["List"],
                            "content_text": "Words after all.",
                            "authors": {"name": "Not a list"},
                            "image": ["https://img.test/1.jpg"],
                        }
                    ],
                }
            ),
            Content_Type="application/feed+json",
        ),
        new=1,
        check=expect_titles("Words after all."),
    ),
    Case("billion-laughs", body(BILLION_LAUGHS), status="any"),
    Case("external-entity", body(XXE), status="any", check=no_secret),
    Case("ten-thousand-items", body(ten_thousand()), new=200),
]


def all_stored(app: App) -> dict[str, list[Article]]:
    stored: dict[str, list[Article]] = {}
    for article, name in every_article(app):
        stored.setdefault(name, []).append(article)
    return stored


@pytest.fixture(scope="module")
def gathered(
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    """One gather of every case and a healthy source: (JSON reports, stored, health, timing)."""
    from tests.conftest import SECRET, config_text

    server = FeedServer()
    server.thread.start()
    mp = pytest.MonkeyPatch()
    mp.setenv("DIGEST_SECRET", SECRET)
    folder = tmp_path_factory.mktemp("hostile")
    try:
        sources = [("Healthy", server.add("/healthy.xml", rss(HEALTHY)))]
        sources += [(case.name, case.serve(server, f"/{case.name}")) for case in CASES]
        config = folder / "digest.toml"
        gather = f"max_body_mb = {MAX_BODY_MB}\nconcurrency = 64\nper_host_concurrency = 32"
        config.write_text(config_text(sources, timeout=4.0, gather=gather), encoding="utf-8")
        began = time.monotonic()
        code, out, err = run_cli("--config", str(config), "gather", "--json")
        elapsed = time.monotonic() - began
        assert code == 0, err
        reports = {r["name"]: r for r in json.loads(out)["sources"]}
        app = App.open(load_config(config))
        try:
            stored = all_stored(app)
            health = {row.name: row for row in app.store.list_sources()}
        finally:
            app.close()
        yield reports, stored, health, elapsed, err
    finally:
        mp.undo()
        server.httpd.shutdown()
        server.httpd.server_close()


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


def test_the_run_completes_in_time_and_the_healthy_source_is_stored(gathered: Any) -> None:
    reports, stored, health, elapsed, _ = gathered
    assert set(reports) == {"Healthy", *(c.name for c in CASES)}
    assert elapsed < 15
    assert reports["Healthy"]["status"] == "ok" and reports["Healthy"]["new_items"] == 2
    assert titles(stored["Healthy"]) == ["Bridge closed", "Budget passed"]
    assert health["Healthy"].consecutive_failures == 0


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_case_is_reported_by_name_with_its_reason(gathered: Any, case: Case) -> None:
    reports, stored, health, _, log = gathered
    report: dict[str, Any] = reports[case.name]
    row: Source = health[case.name]
    mine = stored.get(case.name, [])
    if case.status != "any":
        assert report["status"] == case.status, report
    if report["status"] == "ok":
        assert report["error"] is None
        assert (row.consecutive_failures, row.last_error) == (0, None)
        assert row.last_success_at is not None
    else:
        assert f"'{case.name}'" in report["error"], report
        assert report["hint"], report
        assert mine == []
        assert row.consecutive_failures == 1 and row.last_success_at is None
        assert report["error"] == row.last_error
        assert f"'{case.name}'" in log  # the warning on stderr names it too
    if case.reason:
        assert case.reason in str(report["error"]), report
    if case.status == "gone":
        assert row.status == "gone"
    if case.new is not None:
        assert report["new_items"] == case.new == len(mine), report
    if case.check is not None:
        case.check(mine, report)


def test_retry_after_is_stored_for_the_busy_cases(gathered: Any) -> None:
    _, _, health, _, _ = gathered
    # Measured from each source's own attempt, not from now: the module's gather ran before
    # the other tests of this file, minutes ago on a loaded machine.
    # "unavailable-until" names a date an hour after the case was served, which is before
    # the gather on a loaded machine: a wait well past any backoff says the date was kept.
    for name, low, high in (("rate-limited", 60, 120), ("unavailable-until", 3000, 3600)):
        row = health[name]
        assert row.next_attempt_at is not None and row.last_attempt_at is not None
        wait = (row.next_attempt_at - row.last_attempt_at).total_seconds()
        assert low - 10 < wait <= high, (name, wait)
    assert health["unavailable"].next_attempt_at is None  # one failure: retried next run


HOSTILE = ("<", "javascript:", "onerror", "onclick", "\x00", "script>", "alert(")
# Invisible characters, reprs of JSON values, headlines that are none: never stored either.
HIDDEN = ("\u202e", "\u200b", "\ufeff", "\u2060", "\u2066", "\u00ad", "{'", "['", "(untitled)")


def test_nothing_hostile_reaches_storage(gathered: Any) -> None:
    _, stored, _, _, _ = gathered
    everything = [a for articles in stored.values() for a in articles]
    assert len(everything) > 200
    for a in everything:
        for value in (a.title, a.summary, a.url, a.image_url, a.image_alt, a.author):
            text = (value or "").lower()
            for bad in HOSTILE + HIDDEN:
                assert bad not in text, (a.source_id, a.title, bad)
        assert a.title.strip() and "&l7;" not in a.title
        assert a.url.startswith(("http://", "https://"))
        assert a.image_url is None or a.image_url.startswith(("http://", "https://"))
        assert a.published_at <= a.first_seen_at + timedelta(seconds=1)
