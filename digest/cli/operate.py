"""Commands that run the service: gather, preview, send, run, status."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich import box
from rich.table import Table

from digest.app import App
from digest.cli._common import Context, console, pass_context, run_async
from digest.cli._status import print_status, status_without_config_cmd
from digest.clock import utc_time
from digest.deliver import DeliveryReport
from digest.editions import left_out, next_edition_at, next_edition_preview
from digest.errors import ConfigError, UsageError
from digest.jobs import hand_retry, hand_send, record_gather
from digest.logs import printed_by_command
from digest.pipeline import RunReport, gather_sources
from digest.rank import SIGNALS
from digest.render import write_preview
from digest.reports import explain_report, status_report
from digest.sources.gather import SourceReport, end_waits
from digest.sources.outcomes import NOT_MODIFIED
from digest.states import FetchStatus
from digest.subscribers import check_topics

_DIGEST_OPTION = click.option(
    "--digest", "digest_id", default=None, help="digest id (default: first)"
)


@click.command("gather")
@click.option("--json", "as_json", is_flag=True, help="print one JSON document of the results")
@click.option(
    "--force",
    is_flag=True,
    help="try every source now, also those waiting out a failure's backoff or marked gone",
)
@pass_context
def gather_cmd(ctx: Context, as_json: bool, force: bool) -> None:
    """Fetch every source once and store new articles; a broken source is a warning, the rest go on.

    Exits 0 when at least one source was read, 1 when none was: each one failed, is gone,
    or waits out the backoff of earlier failures (a cron job or a monitor sees the outage).
    """
    app = ctx.app()
    if force:
        end_waits(app.config, app.store)
    started = app.clock.now()
    with printed_by_command(not as_json):  # each failure is said once, in the table below
        reports = run_async(gather_sources(app))
    record_gather(app, started, reports)
    if as_json:
        click.echo(json.dumps({"sources": [_report_dict(r) for r in reports]}, indent=2))
    else:
        print_sources(reports)
    if reports and not any(r.status == FetchStatus.OK for r in reports):
        raise SystemExit(1)


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="folder to write DIGEST.html and DIGEST.txt into",
)
@click.option(
    "--topics",
    default="",
    help="comma-separated topics: what a reader of them would get (their choice's own "
    "edition, as the build would store it)",
)
@_DIGEST_OPTION
@pass_context
def preview(ctx: Context, out_dir: Path, digest_id: str | None, topics: str) -> None:
    """Render the next edition from stored articles; write its HTML and text, send nothing."""
    app = ctx.app()
    digest = app.config.digest(digest_id)
    chosen = frozenset(t.strip() for t in topics.split(",") if t.strip())
    try:
        check_topics(sorted(chosen), app.config.topics())
    except ValueError as exc:
        raise UsageError(str(exc), "the topics are those of [[sources]] in the config") from exc
    # Built as the send builds it: the admin's templates, the service's language, the link.
    now = app.clock.now()
    ranked, rendered = next_edition_preview(app, digest, now, topics=chosen)
    html, text = write_preview(app.config, rendered, out_dir, name=digest.id)
    click.echo(f"{ranked.count} stories ({len(ranked.breaking)} breaking)")
    for note in left_out(app, digest, next_edition_at(app, digest, now), ranked):
        click.echo(f"left out: {note}")
    click.echo(f"wrote {html}\nwrote {text}")


# Short column names, so the table keeps room for the headline in an 80-column terminal.
_SHORT = {
    "recency": "fresh",
    "source_weight": "wt",
    "coverage": "cov",
    "rerun": "rerun",
    "breadth": "brd",
    "velocity": "vel",
    "growth": "grow",
    "cue": "cue",
}


@click.command()
@_DIGEST_OPTION
@click.option("--json", "as_json", is_flag=True, help="print one JSON document")
@pass_context
def explain(ctx: Context, digest_id: str | None, as_json: bool) -> None:
    """The next edition's ranked stories with each signal's contribution to the score."""
    app = ctx.app()
    report = explain_report(app, app.config.digest(digest_id))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    click.echo("\n".join(report.header()))
    table = Table(
        "#", "score", *(_SHORT[n] for n in SIGNALS), "src", "headline",
        box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, padding=0,
    )  # fmt: skip
    for column in table.columns[:-1]:
        column.no_wrap = True
    for story in report.stories:
        signals = story.signals
        table.add_row(
            f"{story.section[0].upper()}{story.rank}",
            f"{story.score:.2f}",
            *(f"{signals[n].adds:.2f}" if n in signals else "" for n in SIGNALS),
            str(len(story.sources)),
            story.headline,
        )
    console.print(table)
    w = app.config.rank
    click.echo(
        "#: B = Breaking, L = Latest, S = sent before and not grown since (left out); "
        + ", ".join(f"{_SHORT[n]} = {n}" for n in SIGNALS)
        + "; src = sources carrying the story.\n"
        "score = the sum of the signals, each weighted in [rank] of the config: freshness, "
        "the best source weight, the other sources' votes (a source's weight, shared with "
        "sources that usually carry the same stories), what the sources' habit of running a "
        "story in several articles changes in those votes (learned from the last days' "
        "stories, each source against its long run: the 'learned' line), what each "
        "source's breadth changes in them (a general newsroom's vote counts more than a "
        "specialist's, learned over the store's history), the votes of sources joining "
        f"in the last {w.velocity_hours:g} h, the votes a young story can still expect "
        "(learned from how the stories of the last days grew here; 0 until there are "
        "some), a breaking cue. A story an earlier edition sent is left out unless it grew "
        "(a new source, a new headline): then it goes marked as an update. "
        f"Breaking: score >= {w.breaking_min_score:g} and {w.breaking_min_sources}+ sources "
        f"or a cue; {report.breaking} breaking, {report.latest} latest"
    )
    for note in report.left_out:
        click.echo(f"left out: {note}")


@click.command()
@_DIGEST_OPTION
@click.option(
    "--gather/--no-gather",
    "gather_first",
    default=False,
    help="fetch the sources first (default: use what is stored)",
)
@pass_context
def send(ctx: Context, digest_id: str | None, gather_first: bool) -> None:
    """Send what earlier editions still have waiting, then build the current slot's edition
    (once) and deliver it to whoever has not had it."""
    app = ctx.app()
    digest = app.config.digest(digest_id)  # an unknown id is bad usage, not a failed send
    # Recorded as "send ID (manual)", for `digest status` and the console's last jobs.
    with printed_by_command():  # a gather's failures are said once, in print_run's table
        report = hand_send(app, digest.id, gather_first)
    print_run(report)
    if not report.ok:
        raise SystemExit(1)


@click.command()
@click.option("--once", is_flag=True, help="gather, send every digest's current edition, exit")
@pass_context
def run(ctx: Context, once: bool) -> None:
    """Run as a daemon: each digest on its cron schedule, gathering on an interval."""
    app = ctx.app()
    if once:  # the daemon's jobs, once each, recorded for `digest status` as the daemon's are
        from digest.jobs import gather_job, send_job

        sources = gather_job(app)
        ok = sources is not None
        print_sources(sources or [])
        for digest in app.config.digests:
            report = send_job(app, digest.id, gather_first=False)
            if report is not None:
                print_run(report)
            ok = ok and report is not None and report.ok
        if not ok:
            raise SystemExit(1)
        return
    from digest.config import reload_config
    from digest.schedule.daemon import run_daemon

    run_daemon(app, reload_config=lambda running: reload_config(running, ctx.config_path))


@click.command()
@click.argument("edition_id", type=int, required=False)
@click.option("--no-send", is_flag=True, help="only re-queue; the next send delivers them")
@click.option(
    "--due",
    is_flag=True,
    help="no EDITION: send what every digest has due now (deferred rows whose wait is over, "
    "rows a limit or a stopped run left), as the daemon's retry job does; for cron",
)
@pass_context
def retry(ctx: Context, edition_id: int | None, no_send: bool, due: bool) -> None:
    """Re-queue an edition's failed, paused and deferred deliveries (not bounced or
    unsubscribed people) and send whatever it still has waiting; nobody who joined since is
    added. With --due instead of EDITION: send what is due now, every digest."""
    app = ctx.app()
    if due == (edition_id is not None) or (due and no_send):
        raise UsageError(
            "give either an EDITION to retry or --due (without --no-send)",
            "`digest status` lists the editions; `digest retry --due` is the cron line",
        )
    if edition_id is None:
        _retry_due(app)
        return
    # Recorded as "retry ID (manual)", for `digest status` and the console's last jobs.
    report = hand_retry(app, edition_id, send=not no_send)
    click.echo(
        f"edition {edition_id}: {report.requeued} failed deliveries re-queued, "
        + (f"{report.resumed} paused ones resumed, " if report.resumed else "")
        + f"{report.deferred} deferred ones due now"
    )
    if report.run is None:
        return
    print_run(report.run)
    if not report.run.ok:
        raise SystemExit(1)


def _retry_due(app: App) -> None:
    """`digest retry --due`: the daemon's retry job, once; exits 1 when a send stopped."""
    from digest.jobs import retry_job

    reports = retry_job(app)
    for run_report in reports:
        print_run(run_report)
    if not reports:
        click.echo(
            "nothing due now: nothing queued, and no deferred row's wait is over (or a "
            "sending limit has no room yet); `digest status` shows the queue"
        )
    queue = app.store.queue_summary()
    if queue.in_flight and queue.back_at:  # held by a sender, maybe stopped: when they return
        click.echo(
            f"{queue.in_flight} in flight under a sender's lease; if it stopped, they are "
            f"pending again by {utc_time(queue.back_at, seconds=True)} and the next send "
            "(or a worker) sends them"
        )
    if not all(r.ok for r in reports):
        raise SystemExit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print one JSON document")
