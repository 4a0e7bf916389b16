"""Two of five feeds broken on a bad morning: `digest gather` names each source, the cause
and the fix, and an "ok" whose feed was cut short says what was lost."""

from __future__ import annotations

import html as html_module
import json
import re
from datetime import UTC, datetime, timedelta

from digest.clock import ManualClock
from digest.sources.health import OFF_HINT
from tests.conftest import FeedServer, rss, run_cli


def _items(n: int) -> list[dict[str, str]]:
    return [
        {"title": f"Story number {i}", "guid": str(i), "link": f"https://w.test/{i}"}
        for i in range(n)
    ]


def test_gather_says_what_a_cut_off_feed_lost_and_keeps_a_304_on_its_line(
    write_config, feed_server: FeedServer
) -> None:
    whole = rss(_items(6), title="Whole Wire")
    cut = rss(_items(6), title="Cut Wire")
    cut = cut[: cut.index("<item>", cut.index("Story number 4")) + 20]  # mid-item 5
    sources = [
        ("Whole", feed_server.add("/whole.xml", whole, headers={"ETag": '"w1"'})),
        ("Cut", feed_server.add("/cut.xml", cut, headers={"Content-Type": "application/xml"})),
        ("Missing", feed_server.url("/missing.xml")),
    ]
    config = write_config(sources)

    code, out, _ = run_cli("--config", str(config), "gather")

    assert code == 0
    lines = out.splitlines()
    cut_line = next(i for i, line in enumerate(lines) if "Cut:" in line)
    assert lines[cut_line].startswith("  ok    Cut: 5 items")
    note = lines[cut_line + 1]
    assert note.startswith("        note: the feed is not well-formed XML (")
    assert "5 items read from what parsed; a feed cut off in transfer" in note
    assert "FAIL  Missing: source 'Missing': HTTP 404" in out
    assert "hint: the feed is not there; find its new address or remove the source" in out

    code, out, _ = run_cli("--config", str(config), "gather")  # the whole feed answers 304
    assert "  ok    Whole: 6 items, 0 new (not modified: HTTP 304)\n" in out
    assert "note: not modified" not in out
    assert "FAIL  Missing" in out and "        note: next try at " in out


def test_a_run_logs_a_gather_with_sources_not_read_as_a_warning_naming_them(
    write_config, feed_server: FeedServer
) -> None:
    ok = feed_server.add("/ok.xml", rss(_items(1)))
    config = write_config([("Wire", ok), ("Missing", feed_server.url("/missing.xml"))])
    assert run_cli("--config", str(config), "gather")[0] == 0
    assert run_cli("--config", str(config), "gather")[0] == 0  # Missing now waits

    code, _, err = run_cli("--config", str(config), "run", "--once")
    assert code == 0  # the send of an edition with its one story, to nobody

    # Missing waits out its backoff: not fetched, so nothing else logged it this time.
    summary = "2 sources, 0 new articles; not ok: Missing (`digest sources` says why)"
    assert f"WARNING digest.schedule: gather: {summary}" in err
    _, out, _ = run_cli("--config", str(config), "status")
    assert "last gather: ok at " in out and summary in out


