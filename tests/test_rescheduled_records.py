"""What the daemon takes for a digest scheduled anew (``rescheduled``): a slot before it is
neither owed nor MISSED, so a wrong answer loses a catch-up send or hides a miss.

A ``reload`` record written before records kept their next runs whole was cut at 2,000
characters, sometimes inside a digest's name: read as naming the digests before the cut
only, the first start after the upgrade took every later digest for one added while no
daemon ran, and a daemon down over their slot sent none of them late. A local-time
digest moved (07:00 to 06:00) keeps the same quarter-hour UTC plan, so a reload did not
count it as moved, and it sent the slot it never had late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.app import App
from digest.clock import ManualClock
from digest.config import load_config
from digest.editions import digest_plan
from digest.job_names import RELOAD, next_runs_of, reload_next
from digest.schedule.daemon import owed_slots, rescheduled
from tests.conftest import FeedServer, OpenApp, run_cli
from tests.test_missed_after_move import _config, _moved_to

_BULLETINS = "".join(
    f'\n[[digests]]\nid = "regional-bulletin-{n:02d}"\ntitle = "Bulletin {n}"\n'
    f'schedule = "{n} 8 * * *"\n'
    for n in range(1, 4)
)


def test_an_old_reload_record_cut_in_a_digest_s_name_reschedules_nothing(
    open_app: OpenApp,
) -> None:
    app = open_app([("Wire", "http://127.0.0.1:9/f.xml")], schedule="0 7 * * *", extra=_BULLETINS)
    days_ago = datetime.now(UTC) - timedelta(days=2)
    digests = [d.id for d in app.config.digests]
    for digest_id in digests:
        app.store.scheduled_since(digest_id, days_ago)
    read_at = datetime.now(UTC) - timedelta(hours=5)
    plans = {d.id: d for d in app.config.digests}
    said = reload_next(
        [(f"send {i}", digest_plan(app, plans[i]).next_fire(read_at)) for i in digests]
    )
    # As the store kept it before: cut at its end, here inside the third digest's name
    cut = said[: said.index("regional-bulletin-02") + len("regional-bul")]
    app.store.clock = ManualClock(read_at)
    app.store.record_job(RELOAD, read_at, True, f"started: 4 digests{cut}")
    now = datetime.now(UTC)
    assert rescheduled(None, app, now) == []
    assert next_runs_of(f"started{cut}") is None  # not "only the first two"
    for digest_id in digests:
        assert app.store.first_scheduled(digest_id) == days_ago, digest_id


def _local_time(config: Path) -> None:
    text = config.read_text()
    config.write_text(text.replace("lookback_hours = 48", "lookback_hours = 48\nlocal_time = true"))


def test_a_local_time_digest_moved_earlier_and_reloaded_after_its_slot_owes_nothing(
    write_config,
) -> None:
    """Moved from 07:00 to 06:00 local time and reloaded at 06:30 UTC: London's readers'
    06:00 was never the daemon's slot (it ran 07:00), so it is not sent late; a reload that
    leaves the schedule alone keeps a slot it missed owed."""
    source = [("Wire", "http://127.0.0.1:9/f.xml")]
    config = write_config(source, schedule="0 7 * * *")
    _local_time(config)
    add = ("subscribers", "add", "l@example.org", "--timezone", "Europe/London")
    code, _, err = run_cli("--config", str(config), *add)
    assert code == 0, err
    before = App.open(load_config(config))
    try:
        config.write_text(config.read_text().replace('"0 7 * * *"', '"0 6 * * *"'))
        after = App(load_config(config), before.engine, before.store)
        now = datetime(2026, 12, 7, 6, 30, tzinfo=UTC)  # London is on UTC in December
        after.store.scheduled_since("daily", now - timedelta(days=2))
        (digest,) = after.config.digests
        plan = digest_plan(after, digest)
        assert plan == digest_plan(before, before.config.digests[0])  # the same quarter hours
        owed = owed_slots(after, digest, plan, now)
        assert owed == [now.replace(minute=0)]  # London's 06:00, were it the daemon's
        assert rescheduled(after, after, now) == []  # unchanged: still owed
        assert owed_slots(after, digest, plan, now) == owed
        assert rescheduled(before, after, now) == ["daily"]
        assert owed_slots(after, digest, plan, now) == []
    finally:
        before.close()


def test_a_file_s_unread_slot_is_not_missed_after_the_daemon_s_recorded_next_passed(
    write_config, feed_server: FeedServer
) -> None:
    """The daemon read its config two days ago (its recorded next run passed since: it
    fired and went on); the file, edited and not reloaded, has the digest at a slot 65
    minutes ago, which the daemon's plan (another hour) never had: not MISSED. The file's
    plan that fires where the daemon's record says its does (the same schedule) keeps a
    real miss."""
    from digest.jobs import record_reload
    from digest.reports.daemon_runs import daemon_next_runs, daemon_reading

    config = _config(write_config, feed_server)
    now = datetime.now(UTC)
    slot = (now - timedelta(minutes=65)).replace(second=0, microsecond=0)
    _moved_to(config, slot)
    read_at = now - timedelta(days=2)
    app = App.open(load_config(config))
    try:
        fires = digest_plan(app, app.config.digests[0]).next_fire(read_at)
        assert fires is not None
        for daemon_next, missed in (
            (fires - timedelta(hours=3), None),  # another hour's plan
            (fires, slot),  # the file's plan: a real miss
        ):
            app.store.clock = ManualClock(read_at)
            said = reload_next([("send daily", daemon_next)])
            record_reload(app, True, "read at the daemon's start", said)
            read = daemon_reading(app.store.job_runs())
            (run,) = daemon_next_runs(app, now, read, "pid 1")
            assert run.missed == missed, daemon_next
    finally:
        app.close()


def test_a_slot_added_while_down_over_a_kept_one_still_owes_the_kept_one(write_config) -> None:
    """The daemon down over 07:00; meanwhile an evening edition added (07:00 and 19:00),
    then a restart at 07:20 (or, up, a SIGHUP after a failed 07:00): 07:00 was the daemon's
    slot on either plan, so it is still owed (sent late), not taken for the new plan's."""
    source = [("Wire", "http://127.0.0.1:9/f.xml")]
    config = write_config(source, schedule="0 7 * * *")
    before = App.open(load_config(config))
    try:
        config.write_text(config.read_text().replace('"0 7 * * *"', '"0 7,19 * * *"'))
        after = App(load_config(config), before.engine, before.store)
        now = datetime(2026, 12, 7, 7, 20, tzinfo=UTC)
        read_at = now - timedelta(hours=19)  # yesterday at noon: its next run, 07:00
        after.store.scheduled_since("daily", now - timedelta(days=2))
        (old,), (digest,) = before.config.digests, after.config.digests
        said = reload_next([("send daily", digest_plan(before, old).next_fire(read_at))])
        after.store.clock = ManualClock(read_at)
        after.store.record_job(RELOAD, read_at, True, f"read at the daemon's start{said}")
        plan = digest_plan(after, digest)
        owed = owed_slots(after, digest, plan, now)
        assert owed == [now.replace(minute=0)]
        assert rescheduled(None, after, now) == []  # a restart
        assert rescheduled(before, after, now) == []  # a SIGHUP
        assert owed_slots(after, digest, plan, now) == owed
    finally:
        before.close()