@pass_context
def status(ctx: Context, as_json: bool) -> None:
    """Each recent edition with its delivery counts, the queue (pending, in flight, the
    oldest row's age), the workers and schedulers, and when each digest fires next.

    While the config is invalid: its errors first, then what the database holds; exit 2.
    """
    try:
        app = ctx.app()
    except ConfigError as exc:  # what the database holds is shown still: exit 2 after
        status_without_config_cmd(ctx, exc, as_json)
        raise SystemExit(exc.exit_code) from exc
    report = status_report(app)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    print_status(report)


def print_sources(reports: list[SourceReport]) -> None:
    """One line per source: new items, or the error and its hint; then the source's notes
    (what was left out of a feed cut short, when a failed one is tried next...), so an
    "ok" with items lost is never all it says."""
    labels: dict[str, str] = {
        FetchStatus.ERROR: "FAIL",
        FetchStatus.GONE: "GONE",
        FetchStatus.SKIPPED: "WAIT",
    }
    for r in reports:
        notes = [n for n in r.notes if n != NOT_MODIFIED]
        if r.status == FetchStatus.OK:
            routine = " (not modified: HTTP 304)" if NOT_MODIFIED in r.notes else ""
            click.echo(f"  ok    {r.name}: {r.counts()}{routine}")
        else:
            click.echo(f"  {labels.get(r.status, r.status.upper()):<5} {r.name}: {r.error}")
            if r.hint:
                click.echo(f"        hint: {r.hint}")
            if r.status == FetchStatus.SKIPPED:  # its error already says until when
                notes = []
        for note in notes:
            click.echo(f"        note: {note}")


