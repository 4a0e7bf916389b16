"""`digest status` for a person: each recent edition and its reasons, the queue over every
edition, the processes sending it (workers and schedulers, by their heartbeat rows), the
daemon and each job's last run, as ``digest.reports`` reports them."""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from digest.app import App
from digest.cli._common import Context, console
from digest.clock import utc_time
from digest.config import config_path, lenient_setting
from digest.deliver.dispatch import count_words
from digest.deliver.report import still_doubted_words
from digest.errors import ConfigError, StoreError
from digest.job_names import RELOAD
from digest.reports import EditionStatus, NextRunsFrom, StatusReport, config_error_json
from digest.reports.daemon_runs import AS_THE_DAEMON_HAS_IT
from digest.reports.without_config import status_without_config
from digest.states import DeliveryStatus
from digest.store.engine import resolve_url, shown_url


def print_outbox(document: dict[str, Any]) -> None:
    """The queue in one line, then one row per worker and scheduler."""
    q = document["queue"]
    parts = [f"{q['pending']} pending"]
    if q["oldest_pending_seconds"] is not None:
        parts[0] += f" (oldest waiting {_age(q['oldest_pending_seconds'])})"
    if q["deferred"]:
        due = q.get("next_deferred_due_at")
        when = f"the first due again at {str(due)[:19].replace('T', ' ')} UTC" if due else "due"
        parts.append(
            f"{q['deferred']} deferred ({when}: the daemon's retry job or `digest retry --due` "
            "sends them then; `digest retry EDITION` now)"
        )
    if q["in_flight"]:
        back = str(q["in_flight_back_by"])[11:19]
        parts.append(
            f"{q['in_flight']} in flight (if their sender stopped, they are pending again "
            f"by {back} UTC)"
        )
    if q["held_by_stopped_senders"]:
        parts.append(
            f"{q['held_by_stopped_senders']} held by a sender that stopped (lease run out: "
            "the next send or worker on its machine records those the server took before "
            "the stop from the batch's progress file, and sends the others)"
        )
    click.echo("queue: " + ", ".join(parts))
    print_unrecorded(document.get("unrecorded"))
    workers = document["workers"]
    if not workers:
        click.echo(
            "workers: none running (`digest worker` sends queued rows; without one, the "
            "scheduler or `digest send` does)"
        )
        return
    table = Table("role", "host", "pid", "state", "last seen", "sent", "msg/s")
    for w in workers:
        seen = f"{_age(w['seen_seconds_ago'])} ago"
        table.add_row(
            w["role"],
            w["host"],
            str(w["pid"]),
            "STOPPED? (no heartbeat)" if w["stopped"] else w["state"],
            seen,
            str(w["sent"]),
            f"{w['rate_per_second']:g}",
        )
    console.print(table)


def print_unrecorded(journal: dict[str, Any] | None) -> None:
    """Batches the mail server took that the database failed to record, one line each,
    and what becomes of them."""
    if journal is None:
        return
    for batch in journal["batches"]:
        click.echo(
            f"unrecorded: edition {batch['edition']}: {batch['deliveries']} deliveries "
            f"({batch['sent']} accepted) the mail server took at "
            f"{str(batch['taken_at'])[:19].replace('T', ' ')} UTC; the database could not "
            f"record them ({batch['reason']}). Kept in {journal['file']}: the next send "
            "records them before anything is sent again (if it fails, fix the database first)"
        )
    if journal["unreadable_lines"]:
        click.echo(
            f"unrecorded: {journal['file']} has {journal['unreadable_lines']} line(s) that are "
            "not a batch's results (a write cut short?): their deliveries may be sent again; "
            "read the lines, then delete them"
        )


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def print_status(report: StatusReport) -> None:
    """The editions' table and reasons, the outbox, then the daemon and the jobs."""
    table = Table("edition", "digest", "slot (UTC)", "stories", "done", "deliveries")
    for line in report.editions:
        e = line.edition
        table.add_row(
            str(line.id),
            e.digest_id,
            f"{e.slot:%Y-%m-%d %H:%M}",  # the column says UTC
            str(e.story_count),
            f"{line.progress:.0%}",
            count_words(line.counts) or "none",
        )
    console.print(table)
    for line in report.editions:
        if line.note:
            click.echo(f"edition {line.id} ({line.edition.digest_id}): {line.note}")
        _print_reasons(line)
    print_outbox(report.outbox)
    _print_daemon(report)


def _print_reasons(line: EditionStatus) -> None:
    """An edition's five commonest reasons per state, the rest summed, then the retry."""
    for state, reasons in line.reasons.items():
        for reason, rows in list(reasons.items())[:5]:
            click.echo(f"edition {line.id}: {state} {rows}: {reason}")
        if len(reasons) > 5:
            more = sum(list(reasons.values())[5:])
            click.echo(
                f"edition {line.id}: {state} {more}: for {len(reasons) - 5} other "
                "reasons (--json lists all)"
            )
    for why, found in line.still_doubted.items():
        click.echo(f"edition {line.id}: {still_doubted_words(why, found.rows, found.emails)}")
    if line.reasons.get(DeliveryStatus.FAILED):
        click.echo(
            f"edition {line.id}: once the cause is fixed, `digest retry {line.id}` sends the "
            "failed ones again (not bounced or unsubscribed people)"
        )


