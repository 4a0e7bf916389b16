"""What the admin checks before and after a send: `explain` and `preview` show the next
edition as the send will build it; failures are messages and exit codes, not tracebacks."""

from __future__ import annotations

import asyncio
import json
import mailbox
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import get_month_names

from digest.app import App
from digest.config import load_config
from digest.editions import rank_window
from digest.pipeline import run_digest
from digest.rank import SIGNALS
from digest.store import utcnow
from digest.store.lock import daemon_lock
from tests.conftest import FeedServer, SmtpServer, free_port, rss, run_cli


def _feed(feed_server: FeedServer) -> str:
    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    return feed_server.add("/f.xml", rss([story]))


def test_explain_after_a_send_shows_its_story_as_already_sent(write_config, feed_server) -> None:
    config = write_config([("Wire", _feed(feed_server))])
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    assert run_cli("--config", str(config), "send", "--gather")[0] == 0

    code, out, _ = run_cli("--config", str(config), "explain", "--json")

    assert code == 0
    [story] = json.loads(out)["stories"]
    assert story["section"] == "sent"
    assert list(story["signals"]) == list(SIGNALS)  # no sent penalty among them
    app = App.open(load_config(config))
    try:  # what the next edition, at tomorrow's slot, does with the same story
        [edition] = app.store.editions()
        ranked = rank_window(app, app.config.digests[0], edition.slot + timedelta(days=1))
        # Sent and not grown since: left out of the edition, listed as such.
        assert ranked.breaking + ranked.latest == ()
        [tomorrow] = ranked.repeated
    finally:
        app.close()
    assert tomorrow.repeat and story["score"] == tomorrow.score
    assert tomorrow.score == pytest.approx(sum(s.contribution for s in tomorrow.signals), abs=1e-3)


def test_preview_is_the_email_the_send_builds(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    """The admin's templates, the service's language and the web-view link, as sent."""
    config = write_config([("Wire", _feed(feed_server))])
    text = config.read_text().replace(
        'secret_env = "DIGEST_SECRET"',
        'secret_env = "DIGEST_SECRET"\ntemplates_dir = "mine"\nlocale = "fr"',
    )
    config.write_text(text)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "digest.txt.j2").write_text(
        "OUR OWN TEXT {{ loc.long_date(local_date) }} {{ edition.web_url }}\n"
        "{% for story in breaking + latest %}* {{ story.lead.title }}\n{% endfor %}"
    )
    assert run_cli("--config", str(config), "gather")[0] == 0
    code, _, err = run_cli("--config", str(config), "preview", "--out", str(tmp_path / "p"))
    assert code == 0, err
    preview = (tmp_path / "p" / "daily.txt").read_text()

    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    assert run_cli("--config", str(config), "send")[0] == 0
    [message] = mailbox.Maildir(str(tmp_path / "mail"), create=False)
    sent = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    payload = sent.get_payload(decode=True)
    assert isinstance(payload, bytes)
    sent_text = payload.decode()
    first_line = preview.splitlines()[0]
    month = get_month_names("wide", locale="fr")[utcnow().month]
    assert first_line.startswith("OUR OWN TEXT") and month in first_line  # French
    assert "/editions/daily/" in first_line
    assert first_line == sent_text.splitlines()[0]  # the same French date, the same link


def test_preview_text_ends_with_a_newline_whatever_the_template(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    """A text file for a person: `cat` leaves the prompt on its own line, diff is quiet,
    also when the admin's own text template ends without a line break."""
    config = write_config([("Wire", _feed(feed_server))])
    assert run_cli("--config", str(config), "gather")[0] == 0

    def preview(out: str) -> str:
        code, _, err = run_cli("--config", str(config), "preview", "--out", str(tmp_path / out))
        assert code == 0, err
        return (tmp_path / out / "daily.txt").read_text(encoding="utf-8")

    shipped = preview("shipped")
    assert "Harbour strike ends" in shipped
    assert shipped.endswith("1 Test Street\n")
    config.write_text(
        config.read_text().replace(
            'secret_env = "DIGEST_SECRET"', 'secret_env = "DIGEST_SECRET"\ntemplates_dir = "mine"'
        )
    )
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "digest.txt.j2").write_text(
        "{% for story in breaking + latest %}* {{ story.lead.title }}{% endfor %}"
    )

    assert preview("own") == "* Harbour strike ends\n"