def test_sources_and_the_console_show_a_failing_sources_fix_beside_its_error(
    write_config, feed_server: FeedServer
) -> None:
    from tests.admin_site import serving

    page = "<!doctype html><html><head><title>News</title></head><body>Hi</body></html>"
    html = feed_server.add("/home.xml", page, headers={"Content-Type": "text/html"})
    ok = feed_server.add("/ok.xml", rss(_items(1)))
    config = write_config(
        [("Wire", ok), ("Missing", feed_server.url("/missing.xml")), ("Homepage", html)]
    )
    assert run_cli("--config", str(config), "gather")[0] == 0
    missing_hint = "the feed is not there; find its new address or remove the source"

    _, out, _ = run_cli("--config", str(config), "sources")
    assert f"hint: {missing_hint}" in out
    assert 'set kind = "page"' in out

    sources = json.loads(run_cli("--config", str(config), "sources", "--json")[1])["sources"]
    hints = {s["name"]: s["last_hint"] for s in sources}
    assert hints["Missing"] == missing_hint and hints["Wire"] is None
    assert 'kind = "page"' in hints["Homepage"]

    with serving(config, gather=False) as console, console.logged_in() as client:
        for path in ("/admin/sources", "/admin/"):
            assert missing_hint in html_text(client.get(path).text), path

    # Fixed: the error and its hint go together.
    feed_server.add("/missing.xml", rss(_items(2)))
    assert run_cli("--config", str(config), "gather", "--force")[0] == 0
    sources = json.loads(run_cli("--config", str(config), "sources", "--json")[1])["sources"]
    assert {s["name"]: s["last_hint"] for s in sources}["Missing"] is None


def test_a_source_no_longer_fetched_does_not_promise_a_next_try(
    write_config, feed_server: FeedServer
) -> None:
    """The example config's sources failed on a first gather, then were replaced: `digest
    sources` and the console still list them, off, and their stored hints said "digest will
    try again on the next run" or "find its new address", about fetches that never come (the
    console also said "next gather" beside them)."""
    from tests.admin_site import serving

    ok = feed_server.add("/ok.xml", rss(_items(1)))
    config = write_config(
        [
            ("Wire", ok),
            ("Missing", feed_server.url("/missing.xml")),
            ("Paused", "http://127.0.0.1:9/"),
        ]
    )
    assert run_cli("--config", str(config), "gather")[0] == 0
    text = config.read_text()
    missing = f'\n[[sources]]\nname = "Missing"\nurl = "{feed_server.url("/missing.xml")}"\n'
    assert missing in text
    spare = '\n[[sources]]\nname = "Spare"\nurl = "http://127.0.0.1:9/spare"\nenabled = false\n'
    config.write_text(
        text.replace(missing, spare).replace(
            'url = "http://127.0.0.1:9/"', 'url = "http://127.0.0.1:9/"\nenabled = false'
        )
    )

    _, out, _ = run_cli("--config", str(config), "sources")
    assert "find its new address" not in out
    assert "will try again on the next run" not in out

    sources = json.loads(run_cli("--config", str(config), "sources", "--json")[1])["sources"]
    by_name = {s["name"]: s for s in sources}
    for name in ("Missing", "Paused"):
        assert by_name[name]["state"] == "off"
        assert by_name[name]["last_error"]  # the error stays, as a record
        assert by_name[name]["last_hint"] == (
            "not fetched any more: it is disabled or no longer in the config (the error is"
            " old); set enabled = true (or put it back in the config) to fetch it again"
        )
    assert by_name["Wire"]["last_hint"] is None
    # Disabled before any gather met it: off too, with nothing to say about it.
    assert by_name["Spare"]["state"] == "off" and by_name["Spare"]["last_hint"] is None

    with serving(config, gather=False) as console, console.logged_in() as client:
        page = html_text(client.get("/admin/sources").text)
        rows = {
            name: row
            for row in re.findall(r"<tr><td>.*?</tr>", page, re.DOTALL)
            if (name := row.removeprefix("<tr><td>").split("<br>")[0])
        }
        assert set(rows) >= {"Wire", "Missing", "Paused", "Spare"}
        for name in ("Missing", "Paused", "Spare"):
            assert ">off</td>" in rows[name], rows[name]
            assert "next gather" not in rows[name] and "Fetch now" not in rows[name]
        for name in ("Missing", "Paused"):
            assert OFF_HINT in rows[name]
            assert "find its new address" not in rows[name]
            assert "will try again" not in rows[name]
        assert ">ok</td>" in rows["Wire"] and "next gather" in rows["Wire"]
        # The dashboard lists the sources that need a look: not those no longer fetched.
        dashboard = html_text(client.get("/admin/").text)
        assert "sources ok." in dashboard and "need a look" not in dashboard
        assert "find its new address" not in dashboard and OFF_HINT not in dashboard
        # /metrics counts them by the same rule; their old failures raise no alert.
        metrics = client.get("/metrics").text
        assert 'digest_sources{health="off"} 3.0' in metrics
        assert 'digest_source_consecutive_failures{source="Wire"} 0.0' in metrics
        assert 'source="Missing"' not in metrics and 'source="Paused"' not in metrics


