"""Commands that run the service: gather, preview, send, run, status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.table import Table

from digest.cli._common import Context, console, pass_context, run_async
from digest.config import Config
from digest.deliver import DeliveryReport
from digest.editions import left_out, next_edition_at, next_edition_preview, rank_window
from digest.errors import UsageError
from digest.pipeline import RunReport, deliver_stored, gather_sources, run_digest
from digest.rank import SIGNALS
from digest.records import Recipient, RenderedEdition
from digest.render import substitute
from digest.schedule import next_slot
from digest.schedule.jobs import record_gather
from digest.sending import requeue_edition, resume_since, stored_edition
from digest.sources.gather import SourceReport, end_waits
from digest.store import Edition, utcnow
from digest.store.lock import daemon_holder
from digest.store.tables import FINAL_DELIVERY_STATES

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
    started = utcnow()
    reports = run_async(gather_sources(app))
    record_gather(app, started, reports)
    if as_json:
        click.echo(json.dumps({"sources": [_report_dict(r) for r in reports]}, indent=2))
    else:
        print_sources(reports)
    if reports and not any(r.status == "ok" for r in reports):
        raise SystemExit(1)


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="folder to write DIGEST.html and DIGEST.txt into",
)
@_DIGEST_OPTION
@pass_context
def preview(ctx: Context, out_dir: Path, digest_id: str | None) -> None:
    """Render the next edition from stored articles; write its HTML and text, send nothing."""
    app = ctx.app()
    digest = app.config.digest(digest_id)
    # Built as the send builds it: the admin's templates, the service's language, the link.
    now = utcnow()
    ranked, rendered = next_edition_preview(app, digest, now)
    html, text = write_preview(app.config, rendered, out_dir, name=digest.id)
    click.echo(f"{ranked.count} stories ({len(ranked.breaking)} breaking)")
    for note in left_out(app, digest, next_edition_at(app, digest, now), ranked):
        click.echo(f"left out: {note}")
    click.echo(f"wrote {html}\nwrote {text}")


def write_preview(
    config: Config, edition: RenderedEdition | Edition, out_dir: Path, name: str = "digest"
) -> tuple[Path, Path]:
    """Write an edition's HTML and text with sample personal links, for a person to open."""
    sample = Recipient(
        0,
        "preview@example.org",
        None,
        f"{config.service.base_url}/unsubscribe/PREVIEW",
        f"mailto:{config.unsubscribe_mailto()}",
        f"{config.service.base_url}/preferences/PREVIEW",
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, text_path = out_dir / f"{name}.html", out_dir / f"{name}.txt"
    html_path.write_text(substitute(edition.html, sample, is_html=True), encoding="utf-8")
    text_path.write_text(substitute(edition.text, sample, is_html=False), encoding="utf-8")
    return html_path.resolve(), text_path.resolve()


# Short column names, so the table keeps room for the headline in an 80-column terminal.
_SHORT = {
    "recency": "fresh",
    "source_weight": "weight",
    "coverage": "cover",
    "velocity": "veloc",
    "cue": "cue",
    "already_sent": "sent",
}


@click.command()
@_DIGEST_OPTION
@click.option("--json", "as_json", is_flag=True, help="print one JSON document")
@pass_context
def explain(ctx: Context, digest_id: str | None, as_json: bool) -> None:
    """The next edition's ranked stories with each signal's contribution to the score."""
    app = ctx.app()
    digest = app.config.digest(digest_id)
    at = next_edition_at(app, digest, utcnow())
    ranked = rank_window(app, digest, at)
    rows = [
        {
            "section": section,
            "rank": rank,
            "story_id": story.story_id,
            "score": story.score,
            "headline": story.lead.title,
            "sources": list(story.sources),
            "signals": {
                s.name: {"value": s.value, "adds": round(s.contribution, 4)} for s in story.signals
            },
        }
        for section, stories in (("breaking", ranked.breaking), ("latest", ranked.latest))
        for rank, story in enumerate(stories, start=1)
    ]
    notes = left_out(app, digest, at, ranked)
    if as_json:
        document = {"digest": digest.id, "stories": rows, "left_out": notes}
        click.echo(json.dumps(document, indent=2))
        return
    table = Table(
        "#", "score", *(_SHORT[n] for n in SIGNALS), "src", "headline",
        box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
    )  # fmt: skip
    for column in table.columns[:-1]:
        column.no_wrap = True
    for row in rows:
        signals: dict[str, dict[str, float]] = row["signals"]  # type: ignore[assignment]
        table.add_row(
            f"{str(row['section'])[0].upper()}{row['rank']}",
            f"{row['score']:.2f}",
            *(f"{signals[n]['adds']:.2f}" if n in signals else "" for n in SIGNALS),
            str(len(row["sources"])),  # type: ignore[arg-type]
            str(row["headline"]),
        )
    console.print(table)
    w = app.config.rank
    click.echo(
        "#: B = Breaking, L = Latest; "
        + ", ".join(f"{_SHORT[n]} = {n}" for n in SIGNALS)
        + "; src = sources carrying the story.\n"
        "score = the sum of the signals, each weighted in [rank] of the config: freshness, "
        "the best source weight, the other sources' votes (a source's weight, shared with "
        "sources that usually carry the same stories), the votes of sources joining "
        f"in the last {w.velocity_hours:g} h, a breaking cue, minus the penalty for a story "
        f"one of the last {w.sent_lookback_editions} editions sent (unless a source joined). "
        f"Breaking: score >= {w.breaking_min_score:g} and {w.breaking_min_sources}+ sources "
        f"or a cue; {len(ranked.breaking)} breaking, {len(ranked.latest)} latest"
    )
    for note in notes:
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
    app, started = ctx.app(), utcnow()
    report = run_async(run_digest(app, digest_id, gather_first=gather_first))
    if report.sources:
        record_gather(app, started, report.sources)
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
        from digest.schedule.jobs import gather_job, send_job

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
    from digest.config import load_config
    from digest.schedule.daemon import run_daemon

    run_daemon(app, reload_config=lambda: load_config(ctx.config_path))


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
        from digest.schedule.jobs import retry_job

        reports = retry_job(app)
        for run_report in reports:
            print_run(run_report)
        if not reports:
            click.echo("nothing due: no deferred row's wait is over, and no limit has room")
        if not all(r.ok for r in reports):
            raise SystemExit(1)
        return
    edition = stored_edition(app, edition_id)  # an unknown id is an error naming recent ones
    digest = app.config.digest(edition.digest_id)
    if no_send and edition.slot < resume_since(app, digest, utcnow()):
        raise UsageError(
            f"edition {edition_id} (slot {edition.slot:%Y-%m-%d %H:%M} UTC) is too old for a "
            "later run to send: the next send would mark its rows failed again",
            f"run `digest retry {edition_id}` without --no-send to send them now",
        )
    requeued, resumed, deferred = requeue_edition(app, edition_id)
    click.echo(
        f"edition {edition_id}: {requeued} failed deliveries re-queued, "
        + (f"{resumed} paused ones resumed, " if resumed else "")
        + f"{deferred} deferred ones due now"
    )
    counts = app.store.delivery_counts(edition_id)
    if no_send or not (counts.get("pending") or counts.get("sending")):
        return
    report = run_async(deliver_stored(app, edition_id))
    print_run(report)
    if not report.ok:
        raise SystemExit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print one JSON document")
@pass_context
def status(ctx: Context, as_json: bool) -> None:
    """Each recent edition with its delivery counts, and when each digest fires next."""
    app = ctx.app()
    now = utcnow()
    editions: list[dict[str, Any]] = []
    for e in app.store.editions(limit=20):
        assert e.id is not None
        editions.append(
            {
                "id": e.id,
                "digest": e.digest_id,
                "slot": e.slot.isoformat(),
                "subject": e.subject,
                "stories": e.story_count,
                "deliveries": (tally := app.store.delivery_counts(e.id)),
                "reasons": _grouped(app.store.delivery_reasons(e.id, limit=100)),
                "progress": _progress(tally),
            }
        )
    upcoming = {}
    for d in app.config.digests:
        fire = next_slot(d.schedule, d.timezone or app.config.service.timezone, now)
        upcoming[d.id] = fire.isoformat() if fire else None
    jobs = {
        run.job: {
            "finished_at": run.finished_at.isoformat(),
            "ok": run.ok,
            "summary": run.summary,
        }
        for run in app.store.job_runs()
    }
    holder = daemon_holder(app.engine)
    daemon = {"running": holder is not None, "holder": holder}
    if as_json:
        document = {"editions": editions, "next_runs": upcoming, "jobs": jobs, "daemon": daemon}
        click.echo(json.dumps(document, indent=2))
        return
    table = Table("edition", "digest", "slot (UTC)", "stories", "done", "deliveries")
    for row in editions:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(row["deliveries"].items())) or "none"
        table.add_row(
            str(row["id"]),
            str(row["digest"]),
            str(row["slot"])[:16],
            str(row["stories"]),
            f"{row['progress']:.0%}",
            counts,
        )
    console.print(table)
    for row in editions:
        for state, reasons in row["reasons"].items():
            for reason, rows in list(reasons.items())[:5]:
                click.echo(f"edition {row['id']}: {state} {rows}: {reason}")
            if len(reasons) > 5:
                more = sum(list(reasons.values())[5:])
                click.echo(
                    f"edition {row['id']}: {state} {more}: for {len(reasons) - 5} other "
                    "reasons (--json lists all)"
                )
    if holder is not None:
        click.echo(f"daemon: running ({holder})")
    else:
        click.echo(
            "daemon: not running on this database; digests go out only when `digest run` "
            "(or cron's `digest run --once`) runs"
        )
    for digest_id, when in upcoming.items():
        shown = f"{when[:16].replace('T', ' ')} UTC" if when else "never (its schedule)"
        click.echo(f"next {digest_id}: {shown}")
    for job, run in jobs.items():
        state = "ok" if run["ok"] else "FAILED"
        finished = str(run["finished_at"])[:19].replace("T", " ")
        click.echo(f"last {job}: {state} at {finished} UTC: {run['summary']}")