def _latest_seven(zone: str, now: datetime) -> datetime:
    """The last 07:00 in ``zone`` at or before ``now``, in UTC."""
    local = now.astimezone(ZoneInfo(zone))
    seven = local.replace(hour=7, minute=0, second=0, microsecond=0)
    return (seven if seven <= local else seven - timedelta(days=1)).astimezone(UTC)


def test_explain_names_the_digest_and_the_slot_it_shows(
    write_config, feed_server: FeedServer
) -> None:
    """Before a send, the current slot's edition; after it, the next slot's: the header
    says which, in UTC as `status` lists editions and in the digest's own zone."""
    config = write_config([("Wire", _feed(feed_server))])
    config.write_text(
        config.read_text().replace("schedule =", 'timezone = "Europe/Paris"\nschedule =')
    )
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    assert run_cli("--config", str(config), "gather")[0] == 0
    current = _latest_seven("Europe/Paris", utcnow())

    code, out, _ = run_cli("--config", str(config), "explain")
    assert code == 0
    assert out.splitlines()[:2] == [
        "digest: daily (Daily Test)",
        f"slot: {current:%Y-%m-%d %H:%M} UTC (07:00 Europe/Paris)",
    ]
    assert out.splitlines()[2].startswith("ranked as of: ")
    code, out, _ = run_cli("--config", str(config), "explain", "--json")
    shown = json.loads(out)
    assert (shown["digest"], shown["title"], shown["timezone"]) == (
        "daily", "Daily Test", "Europe/Paris"
    )  # fmt: skip
    assert shown["slot"] == current.isoformat()

    assert run_cli("--config", str(config), "send")[0] == 0  # the current slot's edition is out
    following = _latest_seven("Europe/Paris", current + timedelta(hours=25))
    code, out, _ = run_cli("--config", str(config), "explain", "--json")
    shown = json.loads(out)
    assert shown["slot"] == following.isoformat() == shown["ranked_at"]  # ranked as of its fire
    code, out, _ = run_cli("--config", str(config), "explain")
    assert out.splitlines()[1:3] == [
        f"slot: {following:%Y-%m-%d %H:%M} UTC (07:00 Europe/Paris)",
        f"ranked as of: {following:%Y-%m-%d %H:%M} UTC",
    ]


def test_an_unknown_digest_id_is_bad_usage(write_config, feed_server: FeedServer) -> None:
    config = write_config([("Wire", _feed(feed_server))])
    code, _, err = run_cli("--config", str(config), "send", "--digest", "nope")
    assert code == 2 and "no digest with id 'nope'" in err and "the config defines: daily" in err


def test_retry_no_send_refuses_an_edition_no_later_run_would_send(
    write_config, feed_server: FeedServer
) -> None:
    config = write_config([("Wire", _feed(feed_server))])
    config.write_text(config.read_text().replace("lookback_hours = 48", "send_empty = true"))
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    app = App.open(load_config(config))
    try:
        week_ago = utcnow() - timedelta(days=7)
        old = asyncio.run(run_digest(app, "daily", now=week_ago, gather_first=False))
    finally:
        app.close()
    assert old.edition is not None

    code, _, err = run_cli("--config", str(config), "retry", str(old.edition.id), "--no-send")

    assert code == 2 and "too old for a later run to send" in err
    assert f"run `digest retry {old.edition.id}` without --no-send" in err


