"""The admin breaks the config at 7 a.m. (`interval_minutes = "30m"`): the daemon runs on
the config it read last, but `digest status` failed outright on the file. It now shows the
config's error first, then what the database holds (editions, jobs, the daemon's refused
reload, the next runs the daemon has), and exits 2: the config is broken."""

from __future__ import annotations

import json
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from digest.app import App
from digest.clock import utc_time
from digest.config import load_config, reload_config
from digest.schedule import leading
from digest.store.lock import daemon_lock
from tests.conftest import FeedServer, rss, run_cli


def _scheduler(_app: App, _stop: object, _reloading: bool) -> BackgroundScheduler:
    """The daemon's scheduler, its one digest job firing at 07:00 (nothing else runs)."""
    scheduler = BackgroundScheduler(timezone="UTC")
    trigger = CronTrigger(hour=7, minute=0, timezone="UTC")
    scheduler.add_job(lambda: None, trigger, id="digest:daily", name="send daily")
    return scheduler


def _break(config: Path) -> None:
    text = config.read_text()
    assert "interval_minutes = 30\n" in text
    config.write_text(text.replace("interval_minutes = 30\n", 'interval_minutes = "30m"\n'))


def test_status_reports_the_database_while_the_config_is_invalid(
    write_config, feed_server: FeedServer
) -> None:
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config = write_config([("Wire", url)], gather="interval_minutes = 30")
    assert run_cli("--config", str(config), "gather")[0] == 0
    assert run_cli("--config", str(config), "send")[0] == 0
    app = App.open(load_config(config))
    try:
        with daemon_lock(app.engine):  # a daemon runs on the database: this process
            scheduler = leading._start(app, _scheduler, lambda: False, leading.STARTED)
            try:
                _break(config)
                # The daemon's SIGHUP: refused, recorded, the old config kept
                assert leading._reloaded(app, lambda c: reload_config(c, config), scheduler) is None
                fires = scheduler.get_job("digest:daily").next_run_time
            finally:
                scheduler.shutdown(wait=False)
            code, out, err = run_cli("--config", str(config), "status")
            as_json = run_cli("--config", str(config), "status", "--json")
    finally:
        app.close()
    assert code == 2, (out, err)
    lines = out.splitlines()
    assert lines[0].startswith("error: the config cannot be read:"), out
    assert "gather.interval_minutes" in out.split("hint:")[0]  # the key at fault, first
    assert lines[1].startswith("hint: ")  # one problem, then its hint, then the rest
    assert "status: from the database alone" in out
    assert "daemon: running (pid" in out
    assert "last reload: FAILED" in out and "keeping the old one" in out
    assert f"next daily: {utc_time(fires)}" in out
    assert "last send daily (manual): ok" in out

    json_code, document_text, json_err = as_json
    assert json_code == 2
    document = json.loads(document_text)  # stdout is the document; the error on stderr
    assert "gather.interval_minutes" in json_err
    assert any("gather.interval_minutes" in p for p in document["config_error"]["problems"])
    assert [e["digest"] for e in document["editions"]] == ["daily"]
    assert document["jobs"]["reload"]["ok"] is False
    assert document["jobs"]["send daily (manual)"]["ok"] is True
    assert document["next_runs"] == {"daily": fires.isoformat()}


def test_status_says_it_cannot_find_the_database_when_the_broken_file_hides_it(
    write_config, feed_server: FeedServer
) -> None:
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config = write_config([("Wire", url)])
    assert run_cli("--config", str(config), "gather")[0] == 0
    good = config.read_text()

    # A syntax error elsewhere: the database_url line still says where the database is
    config.write_text(good.replace('name = "Wire"', 'name = "Wire'))
    code, out, _ = run_cli("--config", str(config), "status")
    assert code == 2
    assert out.startswith("error: the config cannot be read:") and "not valid TOML" in out
    assert "last gather: ok" in out

    # The database_url line itself broken: status cannot tell which database, and says so
    config.write_text(good.replace('"sqlite:///digest.db"', '"sqlite:///digest.db'))
    code, out, _ = run_cli("--config", str(config), "status")
    assert code == 2
    assert out.startswith("error: the config cannot be read:")
    assert "status: cannot find the database:" in out and "database_url" in out
    assert "because of the error above" in out
    assert "last gather" not in out


def test_lenient_setting_reads_a_key_of_a_file_that_does_not_load(tmp_path: Path) -> None:
    from digest.config import lenient_setting

    file = tmp_path / "digest.toml"
    file.write_text('[service]\nname = "x"\ndatabase_url = "sqlite:///a.db"\n[gather]\nx = "\n')
    assert lenient_setting(file, "service", "database_url") == "sqlite:///a.db"
    file.write_text('[service]\nname = "x"\n[gather]\ninterval_minutes = "30m"\n')
    assert lenient_setting(file, "service", "database_url") == "sqlite:///digest.db"  # default
    assert lenient_setting(file, "delivery", "unrecorded_file") == "unrecorded-sends.jsonl"
    file.write_text("[service]\ndatabase_url = 5\n")
    assert lenient_setting(file, "service", "database_url") is None
    assert lenient_setting(tmp_path / "none.toml", "service", "database_url") is None