def _grouped(reasons: list[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
    """(state, reason, rows), commonest first, as state -> reason -> rows."""
    grouped: dict[str, dict[str, int]] = {}
    for state, reason, rows in reasons:
        grouped.setdefault(state, {})[reason] = rows
    return grouped


def _progress(counts: dict[str, int]) -> float:
    """Share of an edition's rows that reached an end state (sent, failed, suppressed)."""
    total = sum(counts.values())
    finished = sum(counts.get(k, 0) for k in FINAL_DELIVERY_STATES)
    return finished / total if total else 1.0


def print_sources(reports: list[SourceReport]) -> None:
    """One line per source: new items, or the error and its hint."""
    labels = {"error": "FAIL", "gone": "GONE", "skipped": "WAIT"}
    for r in reports:
        if r.status == "ok":
            click.echo(f"  ok    {r.name}: {r.counts()}")
        else:
            click.echo(f"  {labels.get(r.status, r.status.upper()):<5} {r.name}: {r.error}")
            if r.hint:
                click.echo(f"        hint: {r.hint}")


def print_run(report: RunReport) -> None:
    """What a run did, in the words an admin checking at 7 a.m. needs."""
    if report.sources:
        print_sources(report.sources)
    for edition, resumed in report.resumed:  # sent first: earlier editions' waiting rows
        click.echo(
            f"edition {edition.id} ({edition.digest_id}, slot {edition.slot:%Y-%m-%d %H:%M} "
            "UTC) resumed: rows an earlier run left waiting"
        )
        _print_delivery(resumed)
    e = report.edition
    if e is not None:
        verb = "built" if report.created else "already built"
        click.echo(
            f"edition {e.id} ({e.digest_id}, slot {e.slot:%Y-%m-%d %H:%M} UTC) {verb}: "
            f"{e.story_count} stories, subject {e.subject!r}"
        )
    if report.delivery is not None:
        _print_delivery(report.delivery)
    elif report.idle:
        click.echo(f"nothing sent: {report.idle}")


def _print_delivery(d: DeliveryReport) -> None:
    counts = ", ".join(f"{n} {k}" for k, n in sorted(d.counts.items())) or (
        "nothing sent" if d.stopped else "nothing to send"
    )
    click.echo(f"delivery: {counts} ({d.queued} newly queued)")
    for reason, rows in d.skipped.most_common():
        click.echo(f"  skipped {rows}: {reason}")
    for line in d.problems:
        click.echo(f"  {line}", err=True)
    if d.waiting:
        click.echo(f"delivery waiting: {d.waiting}")
    if d.stopped and d.paused:
        click.echo(f"delivery stopped: {d.stopped}; {d.paused} unsent messages paused", err=True)
    elif d.stopped:
        click.echo(
            f"delivery stopped: {d.stopped}; unsent messages stay queued for the next run", err=True
        )


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