def _print_daemon(report: StatusReport) -> None:
    """Whether a daemon runs, when each digest fires next, how each job last went."""
    if report.daemon is not None:
        click.echo(f"daemon: running ({report.daemon})")
        if unread := report.unread_words():
            click.echo(f"daemon: CONFIG NOT RELOADED: {unread}")
    elif report.config_error is not None:
        click.echo(
            "daemon: not running on this database; `digest run` (and cron's `digest run "
            "--once`) cannot start while the config is invalid: no digest goes out"
        )
    else:
        click.echo(
            "daemon: not running on this database; digests go out only when `digest run` "
            "(or cron's `digest run --once`) runs"
        )
    _print_whose_next_runs(report)
    for next_run in report.next_runs:
        when = next_run.utc
        shown = utc_time(when) if when else "never (its schedule)"
        click.echo(f"next {next_run.digest_id}: {shown}" + _aside(next_run.daemon_note))
        if missed := next_run.missed_words():
            click.echo(f"MISSED {next_run.digest_id}: {missed}")
    for job, run in report.jobs.items():
        state = "ok" if run.ok else "FAILED"
        at = utc_time(run.finished_at, seconds=True)
        if later := report.ok_since(job):
            at += f" (a later run went ok: `{later.job}` at {later.finished_at:%H:%M:%S} UTC)"
        click.echo(f"last {job}: {state} at {at}: {run.summary}")


def _print_whose_next_runs(report: StatusReport) -> None:
    """Whose next runs follow: the running daemon's (its last ``reload`` record), or the
    config file's, and why; they differ while the daemon runs an older config."""
    if report.config_error is not None and report.daemon is not None:
        if report.next_runs:
            click.echo("next runs: as the daemon's last `reload` record names them (below)")
        else:
            click.echo(
                "next runs: unknown: the config cannot be read and the daemon's last "
                "`reload` record does not name them"
            )
    elif report.next_runs_from is NextRunsFrom.DAEMON and report.daemon is not None:
        read = report.jobs.get(RELOAD)
        at = f" of {utc_time(read.finished_at, seconds=True)}" if read else ""
        click.echo(
            f"next runs: the running daemon's, as its last `reload` record{at} names them "
            "(the config it runs, which may be older than the file)"
        )
    elif report.daemon is not None:
        click.echo(
            "next runs: the config file's: the running daemon's last `reload` record does "
            "not name them (a daemon of an older version?)"
        )
    elif report.config_error is None:
        click.echo("next runs: the config file's (no daemon runs on this database)")


def _aside(note: str) -> str:
    """A next run's note, when it is not what the header above it said already."""
    return f" ({note})" if note and not note.startswith(AS_THE_DAEMON_HAS_IT) else ""


def print_config_error(error: ConfigError, err: bool = False) -> None:
    """The config's problems, each naming its line, key and fix, then the hint: first, above
    what the database says (``err``: on stderr, beside a JSON document)."""
    click.echo(f"error: the config cannot be read: {error.message}", err=err)
    click.echo(f"hint: {error.hint}", err=err)


def print_without_config(report: StatusReport, database: str) -> None:
    """`digest status` on a config it cannot read: what ``database`` holds, as ever."""
    click.echo(
        f"status: from the database alone ({database}), the config being invalid; a "
        "running daemon keeps the config it read last (its `reload` record below)"
    )
    print_status(report)


def status_without_config_cmd(ctx: Context, error: ConfigError, as_json: bool) -> None:
    """`digest status` while the config is invalid: the error first, then what the database
    holds, found by the ``database_url`` the broken file still says (or its default)."""
    print_config_error(error, err=as_json)
    file = config_path(ctx.config_path)
    url = lenient_setting(file, "service", "database_url")
    journal = lenient_setting(file, "delivery", "unrecorded_file")
    store = None
    base = file.resolve().parent
    if url is not None:
        with suppress(StoreError):  # a URL that does not parse: not found either
            # Resolved as ``Config.resolve_path`` does: "~" is the home, relative is the file's
            kept = base / Path(journal).expanduser() if journal else None
            store = App.database_only(url, base, ctx.clock, kept)
    if store is None:
        where = (
            f"{file} does not say which (`database_url` under [service]), because of the "
            "error above"
            if url is None
            else f"none is there at {_shown(url, base)} (or it cannot be reached)"
        )
        click.echo(f"status: cannot find the database: {where}", err=as_json)
        if as_json:  # a script reading stdout gets a document still, saying what is known
            lost = {"config_error": config_error_json(error), "database_found": False}
            click.echo(json.dumps({**lost, "database_error": f"cannot find the database: {where}"}))
        return
    try:
        report = status_without_config(store, error)
    finally:
        store.engine.dispose()
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        print_without_config(report, _shown(url or "", base))


def _shown(url: str, base: Path) -> str:
    """The database status reads, as the loader finds it: a relative SQLite path is the
    config folder's (``base``), said in full, since status may run from anywhere."""
    with suppress(StoreError):
        return shown_url(resolve_url(url, base))
    return shown_url(url)