def print_run(report: RunReport) -> None:
    """What a run did, in the words an admin checking at 7 a.m. needs."""
    if report.sources:
        print_sources(report.sources)
    for edition, resumed in report.resumed:  # sent first: earlier editions' waiting rows
        click.echo(
            f"edition {edition.id} ({edition.digest_id}, slot {edition.slot:%Y-%m-%d %H:%M} "
            "UTC) resumed: rows an earlier run left waiting"
        )
        _print_delivery(resumed, edition.id)
    e = report.edition
    if e is not None:
        verb = "built" if report.created else "already built"
        click.echo(
            f"edition {e.id} ({e.digest_id}, slot {e.slot:%Y-%m-%d %H:%M} UTC) {verb}: "
            f"{e.story_count} stories, subject {e.subject!r}"
        )
    if report.delivery is not None:
        _print_delivery(report.delivery, e.id if e is not None else None)
    elif report.idle:
        click.echo(f"nothing sent: {report.idle}")


def _print_delivery(d: DeliveryReport, edition_id: int | None) -> None:
    counts = d.counts_line() or (
        "nothing sent" if d.stopped else "nothing to send now" if d.in_flight else "nothing to send"
    )
    click.echo(f"delivery: {counts} ({d.queued} newly queued)")
    for reason, rows in d.skipped.most_common():
        click.echo(f"  skipped {rows}: {reason}")
    # Each refusal was logged once as it happened; here its totals, per reason.
    for reason, n in d.refusals.most_common():
        click.echo(f"  {n} x {reason}", err=True)
    for note in d.doubt_notes():
        click.echo(f"delivery: {note}", err=True)
    if d.in_flight:
        click.echo(f"delivery in flight: {d.in_flight_note()}")
    if d.waiting:
        click.echo(f"delivery waiting: {d.waiting}")
    if d.refused_all():
        click.echo("delivery failed: every message tried failed, none was sent", err=True)
    if d.stopped and d.paused:
        click.echo(f"delivery stopped: {d.stopped}; {d.paused} unsent messages paused", err=True)
    elif d.stopped:
        click.echo(
            f"delivery stopped: {d.stopped}; unsent messages stay queued for the next run", err=True
        )
    if step := d.next_step(edition_id):
        click.echo(f"next: {step}", err=True)


def _report_dict(r: SourceReport) -> dict[str, object]:
    return {
        "name": r.name,
        "status": r.status,
        "new_items": r.new_items,
        "items_seen": r.items_seen,
        "error": r.error or None,
        "hint": r.hint or None,
        "notes": r.notes,
        "next_attempt_at": r.next_attempt_at.isoformat() if r.next_attempt_at else None,
    }


COMMANDS = [gather_cmd, preview, explain, send, run, retry, status]