@pytest.mark.slow
def test_a_locked_database_is_a_message_not_a_traceback(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    config = write_config([("Wire", _feed(feed_server))])
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    holder = sqlite3.connect(tmp_path / "digest.db", timeout=1)
    holder.execute("BEGIN IMMEDIATE")  # a backup or a long import holds the write lock
    try:
        code, out, err = run_cli("--config", str(config), "send", "--gather")
    finally:
        holder.rollback()
        holder.close()
    assert code == 1 and "error: the database is unavailable: database is locked" in err
    assert "Traceback" not in out + err


def test_a_job_that_dies_of_a_bug_is_recorded_as_failed(
    write_config, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import digest.jobs as jobs

    config = write_config([("Wire", _feed(feed_server))])
    app = App.open(load_config(config))
    try:
        assert jobs.send_job(app, "daily", gather_first=False) is not None  # ok: recorded

        async def broken(*args: object, **kw: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(jobs, "run_digest", broken)
        assert jobs.send_job(app, "daily", gather_first=False) is None
    finally:
        app.close()
    _, out, _ = run_cli("--config", str(config), "status", "--json")
    last = json.loads(out)["jobs"]["send daily"]
    assert last["ok"] is False and last["summary"] == "RuntimeError: a bug"


def test_run_once_is_recorded_for_status_like_the_daemon(
    write_config, feed_server: FeedServer
) -> None:
    config = write_config([("Wire", _feed(feed_server))], transport="smtp", smtp_port=free_port())
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0

    code, _, err = run_cli("--config", str(config), "run", "--once")  # the SMTP server is down

    assert code == 1 and "delivery stopped" in err
    _, out, _ = run_cli("--config", str(config), "status")
    assert "last send daily: FAILED" in out and "last gather: ok" in out


def test_a_send_by_hand_is_recorded_for_status_as_manual_failed_too(
    write_config, feed_server: FeedServer
) -> None:
    config = write_config([("Wire", _feed(feed_server))], transport="smtp", smtp_port=free_port())
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0

    code, _, err = run_cli("--config", str(config), "send", "--gather")  # SMTP is down

    assert code == 1 and "delivery stopped" in err
    code, out, _ = run_cli("--config", str(config), "status", "--json")
    jobs = json.loads(out)["jobs"]
    assert set(jobs) == {"gather", "send daily (manual)"}  # no daemon's send was made up
    assert jobs["send daily (manual)"]["ok"] is False
    assert "stopped" in jobs["send daily (manual)"]["summary"]
    _, out, _ = run_cli("--config", str(config), "status")
    assert "last send daily (manual): FAILED" in out
    code, _, _ = run_cli("--config", str(config), "send", "--digest", "nope")
    assert code == 2  # bad usage is not a send, and is not recorded as one
    assert (
        "send nope (manual)"
        not in json.loads(run_cli("--config", str(config), "status", "--json")[1])["jobs"]
    )


def test_a_retry_by_hand_is_recorded_for_status_as_manual_failed_too(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    port = free_port()
    config = write_config([("Wire", _feed(feed_server))], transport="smtp", smtp_port=port)
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    assert run_cli("--config", str(config), "send", "--gather")[0] == 1  # SMTP is down
    edition_id = json.loads(run_cli("--config", str(config), "status", "--json")[1])["editions"][0][
        "id"
    ]

    code, _, err = run_cli("--config", str(config), "retry", str(edition_id))  # still down

    assert code == 1 and "delivery stopped" in err
    jobs = json.loads(run_cli("--config", str(config), "status", "--json")[1])["jobs"]
    assert set(jobs) == {"gather", "send daily (manual)", "retry daily (manual)"}
    assert jobs["retry daily (manual)"]["ok"] is False
    assert jobs["retry daily (manual)"]["summary"].startswith(f"edition {edition_id}: ")
    assert "stopped" in jobs["retry daily (manual)"]["summary"]
    assert "last retry daily (manual): FAILED" in run_cli("--config", str(config), "status")[1]

    # The mail server is back: the same retry sends, and its row says so.
    config.write_text(config.read_text().replace(f"port = {port}", f"port = {smtp_server.port}"))
    assert run_cli("--config", str(config), "retry", str(edition_id))[0] == 0
    jobs = json.loads(run_cli("--config", str(config), "status", "--json")[1])["jobs"]
    assert jobs["retry daily (manual)"]["ok"] is True
    assert "1 sent" in jobs["retry daily (manual)"]["summary"]
    assert run_cli("--config", str(config), "retry", "999")[0] != 0  # no such edition
    assert set(json.loads(run_cli("--config", str(config), "status", "--json")[1])["jobs"]) == {
        "gather",
        "send daily (manual)",
        "retry daily (manual)",
    }


def test_status_says_whether_a_daemon_runs_on_the_database(
    write_config, feed_server: FeedServer
) -> None:
    config = write_config([("Wire", _feed(feed_server))])
    _, out, _ = run_cli("--config", str(config), "status")
    assert "daemon: not running on this database" in out
    app = App.open(load_config(config))
    try:
        with daemon_lock(app.engine):
            _, out, _ = run_cli("--config", str(config), "status", "--json")
    finally:
        app.close()
    assert json.loads(out)["daemon"] == {"running": True, "holder": f"pid {os.getpid()}"}


HEADLINES = [
    "Harbour strike ends after pay deal",
    "Council approves new tram line",
    "Drought cuts the wheat harvest",
    "Museum returns looted bronzes",
    "Rail fares rise in January",
]


def _dated(prefix: str, count: int, age: timedelta, host: str) -> list[dict[str, str]]:
    when = format_datetime(utcnow() - age)
    return [
        {"title": HEADLINES[i], "guid": f"{prefix}{i}", "date": when,
         "link": f"https://{host}/{prefix}-{i}"}
        for i in range(count)
    ]  # fmt: skip


def test_explain_and_preview_say_what_they_left_out_and_why(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    """Issue 20, point 2: articles gathered but shown nowhere are counted, with the reason."""
    old = feed_server.add("/old.xml", rss(_dated("Archive", 5, timedelta(days=4), "old.test")))
    fresh = feed_server.add("/fresh.xml", rss(_dated("Harbour", 3, timedelta(hours=2), "f.test")))
    lab = feed_server.add("/lab.xml", rss(_dated("Probe", 2, timedelta(hours=1), "lab.test")))
    config = write_config([("Old Wire", old), ("Fresh Wire", fresh), ("Lab", lab)])
    text = config.read_text()
    for url, topic in ((old, "world"), (fresh, "world"), (lab, "science")):
        text = text.replace(f'url = "{url}"', f'url = "{url}"\ntopics = ["{topic}"]')
    text = text.replace("latest_items = 20", 'latest_items = 2\ntopics = ["world"]')
    config.write_text(text)
    assert run_cli("--config", str(config), "gather")[0] == 0

    expected = [
        "5 articles older than the look-back window (lookback_hours = 48 in [[digests]] "
        "'daily'); the newest of them is 4 days old",
        "2 articles in the window from sources without the digest's topics (world): Lab",
        "1 more story in the window, past breaking_items = 3 and latest_items = 2",
    ]
    code, out, _ = run_cli("--config", str(config), "explain", "--json")
    assert code == 0
    assert json.loads(out)["left_out"] == expected
    code, out, _ = run_cli("--config", str(config), "explain")
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith("left out: ")] == [
        f"left out: {note}" for note in expected
    ]
    code, out, _ = run_cli("--config", str(config), "preview", "--out", str(tmp_path / "p"))
    assert code == 0
    assert out.splitlines()[:4] == ["2 stories (0 breaking)"] + [
        f"left out: {note}" for note in expected
    ]


def test_preview_of_an_empty_store_says_to_gather(write_config, feed_server, tmp_path) -> None:
    config = write_config([("Wire", _feed(feed_server))])
    code, out, _ = run_cli("--config", str(config), "preview", "--out", str(tmp_path / "p"))
    assert code == 0
    assert "left out: nothing, as no article is stored for its sources: `digest gather` " in out


def test_status_last_gather_counts_the_gather_a_send_runs_first(
    write_config, feed_server: FeedServer
) -> None:
    """Issue 20, point 7: `send --gather` gathered, and status's last gather said nothing."""
    config = write_config([("Wire", _feed(feed_server))])
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    assert run_cli("--config", str(config), "send", "--gather")[0] == 0
    code, out, _ = run_cli("--config", str(config), "status", "--json")
    assert code == 0
    gather = json.loads(out)["jobs"]["gather"]
    assert gather["ok"] and gather["summary"] == "1 sources, 1 new articles"
    # and `digest gather` on its own is the last gather after it
    assert run_cli("--config", str(config), "gather")[0] == 0
    code, out, _ = run_cli("--config", str(config), "status")
    assert "last gather: ok at " in out and ": 1 sources, 0 new articles" in out


def test_serve_without_its_secret_fails_before_saying_serving(
    write_config, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20, point 7: "serving ..." was printed, then the missing secret stopped it."""
    config = write_config([("Wire", _feed(feed_server))])
    monkeypatch.delenv("DIGEST_SECRET")
    code, out, err = run_cli("--config", str(config), "serve", "--port", str(free_port()))
    assert code != 0
    assert "serving" not in out + err
    assert "DIGEST_SECRET" in err