def test_a_refused_reload_with_a_long_error_still_names_the_next_runs(write_config) -> None:
    """A file broken in many places: its refusal is longer than the store keeps of a
    record, which cut it at the end, where the next runs were, or left half a time
    ("send daily at 2026-12-08 07:0" read as "never")."""
    from digest.errors import ConfigError, ConfigProblem
    from digest.job_names import RELOAD, next_runs_of

    config = write_config([("Wire", "http://127.0.0.1:9/f.xml")])
    app = App.open(load_config(config))
    problems = [
        ConfigProblem(str(config), n, f"sources[{n}].url", "not an http(s) address", "fix it")
        for n in range(60)
    ]

    def refuse(_running: object) -> object:
        raise ConfigError(problems)

    try:
        scheduler = leading._start(app, _scheduler, lambda: False, leading.STARTED)
        try:
            assert leading._reloaded(app, refuse, scheduler) is None  # type: ignore[arg-type]
            fires = scheduler.get_job("digest:daily").next_run_time
        finally:
            scheduler.shutdown(wait=False)
        record = next(run for run in app.store.job_runs() if run.job == RELOAD)
    finally:
        app.close()
    assert not record.ok and "keeping the old one" in record.summary
    assert next_runs_of(record.summary) == {"daily": fires.replace(second=0, microsecond=0)}


def test_status_without_config_finds_a_home_relative_unrecorded_file(
    write_config, tmp_path: Path, monkeypatch
) -> None:
    """``unrecorded_file = "~/..."`` is the admin's home, as the loader reads it
    (``Config.resolve_path``), not a folder named "~" beside the config: the sends the
    database failed to record are shown while the file is invalid too."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    config = write_config([("Wire", "http://127.0.0.1:9/f.xml")], gather="interval_minutes = 30")
    text = config.read_text()
    assert "[delivery]\n" in text
    config.write_text(
        text.replace("[delivery]\n", '[delivery]\nunrecorded_file = "~/unrec.jsonl"\n')
    )
    App.open(load_config(config)).close()  # the database, made as `digest run` makes it
    (home / "unrec.jsonl").write_text("not a journal line\n")
    _break(config)
    code, document_text, _ = run_cli("--config", str(config), "status", "--json")
    assert code == 2
    unrecorded = json.loads(document_text)["unrecorded"]
    assert unrecorded is not None and unrecorded["file"] == str(home / "unrec.jsonl")
    assert unrecorded["unreadable_lines"] == 1


def test_status_on_a_database_url_that_does_not_parse_says_so_without_its_password(
    write_config,
) -> None:
    """A port mistyped (``:54x2``): SQLAlchemy raises ValueError, not ArgumentError, and
    status, meant for a broken file, failed with a traceback; the URL it cannot parse is
    shown with its password hidden all the same."""
    config = write_config([("Wire", "http://127.0.0.1:9/f.xml")])
    text = config.read_text()
    assert '"sqlite:///digest.db"' in text
    bad = "postgresql+psycopg://bob:s3cret-pw@db.internal:54x2/digest"
    config.write_text(text.replace('"sqlite:///digest.db"', f'"{bad}"'))
    code, out, err = run_cli("--config", str(config), "status")
    assert code == 2, (out, err)
    assert out.startswith("error: the config cannot be read:")
    assert "status: cannot find the database:" in out
    assert "db.internal" in out and "s3cret-pw" not in out + err
    code, document_text, err = run_cli("--config", str(config), "status", "--json")
    assert code == 2 and "status: cannot find the database:" in err
    assert "s3cret-pw" not in document_text + err
    # stdout is a JSON document still (a script piping it to jq read nothing): the
    # config's error and that no database was found.
    document = json.loads(document_text)
    assert document["database_found"] is False
    assert "db.internal" in document["database_error"]
    assert document["config_error"]["problems"] and document["config_error"]["hint"]


def test_a_reload_record_cut_short_names_no_next_runs() -> None:
    """Half a time at a record's end is not "never": the record is not read as naming
    the next runs, and the file's plan (or "unknown") is shown instead of a false never."""
    from datetime import UTC, datetime

    from digest.job_names import next_runs_of, reload_next

    at = datetime(2026, 12, 8, 7, 0, tzinfo=UTC)
    said = "started: 1 sources, 2 digests" + reload_next(
        [("send daily", at), ("send weekly", None)]
    )
    assert next_runs_of(said) == {"daily": at, "weekly": None}
    assert next_runs_of(said + "; config 0123456789ab") == {"daily": at, "weekly": None}
    cut = "started: 1 sources, 2 digests" + reload_next([("send weekly", None), ("send daily", at)])
    assert next_runs_of(cut[:-8]) is None  # "... send daily at 2026-12-08 0"


def test_status_without_config_names_the_database_file_in_full(
    write_config, tmp_path: Path, monkeypatch
) -> None:
    """Run from another folder, a relative ``sqlite:///digest.db`` is the config folder's
    (the loader's rule): status reads that one and says its full path, not a bare
    "digest.db" the admin would look for in the folder they are in."""
    config = write_config([("Wire", "http://127.0.0.1:9/f.xml")], gather="interval_minutes = 30")
    App.open(load_config(config)).close()
    _break(config)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, _ = run_cli("--config", str(Path("..") / config.name), "status")
    assert code == 2
    assert f"status: from the database alone (sqlite:///{config.parent / 'digest.db'})" in out
    assert not (elsewhere / "digest.db").exists()


def test_lenient_setting_does_not_guess_when_the_table_header_is_the_broken_line(
    tmp_path: Path,
) -> None:
    """``[service`` without its bracket: the database_url line below it is not under a
    [service] header any more, and the default (another database, perhaps one there) was
    read instead of saying the database cannot be told."""
    from digest.config import lenient_setting

    file = tmp_path / "digest.toml"
    file.write_text('[service\nname = "x"\ndatabase_url = "postgresql+psycopg://h/db"\n')
    assert lenient_setting(file, "service", "database_url") is None
    file.write_text('[service]\nname = "x\n[delivery]\nbatch = 1\n')  # not written: default
    assert lenient_setting(file, "service", "database_url") == "sqlite:///digest.db"