def html_text(page: str) -> str:
    return html_module.unescape(page)


def test_a_utf8_feed_with_one_bad_byte_keeps_its_accents_and_says_what_it_replaced(
    write_config, feed_server: FeedServer
) -> None:
    """One Latin-1 byte pasted into a UTF-8 feed made feedparser read the whole document
    as windows-1252: every headline's accents turned to 'ZÃ¼rich', and gather said ok."""
    items = [
        {"title": "Zürich café opens", "guid": "1", "link": "https://w.test/1"},
        {"title": "Bad byte here", "guid": "2", "link": "https://w.test/2"},
    ]
    body = rss(items).encode("utf-8").replace(b"Bad byte", b"Bad \xff byte")
    config = write_config([("Wire", feed_server.add("/f.xml", body))])

    code, out, _ = run_cli("--config", str(config), "gather")

    assert code == 0
    assert "note: 1 byte sequence not valid UTF-8 in a UTF-8 feed, shown as \ufffd" in out
    headlines = {
        story["headline"]
        for story in json.loads(run_cli("--config", str(config), "explain", "--json")[1])["stories"]
    }
    assert headlines == {"Zürich café opens", "Bad \ufffd byte here"}


def test_a_latin1_feed_that_says_utf8_is_still_read_as_latin1(
    write_config, feed_server: FeedServer
) -> None:
    """Where no text is UTF-8, the declaration is what lies: feedparser's reading stands."""
    items = [{"title": "Café in Zürich", "guid": "1", "link": "https://w.test/1"}]
    body = rss(items).encode("latin-1")
    config = write_config([("Wire", feed_server.add("/f.xml", body))])

    code, out, _ = run_cli("--config", str(config), "gather")

    assert code == 0 and "UTF-8" not in out
    [story] = json.loads(run_cli("--config", str(config), "explain", "--json")[1])["stories"]
    assert story["headline"] == "Café in Zürich"


def test_when_a_failing_source_is_tried_next_is_said_as_the_cli_says_every_time(
    write_config, feed_server: FeedServer
) -> None:
    url = feed_server.add("/busy.xml", "", status=429, headers={"Retry-After": "600"})
    config = write_config([("Busy", url), ("Wire", feed_server.add("/ok.xml", rss(_items(1))))])
    clock = ManualClock(datetime(2026, 3, 2, 7, 0, tzinfo=UTC))

    _, out, _ = run_cli("--config", str(config), "gather", clock=clock)
    assert "        note: next try at 2026-03-02 07:10 UTC\n" in out

    clock.advance(5)
    _, out, _ = run_cli("--config", str(config), "gather", clock=clock)
    assert "WAIT  Busy: source 'Busy': not fetched until 2026-03-02 07:10 UTC (1 failure" in out
    assert "T07:10" not in out and "Z " not in out

    # --json stays ISO, for programs.
    _, out, _ = run_cli("--config", str(config), "gather", "--json", clock=clock)
    [busy] = [s for s in json.loads(out)["sources"] if s["name"] == "Busy"]
    assert busy["next_attempt_at"] == "2026-03-02T07:10:00+00:00"


def test_status_shows_an_editions_slot_as_the_cli_says_every_time(
    write_config, feed_server: FeedServer
) -> None:
    config = write_config([("Wire", feed_server.add("/ok.xml", rss(_items(1))))])
    assert run_cli("--config", str(config), "run", "--once")[0] == 0

    [edition] = json.loads(run_cli("--config", str(config), "status", "--json")[1])["editions"]
    _, out, _ = run_cli("--config", str(config), "status")
    slot = datetime.fromisoformat(edition["slot"])
    assert f"{slot:%Y-%m-%d %H:%M}" in out and f"{slot:%Y-%m-%dT%H:%M}" not in out


def test_gather_says_a_failing_source_once_and_run_once_still_logs_it_once(
    write_config, feed_server: FeedServer
) -> None:
    wire = ("Wire", feed_server.add("/ok.xml", rss(_items(1))))
    config = write_config([wire, ("Missing", feed_server.url("/m"))])
    failure = "source 'Missing': HTTP 404"

    # Cron's `run --once` (and the daemon) log it once, beside the gather's summary.
    code, out, err = run_cli("--config", str(config), "run", "--once")
    warning = [line for line in err.splitlines() if failure in line]
    assert len(warning) == 1 and "WARNING digest.sources: " in warning[0]
    assert "(the feed is not there; find its new address" in warning[0]

    code, out, err = run_cli("--config", str(config), "gather")
    assert code == 0
    assert out.count(failure) == 1 and "hint: the feed is not there" in out  # the table
    assert "Missing" not in err  # not a log line again below it

    config = write_config([wire, ("Missing", feed_server.url("/m2"))])  # tried at once
    code, out, err = run_cli("--config", str(config), "send", "--gather")
    assert out.count(failure) == 1 and "Missing" not in err

    # At -vv the record comes with its traceback: that is more than the table says.
    code, out, err = run_cli("-vv", "--config", str(config), "gather", "--force")
    assert failure in err and "Traceback" in err

    # No table to read it in: --json is for a program, --log-json for a collector.
    assert failure in run_cli("--config", str(config), "gather", "--force", "--json")[2]
    assert failure in run_cli("--log-json", "--config", str(config), "gather", "--force")[2]


def test_check_warns_of_the_failing_sources_once_a_database_is_there(
    write_config, feed_server: FeedServer
) -> None:
    config = write_config(
        [
            ("Wire", feed_server.add("/ok.xml", rss(_items(1)))),
            ("Missing", feed_server.url("/missing.xml")),
            ("Old", feed_server.add("/old.xml", "gone", status=410)),
        ]
    )
    database = config.parent / "digest.db"
    clock = ManualClock(datetime(2026, 3, 2, 7, 0, tzinfo=UTC))

    code, out, err = run_cli("--config", str(config), "check", clock=clock)
    assert code == 0 and "ok (3 sources" in out
    assert "source '" not in err  # a new install: nothing to say, and nothing created
    assert not database.exists()
    database.touch()  # an empty file (made ready by hand, say) is not written to either
    assert run_cli("--config", str(config), "check", clock=clock)[0] == 0
    assert database.stat().st_size == 0
    database.unlink()

    run_cli("--config", str(config), "gather", clock=clock)
    code, _, err = run_cli("--config", str(config), "check", clock=clock)
    assert code == 0
    missing = "HTTP 404 Not Found from " + feed_server.url("/missing.xml")
    assert (
        f"warning: source 'Missing': FAIL at its last gather; last error: {missing}\n"
        "  hint: the feed is not there; find its new address or remove the source\n"
    ) in err
    assert "warning: source 'Old': GONE: not fetched until its url changes" in err
    assert (
        "(or `digest gather --force`); last error: HTTP 410 Gone from " in err
        and "'Wire'" not in err
    )

    clock.advance(60)
    run_cli("--config", str(config), "gather", clock=clock)  # Missing now backs off
    code, _, err = run_cli("--config", str(config), "check", clock=clock)
    assert code == 0
    assert "warning: source 'Missing': WAIT until 2026-03-02 " in err
    assert f" UTC after 2 failures in a row; last error: {missing}\n" in err

    clock.advance(timedelta(days=1))  # its wait is over: tried at the next gather
    code, _, err = run_cli("--config", str(config), "check", clock=clock)
    assert code == 0
    assert f"warning: source 'Missing': FAIL for 2 gathers in a row; last error: {missing}\n" in err
